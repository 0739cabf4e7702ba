//! The typed messages: [`Request`] (mobile → host, spec §2) and [`Event`]
//! (host → mobile, spec §3 and §11.1). Wire encoding lives in encode.rs/decode.rs.

use crate::error::ErrorCode;
use crate::limits::MAX_ERROR_MESSAGE_LEN;
use crate::tree::Session;

/// A request from the phone to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `list_sessions`: ask for the session tree.
    ListSessions,
    /// `attach`: stream a pane.
    Attach(Attach),
    /// `detach`: stop streaming.
    Detach,
    /// `input`: keystrokes for the attached pane, delivered literally.
    Input {
        /// Raw bytes, at most [`crate::MAX_INPUT_SIZE`].
        data: Vec<u8>,
        /// Stream v2: the position of `data[0]` in this peer's input stream,
        /// so a copy that also came over the fast channel is applied once
        /// (docs/stream-v2.md §4). `None`: a phone that did not ask for it.
        offset: Option<u64>,
    },
    /// `resize`: new size for the attached pane.
    Resize {
        /// Columns, 1..=500.
        cols: u16,
        /// Rows, 1..=500.
        rows: u16,
    },
    /// `kill_session`: kill a tmux session by id (`$1`) or name.
    KillSession {
        /// Session id or name, at most 255 bytes.
        session: String,
    },
    /// `ping`: liveness probe, answered with `pong`.
    Ping,
    /// `create_session`: create a detached session.
    CreateSession,
    /// `auth_response`: the phone's nonce and proof (§12 step 2).
    AuthResponse {
        /// `N_M`: standard base64 (padded) of 32 random bytes, 1..=128 chars.
        nonce: String,
        /// Standard base64 (padded) of the phone's MAC, 1..=128 chars.
        mac: String,
    },
}

/// The fields of an `attach` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attach {
    /// tmux pane id, e.g. `%3`, at most 255 bytes.
    pub pane_id: String,
    /// Columns, 1..=500.
    pub cols: u16,
    /// Rows, 1..=500.
    pub rows: u16,
    /// Reattach after a reconnect (the host then must send a snapshot).
    pub reattach: bool,
    /// Requested compression; only `"deflate"` is defined. `None` when absent
    /// or empty on the wire.
    pub compression: Option<String>,
    /// Stream v2: every `output` of this attachment carries its offset in the
    /// pane's stream (docs/stream-v2.md §2). Absent on the wire when false.
    pub offsets: bool,
    /// Stream v2: continue from this offset of the pane's stream if the host
    /// still holds it, instead of a snapshot (§5). Only with `offsets`.
    pub resume_from: Option<u64>,
}

/// An event from the host to the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `auth_challenge`: first message after the channel opens.
    AuthChallenge {
        /// Standard base64 of 32 random bytes (44 chars).
        nonce: String,
    },
    /// `auth_ok`: the phone's MAC was valid; carries the host's proof (§12 step 4).
    AuthOk {
        /// Standard base64 (padded) of the host's MAC, 1..=128 chars.
        mac: String,
    },
    /// `sessions`: the session tree.
    Sessions {
        /// All sessions, possibly none.
        sessions: Vec<Session>,
        /// The host agent's version; omitted on the wire when `None` or empty.
        agent_version: Option<String>,
        /// A newer agent version, if one is known; omitted when `None` or empty.
        update_available: Option<String>,
    },
    /// `output`: pane bytes, raw or one deflate chunk (§7).
    Output {
        /// At most [`crate::MAX_OUTPUT_SIZE`] bytes.
        data: Vec<u8>,
        /// Stream v2: the offset of the first plaintext byte in the pane's
        /// stream; for a snapshot, the offset where the stream continues
        /// after it (docs/stream-v2.md §3). `None` without stream v2.
        offset: Option<u64>,
        /// Stream v2: this output is (part of) a screen snapshot, not stream
        /// bytes. Absent on the wire when false.
        snapshot: bool,
        /// Stream v2: set only on fast-channel copies (§4), which are never
        /// compressed; names the pane so a late copy cannot land elsewhere.
        pane_id: Option<String>,
    },
    /// `attached`: attach succeeded.
    Attached {
        /// Echo of the requested pane id.
        pane_id: String,
        /// `Some("deflate")` iff compression was negotiated.
        compression: Option<String>,
        /// Stream v2: the offset where the pane's stream continues for this
        /// attachment (after the snapshot, if one follows). `None` without it.
        offset: Option<u64>,
        /// Stream v2: `resumeFrom` was honoured: no snapshot follows, the
        /// stream replays from `offset`. Absent on the wire when false.
        resumed: bool,
    },
    /// `detached`: reply to `detach`.
    Detached,
    /// `session_ended`: a session was killed via `kill_session`.
    SessionEnded {
        /// Echo of the request's session string.
        session: String,
    },
    /// `pane_closed`: the attached pane exited, or attach found no pane.
    PaneClosed {
        /// The pane id.
        pane_id: String,
    },
    /// `error`: a request failed.
    Error {
        /// An [`ErrorCode`] string (kept raw so unknown codes survive), ≤ 255 chars.
        code: String,
        /// Human-readable message, ≤ 4096 chars.
        message: String,
    },
    /// `pong`: reply to `ping`; hosts always send 0.
    Pong {
        /// Always 0 from muxlink hosts; phones measure RTT themselves.
        latency: u64,
    },
    /// `session_created`: reply to `create_session`.
    SessionCreated {
        /// The new session.
        session: Session,
    },
}

