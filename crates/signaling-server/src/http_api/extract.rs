//! The shared pieces of the HTTP handlers: the [`Client`] extractor, body
//! parsing, Bearer-token and live-device checks, and the field checks that
//! several endpoints apply to a request body.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use signaling_proto::consts::*;
use signaling_proto::{Claims, decode_public_key, device_id, jwt_verify, validate_name};

use crate::api_error::ApiError;
use crate::client_key::ClientKey;
use crate::metrics::AuthFailure;
use crate::rate_limit::RateKey;
use crate::state::AppState;
use crate::store::Device;

/// The client of a request: the TCP peer, or the address a trusted proxy
/// forwarded (see [`crate::client_key::TrustedProxies::client_ip`]).
pub(crate) struct Client(pub ClientKey);

impl axum::extract::FromRequestParts<Arc<AppState>> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &Arc<AppState>,
    ) -> Result<Client, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| ApiError::internal("request without a peer address"))?;
        Ok(Client(st.proxies.client_key(peer, &parts.headers)))
    }
}

impl Client {
    pub(super) fn rate(&self) -> RateKey {
        RateKey::Client(self.0)
    }
}

pub(super) fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// A valid Bearer token of a device that still exists (deleted, unpaired
/// phones and expired devices are refused: 401).
pub(super) async fn bearer(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<(Claims, Device), ApiError> {
    let refused = || st.metrics.auth_failure(AuthFailure::Bearer);
    let claims = bearer_claims(st, headers).inspect_err(|_| refused())?;
    let device = st
        .live_device(&claims.device_id)
        .await?
        .filter(|d| d.device_type.as_str() == claims.device_type)
        .ok_or_else(|| ApiError::unauthorized(ERR_UNKNOWN_DEVICE))
        .inspect_err(|_| refused())?;
    Ok((claims, device))
}

fn bearer_claims(st: &AppState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    jwt_verify(&st.jwt_secret, token, st.now())
        .map_err(|e| ApiError::unauthorized(format!("invalid token: {e}")))
}

pub(super) fn check_name(name: &Option<String>) -> Result<(), ApiError> {
    match name {
        Some(n) => validate_name(n).map_err(|e| ApiError::bad_request(e.to_string())),
        None => Ok(()),
    }
}

/// Decodes and cross-checks the identity keys of a pairing request.
pub(super) fn identity_keys(id: &str, ed: &str, x: &str) -> Result<[u8; 32], ApiError> {
    let key =
        decode_public_key(ed).map_err(|_| ApiError::bad_request("invalid ed25519PublicKey"))?;
    decode_public_key(x).map_err(|_| ApiError::bad_request("invalid x25519PublicKey"))?;
    if device_id(&key) != id {
        return Err(ApiError::bad_request(
            "deviceId does not match ed25519PublicKey",
        ));
    }
    Ok(key)
}

/// Consumes the challenge `nonce` of device `id` (whichever instance issued it).
pub(super) async fn consume_challenge(
    st: &AppState,
    id: &str,
    nonce: &str,
) -> Result<(), ApiError> {
    if st.db.consume_challenge(id, nonce, st.now()).await? {
        Ok(())
    } else {
        st.metrics.auth_failure(AuthFailure::Challenge);
        Err(ApiError::unauthorized("invalid or expired challenge"))
    }
}

pub(super) fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
