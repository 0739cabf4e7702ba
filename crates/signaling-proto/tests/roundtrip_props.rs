//! Property tests: SignalingMessage ↔ JSON ↔ Signal round trips and
//! never-panicking parsers on arbitrary input.
#![allow(clippy::unwrap_used)]

use proptest::option;
use proptest::prelude::*;
use signaling_proto::*;

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9_]{1,12}",
        any::<String>().prop_map(|s| s.chars().take(40).collect())
    ]
}

fn kind() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("auth".to_owned()),
        Just("presence".to_owned()),
        Just("presence_ack".to_owned()),
        Just("connect_request".to_owned()),
        Just("sdp_offer".to_owned()),
        Just("sdp_answer".to_owned()),
        Just("ice_candidate".to_owned()),
        Just("connection_rejected".to_owned()),
        Just("host_online".to_owned()),
        Just("host_offline".to_owned()),
        Just("pair_complete".to_owned()),
        Just("device_unpaired".to_owned()),
        Just("mobile_name_updated".to_owned()),
        Just("error".to_owned()),
        field(),
    ]
}

/// Mostly-sparse fields so typed variants are actually hit.
fn sparse() -> impl Strategy<Value = String> {
    prop_oneof![4 => Just(String::new()), 1 => field()]
}

prop_compose! {
    fn message()(
        kind in kind(),
        a in (sparse(), sparse(), prop_oneof![3 => Just(String::new()), 1 => Just("ok".to_owned())], sparse(), sparse(), sparse()),
        b in (sparse(), sparse(), sparse(), sparse(), option::of(any::<u16>())),
        c in (sparse(), sparse(), sparse(), sparse(), sparse(), sparse()),
    ) -> SignalingMessage {
        SignalingMessage {
            kind, token: a.0, name: a.1, status: a.2, error: a.3, reason: a.4, target_device_id: a.5,
            device_id: b.0, sdp: b.1, candidate: b.2, sdp_mid: b.3, sdp_m_line_index: b.4,
            mobile_device_id: c.0, mobile_x25519_public_key: c.1, mobile_name: c.2, host_device_id: c.3, host_name: c.4,
            mobile_confirmation: c.5,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn message_json_signal_round_trip(m in message()) {
        let json = m.to_json();
        let back = SignalingMessage::parse(&json).unwrap();
        prop_assert_eq!(&back, &m);
        let signal = Signal::from(back);
        prop_assert_eq!(signal.kind(), m.kind.as_str());
        let again = SignalingMessage::from(signal.clone());
        prop_assert_eq!(&again, &m);
        // Typed variants are canonical: converting them back yields them again.
        if !matches!(signal, Signal::Other(_)) {
            prop_assert_eq!(Signal::from(again), signal);
        }
    }

    #[test]
    fn parsers_never_panic(s in any::<String>()) {
        let _ = SignalingMessage::parse(&s);
        let _ = QrPayload::parse(&s);
        let _ = jwt_verify(b"k", &s, 0);
        let _ = jwt_expiry_unverified(&s);
        let _ = validate_name(&s);
        let _ = decode_public_key(&s);
        let _ = verify_request("k", Some(&s), Some(&s), Some(&s), &s, 0);
        let _ = verify_challenge(&[0u8; 32], &s, &s, &s);
    }

    #[test]
    fn json_like_input_never_panics(s in r#"\{("[a-zA-Z]{1,14}":("[^"]{0,8}"|[0-9-]{1,6}|null|true|\[\]|\{\}),?){0,6}\}"#) {
        if let Ok(m) = SignalingMessage::parse(&s) {
            let _ = Signal::from(m);
        }
    }

    #[test]
    fn qr_round_trip(code in "[A-HJ-NP-Z2-9]{6}", key in any::<[u8; 32]>(), id in "[0-9a-f]{32}", url in "https?://[a-z]{1,10}\\.net(:[0-9]{1,5})?", token in any::<[u8; 16]>()) {
        use base64::Engine as _;
        let qr = QrPayload {
            code,
            host_x25519_public_key: base64::engine::general_purpose::STANDARD.encode(key),
            host_device_id: id,
            server_url: url,
            token: zeroize::Zeroizing::new(token),
        };
        prop_assert_eq!(QrPayload::parse(&qr.to_string()).unwrap(), qr);
    }
}
