//! Message classification: what one frame read from the signaling socket
//! means to the core. Text frames are parsed and sorted into `auth` replies,
//! server errors and messages for the handler; malformed JSON, binary frames
//! and pings only prove the link alive; a pong re-arms the read deadline; a
//! close frame, read error or end of stream ends the link.

use signaling_proto::SignalingMessage;
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::debug;

use crate::core::Inbound;

/// One frame as the driver hands it to the core.
// Short-lived and moved once per frame, like the message it carries: boxing
// would only add an allocation per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub(super) enum Frame {
    /// For `Core::handle_message`.
    Inbound(Inbound<SignalingMessage>),
    /// For `Core::handle_pong`.
    Pong,
    /// For `Core::handle_closed`: close frame, read error or end of stream.
    Closed,
}

/// Sorts one read result (`None` = the stream ended).
pub(super) fn classify_frame(frame: Option<Result<Message, tungstenite::Error>>) -> Frame {
    match frame {
        Some(Ok(Message::Text(text))) => match SignalingMessage::parse(&text) {
            Ok(msg) => Frame::Inbound(classify(msg)),
            Err(e) => {
                debug!("skipped a malformed signaling message: {e}");
                Frame::Inbound(Inbound::Ignored)
            }
        },
        Some(Ok(Message::Pong(_))) => Frame::Pong,
        Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Frame(_))) => {
            Frame::Inbound(Inbound::Ignored)
        }
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

/// Sorts a parsed message for the core.
pub(super) fn classify(msg: SignalingMessage) -> Inbound<SignalingMessage> {
    match msg.kind.as_str() {
        "auth" if msg.status == "ok" => Inbound::AuthOk,
        "auth" => Inbound::Error(format!("auth status {:?}", msg.status)),
        "error" => Inbound::Error(msg.error),
        _ => Inbound::Message(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_sorts_auth_errors_and_messages() {
        let ok = SignalingMessage {
            status: "ok".into(),
            ..SignalingMessage::new("auth")
        };
        assert_eq!(classify(ok), Inbound::AuthOk);
        assert!(matches!(
            classify(SignalingMessage::error("Invalid token")),
            Inbound::Error(e) if e == "Invalid token"
        ));
        assert!(matches!(
            classify(SignalingMessage::new("auth")),
            Inbound::Error(_)
        ));
        let relay = SignalingMessage::new("connect_request");
        assert_eq!(classify(relay.clone()), Inbound::Message(relay));
    }

    #[test]
    fn frames_sort_into_messages_pongs_and_ends() {
        let auth_ok = Message::text(r#"{"type":"auth","status":"ok"}"#);
        assert_eq!(
            classify_frame(Some(Ok(auth_ok))),
            Frame::Inbound(Inbound::AuthOk)
        );
        assert_eq!(
            classify_frame(Some(Ok(Message::text("{not json")))),
            Frame::Inbound(Inbound::Ignored)
        );
        assert_eq!(
            classify_frame(Some(Ok(Message::Ping(Default::default())))),
            Frame::Inbound(Inbound::Ignored)
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
