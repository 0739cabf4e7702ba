//! The session → window → pane tree sent in `sessions` and `session_created`
//! (spec terminal-protocol.md §4). Field order here is the wire key order.

use serde::{Deserialize, Serialize};

/// A tmux session as the phone sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// tmux session id, e.g. `$0`.
    pub id: String,
    /// Session name.
    pub name: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Windows in tmux window order.
    pub windows: Vec<Window>,
    /// Last activity, Unix seconds.
    pub last_activity_at: i64,
    /// True iff at least one tmux client is attached on the host.
    pub attached: bool,
}

/// A tmux window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// tmux window id, e.g. `@0`.
    pub id: String,
    /// Window name.
    pub name: String,
    /// Window index within its session.
    pub index: u32,
    /// True for the session's current window.
    pub active: bool,
    /// Panes in tmux pane order.
    pub panes: Vec<Pane>,
}

/// A tmux pane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pane {
    /// tmux pane id, e.g. `%0`.
    pub id: String,
    /// Pane index within its window.
    pub index: u32,
    /// True for the window's current pane.
    pub active: bool,
    /// Pane size in cells.
    pub size: PaneSize,
    /// Pane title.
    pub title: String,
    /// The command running in the pane.
    pub current_command: String,
}

/// A pane's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaneSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}
