//! Error codes of the `error` event (spec §8, §11.5) and the typed decode error
//! that says which field broke which rule and which code a host answers with.

use std::fmt;

use crate::limits::{MAX_DIM, MAX_MESSAGE_SIZE, MIN_DIM};

/// The `code` of an `error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Reading the session tree failed.
    ListSessionsFailed,
    /// Bad pane id or dims, or attaching to an existing pane failed.
    AttachFailed,
    /// `input` or `resize` without an attachment.
    NotAttached,
    /// `input.data` longer than 16 384 bytes.
    InputTooLarge,
    /// Delivering input to the pane failed.
    InputFailed,
    /// Bad dims, or the resize failed.
    ResizeFailed,
    /// Bad session id, or the kill failed.
    KillSessionFailed,
    /// Creating the session or finding it afterwards failed.
    CreateSessionFailed,
    /// The output compressor failed; the attachment ended.
    CompressionFailed,
    /// A request that could not be decoded (§11.2).
    InvalidRequest,
    /// A message larger than 1 MiB (§11.3).
    MessageTooLarge,
}

impl ErrorCode {
    /// Every code, in spec order.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::ListSessionsFailed,
        ErrorCode::AttachFailed,
        ErrorCode::NotAttached,
        ErrorCode::InputTooLarge,
        ErrorCode::InputFailed,
        ErrorCode::ResizeFailed,
        ErrorCode::KillSessionFailed,
        ErrorCode::CreateSessionFailed,
        ErrorCode::CompressionFailed,
        ErrorCode::InvalidRequest,
        ErrorCode::MessageTooLarge,
    ];

    /// The wire string, e.g. `"attach_failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ListSessionsFailed => "list_sessions_failed",
            ErrorCode::AttachFailed => "attach_failed",
            ErrorCode::NotAttached => "not_attached",
            ErrorCode::InputTooLarge => "input_too_large",
            ErrorCode::InputFailed => "input_failed",
            ErrorCode::ResizeFailed => "resize_failed",
            ErrorCode::KillSessionFailed => "kill_session_failed",
            ErrorCode::CreateSessionFailed => "create_session_failed",
            ErrorCode::CompressionFailed => "compression_failed",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::MessageTooLarge => "message_too_large",
        }
    }

    /// The code for a wire string; `None` for codes this version does not know
    /// (a phone keeps the raw string in `Event::Error`).
    pub fn from_wire(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a DataChannel message could not be decoded. `field` is the dotted wire
/// path, e.g. `attach.cols` or `sessions.sessions[0].windows[1].id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is larger than [`MAX_MESSAGE_SIZE`]; nothing was decoded.
    #[error("message is {len} bytes, more than the limit of {MAX_MESSAGE_SIZE}")]
    MessageTooLarge {
        /// Size of the rejected message.
        len: usize,
    },
    /// The `type` is not one this side accepts. Hosts drop these silently.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A required field is absent.
    #[error("{field}: missing")]
    Missing {
        /// Path of the absent field.
        field: String,
    },
    /// A value has the wrong MessagePack type (a float where an integer is
    /// required, a str where bin is required, ...).
    #[error("{field}: expected {expected}")]
    WrongType {
        /// Path of the value.
        field: String,
        /// What the field must hold, e.g. "an integer".
        expected: &'static str,
    },
    /// A string or byte payload is longer than its bound.
    #[error("{field}: {len} {unit}, more than {max}")]
    TooLong {
        /// Path of the value.
        field: String,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
        /// "bytes" or "chars".
        unit: &'static str,
    },
    /// `input.data` is longer than 16 384 bytes.
    #[error("input.data: {len} bytes, more than 16384")]
    InputTooLarge {
        /// Its length.
        len: usize,
    },
    /// `cols` or `rows` of `attach` / `resize` is outside 1..=500.
    #[error("{field}: must be from {MIN_DIM} to {MAX_DIM}, got {value}")]
    Dimension {
        /// Path of the value.
        field: String,
        /// The value received.
        value: i128,
        /// The code the host answers with (`attach_failed` / `resize_failed`).
        code: ErrorCode,
    },
    /// An integer does not fit the field's range.
    #[error("{field}: {value} is out of range ({range})")]
    OutOfRange {
        /// Path of the value.
        field: String,
        /// The value received.
        value: i128,
        /// The accepted range, e.g. "0..=65535".
        range: &'static str,
    },
    /// Anything else: bytes that are not MessagePack, a truncated message,
    /// trailing bytes, invalid UTF-8, duplicate keys, too deep nesting.
    #[error("{field}: {reason}")]
    Malformed {
        /// Path where decoding stopped.
        field: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl DecodeError {
    /// The `error` code a host answers with after authentication (§11.2, §11.3).
    /// [`DecodeError::UnknownType`] maps to `invalid_request` but hosts drop
    /// such messages without answering.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            DecodeError::InputTooLarge { .. } => ErrorCode::InputTooLarge,
            DecodeError::Dimension { code, .. } => *code,
            _ => ErrorCode::InvalidRequest,
        }
    }

    /// True for [`DecodeError::UnknownType`], which hosts drop silently (§1).
    pub fn is_unknown_type(&self) -> bool {
        matches!(self, DecodeError::UnknownType(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        assert_eq!(ErrorCode::from_wire("nope"), None);
    }

    #[test]
    fn messages_name_the_field() {
        let e = DecodeError::WrongType {
            field: "attach.cols".into(),
            expected: "an integer",
        };
        assert_eq!(e.to_string(), "attach.cols: expected an integer");
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        let e = DecodeError::Dimension {
            field: "resize.rows".into(),
            value: 501,
            code: ErrorCode::ResizeFailed,
        };
        assert_eq!(e.to_string(), "resize.rows: must be from 1 to 500, got 501");
        assert_eq!(e.code(), ErrorCode::ResizeFailed);
        assert_eq!(
            DecodeError::InputTooLarge { len: 16385 }.code(),
            ErrorCode::InputTooLarge
        );
        assert_eq!(
            DecodeError::MessageTooLarge { len: 1 << 21 }.code(),
            ErrorCode::MessageTooLarge
        );
    }
}
