//! Every validation bound of spec §9 at its limit (accepted) and one past it
//! (rejected with the right error and host error code, §11.2).
#![allow(clippy::unwrap_used)]

mod common;

use common::Mp;
use terminal_protocol::{
    Attach, DecodeError, ErrorCode, Event, MAX_MESSAGE_SIZE, MAX_NESTING_DEPTH, Request,
};

fn attach(pane_id: &str, cols: u16, rows: u16) -> Request {
    Request::Attach(Attach {
        pane_id: pane_id.into(),
        cols,
        rows,
        reattach: false,
        compression: None,
        offsets: false,
        resume_from: None,
    })
}

/// An id of exactly `len` UTF-8 bytes mixing 1- and 2-byte chars.
fn id_of(len: usize) -> String {
    let mut s = "é".repeat(len / 2);
    if len % 2 == 1 {
        s.push('x');
    }
    assert_eq!(s.len(), len);
    s
}

fn too_long(err: DecodeError, field: &str, len: usize) {
    match &err {
        DecodeError::TooLong {
            field: f, len: l, ..
        } => {
            assert_eq!((f.as_str(), *l), (field, len), "{err}");
        }
        other => panic!("expected TooLong for {field}, got {other:?}"),
    }
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
}

#[test]
fn whole_message_size() {
    // `ping` padded with an unknown bin32 value to exactly the limit.
    let head = Mp::new().fixmap(2).s("type").s("ping").s("pad").done();
    let pad = MAX_MESSAGE_SIZE - head.len() - 5;
    let at_limit = Mp::new().raw(&head).bin32(&vec![0; pad]).done();
    assert_eq!(at_limit.len(), MAX_MESSAGE_SIZE);
    assert_eq!(Request::decode(&at_limit).unwrap(), Request::Ping);
    assert_eq!(
        Event::decode(&at_limit).unwrap_err(),
        DecodeError::UnknownType("ping".into())
    );

    let over = Mp::new().raw(&head).bin32(&vec![0; pad + 1]).done();
    let err = Request::decode(&over).unwrap_err();
    assert_eq!(
        err,
        DecodeError::MessageTooLarge {
            len: MAX_MESSAGE_SIZE + 1
        }
    );
    assert_eq!(err.code(), ErrorCode::MessageTooLarge);
    assert_eq!(
        Event::decode(&over).unwrap_err().code(),
        ErrorCode::MessageTooLarge
    );
    // Rejected by size alone: not even the map header is looked at.
    let junk = vec![0xc1; MAX_MESSAGE_SIZE + 1];
    assert_eq!(
        Request::decode(&junk).unwrap_err().code(),
        ErrorCode::MessageTooLarge
    );
}

#[test]
fn output_data_fills_the_largest_message() {
    // output.data ≤ 1 MiB can only be reached up to the message limit.
    let head = Mp::new().fixmap(2).s("type").s("output").s("data").done();
    let data = vec![7u8; MAX_MESSAGE_SIZE - head.len() - 5];
    let bytes = Mp::new().raw(&head).bin32(&data).done();
    assert_eq!(bytes.len(), MAX_MESSAGE_SIZE);
    assert_eq!(Event::decode(&bytes).unwrap(), Event::output(data));
}

#[test]
fn pane_id_and_session_lengths() {
    for len in [255, 254] {
        let id = id_of(len);
        assert_eq!(
            Request::decode(&attach(&id, 80, 24).encode()).unwrap(),
            attach(&id, 80, 24)
        );
        let kill = Request::KillSession {
            session: id.clone(),
        };
        assert_eq!(Request::decode(&kill.encode()).unwrap(), kill);
        for ev in [
            Event::Attached {
                pane_id: id.clone(),
                compression: None,
                offset: None,
                resumed: false,
            },
            Event::SessionEnded {
                session: id.clone(),
            },
            Event::PaneClosed {
                pane_id: id.clone(),
            },
        ] {
            assert_eq!(Event::decode(&ev.encode()).unwrap(), ev);
        }
    }
    let id = id_of(256);
    too_long(
        Request::decode(&attach(&id, 80, 24).encode()).unwrap_err(),
        "attach.paneId",
        256,
    );
    too_long(
        Request::decode(
            &Request::KillSession {
                session: id.clone(),
            }
            .encode(),
        )
        .unwrap_err(),
        "kill_session.session",
        256,
    );
    let attached = Event::Attached {
        pane_id: id.clone(),
        compression: None,
        offset: None,
        resumed: false,
    };
    too_long(
        Event::decode(&attached.encode()).unwrap_err(),
        "attached.paneId",
        256,
    );
    let ended = Event::SessionEnded {
        session: id.clone(),
    };
    too_long(
        Event::decode(&ended.encode()).unwrap_err(),
        "session_ended.session",
        256,
    );
    let closed = Event::PaneClosed { pane_id: id };
    too_long(
        Event::decode(&closed.encode()).unwrap_err(),
        "pane_closed.paneId",
        256,
    );
}

