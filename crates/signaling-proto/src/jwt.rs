//! HS256 JWTs issued by the server and presented in WS `auth` and as Bearer
//! tokens (signaling.md §4).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::consts::{JWT_AUDIENCE, JWT_IAT_LEEWAY_SECS};

/// The only header muxlink issues or accepts.
pub const JWT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Longest token [`jwt_verify`] looks at.
pub const MAX_JWT_LEN: usize = 4096;

/// JWT claims, serialized in the order `sub,aud,deviceId,deviceType,iat,exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    /// Subject: the device id.
    pub sub: String,
    /// Audience: `"muxlink"`.
    pub aud: String,
    /// The device id again (must equal `sub`).
    pub device_id: String,
    /// `"host"` or `"mobile"`.
    pub device_type: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

impl Claims {
    /// Claims for `device_id` issued at `iat` and valid `lifetime_secs`.
    pub fn new(device_id: &str, device_type: &str, iat: i64, lifetime_secs: i64) -> Claims {
        Claims {
            sub: device_id.to_owned(),
            aud: JWT_AUDIENCE.to_owned(),
            device_id: device_id.to_owned(),
            device_type: device_type.to_owned(),
            iat,
            exp: iat.saturating_add(lifetime_secs),
        }
    }
}

/// Why a JWT was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three base64url segments of sane size, or claims not JSON.
    #[error("malformed token")]
    Malformed,
    /// Header other than `{"alg":"HS256","typ":"JWT"}`.
    #[error("unsupported token header")]
    BadHeader,
    /// HMAC mismatch.
    #[error("invalid token signature")]
    BadSignature,
    /// `aud` is not `muxlink`.
    #[error("wrong token audience")]
    WrongAudience,
    /// `sub` differs from `deviceId`.
    #[error("token subject does not match device id")]
    SubjectMismatch,
    /// `exp <= now`.
    #[error("token expired")]
    Expired,
    /// `iat > now + 60`.
    #[error("token issued in the future")]
    IssuedInFuture,
}

fn hmac(secret: &[u8], data: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut m = <Hmac<Sha256> as hmac::Mac>::new_from_slice(secret)
        .expect("HMAC-SHA256 accepts keys of any length");
    m.update(data);
    m
}

/// Encodes and signs `claims` with HS256.
pub fn jwt_encode(secret: &[u8], claims: &Claims) -> String {
    // Serializing plain strings and integers cannot fail.
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(JWT_HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = hmac(secret, signing_input.as_bytes())
        .finalize()
        .into_bytes();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn split(token: &str) -> Result<[&str; 3], JwtError> {
    if token.len() > MAX_JWT_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok([h, p, s]),
        _ => Err(JwtError::Malformed),
    }
}

fn header_ok(segment: &str) -> bool {
    let Ok(raw) = URL_SAFE_NO_PAD.decode(segment) else {
        return false;
    };
    let Ok(map) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&raw) else {
        return false;
    };
    map.len() == 2
        && map.get("alg").and_then(|v| v.as_str()) == Some("HS256")
        && map.get("typ").and_then(|v| v.as_str()) == Some("JWT")
}

/// Verifies signature, header, `aud`, `sub == deviceId`, `exp > now` and
/// `iat <= now + 60`; returns the claims.
pub fn jwt_verify(secret: &[u8], token: &str, now_unix: i64) -> Result<Claims, JwtError> {
    let [header, payload, sig] = split(token)?;
    if !header_ok(header) {
        return Err(JwtError::BadHeader);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| JwtError::Malformed)?;
    let signing_input = &token[..header.len() + 1 + payload.len()];
    hmac(secret, signing_input.as_bytes())
        .verify_slice(&sig)
        .map_err(|_| JwtError::BadSignature)?;
    let raw = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwtError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&raw).map_err(|_| JwtError::Malformed)?;
    if claims.aud != JWT_AUDIENCE {
        return Err(JwtError::WrongAudience);
    }
    if claims.sub != claims.device_id {
        return Err(JwtError::SubjectMismatch);
    }
    if claims.exp <= now_unix {
        return Err(JwtError::Expired);
    }
    if claims.iat > now_unix.saturating_add(JWT_IAT_LEEWAY_SECS) {
        return Err(JwtError::IssuedInFuture);
    }
    Ok(claims)
}

/// Reads `exp` from the payload without verifying anything (client-side
/// refresh scheduling); `None` when unreadable.
pub fn jwt_expiry_unverified(token: &str) -> Option<i64> {
    let [_, payload, _] = split(token).ok()?;
    let raw = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    value.get("exp")?.as_i64()
}
