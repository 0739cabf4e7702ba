//! The HTTP routes of signaling.md §1 and pairing.md §2, the request-signing
//! layer, and JSON error bodies for every failure.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use serde::de::DeserializeOwned;
use signaling_proto::consts::*;
use signaling_proto::{
    ChallengeRequest, ChallengeResponse, Claims, ErrorBody, HealthResponse, MAX_CONFIRMATION_LEN,
    PairCompleteRequest, PairCompleteResponse, PairInitiateRequest, PairInitiateResponse,
    RemovedResponse, SignalingMessage, SigningError, TokenRequest, TokenResponse, TurnCredentials,
    api_path, decode_public_key, device_id, is_valid_device_id, jwt_encode, jwt_verify,
    signal::kind, validate_name, verify_challenge, verify_request,
};

use crate::api_error::ApiError;
use crate::client_key::ClientKey;
use crate::rate_limit::{Endpoint, RateKey};
use crate::state::{AppState, lock};
use crate::store::{Device, DeviceType};

type St = State<Arc<AppState>>;

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
    fn rate(&self) -> RateKey {
        RateKey::Client(self.0)
    }
}

/// Builds the router for `state.config.api_version`.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let v = state.config.api_version.clone();
    let p = |path: &str| api_path(&v, path);
    let signed = Router::new()
        .route(&p("/auth/challenge"), post(challenge))
        .route(&p("/auth/token"), post(token))
        .route(&p("/auth/pair/initiate"), post(pair_initiate))
        .route(&p("/auth/pair/complete"), post(pair_complete))
        .route(&p("/auth/pairing"), delete(unpair))
        .route(&p("/auth/device"), delete(delete_device))
        .route(&p("/turn/credentials"), get(turn_credentials))
        .route(&p("/ws"), get(ws_upgrade))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_signature,
        ));
    // The web client lives outside the API prefix; its page is unsigned like `/health`.
    let mut app = signed
        .route("/", get(crate::web_assets::index))
        .route("/assets/{name}", get(crate::web_assets::asset))
        .route("/health", get(health));
    if p("/health") != "/health" {
        app = app.route(&p("/health"), get(health));
    }
    // Outermost first: security headers on everything, then CORS (which
    // answers a preflight before routing and signing), then JSON errors.
    app.fallback(not_found)
        .layer(middleware::map_response(json_errors))
        .layer(DefaultBodyLimit::max(MAX_HTTP_BODY))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            bounded_body,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::cors::layer,
        ))
        .layer(middleware::map_response_with_state(
            Arc::clone(&state),
            security_headers,
        ))
        .with_state(state)
}

/// HSTS lifetime announced over TLS: one year.
const HSTS: &str = "max-age=31536000";

/// `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` on
/// every response, and `Strict-Transport-Security` when this server speaks
/// TLS itself (behind a TLS-terminating proxy, the proxy must add it). The
/// web client's pages add their Content-Security-Policy in `web_assets`.
async fn security_headers(State(st): St, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if st.config.tls.is_some() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    resp
}

