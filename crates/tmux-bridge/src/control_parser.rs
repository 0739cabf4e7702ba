//! Sans-IO parser for tmux control-mode output: splits the line stream into
//! command reply blocks (`%begin … %end/%error`) and notifications.

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
}