#[test]
fn dims_of_attach_and_resize() {
    for (cols, rows) in [(1, 1), (500, 500), (1, 500)] {
        assert!(Request::decode(&attach("%1", cols, rows).encode()).is_ok());
        let resize = Request::Resize { cols, rows };
        assert_eq!(Request::decode(&resize.encode()).unwrap(), resize);
    }
    let bad: [i64; 5] = [0, 501, -1, 65_536 + 80, i64::MAX];
    for v in bad {
        for (which, name) in [(0, "cols"), (1, "rows")] {
            let (c, r) = if which == 0 { (v, 24) } else { (80, v) };
            let a = Mp::new()
                .fixmap(4)
                .kv("type", |m| m.s("attach"))
                .kv("paneId", |m| m.s("%1"))
                .kv("cols", |m| m.int(c))
                .kv("rows", |m| m.int(r))
                .done();
            let err = Request::decode(&a).unwrap_err();
            assert_eq!(err.code(), ErrorCode::AttachFailed, "{err}");
            assert_eq!(
                err.to_string(),
                format!("attach.{name}: must be from 1 to 500, got {v}")
            );
            let rz = Mp::new()
                .fixmap(3)
                .kv("type", |m| m.s("resize"))
                .kv("cols", |m| m.int(c))
                .kv("rows", |m| m.int(r))
                .done();
            let err = Request::decode(&rz).unwrap_err();
            assert_eq!(err.code(), ErrorCode::ResizeFailed, "{err}");
            assert!(
                err.to_string().starts_with(&format!("resize.{name}: ")),
                "{err}"
            );
        }
    }
    // u64 beyond i64 is out of range too, not a panic.
    let rz = Mp::new()
        .fixmap(3)
        .kv("type", |m| m.s("resize"))
        .kv("cols", |m| m.u64(u64::MAX))
        .kv("rows", |m| m.int(24))
        .done();
    assert_eq!(
        Request::decode(&rz).unwrap_err().code(),
        ErrorCode::ResizeFailed
    );
}

#[test]
fn input_data_size() {
    let ok = Request::Input {
        data: vec![0; 16_384],
        offset: None,
    };
    assert_eq!(Request::decode(&ok.encode()).unwrap(), ok);
    let err = Request::decode(
        &Request::Input {
            data: vec![0; 16_385],
            offset: None,
        }
        .encode(),
    )
    .unwrap_err();
    assert_eq!(err, DecodeError::InputTooLarge { len: 16_385 });
    assert_eq!(err.code(), ErrorCode::InputTooLarge);
    assert_eq!(err.to_string(), "input.data: 16385 bytes, more than 16384");
}

#[test]
fn error_code_and_message_lengths() {
    // Counted in chars: multi-byte chars are one each.
    let ok = Event::Error {
        code: "ü".repeat(255),
        message: "ü".repeat(4096),
    };
    assert_eq!(Event::decode(&ok.encode()).unwrap(), ok);
    let long_code = Event::Error {
        code: "c".repeat(256),
        message: String::new(),
    };
    too_long(
        Event::decode(&long_code.encode()).unwrap_err(),
        "error.code",
        256,
    );
    let long_msg = Event::Error {
        code: "c".into(),
        message: "ü".repeat(4097),
    };
    too_long(
        Event::decode(&long_msg.encode()).unwrap_err(),
        "error.message",
        4097,
    );
}

