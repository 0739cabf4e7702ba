//! Device-name rule: 1–64 characters, no control characters and no bidi
//! formatting characters (signaling.md §2, tightened by muxlink: C1 controls
//! and bidi overrides can recolour a terminal or reorder the line a name is
//! printed on, so no name may carry them).

use crate::error::ProtoError;

/// Longest name, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 64;

/// True for a character no name may hold: every Unicode control character
/// (C0 U+0000–U+001F, DEL U+007F, C1 U+0080–U+009F) and the bidi formatting
/// characters U+061C, U+200E, U+200F, U+202A–U+202E and U+2066–U+2069.
pub fn is_forbidden_name_char(c: char) -> bool {
    c.is_control() || is_bidi_format(c)
}

/// True for the bidi formatting characters (marks, embeddings, overrides, isolates).
pub fn is_bidi_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Accepts 1–64 characters without a character of [`is_forbidden_name_char`].
pub fn validate_name(name: &str) -> Result<(), ProtoError> {
    if name.is_empty() {
        return Err(ProtoError::InvalidName("name must not be empty"));
    }
    if name.len() > MAX_NAME_CHARS * 4 || name.chars().count() > MAX_NAME_CHARS {
        return Err(ProtoError::InvalidName(
            "name must be at most 64 characters",
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(ProtoError::InvalidName(
            "name must not contain control characters",
        ));
    }
    if name.chars().any(is_bidi_format) {
        return Err(ProtoError::InvalidName(
            "name must not contain bidi formatting characters (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069)",
        ));
    }
    Ok(())
}

/// The first 64 characters of `name` (how hosts store a mobile's name).
pub fn truncate_name(name: &str) -> String {
    name.chars().take(MAX_NAME_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c1_controls_are_refused() {
        for c in ['\u{80}', '\u{85}', '\u{9b}', '\u{9f}'] {
            let err = validate_name(&format!("ok{c}too")).unwrap_err().to_string();
            assert!(err.contains("control characters"), "{c:?}: {err}");
        }
        assert!(validate_name("ok\u{a0}too").is_ok(), "NBSP is printable");
    }

    #[test]
    fn bidi_formatting_characters_are_refused() {
        let bidi = [
            '\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ];
        for c in bidi {
            let err = validate_name(&format!("evil{c}gpj.exe"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("bidi"), "{c:?}: {err}");
            assert!(is_forbidden_name_char(c));
        }
        // Neighbours of the ranges stay allowed.
        for ok in [
            '\u{061b}', '\u{200d}', '\u{2029}', '\u{202f}', '\u{2065}', '\u{206a}',
        ] {
            assert!(!is_bidi_format(ok), "{ok:?}");
        }
        assert!(validate_name("Pixel 9 — Ana ✓ عربي").is_ok());
    }

    #[test]
    fn c0_and_del_still_refused() {
        for c in ['\u{0}', '\u{1b}', '\u{7f}'] {
            assert!(validate_name(&format!("a{c}")).is_err(), "{c:?}");
            assert!(is_forbidden_name_char(c));
        }
    }
}
