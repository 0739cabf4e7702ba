//! Events a peer reports to its owner, and the candidate and state types they carry.

use crate::RtcChannel;

/// One ICE candidate as exchanged over signaling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Candidate {
    /// The attribute value with its `candidate:` prefix (browser form). Remote
    /// candidates are accepted with or without the prefix.
    pub candidate: String,
    /// Media id the candidate belongs to.
    pub sdp_mid: Option<String>,
    /// Index of the m-line the candidate belongs to.
    pub sdp_m_line_index: Option<u16>,
}

/// The peer connection's aggregate state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// Nothing has happened yet.
    New,
    /// ICE or DTLS is in progress.
    Connecting,
    /// ICE and DTLS are up.
    Connected,
    /// Connectivity was lost; it may come back (or an ICE restart may bring it back).
    Disconnected,
    /// Connectivity failed for good.
    Failed,
    /// The peer was closed.
    Closed,
}

impl PeerState {
    /// The lowercase name used in logs and status maps.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::New => "new",
            PeerState::Connecting => "connecting",
            PeerState::Connected => "connected",
            PeerState::Disconnected => "disconnected",
            PeerState::Failed => "failed",
            PeerState::Closed => "closed",
        }
    }
}

impl std::fmt::Display for PeerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something the peer reports; read from the receiver returned by [`crate::RtcPeer::new`].
#[derive(Debug)]
pub enum RtcEvent {
    /// A local candidate was gathered; send it to the remote side.
    LocalCandidate(Candidate),
    /// Gathering of local candidates finished for the current ICE generation
    /// (the library's final empty candidate): no [`RtcEvent::LocalCandidate`]
    /// follows until an ICE restart, which gathers again and ends with another
    /// one of these. Comes after every candidate of its generation. A phone
    /// that writes its candidates into the answer waits for this.
    GatheringComplete,
    /// The connection state changed.
    State(PeerState),
    /// The remote side opened a DataChannel (answerer side).
    DataChannel(RtcChannel),
}
