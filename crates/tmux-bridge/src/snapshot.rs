//! Builds the attach screen snapshot bytes of spec terminal-protocol §6 step 8
//! from `capture-pane -e -p` lines and the pane's cursor/mode state.

/// Pane state needed to rebuild the screen on the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorState {
    /// Cursor column, 0-based.
    pub x: u32,
    /// Cursor row, 0-based.
    pub y: u32,
    /// The pane shows the alternate screen.
    pub alternate: bool,
    /// The cursor is visible (tmux `cursor_flag`; unknown counts as visible).
    pub visible: bool,
}

/// Format for `display -p` that [`CursorState::parse`] reads.
pub(crate) const CURSOR_FORMAT: &str =
    "#{cursor_x}\u{1f}#{cursor_y}\u{1f}#{alternate_on}\u{1f}#{cursor_flag}";

impl CursorState {
    /// Parses the single output line of [`CURSOR_FORMAT`].
    pub(crate) fn parse(line: &[u8]) -> Option<CursorState> {
        let text = std::str::from_utf8(line).ok()?;
        let mut it = text.split('\u{1f}');
        let x = it.next()?.trim().parse().ok()?;
        let y = it.next()?.trim().parse().ok()?;
        let alternate = it.next()?.trim() == "1";
        // An empty or missing flag (older tmux) means visible.
        let visible = it.next().map(|f| f.trim() != "0").unwrap_or(true);
        Some(CursorState {
            x,
            y,
            alternate,
            visible,
        })
    }
}

/// `[ESC[?1049h] ESC[H ESC[2J <lines joined by CR LF> ESC[y+1;x+1H [ESC[?25l]`.
///
/// No CR LF follows the last line: on the bottom row it would scroll the
/// phone's screen by one line.
pub fn build_snapshot(screen_lines: &[Vec<u8>], cursor: CursorState) -> Vec<u8> {
    let body: usize = screen_lines.iter().map(|l| l.len() + 2).sum();
    let mut out = Vec::with_capacity(body + 32);
    if cursor.alternate {
        out.extend_from_slice(b"\x1b[?1049h");
    }
    out.extend_from_slice(b"\x1b[H\x1b[2J");
    for (i, line) in screen_lines.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(format!("\x1b[{};{}H", cursor.y + 1, cursor.x + 1).as_bytes());
    if !cursor.visible {
        out.extend_from_slice(b"\x1b[?25l");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cursor_line() {
        assert_eq!(
            CursorState::parse(b"3\x1f7\x1f1\x1f0"),
            Some(CursorState {
                x: 3,
                y: 7,
                alternate: true,
                visible: false
            })
        );
        assert_eq!(
            CursorState::parse(b"0\x1f0\x1f0\x1f"),
            Some(CursorState {
                x: 0,
                y: 0,
                alternate: false,
                visible: true
            })
        );
        assert_eq!(CursorState::parse(b"x"), None);
    }

    #[test]
    fn exact_bytes() {
        let lines = vec![b"\x1b[31mab".to_vec(), b"".to_vec(), b"c".to_vec()];
        let plain = CursorState {
            x: 1,
            y: 2,
            alternate: false,
            visible: true,
        };
        assert_eq!(
            build_snapshot(&lines, plain),
            b"\x1b[H\x1b[2J\x1b[31mab\r\n\r\nc\x1b[3;2H".to_vec()
        );
        let alt = CursorState {
            alternate: true,
            visible: false,
            ..plain
        };
        assert_eq!(
            build_snapshot(&lines[2..], alt),
            b"\x1b[?1049h\x1b[H\x1b[2Jc\x1b[3;2H\x1b[?25l".to_vec()
        );
    }
}
