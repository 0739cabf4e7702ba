//! Frame parsing: what one frame read from the signaling socket is, before
//! the core sorts it. A text frame is parsed into a typed [`Signal`] (whose
//! meaning — `auth` verdict, server error, message for the application — is
//! [`core::classify`](crate::core::classify)'s call); malformed JSON, binary
//! frames and pings only prove the link alive; a pong re-arms the read
//! deadline; a close frame, read error or end of stream ends the link.

use signaling_proto::{Signal, SignalingMessage};
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::debug;

/// One frame as the driver hands it to the core.
// Short-lived and moved once per frame, like the message it carries: boxing
// would only add an allocation per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub(super) enum Frame {
    /// A parsed message, for `core::classify` then `Core::handle_message`.
    Signal(Signal),
    /// Nothing for the application (malformed JSON, binary, WS ping), but the
    /// link is alive: `Core::handle_message(Inbound::Ignored)`.
    Ignored,
    /// For `Core::handle_pong`.
    Pong,
    /// For `Core::handle_closed`: close frame, read error or end of stream.
    Closed,
}

/// Sorts one read result (`None` = the stream ended).
pub(super) fn classify_frame(frame: Option<Result<Message, tungstenite::Error>>) -> Frame {
    match frame {
        Some(Ok(Message::Text(text))) => match SignalingMessage::parse(&text) {
            Ok(msg) => Frame::Signal(Signal::from(msg)),
            Err(e) => {
                debug!("skipped a malformed signaling message: {e}");
                Frame::Ignored
            }
        },
        Some(Ok(Message::Pong(_))) => Frame::Pong,
        Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Frame(_))) => Frame::Ignored,
        Some(Ok(Message::Close(frame))) => {
            debug!("signaling server closed the link: {frame:?}");
            Frame::Closed
        }
        Some(Err(e)) => {
            debug!("signaling read failed: {e}");
            Frame::Closed
        }
        None => Frame::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_sort_into_signals_pongs_and_ends() {
        let auth_ok = Message::text(r#"{"type":"auth","status":"ok"}"#);
        assert_eq!(
            classify_frame(Some(Ok(auth_ok))),
            Frame::Signal(Signal::AuthOk)
        );
        assert_eq!(
            classify_frame(Some(Ok(Message::text("{not json")))),
            Frame::Ignored
        );
        assert_eq!(
            classify_frame(Some(Ok(Message::Ping(Default::default())))),
            Frame::Ignored
        );
        assert_eq!(
            classify_frame(Some(Ok(Message::Pong(Default::default())))),
            Frame::Pong
        );
        assert_eq!(
            classify_frame(Some(Ok(Message::Close(None)))),
            Frame::Closed
        );
        assert_eq!(
            classify_frame(Some(Err(tungstenite::Error::ConnectionClosed))),
            Frame::Closed
        );
        assert_eq!(classify_frame(None), Frame::Closed);
    }
}
