//! QR payload parsing/formatting, pairing codes and the name rule.
#![allow(clippy::unwrap_used)]

use signaling_proto::*;

const KEY: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
const ID: &str = "21fe31dfa154a261626bf854046fd227";

const TOKEN: &str = "8PHy8/T19vf4+fr7/P3+/w==";

#[test]
fn five_field_form_round_trips() {
    let text = format!("ABC234|{KEY}|{ID}|https://s.example.net|{TOKEN}");
    let qr = QrPayload::parse(&format!("  {text}\n")).unwrap();
    assert_eq!(qr.server_url, "https://s.example.net");
    assert_eq!(qr.to_string(), text);
    // A trailing slash on the URL is dropped.
    let qr =
        QrPayload::parse(&format!("ABC234|{KEY}|{ID}|https://s.example.net/|{TOKEN}")).unwrap();
    assert_eq!(qr.server_url, "https://s.example.net");
}

#[test]
fn payloads_without_token_say_what_works() {
    for old in [
        "ABC234".to_owned(),
        format!("ABC234|{KEY}|{ID}"),
        format!("ABC234|{KEY}|{ID}|https://s.example.net"),
    ] {
        let e = QrPayload::parse(&old).unwrap_err().to_string();
        assert!(e.contains("no pairing token"), "{e}");
        assert!(e.contains("paste the whole payload"), "{e}");
    }
}

#[test]
fn token_is_never_in_debug_output() {
    let qr = QrPayload::parse(&format!("ABC234|{KEY}|{ID}|https://s|{TOKEN}")).unwrap();
    assert!(!format!("{qr:?}").contains(TOKEN));
}

#[test]
fn bad_payloads() {
    for bad in [
        String::new(),
        format!("ABC234|{KEY}"),
        format!("ABC23|{KEY}|{ID}|http://x"),
        format!("ABC230|{KEY}|{ID}|http://x"),
        format!("abc234|{KEY}|{ID}|http://x"),
        format!("ABC234|AAAA|{ID}|http://x"),
        format!("ABC234|{KEY}|{}|http://x", ID.to_uppercase()),
        format!("ABC234|{KEY}|{ID}|ftp://x"),
        format!("ABC234|{KEY}|{ID}|http://x|{TOKEN}|extra"),
        format!("ABC23|{KEY}|{ID}|http://x|{TOKEN}"),
        format!("ABC234|{KEY}|{ID}|ftp://x|{TOKEN}"),
        format!("ABC234|{KEY}|{ID}||{TOKEN}"),
        format!("ABC234|{KEY}|{ID}|http://x|"),
        format!("ABC234|{KEY}|{ID}|http://x|AAAA"),
        format!("ABC234|{KEY}|{ID}|http://x|8PHy8_T19vf4-fr7_P3-_w"),
        format!("ABC234|{KEY}|{ID}|http://x|8PHy8/T19vf4+fr7/P3+/w"),
    ] {
        assert!(QrPayload::parse(&bad).is_err(), "{bad}");
    }
}

#[test]
fn pairing_codes() {
    for _ in 0..100 {
        let code = new_pairing_code();
        assert!(is_valid_pairing_code(&code), "{code}");
    }
    assert!(!is_valid_pairing_code("ABCDE0"));
    assert_eq!(PAIRING_CODE_ALPHABET.len(), 32);
}

#[test]
fn names() {
    assert!(validate_name("a").is_ok());
    assert!(validate_name(&"é".repeat(64)).is_ok());
    assert!(validate_name(&"é".repeat(65)).is_err());
    assert!(validate_name("").is_err());
    assert!(validate_name("a\u{1f}b").is_err());
    assert!(validate_name("a\u{7f}").is_err());
    assert!(validate_name("tab\there").is_err());
    // C1 controls and bidi formatting characters are refused too.
    assert!(validate_name("ok \u{80} too").is_err());
    assert!(validate_name("csi \u{9b}31m").is_err());
    assert!(validate_name("evil\u{202e}txt.exe").is_err());
    assert!(validate_name("\u{2066}isolate\u{2069}").is_err());
    assert!(validate_name("mark\u{200f}").is_err());
    assert!(validate_name("arabic mark\u{61c}").is_err());
    assert!(validate_name("ok \u{a0} nbsp").is_ok());
    assert_eq!(truncate_name(&"x".repeat(70)).len(), 64);
}