impl Request {
    /// The wire `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            Request::ListSessions => "list_sessions",
            Request::Attach(_) => "attach",
            Request::Detach => "detach",
            Request::Input { .. } => "input",
            Request::Resize { .. } => "resize",
            Request::KillSession { .. } => "kill_session",
            Request::Ping => "ping",
            Request::CreateSession => "create_session",
            Request::AuthResponse { .. } => "auth_response",
        }
    }
}

impl Request {
    /// An `input` request without a stream offset.
    pub fn input(data: impl Into<Vec<u8>>) -> Request {
        Request::Input {
            data: data.into(),
            offset: None,
        }
    }
}

impl Event {
    /// An `output` event without stream v2 fields.
    pub fn output(data: impl Into<Vec<u8>>) -> Event {
        Event::Output {
            data: data.into(),
            offset: None,
            snapshot: false,
            pane_id: None,
        }
    }

    /// An `attached` event without stream v2 fields.
    pub fn attached(pane_id: impl Into<String>, compression: Option<String>) -> Event {
        Event::Attached {
            pane_id: pane_id.into(),
            compression,
            offset: None,
            resumed: false,
        }
    }

    /// An `error` event. The message is cut to 4096 chars so the event always
    /// passes the receiver's bound (§8).
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Event {
        let mut message = message.into();
        if let Some((cut, _)) = message.char_indices().nth(MAX_ERROR_MESSAGE_LEN) {
            message.truncate(cut);
        }
        Event::Error {
            code: code.as_str().to_owned(),
            message,
        }
    }

    /// The wire `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::AuthChallenge { .. } => "auth_challenge",
            Event::AuthOk { .. } => "auth_ok",
            Event::Sessions { .. } => "sessions",
            Event::Output { .. } => "output",
            Event::Attached { .. } => "attached",
            Event::Detached => "detached",
            Event::SessionEnded { .. } => "session_ended",
            Event::PaneClosed { .. } => "pane_closed",
            Event::Error { .. } => "error",
            Event::Pong { .. } => "pong",
            Event::SessionCreated { .. } => "session_created",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_is_cut_to_the_bound() {
        let Event::Error { code, message } = Event::error(
            ErrorCode::InputFailed,
            "é".repeat(MAX_ERROR_MESSAGE_LEN + 10),
        ) else {
            panic!("not an error event");
        };
        assert_eq!(code, "input_failed");
        assert_eq!(message.chars().count(), MAX_ERROR_MESSAGE_LEN);
        let Event::Error { message, .. } = Event::error(ErrorCode::NotAttached, "short") else {
            panic!("not an error event");
        };
        assert_eq!(message, "short");
    }
}
