//! Unit tests of the attachment state machine: every way an attachment ends
//! yields exactly one `Ending` (one release), whatever races it, and reports
//! about stale generations change nothing.

use super::*;
use crate::handler::ending::Notice;

/// Links are numbers (two peer objects of one device differ), outputs and
/// pumps are labelled by the pane they belong to.
struct Fake;

impl Driver for Fake {
    type Link = u32;
    type Output = String;
    type Pump = String;
    fn same_link(a: &u32, b: &u32) -> bool {
        a == b
    }
}

const PHONE: &str = "phone";

fn table() -> Table<Fake> {
    let mut t = Table::default();
    assert!(t.register(PHONE, &1).0);
    t
}

/// Attaches link 1 to `pane` up to Streaming; returns its id.
fn streaming(t: &mut Table<Fake>, pane: &str) -> AttachmentId {
    let (opening, previous) = t.begin(PHONE, &1, pane, 80, 24).unwrap();
    assert!(previous.is_none());
    let mut started = None;
    t.start_streaming(opening, format!("out {pane}"), |output, id| {
        assert_eq!(output, format!("out {pane}"));
        started = Some(id);
        format!("pump {pane}")
    })
    .unwrap();
    started.unwrap()
}

/// Every way anyone can end attachment `id`, applied in turn: the releases
/// (Endings) that all of them together produce.
fn end_every_way(t: &mut Table<Fake>, id: &AttachmentId) -> Vec<Ending<Fake>> {
    let mut endings = Vec::new();
    for cause in [Cause::Detach, Cause::PaneAbsent] {
        endings.extend(t.end(id, cause));
    }
    for cause in [Cause::PaneExited, Cause::SendFailed, Cause::CompressFailed] {
        endings.extend(t.stream_ended(id, cause, "out".into()).ok());
    }
    endings.extend(t.register(PHONE, &2).1);
    endings.extend(t.disconnect(PHONE));
    endings.extend(t.end_all());
    endings
}

#[test]
fn each_ending_path_releases_exactly_once() {
    // The first path to run wins; every later one finds nothing to end.
    type Path = fn(&mut Table<Fake>, &AttachmentId) -> Option<Ending<Fake>>;
    let paths: [(Path, Cause); 9] = [
        (|t, id| t.end(id, Cause::Detach), Cause::Detach),
        (|t, id| t.end(id, Cause::PaneAbsent), Cause::PaneAbsent),
        (
            |t, id| t.stream_ended(id, Cause::PaneExited, "out".into()).ok(),
            Cause::PaneExited,
        ),
        (
            |t, id| t.stream_ended(id, Cause::SendFailed, "out".into()).ok(),
            Cause::SendFailed,
        ),
        (
            |t, id| t.stream_ended(id, Cause::CompressFailed, "out".into()).ok(),
            Cause::CompressFailed,
        ),
        (|t, _| t.register(PHONE, &2).1, Cause::PeerReplaced),
        (|t, _| t.disconnect(PHONE), Cause::Disconnected),
        (|t, _| t.end_all().pop(), Cause::Shutdown),
        (
            |t, _| {
                t.begin(PHONE, &1, "%9", 80, 24)
                    .and_then(|(_, previous)| previous)
            },
            Cause::Reattach,
        ),
    ];
    for (first, cause) in paths {
        let mut t = table();
        let id = streaming(&mut t, "%1");
        let ending = first(&mut t, &id).unwrap();
        assert_eq!(ending.cause, cause);
        assert_eq!(ending.id, id);
        assert_eq!(ending.pane_id, "%1");
        assert_eq!(ending.link, 1, "the phone that was attached is told");
        // The stream: a task ending itself closes its own output; anyone
        // else stops the task.
        match (&ending.stream, cause) {
            (Stream::Close(o), Cause::PaneExited | Cause::SendFailed | Cause::CompressFailed) => {
                assert_eq!(o, "out")
            }
            (Stream::Stop(p), _) => assert_eq!(p, "pump %1"),
            (_, cause) => panic!("{cause:?}: {ending:?}"),
        }
        assert!(end_every_way(&mut t, &id).is_empty(), "{cause:?}");
    }
}

#[test]
fn notices_follow_the_cause() {
    assert_eq!(
        Cause::PaneExited.notice(),
        Some(Notice::PaneClosedThenSessions)
    );
    assert_eq!(
        Cause::PaneMissing.notice(),
        Some(Notice::PaneClosedThenSessions)
    );
    assert_eq!(Cause::PaneAbsent.notice(), Some(Notice::PaneClosed));
    assert_eq!(Cause::OpenFailed.notice(), Some(Notice::AttachFailed));
    assert_eq!(
        Cause::CompressFailed.notice(),
        Some(Notice::CompressionFailed)
    );
    for silent in [
        Cause::Detach,
        Cause::Reattach,
        Cause::SendFailed,
        Cause::PeerReplaced,
        Cause::Disconnected,
        Cause::Shutdown,
        Cause::Abandoned,
    ] {
        assert_eq!(silent.notice(), None, "{silent:?}");
    }
}

#[test]
fn a_failed_opening_ends_once_and_is_not_visible() {
    let mut t = table();
    let (opening, _) = t.begin(PHONE, &1, "%1", 80, 24).unwrap();
    // While opening, requests see no attachment and the status shows none.
    assert!(t.attached(PHONE, &1).is_none());
    assert_eq!(t.attachments(), vec![(PHONE.to_owned(), None)]);
    let ending = t.opening_failed(opening, None, Cause::PaneMissing);
    assert_eq!(ending.cause, Cause::PaneMissing);
    assert!(matches!(ending.stream, Stream::Unopened));
    assert!(t.disconnect(PHONE).is_none());

    let mut t = table();
    let (opening, _) = t.begin(PHONE, &1, "%1", 80, 24).unwrap();
    let ending = t.opening_failed(opening, Some("out".into()), Cause::SendFailed);
    assert!(matches!(ending.stream, Stream::Close(ref o) if o == "out"));
    assert!(t.end_all().is_empty());
}