/// Reads the whole request body within `config.body_timeout` (408 and the
/// connection closed otherwise) and at most [`MAX_HTTP_BODY`] bytes (413),
/// so a client trickling its body cannot hold a handler.
async fn bounded_body(State(st): St, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let limit = st.config.body_timeout;
    match tokio::time::timeout(limit, axum::body::to_bytes(body, MAX_HTTP_BODY)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => {
            // axum's error wraps http-body-util's `LengthLimitError`.
            let too_large = e.to_string().contains("length limit");
            let mut resp = if too_large {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            } else {
                ApiError::bad_request("cannot read the request body")
            }
            .into_response();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
        Err(_) => {
            let mut resp = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found")
}

/// Gives framework-generated failures (405, 413, 415 …) the JSON body the
/// spec requires, keeping their headers (e.g. `Allow`).
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    let message = match text {
        Some(t) if !t.is_empty() => t,
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(&ErrorBody { error: message }).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// signaling.md §5: headers checked in order, then the nonce replay cache.
async fn require_signature(State(st): St, req: Request, next: Next) -> Response {
    let secret = &st.config.hmac_secret;
    if !secret.is_empty() {
        let h = req.headers();
        // Browsers cannot set headers on a WebSocket upgrade, so on `/ws`
        // alone the same three values may come as query parameters (the
        // signature still covers the path only). Headers win when present.
        let query = (req.uri().path() == api_path(&st.config.api_version, "/ws")
            && !h.contains_key(HEADER_SIGNATURE))
        .then(|| req.uri().query())
        .flatten();
        let get = |name: &str| match query {
            Some(q) => query_value(q, name),
            None => h.get(name).and_then(|v| v.to_str().ok()),
        };
        let now = st.now();
        let checked = verify_request(
            secret,
            get(HEADER_TIMESTAMP),
            get(HEADER_NONCE),
            get(HEADER_SIGNATURE),
            req.uri().path(),
            now,
        )
        .and_then(|()| {
            let nonce = get(HEADER_NONCE).unwrap_or_default();
            if lock(&st.replay).check_and_insert(nonce, now) {
                Ok(())
            } else {
                Err(SigningError::Replayed)
            }
        });
        if let Err(e) = checked {
            return ApiError::unauthorized(e.to_string()).into_response();
        }
    }
    next.run(req).await
}

/// The value of `name` in a query string, taken verbatim: signing values are
/// digits and hex, which need no percent-decoding (anything else fails the
/// signature check).
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// True when `device` never paired and has outlived
/// `config.unpaired_device_ttl` (the sweep deletes it; until then it is gone).
pub(crate) fn is_expired(st: &AppState, device: &Device) -> bool {
    !device.ever_paired && device.created_at < st.unpaired_cutoff()
}

/// The device `id`, unless it does not exist or has expired unpaired.
pub(crate) async fn live_device(st: &AppState, id: &str) -> Result<Option<Device>, ApiError> {
    let id = id.to_owned();
    let device = st.db.call(move |s| s.device(&id)).await?;
    Ok(device.filter(|d| !is_expired(st, d)))
}

/// A valid Bearer token of a device that still exists (deleted, unpaired
/// phones and expired devices are refused: 401).
async fn bearer(st: &AppState, headers: &HeaderMap) -> Result<(Claims, Device), ApiError> {
    let claims = bearer_claims(st, headers)?;
    let device = live_device(st, &claims.device_id)
        .await?
        .filter(|d| d.device_type.as_str() == claims.device_type)
        .ok_or_else(|| ApiError::unauthorized(ERR_UNKNOWN_DEVICE))?;
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

/// The 400 message for a `pair/complete` without a confirmation.
const ERR_NO_CONFIRMATION: &str = "missing confirmation: pairing v2 needs the phone's confirmation \
     (update the phone's muxlink and scan the host's QR code again)";

/// pairing.md §9.5: `confirmation` is opaque to the server but REQUIRED, a
/// non-empty string of at most [`MAX_CONFIRMATION_LEN`] characters.
fn check_confirmation(confirmation: &str) -> Result<(), ApiError> {
    if confirmation.is_empty() {
        return Err(ApiError::bad_request(ERR_NO_CONFIRMATION));
    }
    if confirmation.chars().count() > MAX_CONFIRMATION_LEN {
        return Err(ApiError::bad_request(format!(
            "confirmation is longer than {MAX_CONFIRMATION_LEN} characters"
        )));
    }
    Ok(())
}

fn check_name(name: &Option<String>) -> Result<(), ApiError> {
    match name {
        Some(n) => validate_name(n).map_err(|e| ApiError::bad_request(e.to_string())),
        None => Ok(()),
    }
}

/// Decodes and cross-checks the identity keys of a pairing request.
fn identity_keys(id: &str, ed: &str, x: &str) -> Result<[u8; 32], ApiError> {
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

fn consume_challenge(st: &AppState, id: &str, nonce: &str) -> Result<(), ApiError> {
    let now = st.now();
    lock(&st.challenges)
        .consume(id, nonce, now)
        .map_err(|_| ApiError::unauthorized("invalid or expired challenge"))
}

async fn health(State(st): St) -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        timestamp: st.now(),
    })
}

async fn challenge(
    State(st): St,
    client: Client,
    body: Bytes,
) -> Result<Json<ChallengeResponse>, ApiError> {
    st.rate(Endpoint::Challenge, client.rate())?;
    let req: ChallengeRequest = parse_body(&body)?;
    if !is_valid_device_id(&req.device_id) {
        return Err(ApiError::bad_request("invalid deviceId"));
    }
    let (now, ttl) = (st.now(), secs(st.config.challenge_ttl));
    let nonce = lock(&st.challenges).issue(&req.device_id, now, ttl);
    Ok(Json(ChallengeResponse { nonce }))
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

async fn token(
    State(st): St,
    client: Client,
    body: Bytes,
) -> Result<Json<TokenResponse>, ApiError> {
    st.rate(Endpoint::Token, client.rate())?;
    let req: TokenRequest = parse_body(&body)?;
    if !is_valid_device_id(&req.device_id) {
        return Err(ApiError::bad_request("invalid deviceId"));
    }
    consume_challenge(&st, &req.device_id, &req.nonce)?;
    let device = live_device(&st, &req.device_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized(ERR_UNKNOWN_DEVICE))?;
    verify_challenge(
        &device.public_key,
        &req.device_id,
        &req.nonce,
        &req.signature,
    )
    .map_err(|_| ApiError::unauthorized("invalid signature"))?;
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

async fn pair_initiate(
    State(st): St,
    client: Client,
    body: Bytes,
) -> Result<Json<PairInitiateResponse>, ApiError> {
    st.rate(Endpoint::PairInitiate, client.rate())?;
    let req: PairInitiateRequest = parse_body(&body)?;
    let key = identity_keys(
        &req.device_id,
        &req.ed25519_public_key,
        &req.x25519_public_key,
    )?;
    check_name(&req.name)?;
    consume_challenge(&st, &req.device_id, &req.nonce)?;
    let id = req.device_id.clone();
    let stored = st.db.call(move |s| s.device(&id)).await?;
    // A host that outlived its unpaired lifetime registers anew.
    let expired = stored.as_ref().is_some_and(|d| is_expired(&st, d));
    let existing = stored.filter(|_| !expired);
    // The device id is derived from the key, so a stored key equals the body key.
    let verify_key = existing.as_ref().map_or(key, |d| d.public_key);
    verify_challenge(&verify_key, &req.device_id, &req.nonce, &req.signature)
        .map_err(|_| ApiError::unauthorized("invalid signature"))?;
    if existing
        .as_ref()
        .is_some_and(|d| d.device_type != DeviceType::Host)
    {
        return Err(ApiError::new(StatusCode::CONFLICT, "device type conflict"));
    }
    if existing.is_none() {
        st.rate(Endpoint::Register, RateKey::Prefix(client.0.prefix()))?;
    }
    let host = Device {
        id: req.device_id.clone(),
        device_type: DeviceType::Host,
        public_key: key,
        name: req.name.clone().unwrap_or_default(),
        created_at: st.now(),
        ever_paired: false,
    };
    let host_name = if host.name.is_empty() {
        existing.map(|d| d.name).unwrap_or_default()
    } else {
        host.name.clone()
    };
    st.db
        .call(move |s| {
            if expired {
                s.delete_device(&host.id)?;
            }
            s.upsert_device(&host)
        })
        .await?;
    let (now, ttl) = (st.now(), secs(st.config.pairing_ttl));
    let code = lock(&st.codes)
        .create(&req.device_id, &req.x25519_public_key, &host_name, now, ttl)
        .ok_or_else(|| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many pending pairings")
        })?;
    tracing::info!(host = %req.device_id, "pairing initiated");
    Ok(Json(PairInitiateResponse { pairing_code: code }))
}

async fn pair_complete(
    State(st): St,
    client: Client,
    body: Bytes,
) -> Result<Json<PairCompleteResponse>, ApiError> {
    st.rate(Endpoint::PairComplete, client.rate())?;
    let prefix = client.0.prefix();
    lock(&st.guesses)
        .check(prefix, st.now())
        .map_err(|retry| ApiError {
            message: "too many failed pairing attempts".to_owned(),
            ..ApiError::rate_limited(retry)
        })?;
    let req: PairCompleteRequest = parse_body(&body).map_err(|e| {
        if e.message.contains("missing field `confirmation`") {
            ApiError::bad_request(ERR_NO_CONFIRMATION)
        } else {
            e
        }
    })?;
    // Checked before the challenge and the code are consumed, so a malformed
    // request burns neither.
    check_confirmation(&req.confirmation)?;
    let key = identity_keys(
        &req.device_id,
        &req.ed25519_public_key,
        &req.x25519_public_key,
    )?;
    check_name(&req.name)?;
    consume_challenge(&st, &req.device_id, &req.nonce)?;
    verify_challenge(&key, &req.device_id, &req.nonce, &req.signature)
        .map_err(|_| ApiError::unauthorized("invalid signature"))?;
    let id = req.device_id.clone();
    // Check the type before burning the code, so a conflict leaves it usable.
    let known = st.db.call(move |s| s.device(&id)).await?;
    if known
        .as_ref()
        .is_some_and(|d| d.device_type != DeviceType::Mobile)
    {
        return Err(ApiError::new(StatusCode::CONFLICT, "device type conflict"));
    }
    if known.is_none() {
        st.rate(Endpoint::Register, RateKey::Prefix(prefix))?;
    }
    let now = st.now();
    let code = req.pairing_code.trim().to_ascii_uppercase();
    let redeemed = lock(&st.codes).redeem(&code, now);
    let Some(pending) = redeemed else {
        lock(&st.guesses).record_failure(prefix, now);
        tracing::info!(client = %client.0, "pairing attempt with a wrong or expired code");
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ERR_INVALID_PAIRING_CODE,
        ));
    };
    let mobile = Device {
        id: req.device_id.clone(),
        device_type: DeviceType::Mobile,
        public_key: key,
        name: req.name.clone().unwrap_or_default(),
        created_at: now,
        ever_paired: false,
    };
    let host_id = pending.host_id.clone();
    let replaced = st
        .db
        .call(move |s| s.complete_pairing(&host_id, &mobile, now))
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, ERR_INVALID_PAIRING_CODE)
            }
            other => other.into(),
        })?;
    if let Some(old) = replaced {
        let notice = SignalingMessage {
            reason: UNPAIR_REPLACED.to_owned(),
            host_device_id: pending.host_id.clone(),
            host_name: pending.host_name.clone(),
            ..SignalingMessage::new(kind::DEVICE_UNPAIRED)
        };
        st.hub.send(&old, &notice);
        drop_orphan_mobiles(&st, &[old]).await;
    }
    // The confirmation is relayed verbatim and kept nowhere else: the host
    // checks it (pairing.md §9.6), the server cannot.
    let done = SignalingMessage {
        mobile_device_id: req.device_id.clone(),
        mobile_x25519_public_key: req.x25519_public_key.clone(),
        mobile_name: req.name.clone().unwrap_or_default(),
        mobile_confirmation: req.confirmation,
        ..SignalingMessage::new(kind::PAIR_COMPLETE)
    };
    st.hub.send(&pending.host_id, &done);
    tracing::info!(host = %pending.host_id, mobile = %req.device_id, "pairing completed");
    Ok(Json(PairCompleteResponse {
        host_x25519_public_key: pending.host_x25519_public_key,
        host_device_id: pending.host_id,
        host_name: pending.host_name,
    }))
}

