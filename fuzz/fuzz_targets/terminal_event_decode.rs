//! Fuzzes `Event::decode` (the phone's side) on arbitrary bytes: it must never
//! panic, and any event it accepts must survive encode → decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terminal_protocol::Event;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = Event::decode(data) {
        let again = Event::decode(&ev.encode());
        assert_eq!(
            again.as_ref(),
            Ok(&ev),
            "re-encoded event decodes differently"
        );
    }
});
