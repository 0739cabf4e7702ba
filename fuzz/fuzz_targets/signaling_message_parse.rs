//! Fuzzes `SignalingMessage::parse` on arbitrary text: no panic, the typed
//! `Signal` view converts back losslessly, and `to_json` parses back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signaling_proto::consts::MAX_WS_MESSAGE;
use signaling_proto::{Signal, SignalingMessage};

fuzz_target!(|text: &str| {
    let Ok(msg) = SignalingMessage::parse(text) else {
        return;
    };
    let typed = Signal::from(msg.clone());
    assert_eq!(SignalingMessage::from(typed), msg, "typed view is lossy");
    let json = msg.to_json();
    if json.chars().count() <= MAX_WS_MESSAGE {
        assert_eq!(
            SignalingMessage::parse(&json).ok().as_ref(),
            Some(&msg),
            "to_json does not parse back: {json}"
        );
    }
});
