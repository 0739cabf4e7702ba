//! Fuzzes `Request::decode` on arbitrary bytes: it must never panic, and any
//! request it accepts must survive encode → decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terminal_protocol::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::decode(data) {
        let again = Request::decode(&req.encode());
        assert_eq!(
            again.as_ref(),
            Ok(&req),
            "re-encoded request decodes differently"
        );
    }
});
