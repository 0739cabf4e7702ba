//! The muxlink DataChannel protocol (spec `terminal-protocol.md`): the
//! MessagePack [`Request`]s a phone sends and [`Event`]s a host answers with,
//! their validation bounds, the per-attach deflate stream and channel
//! authentication v2 (both nonces and both DTLS fingerprints under the
//! pairing key, §12).
//!
//! Not for: I/O, timers or sessions of any kind. Nothing here touches a
//! socket, a DataChannel, tmux or the clock; the auth timeout, the direction
//! gate and the host's per-request behaviour live in `peer-manager` and
//! `agent-bin`, which call into this crate.
//!
//! # Layout
//! - `message`: the [`Request`] / [`Event`] enums and [`Attach`].
//! - `encode`: byte-exact encoder (shortest forms, spec key order, `type` first).
//! - `decode`: validating decoder for both directions.
//! - `reader`: bounds-checked MessagePack cursor and error field paths.
//! - `error`: [`ErrorCode`] and [`DecodeError`].
//! - `limits`: constants of §5/§9 and [`valid_target_id`].
//! - `tree`: [`Session`] / [`Window`] / [`Pane`] / [`PaneSize`].
//! - `compress`: [`Compressor`] / [`Decompressor`] (raw deflate, sync flush).
//! - `auth`: [`AuthTranscript`], nonces, the phone's and the host's MACs and
//!   their constant-time verification (§12).
//! - `stream`: stream v2 (docs/stream-v2.md: offsets, the fast channel,
//!   resume, lagging): its constants and [`InOrder`], the exactly-once rule.
//!
//! # Decoding guarantees
//! [`Request::decode`] and [`Event::decode`]:
//! - reject a message over [`MAX_MESSAGE_SIZE`] before looking at it
//!   ([`DecodeError::MessageTooLarge`]);
//! - require exactly one map with a non-empty str `type`, nothing after it;
//! - accept any integer width and any str/bin/map/array width, keys in any
//!   order; reject floats (or anything else) where an integer is required and
//!   str where bin is required;
//! - skip unknown keys whatever their value (nesting bounded by
//!   [`MAX_NESTING_DEPTH`]); reject a known key given twice;
//! - apply every bound of §9 (the phone decodes events with the same rules);
//! - return [`DecodeError::UnknownType`] for a `type` this direction does not
//!   define (hosts drop those silently);
//! - never panic, and never size an allocation from a length read from the
//!   input before checking it against the bytes that remain: strings and
//!   payloads are copied only once their bytes are present, and containers grow
//!   with what actually decodes.
//!
//! [`DecodeError::code`] says which `error` code a host answers with (§11.2).

#![warn(missing_docs)]

mod auth;
mod compress;
mod decode;
mod encode;
mod error;
mod limits;
mod message;
mod reader;
mod stream;
pub mod tree;

pub use auth::{
    AuthError, AuthTranscript, FINGERPRINT_LEN, HOST_MAC_LABEL, MOBILE_MAC_LABEL, decode_nonce,
    new_nonce, nonce_b64, try_new_nonce,
};
pub use compress::{
    CompressError, Compressor, DEFLATE_LEVEL, DecompressError, Decompressor, FAST_DEFLATE_LEVEL,
};
pub use error::{DecodeError, ErrorCode};
pub use limits::{
    AUTH_TIMEOUT, DEFAULT_PEER_MAX_MESSAGE, MAX_DIM, MAX_ERROR_CODE_LEN, MAX_ERROR_MESSAGE_LEN,
    MAX_ID_LEN, MAX_INPUT_SIZE, MAX_MAC_LEN, MAX_MESSAGE_SIZE, MAX_NESTING_DEPTH, MAX_NONCE_LEN,
    MAX_OUTPUT_SIZE, MIN_DIM, NONCE_LEN, valid_target_id,
};
pub use message::{Attach, Event, Request};
pub use stream::{
    FAST_CHANNEL_LABEL, InOrder, LAG_BOUND_BYTES, MAX_FAST_COPY, MAX_STREAM_OFFSET,
    RESUME_RING_BYTES, RESUME_WINDOW, Verdict, Via,
};
pub use tree::{Pane, PaneSize, Session, Window};
