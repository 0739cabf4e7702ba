//! Property tests: encode → decode is the identity for every request and event
//! variant, and decoding arbitrary or mutated bytes returns Ok or Err without
//! panicking.
#![allow(clippy::unwrap_used)]

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use terminal_protocol::{Attach, Event, Pane, PaneSize, Request, Session, Window};

/// Any string of at most `max` UTF-8 bytes.
fn str_bytes(max: usize) -> impl Strategy<Value = String> {
    any::<String>().prop_map(move |mut s| {
        while s.len() > max {
            s.pop();
        }
        s
    })
}

/// A non-empty optional string (empty ones are not sent on the wire).
fn opt_str() -> impl Strategy<Value = Option<String>> {
    option::of("\\PC{1,20}")
}

fn dim() -> impl Strategy<Value = u16> {
    1u16..=500
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::ListSessions),
        Just(Request::Detach),
        Just(Request::Ping),
        Just(Request::CreateSession),
        (
            (str_bytes(255), dim(), dim(), any::<bool>(), opt_str()),
            (any::<bool>(), option::of(offset())),
        )
            .prop_map(
                |((pane_id, cols, rows, reattach, compression), (offsets, resume_from))| {
                    Request::Attach(Attach {
                        pane_id,
                        cols,
                        rows,
                        reattach,
                        compression,
                        offsets,
                        resume_from,
                    })
                }
            ),
        (
            prop_oneof![vec(any::<u8>(), 0..300), vec(any::<u8>(), 16_000..=16_384)],
            option::of(offset()),
        )
            .prop_map(|(data, offset)| Request::Input { data, offset }),
        (dim(), dim()).prop_map(|(cols, rows)| Request::Resize { cols, rows }),
        str_bytes(255).prop_map(|session| Request::KillSession { session }),
        ("\\PC{1,128}", "\\PC{1,128}")
            .prop_map(|(nonce, mac)| Request::AuthResponse { nonce, mac }),
    ]
}

/// A stream v2 offset: anything a JavaScript number holds exactly.
fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![0..1_000_000u64, Just(terminal_protocol::MAX_STREAM_OFFSET)]
}

fn pane() -> impl Strategy<Value = Pane> {
    (
        ".{0,8}",
        any::<u32>(),
        any::<bool>(),
        any::<u16>(),
        any::<u16>(),
        ".{0,8}",
        ".{0,8}",
    )
        .prop_map(
            |(id, index, active, cols, rows, title, current_command)| Pane {
                id,
                index,
                active,
                size: PaneSize { cols, rows },
                title,
                current_command,
            },
        )
}

fn window() -> impl Strategy<Value = Window> {
    (
        ".{0,8}",
        ".{0,8}",
        any::<u32>(),
        any::<bool>(),
        vec(pane(), 0..3),
    )
        .prop_map(|(id, name, index, active, panes)| Window {
            id,
            name,
            index,
            active,
            panes,
        })
}

fn session() -> impl Strategy<Value = Session> {
    (
        ".{0,8}",
        ".{0,8}",
        any::<i64>(),
        vec(window(), 0..3),
        any::<i64>(),
        any::<bool>(),
    )
        .prop_map(
            |(id, name, created_at, windows, last_activity_at, attached)| Session {
                id,
                name,
                created_at,
                windows,
                last_activity_at,
                attached,
            },
        )
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        "\\PC{0,128}".prop_map(|mac| Event::AuthOk { mac }),
        Just(Event::Detached),
        "\\PC{0,128}".prop_map(|nonce| Event::AuthChallenge { nonce }),
        (vec(session(), 0..3), opt_str(), opt_str()).prop_map(
            |(sessions, agent_version, update_available)| Event::Sessions {
                sessions,
                agent_version,
                update_available,
            }
        ),
        (
            vec(any::<u8>(), 0..2000),
            option::of(offset()),
            any::<bool>(),
            opt_str()
        )
            .prop_map(|(data, offset, snapshot, pane_id)| Event::Output {
                data,
                offset,
                snapshot,
                pane_id,
            }),
        (
            str_bytes(255),
            opt_str(),
            option::of(offset()),
            any::<bool>()
        )
            .prop_map(|(pane_id, compression, offset, resumed)| Event::Attached {
                pane_id,
                compression,
                offset,
                resumed,
            }),
        str_bytes(255).prop_map(|session| Event::SessionEnded { session }),
        str_bytes(255).prop_map(|pane_id| Event::PaneClosed { pane_id }),
        ("\\PC{0,255}", "\\PC{0,300}").prop_map(|(code, message)| Event::Error { code, message }),
        any::<u64>().prop_map(|latency| Event::Pong { latency }),
        session().prop_map(|session| Event::SessionCreated { session }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn request_round_trips(req in request()) {
        let bytes = req.encode();
        prop_assert_eq!(Request::decode(&bytes).unwrap(), req);
    }

    #[test]
    fn event_round_trips(ev in event()) {
        let bytes = ev.encode();
        prop_assert_eq!(Event::decode(&bytes).unwrap(), ev);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let _ = Request::decode(&bytes);
        let _ = Event::decode(&bytes);
    }

    /// Valid messages with a few bytes overwritten reach much deeper into the
    /// decoder than random bytes do.
    #[test]
    fn mutated_messages_never_panic(
        req in request(),
        ev in event(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        for original in [req.encode(), ev.encode()] {
            // A strict prefix of a valid message is never a message.
            let short = &original[..cut.index(original.len())];
            prop_assert!(Request::decode(short).is_err());
            prop_assert!(Event::decode(short).is_err());
            // A mutated message (or any prefix of it) may or may not decode:
            // an edit can shrink a length so that the message ends early. It
            // must only never panic.
            let mut bytes = original.clone();
            for (at, b) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *b;
            }
            let _ = Request::decode(&bytes);
            let _ = Event::decode(&bytes);
            let mutated_short = &bytes[..cut.index(bytes.len())];
            let _ = Request::decode(mutated_short);
            let _ = Event::decode(mutated_short);
        }
    }
}