/// Tells each mobile of `pairings` whose host is `host_id` that it was unpaired.
fn notify_unpaired(
    st: &AppState,
    host: Option<&Device>,
    pairings: &[crate::store::Pairing],
    reason: &str,
) {
    let Some(host) = host else { return };
    for p in pairings.iter().filter(|p| p.host_id == host.id) {
        let notice = SignalingMessage {
            reason: reason.to_owned(),
            host_device_id: host.id.clone(),
            host_name: host.name.clone(),
            ..SignalingMessage::new(kind::DEVICE_UNPAIRED)
        };
        st.hub.send(&p.mobile_id, &notice);
    }
}

/// Deletes each of `mobiles` that no longer has a pairing, so its token
/// stops working, and closes its sockets (after anything already queued,
/// e.g. `device_unpaired`).
async fn drop_orphan_mobiles(st: &AppState, mobiles: &[String]) {
    for id in mobiles {
        let m = id.clone();
        match st.db.call(move |s| s.delete_orphan_mobile(&m)).await {
            Ok(true) => {
                tracing::info!(mobile = %id, "deleted an unpaired phone");
                st.hub
                    .kill_device(id, CLOSE_DEVICE_NOT_FOUND, "device unpaired");
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "deleting an unpaired phone failed"),
        }
    }
}

