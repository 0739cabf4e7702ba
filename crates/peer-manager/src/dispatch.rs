//! The per-peer dispatcher task: authenticated requests (and `input` copies from
//! the fast channel) go to the [`ProtocolHandler`] and error replies to the
//! phone, in arrival order, off the peer task, so a handler stuck on tmux never
//! holds up `pong` or the timers.

use std::sync::Arc;

use terminal_protocol::{Event, Request};
use tokio::sync::mpsc;

use crate::handler::ProtocolHandler;
use crate::peer::Peer;

/// Requests and replies waiting for the handler, per peer. When it is full the
/// peer task stops reading the channel (backpressure on the phone).
pub(crate) const DISPATCH_QUEUE: usize = 64;

/// One item for the dispatcher.
#[derive(Debug)]
pub(crate) enum Dispatch {
    /// An authenticated request for the handler.
    Request(Request),
    /// An `input` copy from the fast channel, for the handler's fast path.
    Fast(Request),
    /// An `error` reply, in order with the handler's replies.
    Reply(Event),
}

/// Hands items to the handler until the peer closes or the queue's sender is
/// dropped.
pub(crate) async fn run_dispatcher(
    handler: Arc<dyn ProtocolHandler>,
    peer: Arc<Peer>,
    mut rx: mpsc::Receiver<Dispatch>,
) {
    let cancel = peer.cancel_token().clone();
    loop {
        let item = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            item = rx.recv() => match item {
                None => return,
                Some(i) => i,
            },
        };
        match item {
            Dispatch::Request(req) => handler.handle_message(peer.clone(), req).await,
            Dispatch::Fast(req) => handler.handle_fast_message(peer.clone(), req).await,
            Dispatch::Reply(ev) => {
                if let Err(e) = peer.send_message(&ev).await {
                    tracing::info!(device_id = peer.device_id, "error reply not sent: {e}");
                }
            }
        }
    }
}
