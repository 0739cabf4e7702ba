//! `POST /auth/challenge` and `POST /auth/token` (signaling.md §1: a device
//! proves its key over a one-time nonce and gets a JWT), and `GET /health`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use signaling_proto::consts::*;
use signaling_proto::{
    ChallengeRequest, ChallengeResponse, Claims, HealthResponse, TokenRequest, TokenResponse,
    is_valid_device_id, jwt_encode, verify_challenge,
};

use super::St;
use super::extract::{Client, consume_challenge, parse_body, secs};
use crate::api_error::ApiError;
use crate::metrics::AuthFailure;
use crate::rate_limit::Endpoint;

pub(super) async fn health(State(st): St) -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        timestamp: st.now(),
    })
}

pub(super) async fn challenge(
    State(st): St,
    client: Client,
    body: Bytes,
) -> Result<Json<ChallengeResponse>, ApiError> {
    st.rate(Endpoint::Challenge, client.rate())?;
    let req: ChallengeRequest = parse_body(&body)?;
    if !is_valid_device_id(&req.device_id) {
        return Err(ApiError::bad_request("invalid deviceId"));
    }
    let nonce = st
        .db
        .issue_challenge(&req.device_id, st.now(), &st.bounds)
        .await?;
    Ok(Json(ChallengeResponse { nonce }))
}

pub(super) async fn token(
    State(st): St,
    client: Client,
    body: Bytes,
) -> Result<Json<TokenResponse>, ApiError> {
    st.rate(Endpoint::Token, client.rate())?;
    let req: TokenRequest = parse_body(&body)?;
    if !is_valid_device_id(&req.device_id) {
        return Err(ApiError::bad_request("invalid deviceId"));
    }
    consume_challenge(&st, &req.device_id, &req.nonce).await?;
    let device = st
        .live_device(&req.device_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized(ERR_UNKNOWN_DEVICE))
        .inspect_err(|_| st.metrics.auth_failure(AuthFailure::Challenge))?;
    verify_challenge(
        &device.public_key,
        &req.device_id,
        &req.nonce,
        &req.signature,
    )
    .map_err(|_| ApiError::unauthorized("invalid signature"))
    .inspect_err(|_| st.metrics.auth_failure(AuthFailure::Challenge))?;
    let claims = Claims::new(
        &device.id,
        device.device_type.as_str(),
        st.now(),
        secs(st.config.jwt_lifetime),
    );
    Ok(Json(TokenResponse {
        token: jwt_encode(&st.jwt_secret, &claims),
    }))
}