/// `DELETE /auth/pairing`: removes the caller's pairings; each phone left
/// without a pairing is deleted (its JWT stops working at once).
async fn unpair(State(st): St, headers: HeaderMap) -> Result<Json<RemovedResponse>, ApiError> {
    let (claims, device) = bearer(&st, &headers).await?;
    st.rate(Endpoint::Pairing, RateKey::Device(claims.device_id.clone()))?;
    let id = claims.device_id.clone();
    let removed = st.db.call(move |s| s.remove_pairings(&id)).await?;
    notify_unpaired(&st, Some(&device), &removed, UNPAIR_HOST_UNPAIRED);
    let mut mobiles: Vec<String> = removed.iter().map(|p| p.mobile_id.clone()).collect();
    if device.device_type == DeviceType::Mobile {
        mobiles.push(device.id.clone());
    }
    mobiles.dedup();
    drop_orphan_mobiles(&st, &mobiles).await;
    Ok(Json(RemovedResponse {
        removed: !removed.is_empty(),
    }))
}

async fn delete_device(
    State(st): St,
    headers: HeaderMap,
) -> Result<Json<RemovedResponse>, ApiError> {
    let (claims, _) = bearer(&st, &headers).await?;
    st.rate(Endpoint::Device, RateKey::Device(claims.device_id.clone()))?;
    let id = claims.device_id.clone();
    let (device, removed) = st
        .db
        .call(move |s| Ok((s.device(&id)?, s.delete_device(&id)?)))
        .await?;
    let removed_pairings = removed.as_deref().unwrap_or_default();
    notify_unpaired(
        &st,
        device.as_ref(),
        removed_pairings,
        UNPAIR_HOST_UNINSTALLED,
    );
    let mobiles: Vec<String> = removed_pairings
        .iter()
        .filter(|p| p.mobile_id != claims.device_id)
        .map(|p| p.mobile_id.clone())
        .collect();
    drop_orphan_mobiles(&st, &mobiles).await;
    lock(&st.codes).cancel_host(&claims.device_id);
    st.hub
        .kill_device(&claims.device_id, CLOSE_DEVICE_NOT_FOUND, "device deleted");
    Ok(Json(RemovedResponse {
        removed: removed.is_some(),
    }))
}

