//! The two seams the peer manager talks through: the signaling sink and the
//! protocol handler that receives authenticated requests.

use std::sync::Arc;

use signaling_proto::Signal;
use terminal_protocol::Request;

use crate::error::SendError;
use crate::peer::Peer;

/// Sends typed signaling messages (SDP, ICE, rejections) towards the server.
/// Must not block: implementations queue or fail.
pub trait MessageSender: Send + Sync {
    /// Hand one message to the signaling connection.
    fn send(&self, signal: Signal) -> Result<(), SendError>;
}

/// Receives requests of authenticated peers.
///
/// Called only after channel authentication, in arrival order per peer, from a
/// per-peer task (never inside a WebRTC callback). A slow `handle_message` slows
/// that peer's reading (bounded queue), not other peers. `ping` never reaches
/// the handler: the peer manager answers it at once, so a handler waiting on
/// tmux cannot delay `pong`.
#[async_trait::async_trait]
pub trait ProtocolHandler: Send + Sync + 'static {
    /// One decoded request of `peer`.
    async fn handle_message(&self, peer: Arc<Peer>, request: Request);
    /// One decoded request that arrived over `peer`'s fast channel
    /// (docs/stream-v2.md §4), in arrival order with `handle_message`.
    async fn handle_fast_message(&self, peer: Arc<Peer>, request: Request) {
        let _ = (peer, request);
    }
    /// The current peer of `device_id` went away (at most once per peer).
    async fn peer_disconnected(&self, device_id: &str);
}
