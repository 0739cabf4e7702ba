//! What peers may send besides our own encoding (spec §1, §11.4): any integer,
//! str, bin, map and array width, keys in any order, unknown keys of any type
//! at every level; and the malformed inputs that must still be rejected.
#![allow(clippy::unwrap_used)]

mod common;

use common::Mp;
use terminal_protocol::{Attach, DecodeError, ErrorCode, Event, Request};

fn v1() -> Request {
    Request::Attach(Attach {
        pane_id: "%3".into(),
        cols: 120,
        rows: 40,
        reattach: false,
        compression: Some("deflate".into()),
        offsets: false,
        resume_from: None,
    })
}

#[test]
fn integers_of_every_width() {
    type Width = fn(Mp, u16) -> Mp;
    let widths: [Width; 8] = [
        |m, v| m.int(i64::from(v)),
        |m, v| m.u8(v as u8),
        |m, v| m.u16(v),
        |m, v| m.u32(u32::from(v)),
        |m, v| m.u64(u64::from(v)),
        |m, v| m.i16(v as i16),
        |m, v| m.i32(i32::from(v)),
        |m, v| m.i64(i64::from(v)),
    ];
    for w in widths {
        let bytes = Mp::new()
            .fixmap(5)
            .kv("type", |m| m.s("attach"))
            .kv("paneId", |m| m.s("%3"))
            .kv("cols", |m| w(m, 120))
            .kv("rows", |m| w(m, 40))
            .kv("compression", |m| m.s("deflate"))
            .done();
        assert_eq!(Request::decode(&bytes).unwrap(), v1());
    }
    let i8_rows = Mp::new()
        .fixmap(3)
        .kv("type", |m| m.s("resize"))
        .kv("cols", |m| m.i8(100))
        .kv("rows", |m| m.i8(40))
        .done();
    assert_eq!(
        Request::decode(&i8_rows).unwrap(),
        Request::Resize {
            cols: 100,
            rows: 40
        }
    );
    let pong = Mp::new()
        .fixmap(2)
        .kv("type", |m| m.s("pong"))
        .kv("latency", |m| m.i64(7))
        .done();
    assert_eq!(Event::decode(&pong).unwrap(), Event::Pong { latency: 7 });
}

#[test]
fn strings_bins_and_headers_of_every_width() {
    type Str = fn(Mp, &str) -> Mp;
    let strs: [Str; 4] = [Mp::s, Mp::str8, Mp::str16, Mp::str32];
    for s in strs {
        let bytes = Mp::new()
            .map32(5)
            .kv("type", |m| s(m, "attach"))
            .kv("paneId", |m| s(m, "%3"))
            .kv("cols", |m| m.u64(120))
            .kv("rows", |m| m.int(40))
            .kv("compression", |m| s(m, "deflate"))
            .done();
        assert_eq!(Request::decode(&bytes).unwrap(), v1());
    }
    type Bin = fn(Mp, &[u8]) -> Mp;
    let bins: [Bin; 3] = [Mp::bin8, Mp::bin16, Mp::bin32];
    for b in bins {
        let bytes = Mp::new()
            .map16(2)
            .kv("type", |m| m.s("input"))
            .kv("data", |m| b(m, b"ls\r"))
            .done();
        assert_eq!(
            Request::decode(&bytes).unwrap(),
            Request::Input {
                data: b"ls\r".to_vec(),
                offset: None
            }
        );
    }
    for arr in [|m: Mp| m.array16(0), |m: Mp| m.array32(0)] {
        let bytes = Mp::new()
            .fixmap(2)
            .kv("type", |m| m.s("sessions"))
            .kv("sessions", arr)
            .done();
        assert!(Event::decode(&bytes).is_ok());
    }
}

#[test]
fn keys_in_any_order() {
    let bytes = Mp::new()
        .fixmap(5)
        .kv("compression", |m| m.s("deflate"))
        .kv("rows", |m| m.int(40))
        .kv("cols", |m| m.int(120))
        .kv("paneId", |m| m.s("%3"))
        .kv("type", |m| m.s("attach"))
        .done();
    assert_eq!(Request::decode(&bytes).unwrap(), v1());
}

/// One value of every msgpack family, to sit under unknown keys.
fn junk(m: Mp) -> Mp {
    m.fixarray(8)
        .nil()
        .f64(1.5)
        .f32(2.5)
        .bin8(b"\x00\xff")
        .raw(&[0xd4, 0x01, 0x02]) // fixext1
        .raw(&[0xc7, 0x02, 0x05, 0xaa, 0xbb]) // ext8
        .fixmap(1)
        .s("deep")
        .fixarray(1)
        .fixmap(1)
        .int(3) // a non-str key
        .s("v")
        .str8("x")
}

#[test]
fn unknown_keys_of_every_type_are_skipped() {
    let bytes = Mp::new()
        .fixmap(8)
        .kv("zzz", junk)
        .kv("type", |m| m.s("attach"))
        .kv("paneId", |m| m.s("%3"))
        .raw(&[0x07, 0xc3]) // integer key 7 → true
        .kv("cols", |m| m.int(120))
        .kv("rows", |m| m.int(40))
        .kv("Cols", |m| m.f64(9.0)) // keys are case-sensitive
        .kv("compression", |m| m.s("deflate"))
        .done();
    assert_eq!(Request::decode(&bytes).unwrap(), v1());
}

