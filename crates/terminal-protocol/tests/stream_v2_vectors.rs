//! The byte vectors of docs/stream-v2.md §7 (S1–S6): each is encoded byte for
//! byte and decoded back to the same value, so the document, the host, the
//! Rust phone and the web client agree on the wire.
#![allow(clippy::unwrap_used)]

use terminal_protocol::{Attach, Event, MAX_STREAM_OFFSET, Request};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

fn request_both_ways(req: Request, hex: &str) {
    let bytes = h(hex);
    assert_eq!(hex::encode(req.encode()), hex::encode(&bytes), "{req:?}");
    assert_eq!(Request::decode(&bytes).unwrap(), req);
}

fn event_both_ways(ev: Event, hex: &str) {
    let bytes = h(hex);
    assert_eq!(hex::encode(ev.encode()), hex::encode(&bytes), "{ev:?}");
    assert_eq!(Event::decode(&bytes).unwrap(), ev);
}

#[test]
fn s1_attach_with_offsets_and_resume() {
    request_both_ways(
        Request::Attach(Attach {
            pane_id: "%3".into(),
            cols: 120,
            rows: 40,
            reattach: true,
            compression: Some("deflate".into()),
            offsets: true,
            resume_from: Some(70_000),
        }),
        "88a474797065a6617474616368a670616e654964a22533a4636f6c7378a4726f777328
         a87265617474616368c3ab636f6d7072657373696f6ea76465666c617465
         a76f666673657473c3aa726573756d6546726f6dce00011170",
    );
}

#[test]
fn s2_input_with_offset() {
    request_both_ways(
        Request::Input {
            data: b"l".to_vec(),
            offset: Some(42),
        },
        "83a474797065a5696e707574a464617461c4016ca66f66667365742a",
    );
}

#[test]
fn s3_attached_resumed() {
    event_both_ways(
        Event::Attached {
            pane_id: "%3".into(),
            compression: Some("deflate".into()),
            offset: Some(70_000),
            resumed: true,
        },
        "85a474797065a86174746163686564a670616e654964a22533
         ab636f6d7072657373696f6ea76465666c617465a66f6666736574ce00011170
         a7726573756d6564c3",
    );
}

#[test]
fn s4_output_with_offset() {
    event_both_ways(
        Event::Output {
            data: b"l".to_vec(),
            offset: Some(70_000),
            snapshot: false,
            pane_id: None,
        },
        "83a474797065a66f7574707574a464617461c4016ca66f6666736574ce00011170",
    );
}

#[test]
fn s5_fast_copy_names_its_pane() {
    event_both_ways(
        Event::Output {
            data: b"l".to_vec(),
            offset: Some(70_000),
            snapshot: false,
            pane_id: Some("%3".into()),
        },
        "84a474797065a66f7574707574a464617461c4016ca66f6666736574ce00011170
         a670616e654964a22533",
    );
}

#[test]
fn s6_snapshot_says_where_the_stream_continues() {
    event_both_ways(
        Event::Output {
            data: b"\x1b[H\x1b[2J$ ".to_vec(),
            offset: Some(1_200_000),
            snapshot: true,
            pane_id: None,
        },
        "84a474797065a66f7574707574a464617461c4091b5b481b5b324a2420
         a66f6666736574ce00124f80a8736e617073686f74c3",
    );
}

#[test]
fn s7_offsets_past_two_to_the_53_are_refused() {
    let max = Request::Input {
        data: b"l".to_vec(),
        offset: Some(MAX_STREAM_OFFSET),
    };
    assert_eq!(Request::decode(&max.encode()).unwrap(), max);
    // `input{data:"l", offset: 2^53}`.
    let over = h("83a474797065a5696e707574a464617461c4016ca66f6666736574cf0020000000000000");
    let err = Request::decode(&over).unwrap_err();
    assert_eq!(err.code(), terminal_protocol::ErrorCode::InvalidRequest);
    assert!(err.to_string().contains("input.offset"), "{err}");
}

#[test]
fn a_phone_that_does_not_ask_sees_todays_bytes() {
    // V3 and V8's `attached` are unchanged by stream v2.
    assert_eq!(
        hex::encode(Request::input(b"ls\r".to_vec()).encode()),
        "82a474797065a5696e707574a464617461c4036c730d"
    );
    assert_eq!(
        Event::attached("%3", Some("deflate".into())).encode(),
        h("83a474797065a86174746163686564a670616e654964a22533
           ab636f6d7072657373696f6ea76465666c617465")
    );
}