async fn turn_credentials(
    State(st): St,
    headers: HeaderMap,
) -> Result<Json<TurnCredentials>, ApiError> {
    let (claims, device) = bearer(&st, &headers).await?;
    st.rate(Endpoint::Turn, RateKey::Device(claims.device_id.clone()))?;
    // TURN relays cost bandwidth: only for a device that is paired now.
    let id = device.id.clone();
    let paired = st
        .db
        .call(move |s| match device.device_type {
            DeviceType::Host => Ok(s.paired_mobile(&id)?.is_some()),
            DeviceType::Mobile => Ok(!s.paired_hosts(&id)?.is_empty()),
        })
        .await?;
    if !paired {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "turn credentials are only for paired devices",
        ));
    }
    let turn = &st.config.turn;
    if turn.secret.is_empty() {
        return Ok(Json(TurnCredentials {
            urls: turn.urls.clone(),
            username: turn.username.clone(),
            credential: turn.credential.clone(),
        }));
    }
    let username = format!(
        "{}:{}",
        st.now().saturating_add(secs(turn.ttl)),
        claims.device_id
    );
    let mut mac = <Hmac<sha1::Sha1> as hmac::Mac>::new_from_slice(turn.secret.as_bytes())
        .map_err(|_| ApiError::new(StatusCode::BAD_GATEWAY, "turn credentials unavailable"))?;
    mac.update(username.as_bytes());
    let credential = STANDARD.encode(mac.finalize().into_bytes());
    Ok(Json(TurnCredentials {
        urls: turn.urls.clone(),
        username,
        credential,
    }))
}

async fn ws_upgrade(
    State(st): St,
    client: Client,
    conn: Option<axum::Extension<crate::server::ConnSlot>>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let own = crate::cors::own_authorities(&headers, &uri);
    if !st
        .cors
        .ws_origin_allowed(crate::cors::request_origin(&headers), &own)
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin not allowed: add it to the server's --cors-origin list",
        )
        .into_response();
    }
    let Ok(upgrade) = upgrade else {
        return ApiError::new(StatusCode::UPGRADE_REQUIRED, "websocket upgrade required")
            .into_response();
    };
    if let Err(e) = st.rate(Endpoint::Ws, client.rate()) {
        return e.into_response();
    }
    let Some(client_slot) = st.client_sockets.acquire(Some(client.0)) else {
        return ApiError {
            message: "too many connections from this address".to_owned(),
            ..ApiError::rate_limited(10)
        }
        .into_response();
    };
    let Ok(permit) = Arc::clone(&st.sockets).try_acquire_owned() else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many connections")
            .into_response();
    };
    let frame = st.config.limits.max_ws_frame.max(MAX_WS_MESSAGE * 4);
    // Held from here so a shutdown racing the upgrade still waits for it.
    let tracked = st.socket_tasks.token();
    upgrade
        // Small initial buffers keep idle sockets cheap; they grow per message.
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(frame)
        .max_frame_size(frame)
        .on_upgrade(move |socket| async move {
            crate::ws::serve_socket(st, socket, permit).await;
            drop((tracked, client_slot, conn));
        })
}
