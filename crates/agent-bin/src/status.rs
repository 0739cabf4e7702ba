//! The agent's JSON status file (`agent-status.json` in the runtime dir,
//! beside the pidfile): written by the daemon when its state changes, read by
//! `muxlink status`.

use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// One connected phone as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    /// The phone's device id.
    pub device_id: String,
    /// WebRTC connection state.
    pub state: String,
    /// Pane the phone is attached to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_pane: Option<String>,
}

/// What a running agent reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// The agent's process id.
    pub pid: u32,
    /// Agent version.
    pub version: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Signaling connection state.
    pub signaling: String,
    /// The device id the agent admits (or a `!` sentinel).
    pub allowed_device_id: String,
    /// Connected phones.
    pub peers: Vec<PeerStatus>,
}

impl AgentStatus {
    /// Writes the status file atomically (0600).
    pub fn write(&self, path: &std::path::Path) -> Result<(), CliError> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| CliError::Other(format!("cannot encode the status: {e}")))?;
        crate::store::write_private(path, &json)
    }

    /// Reads the status file; None when missing or unreadable.
    pub fn read(path: &std::path::Path) -> Option<AgentStatus> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }
}
