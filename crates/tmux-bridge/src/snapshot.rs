//! Builds the attach screen snapshot bytes of spec terminal-protocol §6 step 8
//! from the pane's screen lines (`capture-pane -e`) and its cursor/mode state.
//!
//! **The screen never passes through the control client.** `capture-pane -p`
//! would print the screen inside the reply's `%begin … %end` block, where a
//! line is ended only by `\n` and nothing is escaped: a pane showing the line
//! `%end <time> <number> 1` with the capture's own numbers (the time is the
//! current second and the number a server-wide counter, both predictable)
//! ends the reply early, and the lines after it (`%exit`, `%begin`,
//! `%session-changed …`) are then read as real notifications or replies.
//! Instead [`capture_commands`] has tmux capture into a paste buffer of a
//! unique name, `save-buffer` it into the caller's private 0700 directory
//! (`fifo_dir`) and delete the buffer, all in the caller's command list;
//! the replies carry no pane text and [`read_capture`] reads the bytes from
//! the file. The buffer holds exactly what `capture-pane -e -p` prints plus a
//! final `\n`, so the lines are the same.

use std::path::Path;

use tokio::io::AsyncReadExt;

use crate::error::{BridgeError, Result};
use crate::quote::quote;

/// Largest screen capture read back (the control parser's old bound for a
/// reply block); a larger one fails the snapshot.
pub(crate) const MAX_CAPTURE_BYTES: usize = 32 * 1024 * 1024;

/// tmux commands (for one command list, `;`-separated, no trailing `;`) that
/// capture the screen of `pane` (`-e`: with escape sequences) and its cursor
/// state ([`CURSOR_FORMAT`]), then write the screen through the paste buffer
/// `buffer` into `file`. [`CAPTURE_BLOCKS`] reply blocks, none holding pane
/// text; the cursor line is in block [`CURSOR_BLOCK`]. `buffer` must be unique
/// to the caller (a `fifo_dir` marker).
///
/// The cursor is read right after the capture, before `save-buffer`:
/// `save-buffer` always waits for its file write to be reported done, so
/// tmux runs the rest of the list in a later pass of its event loop, after it
/// has parsed more pane output. A cursor read there belongs to a later screen
/// than the capture (seen as a row's text cut off under a flood).
///
/// tmux expands formats in `save-buffer`'s path, so a path holding `#` (or
/// anything but UTF-8 without control characters) is refused.
pub(crate) fn capture_commands(pane: &str, buffer: &str, file: &Path) -> Result<String> {
    let path = file
        .to_str()
        .filter(|p| !p.contains('#') && !p.chars().any(char::is_control))
        .ok_or_else(|| BridgeError::Protocol("unusable temporary path".into()))?;
    let (p, b) = (quote(pane), quote(buffer));
    Ok(format!(
        "capture-pane -e -b {b} -t {p} ; display -p -t {p} {} ; \
         save-buffer -b {b} {} ; delete-buffer -b {b}",
        quote(CURSOR_FORMAT),
        quote(path)
    ))
}

/// Number of reply blocks of [`capture_commands`].
pub(crate) const CAPTURE_BLOCKS: usize = 4;

/// Index, among [`capture_commands`]' reply blocks, of the cursor line.
pub(crate) const CURSOR_BLOCK: usize = 1;

/// The cursor state in the reply blocks of [`capture_commands`].
pub(crate) fn cursor_of(capture_blocks: &[crate::control_parser::Block]) -> Result<CursorState> {
    capture_blocks
        .get(CURSOR_BLOCK)
        .and_then(|b| b.lines.first())
        .and_then(|l| CursorState::parse(l))
        .ok_or_else(|| BridgeError::Protocol("cursor state".into()))
}

/// Drops a capture buffer left behind when its command list stopped early.
pub(crate) fn delete_buffer_line(buffer: &str) -> String {
    format!("delete-buffer -b {}", quote(buffer))
}

/// Reads and removes the capture file that [`capture_commands`] wrote; its
/// screen lines.
pub(crate) async fn read_capture(file: &Path) -> Result<Vec<Vec<u8>>> {
    let read = async {
        let mut bytes = Vec::new();
        tokio::fs::File::open(file)
            .await?
            // One byte more than allowed tells a too large capture apart.
            .take(MAX_CAPTURE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .await?;
        Ok::<_, std::io::Error>(bytes)
    };
    let bytes = read.await;
    let _ = tokio::fs::remove_file(file).await;
    let bytes = bytes?;
    if bytes.len() > MAX_CAPTURE_BYTES {
        return Err(BridgeError::Protocol(format!(
            "screen capture larger than {MAX_CAPTURE_BYTES} bytes"
        )));
    }
    Ok(capture_lines(&bytes))
}

/// Buffer bytes → the lines `capture-pane -p` prints: one final `\n` is
/// dropped, the rest split on `\n`.
pub(crate) fn capture_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
}

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
    fn capture_lines_like_print() {
        assert_eq!(
            capture_lines(b"a\n\nb\n"),
            vec![b"a".to_vec(), vec![], b"b".to_vec()]
        );
        assert_eq!(capture_lines(b"\n\n"), vec![vec![], vec![]]);
        assert_eq!(capture_lines(b"x"), vec![b"x".to_vec()]);
        assert_eq!(capture_lines(b"%end 1 2 1\n"), vec![b"%end 1 2 1".to_vec()]);
    }

    #[test]
    fn capture_commands_quote_and_refuse_format_paths() {
        let line = capture_commands("%3", "muxlink-1-2-ff", Path::new("/tmp/d/screen")).unwrap();
        assert_eq!(
            line,
            format!(
                "capture-pane -e -b 'muxlink-1-2-ff' -t '%3' ; display -p -t '%3' {} ; \
                 save-buffer -b 'muxlink-1-2-ff' '/tmp/d/screen' ; delete-buffer -b 'muxlink-1-2-ff'",
                quote(CURSOR_FORMAT)
            )
        );
        assert!(capture_commands("%3", "b", Path::new("/tmp/#{x}/screen")).is_err());
        assert!(capture_commands("%3", "b", Path::new("/tmp/a\nb")).is_err());
    }

    #[tokio::test]
    async fn read_capture_removes_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("screen");
        std::fs::write(&file, b"\x1b[31mred\n%exit\n").unwrap();
        assert_eq!(
            read_capture(&file).await.unwrap(),
            vec![b"\x1b[31mred".to_vec(), b"%exit".to_vec()]
        );
        assert!(!file.exists());
        assert!(read_capture(&file).await.is_err(), "missing file");
        std::fs::write(&file, vec![b'x'; MAX_CAPTURE_BYTES + 1]).unwrap();
        assert!(read_capture(&file).await.is_err());
        assert!(!file.exists());
    }

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
