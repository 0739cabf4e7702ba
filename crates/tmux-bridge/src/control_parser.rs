//! Sans-IO parser for tmux control-mode output: splits the line stream into
//! command reply blocks (`%begin … %end/%error`) and notifications.
//!
//! **Framing, and why pane text must stay out of it.** tmux frames a reply
//! as `%begin <time> <number> <flags>`, the output lines verbatim (only a
//! `\n` ends a line; nothing is escaped), then `%end`/`%error` with the same
//! three values. A block here ends only at a line repeating its `%begin`'s
//! values exactly, so a line copied from another reply cannot end it. That
//! is no defence against text a pane chooses: the time is the current second
//! and the number a server-wide command counter, both predictable (the
//! tests print a screenful of guesses and hit). So no reply may carry a line
//! a pane chooses. Audit against tmux 3.3a of what the bridge runs:
//! - `capture-pane -p` printed the screen into the reply: replaced by a
//!   capture through a paste buffer into a private file (`snapshot`).
//! - `list-panes -a -F` (the tree): pane titles (OSC 0/2) cannot hold a
//!   newline; session and window names are stored `vis`-escaped; the
//!   process name (`pane_current_command`, raw `argv[0]` up to its first
//!   space) can hold newlines, so the format strips control characters from
//!   every text field (`tree`).
//! - `display -p` formats: ids, numbers, the layout, and the pane option
//!   `@muxlink-pipe`, which only a tmux command can set.
//! - `%error` text: tmux's messages about our own arguments.
//!
//! Outside blocks, pane output could come only as `%output` (and
//! `%extended-output`), which the client turns off at attach (`no-output`).
//! Names in `%session-changed`, `%session-renamed`, `%window-renamed` and
//! the tree subscription's value are `vis`-escaped by tmux; `%message` needs
//! a `display-message` command aimed at this client; a control client has no
//! terminal, so passthrough and other terminal writes never reach it. A
//! program in a pane that runs tmux commands itself (it inherits `$TMUX`)
//! controls the server anyway and is out of scope; the guarantee is about
//! what a pane *prints* (a remote shell, a file shown with `cat`).
//!
//! A `%end`/`%error` line outside any block means the framing was lost; it
//! is logged and dropped, never passed on as a notification.

use crate::notification::Notification;

/// Upper bound on one reply block; a larger reply is cut and reported as failed.
pub(crate) const MAX_BLOCK_BYTES: usize = 32 * 1024 * 1024;

/// One command's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// `%end` (true) or `%error` (false).
    pub ok: bool,
    /// 1 for commands this client sent, 0 for others (the startup command, hooks).
    pub flags: u32,
    /// Output lines without their `\n`.
    pub lines: Vec<Vec<u8>>,
}

impl Block {
    /// The output as text, lines joined by `\n` (lossy UTF-8), for error messages.
    pub fn text(&self) -> String {
        let joined = self.lines.join(&b'\n');
        String::from_utf8_lossy(&joined).into_owned()
    }
}

/// What one line produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A reply block ended with this line.
    Block(Block),
    /// A notification outside any block.
    Notification(Notification),
}

struct Open {
    /// "time number flags" of the `%begin` line; the closing line must repeat it.
    guard: Vec<u8>,
    flags: u32,
    lines: Vec<Vec<u8>>,
    size: usize,
    overflow: bool,
}

/// Line-at-a-time control-mode parser. Feed each line without its `\n`.
#[derive(Default)]
pub(crate) struct ControlParser {
    open: Option<Open>,
}

