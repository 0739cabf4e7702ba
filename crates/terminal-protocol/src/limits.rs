//! Protocol constants and the bounds of spec terminal-protocol.md §5 and §9,
//! plus the tmux target-id check hosts apply to `paneId` and `session`.

use std::time::Duration;

/// Largest DataChannel message, encoded bytes (§1, §11.3). Larger messages are
/// rejected before any decoding.
pub const MAX_MESSAGE_SIZE: usize = 1_048_576;

/// Largest `input.data` payload (§9).
pub const MAX_INPUT_SIZE: usize = 16_384;

/// Largest `output.data` payload, and the bound on one inflated frame (§7, §9).
pub const MAX_OUTPUT_SIZE: usize = 1_048_576;

/// Largest `paneId` / `session` string, in UTF-8 bytes (§9).
pub const MAX_ID_LEN: usize = 255;

/// Smallest accepted `cols` / `rows` (§9).
pub const MIN_DIM: u16 = 1;

/// Largest accepted `cols` / `rows` (§9).
pub const MAX_DIM: u16 = 500;

/// Size of the key-possession nonce in bytes (§5).
pub const NONCE_LEN: usize = 32;

/// Largest `auth_response.mac` string, in characters (§5, §9).
pub const MAX_MAC_LEN: usize = 128;

/// Largest `auth_challenge.nonce` string, in characters (§5, §9).
pub const MAX_NONCE_LEN: usize = 128;

/// Largest `error.code` string, in characters (§8, §9).
pub const MAX_ERROR_CODE_LEN: usize = 255;

/// Largest `error.message` string, in characters (§8, §9).
pub const MAX_ERROR_MESSAGE_LEN: usize = 4096;

/// How long the host waits for `auth_response` after the channel opens (§5).
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// The peer's SCTP max-message-size when its SDP does not advertise one (§11.3).
pub const DEFAULT_PEER_MAX_MESSAGE: usize = 65_536;

/// How deeply nested values under unknown keys may be before decoding gives up.
/// Known messages nest at most 8 levels (a pane's `size` map).
pub const MAX_NESTING_DEPTH: usize = 32;

/// True iff `id` is a usable tmux target for `attach.paneId` or
/// `kill_session.session`: 1..=255 bytes of `[A-Za-z0-9_.$@:%-]` (§6).
pub fn valid_target_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.$@:%-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_ids() {
        for ok in ["%3", "$0", "@12", "work", "a.b:c-d_e", &"x".repeat(255)] {
            assert!(valid_target_id(ok), "{ok}");
        }
        for bad in ["", "a b", "%3;kill", "é", "a\n", "a/b", &"x".repeat(256)] {
            assert!(!valid_target_id(bad), "{bad}");
        }
    }
}
