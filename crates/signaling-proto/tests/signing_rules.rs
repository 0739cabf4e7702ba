//! Request-signing verification order, error strings and permanence.
#![allow(clippy::unwrap_used)]

use signaling_proto::consts::*;
use signaling_proto::*;

const S: &str = "secret";
const NOW: i64 = 1_700_000_000;
const P: &str = "/v1/auth/token";

fn check(ts: Option<&str>, nonce: Option<&str>, sig: Option<&str>) -> Result<(), SigningError> {
    verify_request(S, ts, nonce, sig, P, NOW)
}

#[test]
fn signed_headers_verify() {
    let h = SignedHeaders::new(S, P, NOW).unwrap();
    assert_eq!(h.nonce.len(), 32);
    assert_eq!(h.pairs()[0], (HEADER_TIMESTAMP, "1700000000"));
    assert_eq!(h.pairs()[1].0, HEADER_NONCE);
    assert_eq!(h.pairs()[2].0, HEADER_SIGNATURE);
    check(Some(&h.timestamp), Some(&h.nonce), Some(&h.signature)).unwrap();
    assert_ne!(SignedHeaders::new(S, P, NOW).unwrap().nonce, h.nonce);
    assert!(SignedHeaders::new("", P, NOW).is_none());
    assert_eq!(verify_request("", None, None, None, P, NOW), Ok(()));
}

#[test]
fn failures_in_spec_order() {
    let good = sign_request(S, NOW, "n", P);
    assert_eq!(
        check(None, Some("n"), Some(&good)),
        Err(SigningError::Missing)
    );
    assert_eq!(
        check(Some("1700000000"), None, Some(&good)),
        Err(SigningError::Missing)
    );
    assert_eq!(
        check(Some("1700000000"), Some("n"), Some("")),
        Err(SigningError::Missing)
    );
    assert_eq!(
        check(Some("17e8"), Some("n"), Some("zz")),
        Err(SigningError::InvalidTimestamp)
    );
    assert_eq!(
        check(Some("1699999939"), Some("n"), Some("zz")),
        Err(SigningError::Expired)
    );
    assert_eq!(
        check(Some("1700000061"), Some("n"), Some("zz")),
        Err(SigningError::Expired)
    );
    assert_eq!(
        check(Some("1700000000"), Some("n"), Some("zz")),
        Err(SigningError::InvalidSignature)
    );
    assert_eq!(
        check(Some("1700000000"), Some("m"), Some(&good)),
        Err(SigningError::InvalidSignature)
    );
    assert_eq!(check(Some("1700000000"), Some("n"), Some(&good)), Ok(()));
    // Exactly 60 s of skew is still accepted.
    let edge = sign_request(S, NOW - 60, "n", P);
    assert_eq!(check(Some("1699999940"), Some("n"), Some(&edge)), Ok(()));
    assert_eq!(
        verify_request(
            S,
            Some("-9223372036854775808"),
            Some("n"),
            Some(&good),
            P,
            NOW
        ),
        Err(SigningError::Expired)
    );
}

#[test]
fn error_strings_and_permanence() {
    let table = [
        (SigningError::Missing, "missing client signature", true),
        (SigningError::InvalidTimestamp, "invalid timestamp", true),
        (SigningError::Expired, "request expired", false),
        (
            SigningError::InvalidSignature,
            "invalid client signature",
            true,
        ),
        (SigningError::Replayed, "replayed request", false),
    ];
    for (err, text, permanent) in table {
        assert_eq!(err.to_string(), text);
        assert_eq!(err.is_permanent(), permanent);
        assert_eq!(is_permanent_error(401, text), permanent);
        assert!(!is_permanent_error(500, text));
    }
    assert!(is_permanent_error(401, "unknown device"));
    assert!(!is_permanent_error(401, "invalid signature"));
}

#[test]
fn urls() {
    assert_eq!(
        api_base("http://127.0.0.1:5000", "v1"),
        "http://127.0.0.1:5000/v1"
    );
    assert_eq!(
        api_base("http://127.0.0.1:5000/", ""),
        "http://127.0.0.1:5000"
    );
    assert_eq!(
        ws_url("https://h.example:8443", "v1"),
        "wss://h.example:8443/v1/ws"
    );
    assert_eq!(
        ws_url("http://127.0.0.1:5000", ""),
        "ws://127.0.0.1:5000/ws"
    );
    assert_eq!(api_path("v1", "/auth/token"), "/v1/auth/token");
    assert_eq!(api_path("", "/ws"), "/ws");
}