impl ControlParser {
    /// Consumes one line; returns a finished block or a notification, if any.
    /// Lines outside blocks that are not notifications (hook output) are dropped.
    pub fn feed_line(&mut self, line: &[u8]) -> Option<Parsed> {
        if let Some(open) = self.open.as_mut() {
            for (tag, ok) in [(&b"%end "[..], true), (&b"%error "[..], false)] {
                if let Some(guard) = line.strip_prefix(tag)
                    && guard == open.guard.as_slice()
                {
                    let open = self.open.take()?;
                    return Some(Parsed::Block(Block {
                        ok: ok && !open.overflow,
                        flags: open.flags,
                        lines: open.lines,
                    }));
                }
            }
            open.size += line.len() + 1;
            if open.size > MAX_BLOCK_BYTES {
                if !open.overflow {
                    open.overflow = true;
                    open.lines.clear();
                    open.lines.push(b"reply too large".to_vec());
                }
            } else {
                open.lines.push(line.to_vec());
            }
            return None;
        }
        if let Some(guard) = line.strip_prefix(b"%begin ") {
            let flags = guard
                .rsplit(|b| *b == b' ')
                .next()
                .and_then(|f| std::str::from_utf8(f).ok())
                .and_then(|f| f.parse().ok())
                .unwrap_or(0);
            self.open = Some(Open {
                guard: guard.to_vec(),
                flags,
                lines: Vec::new(),
                size: 0,
                overflow: false,
            });
            return None;
        }
        if line.starts_with(b"%end ") || line.starts_with(b"%error ") {
            tracing::warn!(
                line = %String::from_utf8_lossy(line),
                "tmux reply end outside a reply; control-mode framing lost"
            );
            return None;
        }
        if line.first() == Some(&b'%') {
            return Some(Parsed::Notification(Notification::parse(line)));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut ControlParser, text: &str) -> Vec<Parsed> {
        text.lines()
            .filter_map(|l| p.feed_line(l.as_bytes()))
            .collect()
    }

    #[test]
    fn blocks_and_notifications() {
        let mut p = ControlParser::default();
        let out = feed(
            &mut p,
            "%begin 1 271 0\n%end 1 271 0\n%session-changed $1 two\nhooked\n\
             %begin 1 277 1\n%end 1 276 1\n%window-add @1\nx\n%end 1 277 1\n\
             %begin 2 278 1\nparse error\n%error 2 278 1\n",
        );
        assert_eq!(
            out,
            vec![
                Parsed::Block(Block {
                    ok: true,
                    flags: 0,
                    lines: vec![]
                }),
                Parsed::Notification(Notification::SessionChanged {
                    session_id: "$1".into(),
                    name: "two".into()
                }),
                // Inside a block every line is output, even ones that look like
                // another command's end or a notification.
                Parsed::Block(Block {
                    ok: true,
                    flags: 1,
                    lines: vec![
                        b"%end 1 276 1".to_vec(),
                        b"%window-add @1".to_vec(),
                        b"x".to_vec()
                    ]
                }),
                Parsed::Block(Block {
                    ok: false,
                    flags: 1,
                    lines: vec![b"parse error".to_vec()]
                }),
            ]
        );
    }

    #[test]
    fn only_the_exact_guard_ends_a_block() {
        let mut p = ControlParser::default();
        let out = feed(
            &mut p,
            "%begin 5 9 1\n%end 5 9 0\n%end 5 9 1 \n%error 5 9\n%end 5 90 1\n %end 5 9 1\n\
             %exit\n%begin 5 9 1\n%end 5 9 1\n",
        );
        assert_eq!(
            out,
            vec![Parsed::Block(Block {
                ok: true,
                flags: 1,
                lines: [
                    "%end 5 9 0",
                    "%end 5 9 1 ",
                    "%error 5 9",
                    "%end 5 90 1",
                    " %end 5 9 1",
                    "%exit",
                    "%begin 5 9 1"
                ]
                .map(|l| l.as_bytes().to_vec())
                .to_vec()
            })]
        );
        // Outside a block a reply end is not a notification.
        assert_eq!(p.feed_line(b"%end 5 9 1"), None);
        assert_eq!(p.feed_line(b"%error 5 10 1"), None);
        assert!(matches!(
            p.feed_line(b"%exit"),
            Some(Parsed::Notification(Notification::ControlExited { .. }))
        ));
    }
}
