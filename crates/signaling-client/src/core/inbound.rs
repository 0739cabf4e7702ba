//! What a typed signal means to the core, and the signals the core's actions
//! put on the wire: [`classify`] sorts every parsed server message into an
//! `auth` verdict, a server error or a message for the application;
//! [`auth_signal`] is the `auth` that [`Action::SendAuth`](super::Action::SendAuth)
//! writes. Pure functions, unit-tested here; the driver only parses frames.

use signaling_proto::Signal;
use signaling_proto::signal::kind;

use super::Inbound;

/// Sorts one parsed server message for
/// [`Core::handle_message`](super::Core::handle_message): `auth` with status
/// `ok` is [`Inbound::AuthOk`]; any other `auth` reply and every `error` is
/// [`Inbound::Error`]; everything else is [`Inbound::Message`], delivered to
/// the application once authenticated. Messages carrying extra fields (kept
/// whole as [`Signal::Other`]) are sorted by their `type` the same way.
pub fn classify(signal: Signal) -> Inbound<Signal> {
    match signal {
        Signal::AuthOk => Inbound::AuthOk,
        Signal::Auth { .. } => Inbound::Error("auth status \"\"".to_owned()),
        Signal::Error { error } => Inbound::Error(error),
        Signal::Other(m) if m.kind == kind::AUTH && m.status == "ok" => Inbound::AuthOk,
        Signal::Other(m) if m.kind == kind::AUTH => {
            Inbound::Error(format!("auth status {:?}", m.status))
        }
        Signal::Other(m) if m.kind == kind::ERROR => Inbound::Error(m.error),
        other => Inbound::Message(other),
    }
}

/// The `auth` message of [`Action::SendAuth`](super::Action::SendAuth):
/// the JWT and the host's name (omitted from the wire when empty).
pub fn auth_signal(token: String, host_name: &str) -> Signal {
    Signal::Auth {
        token,
        name: host_name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use signaling_proto::SignalingMessage;

    use super::*;

    fn parsed(json: &str) -> Signal {
        Signal::from(SignalingMessage::parse(json).unwrap())
    }

    #[test]
    fn auth_replies_errors_and_messages_are_sorted() {
        assert_eq!(
            classify(parsed(r#"{"type":"auth","status":"ok"}"#)),
            Inbound::AuthOk
        );
        // Extra fields do not change the verdict.
        assert_eq!(
            classify(parsed(r#"{"type":"auth","status":"ok","name":"srv"}"#)),
            Inbound::AuthOk
        );
        assert_eq!(
            classify(parsed(r#"{"type":"auth","status":"denied"}"#)),
            Inbound::Error("auth status \"denied\"".into())
        );
        assert!(matches!(
            classify(parsed(r#"{"type":"auth"}"#)),
            Inbound::Error(_)
        ));
        assert_eq!(
            classify(parsed(r#"{"type":"error","error":"Invalid token"}"#)),
            Inbound::Error("Invalid token".into())
        );
        assert_eq!(
            classify(parsed(
                r#"{"type":"error","error":"Invalid token","reason":"x"}"#
            )),
            Inbound::Error("Invalid token".into())
        );
        let relay = parsed(r#"{"type":"connect_request","targetDeviceId":"abc"}"#);
        assert_eq!(
            relay,
            Signal::ConnectRequest {
                target_device_id: "abc".into()
            }
        );
        assert_eq!(classify(relay.clone()), Inbound::Message(relay));
        let unknown = parsed(r#"{"type":"future_kind"}"#);
        assert_eq!(classify(unknown.clone()), Inbound::Message(unknown));
    }

    #[test]
    fn auth_signal_carries_token_and_name() {
        let m = SignalingMessage::from(auth_signal("jwt".into(), "my-host"));
        assert_eq!(
            m.to_json(),
            r#"{"type":"auth","token":"jwt","name":"my-host"}"#
        );
    }
}
