//! The normative vectors of spec terminal-protocol.md §10–§12 (V1–V11, with
//! V11 replacing V4's response and V9): each is encoded byte for byte and
//! decoded back to the same value.
#![allow(clippy::unwrap_used)]

use terminal_protocol::{
    Attach, AuthTranscript, Decompressor, ErrorCode, Event, Pane, PaneSize, Request, Session,
    Window,
};

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
fn v1_attach_with_compression() {
    request_both_ways(
        Request::Attach(Attach {
            pane_id: "%3".into(),
            cols: 120,
            rows: 40,
            reattach: false,
            compression: Some("deflate".into()),
            offsets: false,
            resume_from: None,
        }),
        "85a474797065a6617474616368a670616e654964a22533a4636f6c7378a4726f777328
         ab636f6d7072657373696f6ea76465666c617465",
    );
}

#[test]
fn v2_attach_reattach() {
    request_both_ways(
        Request::Attach(Attach {
            pane_id: "%3".into(),
            cols: 120,
            rows: 40,
            reattach: true,
            compression: None,
            offsets: false,
            resume_from: None,
        }),
        "85a474797065a6617474616368a670616e654964a22533a4636f6c7378a4726f777328
         a87265617474616368c3",
    );
}

#[test]
fn v3_input() {
    request_both_ways(
        Request::Input {
            data: b"ls\r".to_vec(),
            offset: None,
        },
        "82a474797065a5696e707574a464617461c4036c730d",
    );
}

