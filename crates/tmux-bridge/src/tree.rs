//! The session tree from ONE `list-panes -a -F` call: the format string and a
//! parser that tolerates any bytes tmux lets into names.
//!
//! **Pane-controlled text in the reply.** The reply is read inside the
//! control client's `%begin … %end` block, where only a newline ends a line
//! and nothing is escaped. What tmux 3.3a lets into the fields:
//! - `pane_title`: set by the pane (OSC 0/2); tmux drops newlines inside the
//!   sequence and refuses titles with control characters, so `%end 1 2 1`
//!   can appear but never at the start of a line.
//! - `session_name`, `window_name` (a pane may rename its window with
//!   `ESC k` when `allow-rename` is on; automatic names come from the
//!   process name): tmux stores them `vis`-escaped (`\n` as two characters).
//! - `pane_current_command`: the foreground process's `argv[0]`, raw up to
//!   its first space: it can hold newlines and this format's own separators,
//!   so a process could forge whole records (no space, so never a reply's
//!   `%end <time> <number> <flags>` line).
//!
//! Every text field is therefore passed through `#{s/<C0 and DEL>/_/:…}`
//! (tmux ≥ 2.9), which turns control characters into `_` on tmux's side: no
//! field can hold a newline, `RS` or `FS`, whatever a later tmux lets in.

use terminal_protocol::{Pane, PaneSize, Session, Window};

/// Starts every record; tmux keeps control characters out of session and
/// window names and pane titles, so only the last field can contain it.
const RS: char = '\u{1e}';
/// Separates fields.
const FS: char = '\u{1f}';

/// Fields holding text a pane or a user can choose; the format strips their
/// control characters.
const TEXT_FIELDS: [&str; 4] = [
    "session_name",
    "window_name",
    "pane_title",
    "pane_current_command",
];

const FIELDS: [&str; 16] = [
    "session_id",
    "session_name",
    "session_created",
    "session_activity",
    "session_attached",
    "window_id",
    "window_name",
    "window_index",
    "window_active",
    "pane_id",
    "pane_index",
    "pane_active",
    "pane_width",
    "pane_height",
    "pane_title",
    // Last: a process name can hold any byte (but NUL and space), and
    // `splitn` gives the last field whatever separators it contains.
    "pane_current_command",
];

/// `#{s/[<every C0 control but NUL, and DEL>]/_/:` — opens a format that
/// replaces those characters by `_` (the bytes themselves are in the
/// format; `quote` writes them as octal escapes on the command line).
fn strip_controls_open() -> String {
    let mut s = String::from("#{s/[");
    s.extend((1u8..0x20).chain([0x7f]).map(char::from));
    s.push_str("]/_/:");
    s
}

/// The `-F` format: `RS f1 FS f2 … FS f16`, text fields without control
/// characters.
pub(crate) fn list_format() -> String {
    let strip = strip_controls_open();
    let mut s = String::new();
    s.push(RS);
    for (i, f) in FIELDS.iter().enumerate() {
        if i > 0 {
            s.push(FS);
        }
        if TEXT_FIELDS.contains(f) {
            s.push_str(&strip);
            s.push_str(f);
        } else {
            s.push_str("#{");
            s.push_str(f);
        }
        s.push('}');
    }
    s
}

fn num<T: std::str::FromStr + Default>(s: &str) -> T {
    s.trim().parse().unwrap_or_default()
}