#[test]
fn auth_response_lengths() {
    let resp = |nonce: String, mac: String| Request::AuthResponse { nonce, mac };
    for len in [1, 44, 128] {
        let r = resp("A".repeat(len), "B".repeat(len));
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
    }
    too_long(
        Request::decode(&resp("A".into(), "A".repeat(129)).encode()).unwrap_err(),
        "auth_response.mac",
        129,
    );
    too_long(
        Request::decode(&resp("A".repeat(129), "A".into()).encode()).unwrap_err(),
        "auth_response.nonce",
        129,
    );
    assert_eq!(
        Request::decode(&resp("A".into(), String::new()).encode())
            .unwrap_err()
            .to_string(),
        "auth_response.mac: must not be empty"
    );
    assert_eq!(
        Request::decode(&resp(String::new(), "A".into()).encode())
            .unwrap_err()
            .to_string(),
        "auth_response.nonce: must not be empty"
    );
    let ok = Event::AuthOk {
        mac: "A".repeat(129),
    };
    too_long(Event::decode(&ok.encode()).unwrap_err(), "auth_ok.mac", 129);
}

#[test]
fn nonce_length() {
    let ok = Event::AuthChallenge {
        nonce: "A".repeat(128),
    };
    assert_eq!(Event::decode(&ok.encode()).unwrap(), ok);
    let long = Event::AuthChallenge {
        nonce: "A".repeat(129),
    };
    too_long(
        Event::decode(&long.encode()).unwrap_err(),
        "auth_challenge.nonce",
        129,
    );
}

#[test]
fn pong_latency_is_non_negative() {
    for latency in [0, 1, u64::MAX] {
        let ev = Event::Pong { latency };
        assert_eq!(Event::decode(&ev.encode()).unwrap(), ev);
    }
    let neg = Mp::new()
        .fixmap(2)
        .kv("type", |m| m.s("pong"))
        .kv("latency", |m| m.int(-1))
        .done();
    let err = Event::decode(&neg).unwrap_err();
    assert!(
        matches!(err, DecodeError::OutOfRange { value: -1, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("pong.latency: -1 is out of range")
    );
}

#[test]
fn sessions_shapes() {
    let as_map = Mp::new()
        .fixmap(2)
        .kv("type", |m| m.s("sessions"))
        .kv("sessions", |m| m.fixmap(0))
        .done();
    assert_eq!(
        Event::decode(&as_map).unwrap_err().to_string(),
        "sessions.sessions: expected an array"
    );
    let nil = Mp::new()
        .fixmap(2)
        .kv("type", |m| m.s("sessions"))
        .kv("sessions", Mp::nil)
        .done();
    assert!(Event::decode(&nil).is_err());
    let missing = Mp::new().fixmap(1).kv("type", |m| m.s("sessions")).done();
    assert_eq!(
        Event::decode(&missing).unwrap_err().to_string(),
        "sessions.sessions: missing"
    );
    let empty = Mp::new()
        .fixmap(2)
        .kv("type", |m| m.s("sessions"))
        .kv("sessions", |m| m.fixarray(0))
        .done();
    assert_eq!(
        Event::decode(&empty).unwrap(),
        Event::Sessions {
            sessions: vec![],
            agent_version: None,
            update_available: None
        }
    );
    let created = Mp::new()
        .fixmap(2)
        .kv("type", |m| m.s("session_created"))
        .kv("session", |m| m.fixarray(0))
        .done();
    assert_eq!(
        Event::decode(&created).unwrap_err().to_string(),
        "session_created.session: expected a map"
    );
}

/// `depth` arrays nested inside each other under an unknown key of `ping`.
fn nested(depth: usize) -> Vec<u8> {
    let mut m = Mp::new().fixmap(2).kv("type", |m| m.s("ping")).s("x");
    for _ in 0..depth {
        m = m.fixarray(1);
    }
    m.int(0).done()
}

#[test]
fn nesting_depth() {
    // The message map is level 1, so MAX_NESTING_DEPTH - 1 arrays fit inside it.
    assert_eq!(
        Request::decode(&nested(MAX_NESTING_DEPTH - 1)).unwrap(),
        Request::Ping
    );
    let err = Request::decode(&nested(MAX_NESTING_DEPTH)).unwrap_err();
    assert!(err.to_string().ends_with("nested too deeply"), "{err}");
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
    // Deep nesting far past the bound fails the same way, without recursion blowup.
    assert!(Request::decode(&nested(100_000)).is_err());
}