#[test]
fn unknown_keys_inside_the_tree_are_skipped() {
    let pane = |m: Mp| {
        m.fixmap(8)
            .kv("id", |m| m.s("%0"))
            .kv("index", |m| m.int(0))
            .kv("extra", junk)
            .kv("active", Mp::t)
            .kv("size", |m| {
                m.fixmap(3)
                    .kv("cols", |m| m.u64(80))
                    .kv("px", junk)
                    .kv("rows", |m| m.i32(24))
            })
            .kv("title", |m| m.s("host"))
            .kv("currentCommand", |m| m.s("zsh"))
            .kv("pid", |m| m.int(1234))
    };
    let window = |m: Mp| {
        m.fixmap(6)
            .kv("panes", |m| pane(m.fixarray(1)))
            .kv("layout", junk)
            .kv("id", |m| m.s("@0"))
            .kv("name", |m| m.s("zsh"))
            .kv("index", |m| m.int(0))
            .kv("active", Mp::t)
    };
    let session = |m: Mp| {
        m.fixmap(7)
            .kv("windows", |m| window(m.fixarray(1)))
            .kv("id", |m| m.s("$0"))
            .kv("group", junk)
            .kv("name", |m| m.s("work"))
            .kv("createdAt", |m| m.i64(1_700_000_000))
            .kv("lastActivityAt", |m| m.u64(1_700_000_100))
            .kv("attached", Mp::f)
    };
    let bytes = Mp::new()
        .fixmap(4)
        .kv("agentVersion", |m| m.s("0.1.0"))
        .kv("sessions", |m| session(m.fixarray(1)))
        .kv("type", |m| m.s("sessions"))
        .kv("hint", junk)
        .done();
    let Event::Sessions {
        sessions,
        agent_version,
        update_available,
    } = Event::decode(&bytes).unwrap()
    else {
        panic!("not sessions");
    };
    assert_eq!(agent_version.as_deref(), Some("0.1.0"));
    assert_eq!(update_available, None);
    let s = &sessions[0];
    assert_eq!(
        (s.id.as_str(), s.created_at, s.attached),
        ("$0", 1_700_000_000, false)
    );
    let p = &s.windows[0].panes[0];
    assert_eq!(
        (p.size.cols, p.size.rows, p.current_command.as_str()),
        (80, 24, "zsh")
    );
}

#[test]
fn optional_fields_absent_or_empty() {
    let bare = Mp::new()
        .fixmap(4)
        .kv("type", |m| m.s("attach"))
        .kv("paneId", |m| m.s("%3"))
        .kv("cols", |m| m.int(1))
        .kv("rows", |m| m.int(1))
        .done();
    let Request::Attach(a) = Request::decode(&bare).unwrap() else {
        panic!()
    };
    assert!(!a.reattach && a.compression.is_none());
    let explicit = Mp::new()
        .fixmap(6)
        .kv("type", |m| m.s("attach"))
        .kv("paneId", |m| m.s("%3"))
        .kv("cols", |m| m.int(1))
        .kv("rows", |m| m.int(1))
        .kv("reattach", Mp::f)
        .kv("compression", |m| m.s(""))
        .done();
    assert_eq!(
        Request::decode(&explicit).unwrap(),
        Request::decode(&bare).unwrap()
    );
    // The encoder omits empty optional strings too.
    let ev = Event::Attached {
        pane_id: "%3".into(),
        compression: Some(String::new()),
        offset: None,
        resumed: false,
    };
    assert_eq!(
        Event::decode(&ev.encode()).unwrap(),
        Event::Attached {
            pane_id: "%3".into(),
            compression: None,
            offset: None,
            resumed: false
        }
    );
}

fn reject(bytes: &[u8], message: &str) {
    let err = Request::decode(bytes).unwrap_err();
    assert_eq!(err.to_string(), message);
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
}