/// Parses `list-panes -a` output (block lines) into sessions in tmux order.
///
/// `control_session` is the session the bridge's own control client is
/// attached to: that client is not counted in `attached`. Malformed records
/// are skipped rather than failing the whole tree.
pub(crate) fn parse_tree(lines: &[Vec<u8>], control_session: Option<&str>) -> Vec<Session> {
    let joined = lines.join(&b'\n');
    let text = String::from_utf8_lossy(&joined);
    let mut sessions: Vec<Session> = Vec::new();
    for record in text.split(RS) {
        let record = record.strip_suffix('\n').unwrap_or(record);
        let f: Vec<&str> = record.splitn(FIELDS.len(), FS).collect();
        if f.len() != FIELDS.len() || !f[0].starts_with('$') || !f[9].starts_with('%') {
            continue;
        }
        let mut attached: i64 = num(f[4]);
        if control_session == Some(f[0]) {
            attached -= 1;
        }
        let pane = Pane {
            id: f[9].to_owned(),
            index: num(f[10]),
            active: f[11] == "1",
            size: PaneSize {
                cols: num(f[12]),
                rows: num(f[13]),
            },
            title: f[14].to_owned(),
            current_command: f[15].to_owned(),
        };
        if sessions.last().map(|s| s.id.as_str()) != Some(f[0]) {
            sessions.push(Session {
                id: f[0].to_owned(),
                name: f[1].to_owned(),
                created_at: num(f[2]),
                windows: Vec::new(),
                last_activity_at: num(f[3]),
                attached: attached > 0,
            });
        }
        let Some(session) = sessions.last_mut() else {
            continue;
        };
        if session.windows.last().map(|w| w.id.as_str()) != Some(f[5]) {
            session.windows.push(Window {
                id: f[5].to_owned(),
                name: f[6].to_owned(),
                index: num(f[7]),
                active: f[8] == "1",
                panes: Vec::new(),
            });
        }
        if let Some(window) = session.windows.last_mut() {
            window.panes.push(pane);
        }
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(fields: &[&str]) -> String {
        format!("{RS}{}", fields.join(&FS.to_string()))
    }

    #[test]
    fn format_has_all_fields() {
        let f = list_format();
        assert!(f.starts_with(RS));
        // 15 separators, and each of the 4 text fields names FS in its class.
        assert_eq!(f.matches(FS).count(), 15 + TEXT_FIELDS.len());
        for field in FIELDS {
            let plain = format!("#{{{field}}}");
            let stripped = format!("]/_/:{field}}}");
            assert!(
                f.contains(&plain) != f.contains(&stripped),
                "{field} once, plain or stripped"
            );
            assert_eq!(f.contains(&stripped), TEXT_FIELDS.contains(&field));
        }
        assert!(f.contains("#{s/[\u{1}\u{2}"));
        assert!(f.contains("\u{1f}\u{7f}]/_/:pane_title}"));
    }

    #[test]
    fn groups_and_tolerates_weird_values() {
        let a = rec(&[
            "$0", "a b|c", "100", "200", "1", "@0", "w\tx é", "0", "1", "%0", "0", "1", "80", "24",
            "title", "bash",
        ]);
        let b = rec(&[
            "$0",
            "a b|c",
            "100",
            "200",
            "1",
            "@0",
            "w\tx é",
            "0",
            "1",
            "%1",
            "1",
            "0",
            "40",
            "24",
            "t2",
            "we\u{1f}ird\nname",
        ]);
        let c = rec(&[
            "$3", "two", "5", "6", "2", "@4", "x", "1", "0", "%7", "0", "1", "10", "5", "", "sh",
        ]);
        let text = format!("{a}\n{b}\ngarbage\n{c}\n");
        let lines: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
        let tree = parse_tree(&lines, Some("$0"));
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].name, "a b|c");
        assert!(!tree[0].attached, "the bridge's own client is not counted");
        assert_eq!(tree[0].windows.len(), 1);
        assert_eq!(tree[0].windows[0].name, "w\tx é");
        assert_eq!(tree[0].windows[0].panes.len(), 2);
        // The newline inside the command name belongs to the record, and the
        // line "garbage" after it too: records are split on RS, not on lines.
        assert_eq!(
            tree[0].windows[0].panes[1].current_command,
            "we\u{1f}ird\nname\ngarbage"
        );
        assert_eq!(
            tree[0].windows[0].panes[1].size,
            PaneSize { cols: 40, rows: 24 }
        );
        assert!(tree[1].attached);
        assert_eq!(tree[1].created_at, 5);
        assert_eq!(tree[1].last_activity_at, 6);
        assert_eq!(tree[1].windows[0].index, 1);
        assert!(parse_tree(&[], None).is_empty());
    }
}
