//! Holds the `sessions` event to one message of at most
//! [`OUTPUT_MESSAGE_CAP`](super::output::OUTPUT_MESSAGE_CAP), like every
//! `output` message: with several hundred panes the tree could outgrow the
//! transport's 256 KiB ceiling (`rtc_transport::MAX_TRANSPORT_MESSAGE`), and
//! the earlier transport stalled on messages above ~85 KiB. When the whole list does
//! not fit, whole sessions are left out, the least recently active first; the
//! rest keep their tmux order. A session is never split or edited.

use std::cmp::Reverse;

use terminal_protocol::{Event, Session};

use super::AGENT_VERSION;

/// The `sessions` event carrying exactly `sessions`, whatever its size.
pub(super) fn full_event(sessions: Vec<Session>) -> Event {
    Event::Sessions {
        sessions,
        agent_version: Some(AGENT_VERSION.to_string()),
        update_available: None,
    }
}

/// The sessions to send so that `full_event` of them encodes to at most `cap`
/// bytes, and how many of `sessions` were left out.
///
/// Everything fits: `sessions` unchanged. Otherwise the least recently active
/// (`last_activity_at`; on a tie the later in the list) are left out until
/// the rest fits, and the rest keep their order. If not even the empty list
/// fits, the empty list.
///
/// Each session is encoded once, on its own: the encoder writes a session's
/// bytes the same wherever it stands in the array, so the event's length is
/// the envelope, the array header and the sum of the sessions' lengths
/// (`encoded_len`), with no re-encoding while choosing.
pub(super) fn fit_sessions(sessions: Vec<Session>, cap: usize) -> (Vec<Session>, usize) {
    let envelope_len = full_event(Vec::new()).encode().len();
    let session_lens: Vec<usize> = sessions.iter().map(encoded_session_len).collect();
    let encoded_len = |count: usize, sessions_len: usize| {
        // The empty envelope already holds a one-byte array header (fixarray 0).
        envelope_len - 1 + array_header_len(count) + sessions_len
    };

    if encoded_len(sessions.len(), session_lens.iter().sum()) <= cap {
        return (sessions, 0);
    }

    // Most recently active first; the stable sort keeps list order on a tie,
    // so of two equally active sessions the later one is left out first.
    let mut by_recency: Vec<usize> = (0..sessions.len()).collect();
    by_recency.sort_by_key(|&i| Reverse(sessions[i].last_activity_at));

    // Keep the longest most-recent-first run that fits: leaving out the least
    // recently active until it fits means never keeping a less active session
    // in place of a more active one, even if a smaller one would squeeze in.
    let mut keep = vec![false; sessions.len()];
    let mut kept_len = 0;
    for (kept_before, i) in by_recency.into_iter().enumerate() {
        if encoded_len(kept_before + 1, kept_len + session_lens[i]) > cap {
            break;
        }
        keep[i] = true;
        kept_len += session_lens[i];
    }

    let listed = sessions.len();
    let kept: Vec<Session> = sessions
        .into_iter()
        .zip(keep)
        .filter_map(|(session, keep)| keep.then_some(session))
        .collect();
    let left_out = listed - kept.len();
    (kept, left_out)
}

/// The bytes `session` adds to a `sessions` event: a one-session event less
/// the empty one (both have a one-byte fixarray header, so only the session's
/// own bytes remain).
fn encoded_session_len(session: &Session) -> usize {
    let probe = |sessions: Vec<Session>| {
        Event::Sessions {
            sessions,
            agent_version: None,
            update_available: None,
        }
        .encode()
        .len()
    };
    probe(vec![session.clone()]) - probe(Vec::new())
}

