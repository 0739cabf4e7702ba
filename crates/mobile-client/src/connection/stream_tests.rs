//! Unit tests of the phone's stream v2 core: copies applied once, the
//! inflater kept in step, snapshots and resumes counted, foreign copies dropped.

use terminal_protocol::{Compressor, Event, MAX_FAST_COPY};

use super::{Applied, OutputStream, ResumePoint};

fn fast_copy(data: &[u8], offset: u64, pane: &str) -> Vec<u8> {
    Event::Output {
        data: data.to_vec(),
        offset: Some(offset),
        snapshot: false,
        pane_id: Some(pane.to_owned()),
    }
    .encode()
}

fn out(bytes: &[u8]) -> Applied {
    Applied::Output(bytes.to_vec())
}

#[test]
fn a_fast_copy_wins_and_its_reliable_copy_is_dropped() {
    let mut s = OutputStream::default();
    s.attached("%1", None, Some(100), true, Some(100));
    assert_eq!(s.fast(&fast_copy(b"ab", 100, "%1")), out(b"ab"));
    assert_eq!(s.reliable(b"ab", Some(100), false), Applied::Nothing);
    assert_eq!(s.reliable(b"cd", Some(102), false), out(b"cd"));
    assert_eq!(s.fast(&fast_copy(b"cd", 102, "%1")), Applied::Nothing);
    let st = s.stats();
    assert_eq!((st.fast_applied, st.duplicates_dropped), (1, 2));
    assert_eq!(
        s.resume_point(),
        Some(ResumePoint {
            pane_id: "%1".into(),
            next: 104
        })
    );
}

#[test]
fn duplicates_are_still_inflated_so_later_frames_decode() {
    let mut c = Compressor::new();
    let f1 = c.compress(b"hello ").unwrap();
    let f2 = c.compress(b"hello world").unwrap();
    let mut s = OutputStream::default();
    s.attached("%1", Some("deflate"), Some(0), true, Some(0));
    assert_eq!(s.fast(&fast_copy(b"hello ", 0, "%1")), out(b"hello "));
    assert_eq!(s.reliable(&f1, Some(0), false), Applied::Nothing);
    assert_eq!(s.reliable(&f2, Some(6), false), out(b"hello world"));
}

#[test]
fn an_overlapping_fast_copy_applies_only_its_new_tail() {
    let mut s = OutputStream::default();
    s.attached("%1", None, Some(10), false, None);
    assert_eq!(s.reliable(b"ab", Some(10), false), out(b"ab"));
    assert_eq!(s.fast(&fast_copy(b"bcd", 11, "%1")), out(b"cd"));
    assert_eq!(s.reliable(b"bcd", Some(11), false), Applied::Nothing);
}

#[test]
fn a_fast_copy_ahead_waits_for_the_reliable_channel() {
    let mut s = OutputStream::default();
    s.attached("%1", None, Some(0), false, None);
    assert_eq!(s.fast(&fast_copy(b"b", 1, "%1")), Applied::Nothing);
    assert_eq!(s.reliable(b"a", Some(0), false), out(b"a"));
    assert_eq!(s.reliable(b"b", Some(1), false), out(b"b"));
    assert_eq!(s.stats().fast_dropped, 1);
}

#[test]
fn snapshots_jump_and_count_once_per_snapshot() {
    let mut s = OutputStream::default();
    s.attached("%1", None, Some(0), false, None);
    assert_eq!(s.reliable(b"abc", Some(0), false), out(b"abc"));
    assert_eq!(s.reliable(b"\x1b[H", Some(1000), true), out(b"\x1b[H"));
    assert_eq!(s.reliable(b"$ ", Some(1000), true), out(b"$ "));
    assert_eq!(s.reliable(b"x", Some(1000), false), out(b"x"));
    let st = s.stats();
    assert_eq!((st.snapshots, st.bytes_skipped), (1, 997));
    assert_eq!(s.resume_point().map(|r| r.next), Some(1001));
}

