//! Typed control-mode notifications (`%window-add @1`, `%exit`, …) that the
//! bridge broadcasts so the agent can refresh the phone's session tree.

/// Name of the control client's format subscription that watches the tree.
pub(crate) const TREE_SUBSCRIPTION: &str = "muxlink-tree";

/// The subscribed format: ids, names and attached counts of every session,
/// window and pane (no commas: they would split `#{P:…}` loops).
pub(crate) const TREE_SUBSCRIPTION_FORMAT: &str = "#{S:#{session_id} #{session_attached} #{session_name} #{W:#{window_id} #{window_name} #{P:#{pane_id} }}}";

/// A change reported by tmux (or by the bridge about its control client).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// `%sessions-changed`: a session was created or destroyed.
    SessionsChanged,
    /// `%session-changed $id name`: the bridge's own control client now
    /// follows this session (also sent right after it attaches).
    SessionChanged {
        /// Session id, e.g. `$0`.
        session_id: String,
        /// Session name.
        name: String,
    },
    /// `%client-session-changed client $id name`: another client switched session.
    ClientSessionChanged {
        /// The client's name.
        client: String,
        /// Session id.
        session_id: String,
        /// Session name.
        name: String,
    },
    /// `%session-renamed $id name`.
    SessionRenamed {
        /// Session id.
        session_id: String,
        /// New name.
        name: String,
    },
    /// `%session-window-changed $id @id`: a session's current window changed.
    SessionWindowChanged {
        /// Session id.
        session_id: String,
        /// Window id.
        window_id: String,
    },
    /// `%window-add @id` (in the control client's session).
    WindowAdd {
        /// Window id.
        window_id: String,
    },
    /// `%unlinked-window-add @id` (in another session).
    UnlinkedWindowAdd {
        /// Window id.
        window_id: String,
    },
    /// `%window-close @id` (in the control client's session).
    WindowClose {
        /// Window id.
        window_id: String,
    },
    /// `%unlinked-window-close @id` (in another session).
    UnlinkedWindowClose {
        /// Window id.
        window_id: String,
    },
    /// `%window-renamed @id name` (also `%unlinked-window-renamed`).
    WindowRenamed {
        /// Window id.
        window_id: String,
        /// New name.
        name: String,
    },
    /// `%window-pane-changed @id %id`: a window's active pane changed.
    WindowPaneChanged {
        /// Window id.
        window_id: String,
        /// Pane id.
        pane_id: String,
    },
    /// `%layout-change @id …`: panes were added, closed or resized.
    LayoutChange {
        /// Window id.
        window_id: String,
    },
    /// `%pane-mode-changed %id` (copy mode entered or left).
    PaneModeChanged {
        /// Pane id.
        pane_id: String,
    },
    /// `%client-detached client`.
    ClientDetached {
        /// The client's name.
        client: String,
    },
    /// The bridge's tree subscription changed: a session, window or pane of
    /// any session was added, closed or renamed, or a session's attached
    /// count changed. tmux checks subscriptions about once a second; this
    /// covers changes the other notifications do not report (a pane closing
    /// in a session the control client does not follow).
    TreeChanged,
    /// The bridge's control client ended (`%exit [reason]`, or its process
    /// ended): the server exited or the session it followed was destroyed.
    /// Re-read the tree; `list_sessions` returns an empty list when no
    /// server is left.
    ControlExited {
        /// tmux's reason, when it gave one.
        reason: Option<String>,
    },
    /// A new control client attached after [`Notification::ControlExited`];
    /// changes in between were not reported, so re-read the tree.
    ControlRestarted,
    /// Any other notification line, verbatim (lossy UTF-8).
    Other {
        /// The whole line.
        line: String,
    },
}

impl Notification {
    /// True when the session tree the phone sees may have changed.
    pub fn tree_may_have_changed(&self) -> bool {
        !matches!(
            self,
            Notification::SessionChanged { .. }
                | Notification::ClientSessionChanged { .. }
                | Notification::ClientDetached { .. }
                | Notification::PaneModeChanged { .. }
                | Notification::Other { .. }
        )
    }