#[test]
fn wrong_types_are_named() {
    let attach = |cols: fn(Mp) -> Mp| {
        Mp::new()
            .fixmap(4)
            .kv("type", |m| m.s("attach"))
            .kv("paneId", |m| m.s("%3"))
            .kv("cols", cols)
            .kv("rows", |m| m.int(40))
            .done()
    };
    reject(
        &attach(|m| m.f64(120.0)),
        "attach.cols: expected an integer",
    );
    reject(
        &attach(|m| m.f32(120.0)),
        "attach.cols: expected an integer",
    );
    reject(&attach(|m| m.s("120")), "attach.cols: expected an integer");
    reject(&attach(Mp::nil), "attach.cols: expected an integer");
    reject(&attach(Mp::t), "attach.cols: expected an integer");
    let str_data = Mp::new()
        .fixmap(2)
        .kv("type", |m| m.s("input"))
        .kv("data", |m| m.s("ls"))
        .done();
    reject(&str_data, "input.data: expected bytes (msgpack bin)");
    let bin_pane = Mp::new()
        .fixmap(4)
        .kv("type", |m| m.s("attach"))
        .kv("paneId", |m| m.bin8(b"%3"))
        .kv("cols", |m| m.int(1))
        .kv("rows", |m| m.int(1))
        .done();
    reject(&bin_pane, "attach.paneId: expected a string");
    let int_bool = Mp::new()
        .fixmap(5)
        .kv("type", |m| m.s("attach"))
        .kv("paneId", |m| m.s("%3"))
        .kv("cols", |m| m.int(1))
        .kv("rows", |m| m.int(1))
        .kv("reattach", |m| m.int(1))
        .done();
    reject(&int_bool, "attach.reattach: expected a boolean");
    let missing = Mp::new()
        .fixmap(3)
        .kv("type", |m| m.s("attach"))
        .kv("paneId", |m| m.s("%3"))
        .kv("rows", |m| m.int(1))
        .done();
    reject(&missing, "attach.cols: missing");
    let bad_utf8 = Mp::new()
        .fixmap(2)
        .kv("type", |m| m.s("kill_session"))
        .kv("session", |m| m.raw(&[0xa2, 0xff, 0xfe]))
        .done();
    reject(&bad_utf8, "kill_session.session: invalid UTF-8");
}

#[test]
fn tree_errors_carry_the_path() {
    let bytes = Mp::new()
        .fixmap(2)
        .kv("type", |m| m.s("sessions"))
        .kv("sessions", |m| {
            m.fixarray(1)
                .fixmap(6)
                .kv("id", |m| m.s("$0"))
                .kv("name", |m| m.s("w"))
                .kv("createdAt", |m| m.f64(1.0))
                .kv("windows", |m| m.fixarray(0))
                .kv("lastActivityAt", |m| m.int(0))
                .kv("attached", Mp::f)
        })
        .done();
    assert_eq!(
        Event::decode(&bytes).unwrap_err().to_string(),
        "sessions.sessions[0].createdAt: expected an integer"
    );
}

#[test]
fn envelope_errors() {
    reject(&[], "message: message ends early");
    reject(&Mp::new().fixarray(0).done(), "message: expected a map");
    reject(&Mp::new().s("ping").done(), "message: expected a map");
    reject(&Mp::new().fixmap(0).done(), "type: missing");
    reject(
        &Mp::new().fixmap(1).kv("type", |m| m.s("")).done(),
        "type: must not be empty",
    );
    reject(
        &Mp::new().fixmap(1).kv("type", |m| m.int(1)).done(),
        "type: expected a string",
    );
    reject(
        &Mp::new()
            .fixmap(2)
            .kv("type", |m| m.s("ping"))
            .kv("type", |m| m.s("ping"))
            .done(),
        "type: duplicate key",
    );
    reject(
        &Mp::new()
            .fixmap(1)
            .kv("type", |m| m.s("ping"))
            .raw(&[0xc0])
            .done(),
        "message: trailing bytes after the map",
    );
    // A claimed length far beyond the input is an error, not an allocation.
    reject(
        &Mp::new().map32(u32::MAX).done(),
        "message: message ends early",
    );
    reject(
        &Mp::new()
            .fixmap(2)
            .kv("type", |m| m.s("ping"))
            .s("x")
            .raw(&[0xc6, 0xff, 0xff, 0xff, 0xff])
            .done(),
        "x: message ends early",
    );
    reject(
        &Mp::new()
            .fixmap(2)
            .kv("type", |m| m.s("ping"))
            .s("x")
            .raw(&[0xc1])
            .done(),
        "x: invalid msgpack byte 0xc1",
    );
    let dup = Mp::new()
        .fixmap(3)
        .kv("type", |m| m.s("resize"))
        .kv("cols", |m| m.int(10))
        .kv("cols", |m| m.int(20))
        .done();
    reject(&dup, "resize.cols: duplicate key");
}

#[test]
fn unknown_types_and_direction() {
    let t = |ty: &str| Mp::new().fixmap(1).kv("type", |m| m.s(ty)).done();
    assert_eq!(
        Request::decode(&t("teleport")).unwrap_err(),
        DecodeError::UnknownType("teleport".into())
    );
    // Events are unknown as requests and the other way round (§1 direction gate).
    for ev in ["pong", "auth_ok", "detached", "auth_challenge"] {
        assert!(
            Request::decode(&t(ev)).unwrap_err().is_unknown_type(),
            "{ev}"
        );
    }
    for req in ["ping", "detach", "list_sessions", "auth_response"] {
        assert!(
            Event::decode(&t(req)).unwrap_err().is_unknown_type(),
            "{req}"
        );
    }
    // Unknown type is decided before its fields are looked at.
    let odd = Mp::new()
        .fixmap(2)
        .kv("type", |m| m.s("future"))
        .kv("cols", |m| m.f64(1.0))
        .done();
    assert!(Request::decode(&odd).unwrap_err().is_unknown_type());
}
