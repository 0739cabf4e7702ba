//! Escaping of names that came from elsewhere (a phone, the server) before they
//! reach the user's terminal: a stored name with C0/C1 controls or bidi
//! overrides could recolour the terminal or reorder the line it is printed on.

/// `text` with every control character and every bidi formatting character
/// (U+061C, U+200E/F, U+202A–202E, U+2066–2069) written as `\u{…}`.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if signaling_proto::is_forbidden_name_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn controls_and_bidi_overrides_are_escaped() {
        assert_eq!(printable("Pixel 9 — Ana"), "Pixel 9 — Ana");
        assert_eq!(printable("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(printable("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(printable("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(printable("\u{2066}a\u{2069}"), "\\u{2066}a\\u{2069}");
        assert_eq!(printable("tab\there"), "tab\\u{9}here");
    }
}