    /// Parses one control-mode notification line (starting with `%`).
    pub(crate) fn parse(line: &[u8]) -> Notification {
        let text = String::from_utf8_lossy(line).into_owned();
        let (name, rest) = match text.split_once(' ') {
            Some((n, r)) => (n, r),
            None => (text.as_str(), ""),
        };
        // Splits "a b c…" into the first word and the remainder (names may contain spaces).
        let word_rest = |s: &str| -> (String, String) {
            match s.split_once(' ') {
                Some((a, b)) => (a.to_owned(), b.to_owned()),
                None => (s.to_owned(), String::new()),
            }
        };
        let first = || word_rest(rest).0;
        match name {
            "%sessions-changed" => Notification::SessionsChanged,
            "%session-changed" => {
                let (session_id, name) = word_rest(rest);
                Notification::SessionChanged { session_id, name }
            }
            "%client-session-changed" => {
                let (client, r) = word_rest(rest);
                let (session_id, name) = word_rest(&r);
                Notification::ClientSessionChanged {
                    client,
                    session_id,
                    name,
                }
            }
            "%session-renamed" => {
                let (session_id, name) = word_rest(rest);
                Notification::SessionRenamed { session_id, name }
            }
            "%session-window-changed" => {
                let (session_id, r) = word_rest(rest);
                Notification::SessionWindowChanged {
                    session_id,
                    window_id: word_rest(&r).0,
                }
            }
            "%window-add" => Notification::WindowAdd { window_id: first() },
            "%unlinked-window-add" => Notification::UnlinkedWindowAdd { window_id: first() },
            "%window-close" => Notification::WindowClose { window_id: first() },
            "%unlinked-window-close" => Notification::UnlinkedWindowClose { window_id: first() },
            "%window-renamed" | "%unlinked-window-renamed" => {
                let (window_id, name) = word_rest(rest);
                Notification::WindowRenamed { window_id, name }
            }
            "%window-pane-changed" => {
                let (window_id, r) = word_rest(rest);
                Notification::WindowPaneChanged {
                    window_id,
                    pane_id: word_rest(&r).0,
                }
            }
            "%layout-change" => Notification::LayoutChange { window_id: first() },
            "%pane-mode-changed" => Notification::PaneModeChanged { pane_id: first() },
            "%client-detached" => Notification::ClientDetached { client: first() },
            "%subscription-changed" if first() == TREE_SUBSCRIPTION => Notification::TreeChanged,
            "%exit" => Notification::ControlExited {
                reason: (!rest.is_empty()).then(|| rest.to_owned()),
            },
            _ => Notification::Other { line: text },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Notification as N;

    #[test]
    fn parses_known_lines() {
        assert_eq!(N::parse(b"%sessions-changed"), N::SessionsChanged);
        assert_eq!(
            N::parse(b"%session-changed $1 my session"),
            N::SessionChanged {
                session_id: "$1".into(),
                name: "my session".into()
            }
        );
        assert_eq!(
            N::parse(b"%window-renamed @3 a b"),
            N::WindowRenamed {
                window_id: "@3".into(),
                name: "a b".into()
            }
        );
        assert_eq!(
            N::parse(b"%layout-change @2 b25d,80x24,0,0,0 b25d,80x24,0,0,0 *"),
            N::LayoutChange {
                window_id: "@2".into()
            }
        );
        assert_eq!(
            N::parse(b"%window-pane-changed @2 %5"),
            N::WindowPaneChanged {
                window_id: "@2".into(),
                pane_id: "%5".into()
            }
        );
        assert_eq!(N::parse(b"%exit"), N::ControlExited { reason: None });
        assert_eq!(
            N::parse(b"%subscription-changed muxlink-tree $0 - - - : $0 1 a @0 bash %0"),
            N::TreeChanged
        );
        assert!(matches!(
            N::parse(b"%subscription-changed other $0 - - - : x"),
            N::Other { .. }
        ));
        assert_eq!(
            N::parse(b"%exit server exited"),
            N::ControlExited {
                reason: Some("server exited".into())
            }
        );
        assert!(matches!(
            N::parse(b"%paste-buffer-changed x"),
            N::Other { .. }
        ));
        assert!(N::parse(b"%unlinked-window-close @9").tree_may_have_changed());
        assert!(!N::parse(b"%pane-mode-changed %1").tree_may_have_changed());
    }
}
