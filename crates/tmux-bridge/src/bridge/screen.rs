//! Snapshots for [`TmuxBridge`]: the one taken with a pane's output stream
//! (see `crate::output`, which opens it) and capturing a screen through a
//! private file, never through a control-mode reply.

use std::collections::HashMap;
use std::sync::MutexGuard;

use super::{TmuxBridge, lock, map_pane_error};
use crate::error::{BridgeError, Result};
use crate::fifo_dir::FifoDir;
use crate::snapshot::{
    CAPTURE_BLOCKS, build_snapshot, capture_commands, cursor_of, delete_buffer_line, read_capture,
};

impl TmuxBridge {
    /// The attach snapshot (spec terminal-protocol §6 step 8). If
    /// [`TmuxBridge::open_output`] was called for this pane and its snapshot
    /// was not taken yet, that one is returned: it matches the stream
    /// exactly. Otherwise a fresh capture (not synchronised with any stream),
    /// read through a private file like the attach snapshot.
    pub async fn snapshot(&self, pane_id: &str) -> Result<Vec<u8>> {
        if let Some(s) = lock(&self.inner.snapshots).remove(pane_id) {
            return Ok(s);
        }
        // The screen goes through a buffer into a private file, never into
        // a control-mode reply (see `snapshot`).
        let dir = FifoDir::create()?;
        let buffer = dir.marker().to_owned();
        let line = capture_commands(pane_id, &buffer, &dir.capture_file())?;
        let blocks = self.group(line).await?;
        if let Some(bad) = blocks.iter().find(|b| !b.ok) {
            let err = map_pane_error(pane_id, BridgeError::Tmux(bad.text()));
            if blocks.first().is_some_and(|b| b.ok) {
                // Captured, but the list stopped before deleting the buffer.
                let _ = self.group(delete_buffer_line(&buffer)).await;
            }
            return Err(err);
        }
        if blocks.len() != CAPTURE_BLOCKS {
            return Err(BridgeError::Protocol(format!(
                "{} reply blocks to capture-pane",
                blocks.len()
            )));
        }
        let cursor = cursor_of(&blocks)?;
        let lines = read_capture(&dir.capture_file()).await?;
        Ok(build_snapshot(&lines, cursor))
    }
}

/// The pending-snapshot map (pane id → snapshot taken with its pipe).
pub(crate) fn lock_snapshots(bridge: &TmuxBridge) -> MutexGuard<'_, HashMap<String, Vec<u8>>> {
    lock(&bridge.inner.snapshots)
}
