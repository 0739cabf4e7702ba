//! Device-name rule: 1–64 characters, no C0 controls, no DEL (signaling.md §2).

use crate::error::ProtoError;

/// Longest name, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 64;

/// Accepts 1–64 characters without U+0000–U+001F or U+007F.
pub fn validate_name(name: &str) -> Result<(), ProtoError> {
    if name.is_empty() {
        return Err(ProtoError::InvalidName("name must not be empty"));
    }
    if name.len() > MAX_NAME_CHARS * 4 || name.chars().count() > MAX_NAME_CHARS {
        return Err(ProtoError::InvalidName(
            "name must be at most 64 characters",
        ));
    }
    if name.chars().any(|c| c <= '\u{1f}' || c == '\u{7f}') {
        return Err(ProtoError::InvalidName(
            "name must not contain control characters",
        ));
    }
    Ok(())
}

/// The first 64 characters of `name` (how hosts store a mobile's name).
pub fn truncate_name(name: &str) -> String {
    name.chars().take(MAX_NAME_CHARS).collect()
}