#[test]
fn an_opening_ended_by_others_is_released_by_its_opener_only() {
    type Other = fn(&mut Table<Fake>) -> Vec<Ending<Fake>>;
    let others: [Other; 3] = [
        |t| t.disconnect(PHONE).into_iter().collect(),
        |t| t.end_all(),
        |t| t.register(PHONE, &2).1.into_iter().collect(),
    ];
    for other in others {
        let mut t = table();
        let (opening, _) = t.begin(PHONE, &1, "%1", 80, 24).unwrap();
        // The opener may not have forced the size yet: releasing it from
        // here could come first and leave the pane pinned.
        assert!(other(&mut t).is_empty());
        let ending = t
            .start_streaming(opening, "out".into(), |_, _| {
                panic!("started after its end")
            })
            .unwrap_err();
        assert_eq!(ending.cause, Cause::Abandoned);
        assert_eq!(ending.pane_id, "%1");
        assert!(matches!(ending.stream, Stream::Close(ref o) if o == "out"));
        assert!(t.end_all().is_empty());
    }
}

#[test]
fn reattach_ends_the_previous_attachment_and_stale_reports_are_ignored() {
    let mut t = table();
    let old = streaming(&mut t, "%1");
    let (opening, previous) = t.begin(PHONE, &1, "%2", 100, 30).unwrap();
    let previous = previous.unwrap();
    assert_eq!(
        (previous.cause, previous.id.clone()),
        (Cause::Reattach, old.clone())
    );
    let mut new = None;
    t.start_streaming(opening, "out %2".into(), |_, id| {
        new = Some(id);
        "pump %2".into()
    })
    .unwrap();
    let new = new.unwrap();
    assert_ne!(new, old);
    // The old task's late report, and requests about the old one, miss.
    assert_eq!(
        t.stream_ended(&old, Cause::PaneExited, "late".into())
            .unwrap_err(),
        "late"
    );
    assert!(t.end(&old, Cause::PaneAbsent).is_none());
    t.resized(&old, 1, 1);
    let current = t.attached(PHONE, &1).unwrap();
    assert_eq!(
        (current.id.clone(), current.pane_id.as_str()),
        (new.clone(), "%2")
    );
    assert_eq!((current.cols, current.rows), (100, 30));
    assert_eq!(end_every_way(&mut t, &new).len(), 1);
}

#[test]
fn generations_survive_a_peer_leaving_and_coming_back() {
    let mut t = table();
    let old = streaming(&mut t, "%1");
    let ending = t.disconnect(PHONE).unwrap();
    assert_eq!(ending.id, old);
    // The phone comes back as the same device; its first attachment must not
    // be mistaken for the old one, whose task may still report.
    assert!(t.register(PHONE, &1).0);
    let new = streaming(&mut t, "%1");
    assert_ne!(new, old);
    assert!(
        t.stream_ended(&old, Cause::PaneExited, "late".into())
            .is_err()
    );
    assert_eq!(t.attached(PHONE, &1).unwrap().id, new);
}

#[test]
fn a_replaced_peer_can_neither_start_nor_use_an_attachment() {
    let mut t = table();
    let id = streaming(&mut t, "%1");
    let (changed, ending) = t.register(PHONE, &2);
    assert!(changed);
    let ending = ending.unwrap();
    assert_eq!((ending.id, ending.link), (id, 1));
    // The old link's late requests find nothing and start nothing.
    assert!(t.attached(PHONE, &1).is_none());
    assert!(t.begin(PHONE, &1, "%1", 80, 24).is_none());
    // Registering the current link again is no change.
    assert!(!t.register(PHONE, &2).0);
    assert_eq!(t.links(), vec![2]);
}

#[test]
fn resize_is_remembered_for_the_current_attachment() {
    let mut t = table();
    let id = streaming(&mut t, "%1");
    t.resized(&id, 60, 20);
    let a = t.attached(PHONE, &1).unwrap();
    assert_eq!((a.cols, a.rows), (60, 20));
    assert_eq!(
        t.attachments(),
        vec![(PHONE.to_owned(), Some("%1".to_owned()))]
    );
}

#[test]
fn numbered_input_is_applied_once_per_peer_object() {
    use terminal_protocol::{Verdict, Via};
    let mut t = table();
    assert_eq!(
        t.accept_input(PHONE, &1, 0, 3, Via::Fast),
        Some(Verdict::Apply { skip: 0 })
    );
    // The reliable copy of the same bytes is a duplicate, never applied twice.
    assert_eq!(
        t.accept_input(PHONE, &1, 0, 3, Via::Reliable),
        Some(Verdict::Duplicate)
    );
    assert_eq!(
        t.accept_input(PHONE, &1, 5, 1, Via::Fast),
        Some(Verdict::Ahead)
    );
    // A stale link decides nothing.
    assert_eq!(t.accept_input(PHONE, &9, 3, 1, Via::Reliable), None);
    // A new peer object of the same phone numbers from 0 again.
    assert!(t.register(PHONE, &2).0);
    assert_eq!(
        t.accept_input(PHONE, &2, 0, 1, Via::Reliable),
        Some(Verdict::Apply { skip: 0 })
    );
}