/// The length of MessagePack's header for an array of `count` items:
/// fixarray up to 15, array16 up to 65535, array32 beyond.
fn array_header_len(count: usize) -> usize {
    match count {
        0..=15 => 1,
        16..=0xffff => 3,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::super::output::OUTPUT_MESSAGE_CAP;
    use super::super::sessions_event;
    use super::*;
    use terminal_protocol::{Pane, PaneSize, Window};

    /// A session like tmux lists it, `windows` × `panes_per_window` panes.
    fn session(
        n: usize,
        last_activity_at: i64,
        windows: usize,
        panes_per_window: usize,
    ) -> Session {
        Session {
            id: format!("${n}"),
            name: format!("project-{n}"),
            created_at: 1_700_000_000 + n as i64,
            windows: (0..windows)
                .map(|w| Window {
                    id: format!("@{}", n * 10 + w),
                    name: format!("window-{w}"),
                    index: w as u32,
                    active: w == 0,
                    panes: (0..panes_per_window)
                        .map(|p| Pane {
                            id: format!("%{}", (n * 10 + w) * 10 + p),
                            index: p as u32,
                            active: p == 0,
                            size: PaneSize {
                                cols: 120,
                                rows: 40,
                            },
                            title: format!("host.example:~/src/project-{n}"),
                            current_command: "bash".to_string(),
                        })
                        .collect(),
                })
                .collect(),
            last_activity_at,
            attached: n.is_multiple_of(3),
        }
    }

    fn ids(sessions: &[Session]) -> Vec<&str> {
        sessions.iter().map(|s| s.id.as_str()).collect()
    }

    fn sent(event: &Event) -> &[Session] {
        match event {
            Event::Sessions { sessions, .. } => sessions,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_small_list_is_sent_unchanged() {
        let sessions: Vec<Session> = (0..3).map(|n| session(n, 100 - n as i64, 2, 2)).collect();
        let (kept, left_out) = fit_sessions(sessions.clone(), OUTPUT_MESSAGE_CAP);
        assert_eq!((kept, left_out), (sessions.clone(), 0));
        assert_eq!(sessions_event(sessions.clone()), full_event(sessions));
    }

    #[test]
    fn thousands_of_sessions_are_trimmed_to_the_cap_least_recently_active_first() {
        // Few distinct activity times, so ties are common.
        let activity = |n: usize| 1_700_000_000 + ((n * 7919) % 300) as i64;
        let sessions: Vec<Session> = (0..2000).map(|n| session(n, activity(n), 3, 2)).collect();
        assert!(full_event(sessions.clone()).encode().len() > 10 * OUTPUT_MESSAGE_CAP);

        let event = sessions_event(sessions.clone());
        let bytes = event.encode().len();
        assert!(bytes <= OUTPUT_MESSAGE_CAP, "{bytes}");
        let kept = sent(&event);
        assert!(kept.len() > 20 && kept.len() < 200, "{}", kept.len());
        assert_eq!(
            fit_sessions(sessions.clone(), OUTPUT_MESSAGE_CAP).1,
            2000 - kept.len()
        );

        // Kept in list order: their positions in the original list only grow.
        let position = |s: &Session| sessions.iter().position(|o| o.id == s.id).unwrap();
        let kept_positions: Vec<usize> = kept.iter().map(position).collect();
        assert!(kept_positions.windows(2).all(|w| w[0] < w[1]));

        // Every kept session is more recently active than every left-out one,
        // or as recent and earlier in the list.
        let left: Vec<usize> = (0..2000).filter(|i| !kept_positions.contains(i)).collect();
        let ahead = |k: usize, l: usize| (Reverse(activity(k)), k) < (Reverse(activity(l)), l);
        for &k in &kept_positions {
            for &l in &left {
                assert!(ahead(k, l), "kept {k} behind left-out {l}");
            }
        }

        // Nothing more could go: the next session in line would not fit.
        let next = *left
            .iter()
            .min_by_key(|&&l| (Reverse(activity(l)), l))
            .unwrap();
        let mut more = kept_positions.clone();
        more.push(next);
        more.sort_unstable();
        let more: Vec<Session> = more.iter().map(|&i| sessions[i].clone()).collect();
        assert!(full_event(more).encode().len() > OUTPUT_MESSAGE_CAP);
    }

    #[test]
    fn the_least_recently_active_goes_first_and_on_a_tie_the_later_one() {
        let one = full_event(vec![session(0, 0, 1, 1)]).encode().len();
        let empty = full_event(Vec::new()).encode().len();
        // Room for two sessions of this size, not three.
        let cap = empty + 2 * (one - empty) + 10;

        let oldest_first = vec![
            session(1, 10, 1, 1),
            session(2, 30, 1, 1),
            session(3, 20, 1, 1),
        ];
        let (kept, left_out) = fit_sessions(oldest_first, cap);
        assert_eq!((ids(&kept), left_out), (vec!["$2", "$3"], 1));

        let all_tied = vec![
            session(1, 5, 1, 1),
            session(2, 5, 1, 1),
            session(3, 5, 1, 1),
        ];
        let (kept, left_out) = fit_sessions(all_tied, cap);
        assert_eq!((ids(&kept), left_out), (vec!["$1", "$2"], 1));

        // A smaller, less active session is not kept in place of a larger,
        // more active one that was left out.
        let big_then_small = vec![
            session(1, 30, 1, 1),
            session(2, 20, 4, 4),
            session(3, 10, 1, 1),
        ];
        let (kept, left_out) = fit_sessions(big_then_small, cap);
        assert_eq!((ids(&kept), left_out), (vec!["$1"], 2));
    }

    #[test]
    fn a_cap_below_the_empty_event_sends_the_empty_list() {
        let sessions: Vec<Session> = (0..4).map(|n| session(n, 1, 1, 1)).collect();
        let (kept, left_out) = fit_sessions(sessions, 8);
        assert_eq!((kept.len(), left_out), (0, 4));
    }

    #[test]
    fn the_length_estimate_is_exact_across_array_header_sizes() {
        // fixarray up to 15 items, array16 from 16, array32 from 65536: an
        // estimate short by the header's growth would let a list overshoot.
        for count in [0, 1, 15, 16, 17, 0xffff, 0x1_0000] {
            let sessions: Vec<Session> = (0..count)
                .map(|_| Session {
                    id: "$".to_string(),
                    name: String::new(),
                    created_at: 0,
                    windows: Vec::new(),
                    last_activity_at: 0,
                    attached: false,
                })
                .collect();
            let bytes = full_event(sessions.clone()).encode().len();
            // Exactly at the cap everything stays; one byte less drops one.
            assert_eq!(fit_sessions(sessions.clone(), bytes).1, 0, "{count}");
            if count > 0 {
                assert_eq!(fit_sessions(sessions, bytes - 1).1, 1, "{count}");
            }
        }
    }
}
