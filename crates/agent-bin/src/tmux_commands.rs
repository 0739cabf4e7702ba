//! Which words `muxlink <word> …` hands to tmux: only tmux's own commands and
//! aliases as the installed tmux lists them (`tmux list-commands`, which needs
//! no server), matched the way tmux matches them (exact alias, exact name, or a
//! unique prefix of a name). Anything else is a typo of a muxlink command and
//! gets clap's error with its suggestion instead of starting an agent on the
//! way to tmux's `unknown command`.

use std::process::Command;

/// The command names and aliases of the installed tmux.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TmuxCommands {
    entries: Vec<(String, Option<String>)>,
}

/// How a word resolves among tmux's commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The full name of the command the word means.
    Command(String),
    /// A prefix of several names (tmux says "ambiguous command").
    Ambiguous(Vec<String>),
    /// Not a tmux command.
    Unknown,
}

impl TmuxCommands {
    /// Asks `tmux -L <socket> list-commands`; `None` when tmux is missing or
    /// fails (the caller then lets tmux itself report the problem).
    pub fn from_installed(socket: &str) -> Option<TmuxCommands> {
        let out = Command::new("tmux")
            .args([
                "-L",
                socket,
                "list-commands",
                "-F",
                "#{command_list_name} #{command_list_alias}",
            ])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        Some(Self::parse(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Parses `name alias` lines (alias may be empty).
    pub fn parse(list: &str) -> TmuxCommands {
        let entries = list
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let name = words.next()?.to_owned();
                let alias = words.next().map(str::to_owned);
                Some((name, alias))
            })
            .collect();
        TmuxCommands { entries }
    }

    /// Resolves `word` like tmux does.
    pub fn lookup(&self, word: &str) -> Lookup {
        if word.is_empty() {
            return Lookup::Unknown;
        }
        if let Some((name, _)) = self
            .entries
            .iter()
            .find(|(name, alias)| name == word || alias.as_deref() == Some(word))
        {
            return Lookup::Command(name.clone());
        }
        let matches: Vec<String> = self
            .entries
            .iter()
            .filter(|(name, _)| name.starts_with(word))
            .map(|(name, _)| name.clone())
            .collect();
        match matches.len() {
            0 => Lookup::Unknown,
            1 => Lookup::Command(matches.into_iter().next().unwrap_or_default()),
            _ => Lookup::Ambiguous(matches),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TmuxCommands {
        TmuxCommands::parse(
            "attach-session attach\nlist-sessions ls\nnew-session new\nnew-window neww\nkill-server\nstart-server start\nshow-options show\n",
        )
    }

    #[test]
    fn aliases_names_and_unique_prefixes_are_tmux_commands() {
        let t = table();
        assert_eq!(t.lookup("ls"), Lookup::Command("list-sessions".into()));
        assert_eq!(t.lookup("new"), Lookup::Command("new-session".into()));
        assert_eq!(t.lookup("new-window"), Lookup::Command("new-window".into()));
        assert_eq!(t.lookup("kill-s"), Lookup::Command("kill-server".into()));
        assert_eq!(t.lookup("attach"), Lookup::Command("attach-session".into()));
    }

    #[test]
    fn typos_of_muxlink_commands_are_not() {
        let t = table();
        for word in ["staus", "stauts", "pari", "unpiar", "", "-x"] {
            assert_eq!(t.lookup(word), Lookup::Unknown, "{word}");
        }
        assert!(matches!(t.lookup("new-"), Lookup::Ambiguous(v) if v.len() == 2));
        // "st" is a prefix of start-server alone in this table; "s" is ambiguous.
        assert!(matches!(t.lookup("s"), Lookup::Ambiguous(_)));
    }
}
