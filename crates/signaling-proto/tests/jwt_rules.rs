//! JWT verification rules of signaling.md §4.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac as _;
use signaling_proto::*;

const SECRET: &[u8] = b"k";
const NOW: i64 = 1_700_000_000;

fn forge(header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn valid_and_each_rule() {
    let c = Claims::new("d", "mobile", NOW, 3600);
    let t = jwt_encode(SECRET, &c);
    assert_eq!(jwt_verify(SECRET, &t, NOW).unwrap(), c);
    assert_eq!(jwt_verify(b"other", &t, NOW), Err(JwtError::BadSignature));
    assert_eq!(jwt_verify(SECRET, &t, NOW + 3600), Err(JwtError::Expired));
    assert_eq!(
        jwt_verify(SECRET, &t, NOW - 61),
        Err(JwtError::IssuedInFuture)
    );
    assert!(jwt_verify(SECRET, &t, NOW - 60).is_ok());
    let mut wrong_aud = c.clone();
    wrong_aud.aud = "other".into();
    assert_eq!(
        jwt_verify(SECRET, &jwt_encode(SECRET, &wrong_aud), NOW),
        Err(JwtError::WrongAudience)
    );
    let mut wrong_sub = c.clone();
    wrong_sub.sub = "x".into();
    assert_eq!(
        jwt_verify(SECRET, &jwt_encode(SECRET, &wrong_sub), NOW),
        Err(JwtError::SubjectMismatch)
    );
}

#[test]
fn other_headers_rejected() {
    let payload = serde_json::to_string(&Claims::new("d", "host", NOW, 60)).unwrap();
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"HS512","typ":"JWT"}"#,
        r#"{"alg":"HS256"}"#,
        r#"{"alg":"HS256","typ":"JWT","kid":"1"}"#,
        "not json",
    ] {
        assert_eq!(
            jwt_verify(SECRET, &forge(header, &payload), NOW),
            Err(JwtError::BadHeader),
            "{header}"
        );
    }
    assert!(
        jwt_verify(
            SECRET,
            &forge(r#"{"alg":"HS256","typ":"JWT"}"#, &payload),
            NOW
        )
        .is_ok()
    );
}

#[test]
fn malformed_tokens() {
    for t in ["", "a", "a.b", "a.b.c.d", &"x".repeat(10_000)] {
        assert!(jwt_verify(SECRET, t, NOW).is_err(), "{t}");
        assert_eq!(jwt_expiry_unverified(t), None);
    }
    let missing_claim = forge(r#"{"alg":"HS256","typ":"JWT"}"#, r#"{"sub":"d"}"#);
    assert_eq!(
        jwt_verify(SECRET, &missing_claim, NOW),
        Err(JwtError::Malformed)
    );
    assert_eq!(jwt_expiry_unverified(&forge("{}", r#"{"exp":5}"#)), Some(5));
}