#[test]
fn a_reliable_gap_is_applied_and_counted() {
    let mut s = OutputStream::default();
    s.attached("%1", None, Some(0), false, None);
    assert_eq!(s.reliable(b"z", Some(5), false), out(b"z"));
    assert_eq!(s.stats().bytes_skipped, 5);
}

#[test]
fn foreign_oversize_and_early_fast_messages_are_dropped() {
    let mut s = OutputStream::default();
    assert_eq!(s.fast(&fast_copy(b"a", 0, "%1")), Applied::Nothing);
    s.attached("%1", None, Some(0), true, Some(0));
    assert_eq!(s.fast(&fast_copy(b"a", 0, "%2")), Applied::Nothing);
    let big = vec![b'x'; MAX_FAST_COPY + 1];
    assert_eq!(s.fast(&fast_copy(&big, 0, "%1")), Applied::Nothing);
    assert_eq!(
        s.fast(&Event::output(b"a".to_vec()).encode()),
        Applied::Nothing
    );
    assert_eq!(s.fast(&Event::Detached.encode()), Applied::Nothing);
    assert_eq!(s.fast(b"\xc1garbage"), Applied::Nothing);
    assert_eq!(s.stats().fast_dropped, 6);
    assert_eq!(s.reliable(b"a", Some(0), false), out(b"a"));
}

#[test]
fn a_resume_the_host_could_not_serve_counts_the_bytes_in_between() {
    let mut s = OutputStream::default();
    s.attached("%1", None, Some(5000), false, Some(1000));
    assert_eq!(s.stats().bytes_skipped, 4000);
    let mut s = OutputStream::default();
    s.attached("%1", None, Some(1000), true, Some(1000));
    assert_eq!(s.stats().bytes_skipped, 0);
}

#[test]
fn without_offsets_output_passes_through_and_fast_copies_are_dropped() {
    let mut s = OutputStream::default();
    s.attached("%1", None, None, false, None);
    assert_eq!(s.reliable(b"a", None, false), out(b"a"));
    assert_eq!(s.reliable(b"a", None, false), out(b"a"));
    assert_eq!(s.fast(&fast_copy(b"a", 0, "%1")), Applied::Nothing);
    assert_eq!(s.resume_point(), None);
}

#[test]
fn after_the_attachment_ends_its_inflater_still_serves_stray_output() {
    let mut c = Compressor::new();
    let f1 = c.compress(b"one").unwrap();
    let f2 = c.compress(b"two").unwrap();
    let mut s = OutputStream::default();
    s.attached("%1", Some("deflate"), Some(0), false, None);
    assert_eq!(s.reliable(&f1, Some(0), false), out(b"one"));
    s.ended();
    assert_eq!(s.pane(), None);
    assert_eq!(s.reliable(&f2, Some(3), false), out(b"two"));
    assert_eq!(s.resume_point(), None);
}

#[test]
fn fast_copies_wait_until_the_snapshot_is_over() {
    let mut s = OutputStream::default();
    // A fresh attach: a snapshot at 50 follows; a copy at 50 must not be
    // drawn before it.
    s.attached("%1", None, Some(50), false, None);
    assert_eq!(s.fast(&fast_copy(b"x", 50, "%1")), Applied::Nothing);
    assert_eq!(s.reliable(b"screen1", Some(50), true), out(b"screen1"));
    // Between the parts of one snapshot, too.
    assert_eq!(s.fast(&fast_copy(b"x", 50, "%1")), Applied::Nothing);
    assert_eq!(s.reliable(b"screen2", Some(50), true), out(b"screen2"));
    assert_eq!(s.reliable(b"x", Some(50), false), out(b"x"));
    // Once the stream runs again, copies apply.
    assert_eq!(s.fast(&fast_copy(b"y", 51, "%1")), out(b"y"));
    assert_eq!(s.reliable(b"y", Some(51), false), Applied::Nothing);
    let st = s.stats();
    assert_eq!((st.fast_dropped, st.fast_applied, st.snapshots), (2, 1, 1));
}
