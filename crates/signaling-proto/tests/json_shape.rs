//! JSON shape of `SignalingMessage` and the HTTP bodies: omitted empty
//! fields, `sdpMLineIndex` 0 kept, unknown keys ignored, size limit.
#![allow(clippy::unwrap_used)]

use signaling_proto::consts::MAX_WS_MESSAGE;
use signaling_proto::*;

#[test]
fn empty_fields_are_omitted() {
    assert_eq!(
        SignalingMessage::new("presence").to_json(),
        r#"{"type":"presence"}"#
    );
    let m = SignalingMessage {
        token: "t".into(),
        ..SignalingMessage::new("auth")
    };
    assert_eq!(m.to_json(), r#"{"type":"auth","token":"t"}"#);
    assert_eq!(SignalingMessage::default().to_json(), "{}");
}

#[test]
fn all_host_fields_use_seed_names_in_order() {
    let m = SignalingMessage {
        kind: "k".into(),
        token: "a".into(),
        name: "b".into(),
        status: "c".into(),
        error: "d".into(),
        reason: "e".into(),
        target_device_id: "f".into(),
        device_id: "g".into(),
        sdp: "h".into(),
        candidate: "i".into(),
        sdp_mid: "j".into(),
        sdp_m_line_index: Some(3),
        ..Default::default()
    };
    assert_eq!(
        m.to_json(),
        r#"{"type":"k","token":"a","name":"b","status":"c","error":"d","reason":"e","targetDeviceId":"f","deviceId":"g","sdp":"h","candidate":"i","sdpMid":"j","sdpMLineIndex":3}"#
    );
}

#[test]
fn server_extras_use_camel_case() {
    let m = SignalingMessage {
        mobile_device_id: "a".into(),
        mobile_x25519_public_key: "b".into(),
        mobile_name: "c".into(),
        host_device_id: "d".into(),
        host_name: "e".into(),
        ..SignalingMessage::new("x")
    };
    assert_eq!(
        m.to_json(),
        r#"{"type":"x","mobileDeviceId":"a","mobileX25519PublicKey":"b","mobileName":"c","hostDeviceId":"d","hostName":"e"}"#
    );
}

#[test]
fn sdp_m_line_index_zero_is_kept() {
    let m = SignalingMessage {
        sdp_m_line_index: Some(0),
        ..SignalingMessage::new("ice_candidate")
    };
    assert_eq!(m.to_json(), r#"{"type":"ice_candidate","sdpMLineIndex":0}"#);
    assert_eq!(SignalingMessage::parse(&m.to_json()).unwrap(), m);
    let none = SignalingMessage::parse(r#"{"type":"ice_candidate"}"#).unwrap();
    assert_eq!(none.sdp_m_line_index, None);
}

#[test]
fn unknown_keys_and_nulls_are_ignored() {
    let m = SignalingMessage::parse(
        r#"{"type":"presence","requestId":"x","nested":{"a":[1]},"sdp":null}"#,
    )
    .unwrap();
    assert_eq!(m, SignalingMessage::new("presence"));
}

#[test]
fn malformed_json_is_an_error() {
    for bad in [
        "",
        "[]",
        "nul",
        r#"{"type":5}"#,
        r#"{"sdpMLineIndex":-1}"#,
        r#"{"sdpMLineIndex":70000}"#,
        "{",
    ] {
        assert!(
            matches!(
                SignalingMessage::parse(bad),
                Err(ProtoError::InvalidJson(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn size_limit_at_and_above() {
    let pad = |n: usize| format!(r#"{{"type":"x","sdp":"{}"}}"#, "a".repeat(n));
    let overhead = pad(0).len();
    assert!(SignalingMessage::parse(&pad(MAX_WS_MESSAGE - overhead)).is_ok());
    assert!(matches!(
        SignalingMessage::parse(&pad(MAX_WS_MESSAGE - overhead + 1)),
        Err(ProtoError::MessageTooLarge { .. })
    ));
    // The limit counts characters, not bytes.
    let wide = format!(
        r#"{{"type":"x","sdp":"{}"}}"#,
        "é".repeat(MAX_WS_MESSAGE - overhead)
    );
    assert!(SignalingMessage::parse(&wide).is_ok());
}

#[test]
fn signal_views() {
    let cases = [
        (
            r#"{"type":"auth","token":"t","name":"n"}"#,
            Signal::Auth {
                token: "t".into(),
                name: "n".into(),
            },
        ),
        (r#"{"type":"auth","status":"ok"}"#, Signal::AuthOk),
        (r#"{"type":"presence"}"#, Signal::Presence),
        (r#"{"type":"presence_ack"}"#, Signal::PresenceAck),
        (
            r#"{"type":"connect_request","targetDeviceId":"h"}"#,
            Signal::ConnectRequest {
                target_device_id: "h".into(),
            },
        ),
        (
            r#"{"type":"ice_candidate","targetDeviceId":"h","candidate":"candidate:1","sdpMid":"0","sdpMLineIndex":0}"#,
            Signal::IceCandidate {
                target_device_id: "h".into(),
                candidate: "candidate:1".into(),
                sdp_mid: "0".into(),
                sdp_m_line_index: Some(0),
            },
        ),
        (
            r#"{"type":"error","error":"Not authenticated"}"#,
            Signal::Error {
                error: "Not authenticated".into(),
            },
        ),
    ];
    for (json, signal) in cases {
        let m = SignalingMessage::parse(json).unwrap();
        assert_eq!(Signal::from(m.clone()), signal, "{json}");
        assert_eq!(SignalingMessage::from(signal).to_json(), json);
    }
    // A known kind with a field it does not define stays whole.
    let odd = SignalingMessage::parse(r#"{"type":"presence","sdp":"x"}"#).unwrap();
    assert_eq!(Signal::from(odd.clone()), Signal::Other(odd));
}

#[test]
fn http_bodies() {
    let req = PairInitiateRequest {
        device_id: "d".into(),
        ed25519_public_key: "e".into(),
        x25519_public_key: "x".into(),
        name: None,
        nonce: "n".into(),
        signature: "s".into(),
    };
    assert_eq!(
        serde_json::to_string(&req).unwrap(),
        r#"{"deviceId":"d","ed25519PublicKey":"e","x25519PublicKey":"x","nonce":"n","signature":"s"}"#
    );
    let resp = PairCompleteResponse {
        host_x25519_public_key: "k".into(),
        host_device_id: "h".into(),
        host_name: String::new(),
    };
    assert_eq!(
        serde_json::to_string(&resp).unwrap(),
        r#"{"hostX25519PublicKey":"k","hostDeviceId":"h","hostName":""}"#
    );
    let turn: TurnCredentials =
        serde_json::from_str(r#"{"urls":["stun:a:3478"],"username":"u","credential":"c","ttl":1}"#)
            .unwrap();
    assert_eq!(turn.urls, ["stun:a:3478"]);
    assert!(serde_json::from_str::<TokenRequest>(r#"{"deviceId":"d","nonce":"n"}"#).is_err());
    assert_eq!(
        serde_json::to_string(&RemovedResponse { removed: true }).unwrap(),
        r#"{"removed":true}"#
    );
}