#[test]
fn v4_challenge() {
    let nonce = terminal_protocol::nonce_b64(&std::array::from_fn(|i| i as u8));
    assert_eq!(nonce, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    event_both_ways(
        Event::AuthChallenge { nonce },
        "82a474797065ae617574685f6368616c6c656e6765a56e6f6e6365d92c
         41414543417751464267634943516f4c4441304f4478415245684d554652595847426b61477877644868383d",
    );
}

/// V11 (§12.1): channel authentication v2, the MACs and the byte-exact
/// `auth_challenge`, `auth_response` and `auth_ok`.
#[test]
fn v11_channel_authentication_v2() {
    let bytes = |from: u8| -> [u8; 32] { std::array::from_fn(|i| from + i as u8) };
    let k: [u8; 32] = h("c568e156200eee0049bddd189ddce76e5d120eb3d6957cb6fc79c08902582ed9")
        .try_into()
        .unwrap();
    let t = AuthTranscript {
        host_nonce: bytes(0x00),
        mobile_nonce: bytes(0x20),
        host_fingerprint: bytes(0x40),
        mobile_fingerprint: bytes(0x60),
    };
    let mobile_mac = t.mobile_mac_b64(&k);
    let host_mac = t.host_mac_b64(&k);
    assert_eq!(mobile_mac, "KllFA69yak0U4BZRspjqm6Ibsikr7eqL8NPlHDKMq8Y=");
    assert_eq!(host_mac, "aC4Pivxg0FVFd7hIC/gOmbb9h4EtxlS0Qzb0JhREGVY=");
    event_both_ways(
        Event::AuthChallenge {
            nonce: terminal_protocol::nonce_b64(&t.host_nonce),
        },
        "82a474797065ae617574685f6368616c6c656e6765a56e6f6e6365d92c
         41414543417751464267634943516f4c4441304f4478415245684d554652595847426b61477877644868383d",
    );
    request_both_ways(
        Request::AuthResponse {
            nonce: terminal_protocol::nonce_b64(&t.mobile_nonce),
            mac: mobile_mac,
        },
        "83a474797065ad617574685f726573706f6e7365a56e6f6e6365d92c
         494345694979516c4a69636f4b536f724c4330754c7a41784d6a4d304e5459334f446b364f7a7739506a383d
         a36d6163d92c
         4b6c6c4641363979616b305534425a5273706a716d36496273696b723765714c384e506c48444b4d7138593d",
    );
    event_both_ways(
        Event::AuthOk { mac: host_mac },
        "82a474797065a7617574685f6f6ba36d6163d92c
         61433450697678673046564664376849432f674f6d62623968344574786c5330517a62304a6852454756593d",
    );
}

#[test]
fn v5_error() {
    event_both_ways(
        Event::error(ErrorCode::NotAttached, "no pane attached"),
        "83a474797065a56572726f72a4636f6465ac6e6f745f6174746163686564a76d657373616765
         b06e6f2070616e65206174746163686564",
    );
}

#[test]
fn v6_ping_pong() {
    request_both_ways(Request::Ping, "81a474797065a470696e67");
    event_both_ways(
        Event::Pong { latency: 0 },
        "82a474797065a4706f6e67a76c6174656e637900",
    );
}

/// The session of V7.
fn v7_session() -> Session {
    Session {
        id: "$0".into(),
        name: "work".into(),
        created_at: 1_700_000_000,
        windows: vec![Window {
            id: "@0".into(),
            name: "zsh".into(),
            index: 0,
            active: true,
            panes: vec![Pane {
                id: "%0".into(),
                index: 0,
                active: true,
                size: PaneSize { cols: 80, rows: 24 },
                title: "host".into(),
                current_command: "zsh".into(),
            }],
        }],
        last_activity_at: 1_700_000_100,
        attached: false,
    }
}

#[test]
fn v7_sessions_tree() {
    event_both_ways(
        Event::Sessions {
            sessions: vec![v7_session()],
            agent_version: Some("0.1.0".into()),
            update_available: None,
        },
        "83a474797065a873657373696f6e73a873657373696f6e739186a26964a22430a46e616d65
         a4776f726ba9637265617465644174ce6553f100a777696e646f77739185a26964a24030
         a46e616d65a37a7368a5696e64657800a6616374697665c3a570616e65739186a26964a22530
         a5696e64657800a6616374697665c3a473697a6582a4636f6c7350a4726f777318a57469746c65
         a4686f7374ae63757272656e74436f6d6d616e64a37a7368ae6c61737441637469766974794174
         ce6553f164a86174746163686564c2ac6167656e7456657273696f6ea5302e312e30",
    );
}

#[test]
fn v7_prior_variant_int64_timestamps_decode() {
    // The old host wrote createdAt / lastActivityAt as 9-byte int64 (0xd3).
    let shortest = h("ce6553f100");
    let int64 = h("d3000000006553f100");
    let mut bytes = Event::Sessions {
        sessions: vec![v7_session()],
        agent_version: None,
        update_available: None,
    }
    .encode();
    let at = bytes.windows(5).position(|w| w == shortest).unwrap();
    bytes.splice(at..at + 5, int64);
    let Event::Sessions { sessions, .. } = Event::decode(&bytes).unwrap() else {
        panic!("not sessions");
    };
    assert_eq!(sessions, vec![v7_session()]);
}

#[test]
fn v8_attached_and_two_deflate_frames() {
    event_both_ways(
        Event::Attached {
            pane_id: "%3".into(),
            compression: Some("deflate".into()),
            offset: None,
            resumed: false,
        },
        "83a474797065a86174746163686564a670616e654964a22533ab636f6d7072657373696f6e
         a76465666c617465",
    );
    let frame1 = h("ca48cdc9c9e7e502000000ffff");
    let frame2 = h("ca805000000000ffff");
    event_both_ways(
        Event::Output {
            data: frame1.clone(),
            offset: None,
            snapshot: false,
            pane_id: None,
        },
        "82a474797065a66f7574707574a464617461c40dca48cdc9c9e7e502000000ffff",
    );
    let mut d = Decompressor::new();
    assert_eq!(d.decompress(&frame1).unwrap(), b"hello\r\n");
    assert_eq!(d.decompress(&frame2).unwrap(), b"hello\r\n");
    // Frame 2 alone is meaningless: it refers back into frame 1's window.
    let alone = Decompressor::new().decompress(&frame2);
    assert!(!matches!(alone.as_deref(), Ok(b"hello\r\n")), "{alone:?}");
}

#[test]
fn v8_our_deflate_stream_inflates_the_same() {
    let mut c = terminal_protocol::Compressor::new();
    let mut d = Decompressor::new();
    let f1 = c.compress(b"hello\r\n").unwrap();
    let f2 = c.compress(b"hello\r\n").unwrap();
    assert!(f1.ends_with(&[0, 0, 0xff, 0xff]) && f2.ends_with(&[0, 0, 0xff, 0xff]));
    assert!(
        f2.len() < f1.len(),
        "the second frame must reuse the window"
    );
    assert_eq!(d.decompress(&f1).unwrap(), b"hello\r\n");
    assert_eq!(d.decompress(&f2).unwrap(), b"hello\r\n");
}

#[test]
fn v1_auth_ok_without_mac_is_refused() {
    // V9's field-less `auth_ok` is superseded by V11: a phone must not accept it.
    assert!(Event::decode(&h("81a474797065a7617574685f6f6b")).is_err());
}

#[test]
fn v10_invalid_request_error() {
    let ev_hex = "83a474797065a56572726f72a4636f6465af696e76616c69645f72657175657374a76d657373616765d9206174746163682e636f6c733a20657870656374656420616e20696e7465676572";
    // An attach whose cols is a float (f64 120.0) yields exactly V10's message.
    let mut attach = h("85a474797065a6617474616368a670616e654964a22533a4636f6c73");
    attach.extend(h("cb405e000000000000"));
    attach.extend(h("a4726f777328a87265617474616368c3"));
    let err = Request::decode(&attach).unwrap_err();
    assert_eq!(err.to_string(), "attach.cols: expected an integer");
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
    event_both_ways(Event::error(err.code(), err.to_string()), ev_hex);
}
