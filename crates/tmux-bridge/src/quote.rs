//! Quoting of arguments for tmux's command parser, so names with spaces,
//! quotes, `;`, `#`, `$`, unicode or control characters reach tmux verbatim.

/// Whether `word` can go inside single quotes in a shell command that tmux
/// runs (`pipe-pane`'s): no quote to end them, no `#` that tmux would expand
/// as a format, no newline.
pub(crate) fn fits_shell_quotes(word: &str) -> bool {
    !word.contains(['\'', '#', '\n'])
}

/// Quotes `arg` as one tmux command argument.
///
/// Printable text goes inside single quotes, where tmux expands nothing; a
/// single quote is written as `\'` outside the quotes and control characters
/// (which would otherwise end the control-mode line) as `\ooo` octal escapes.
pub fn quote(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    let mut open = false;
    for ch in arg.chars() {
        let special = ch == '\'' || (ch as u32) < 0x20 || ch == '\u{7f}';
        if special {
            if open {
                out.push('\'');
                open = false;
            }
            if ch == '\'' {
                out.push_str("\\'");
            } else {
                out.push_str(&format!("\\{:03o}", ch as u32));
            }
        } else {
            if !open {
                out.push('\'');
                open = true;
            }
            out.push(ch);
        }
    }
    if open {
        out.push('\'');
    }
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn plain_and_empty() {
        assert_eq!(quote("abc"), "'abc'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("%3"), "'%3'");
    }

    #[test]
    fn quotes_and_controls() {
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("'"), "\\'");
        assert_eq!(quote("a\tb\n"), "'a'\\011'b'\\012");
        assert_eq!(quote("\u{1f}"), "\\037");
        assert_eq!(quote("x;#{y} $z é"), "'x;#{y} $z é'");
    }
}
