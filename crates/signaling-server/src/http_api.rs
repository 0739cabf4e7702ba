//! The HTTP routes of signaling.md §1 and pairing.md §2, the request-signing
//! layer, and JSON error bodies for every failure.
//!
//! This file builds the router and its layers (security headers, body
//! timeout and size, CORS, signatures, JSON errors); the handlers live in
//! `auth` (challenge, token, health), `pairing` (pair initiate/complete,
//! unpair), `devices` (device deletion, TURN credentials, the WebSocket
//! upgrade), `probes` (`/healthz`, `/readyz`), and their shared extractors
//! and checks in `extract`.

mod auth;
mod devices;
mod extract;
mod pairing;
mod probes;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use signaling_proto::consts::*;
use signaling_proto::{ErrorBody, SigningError, api_path, verify_request};

use crate::api_error::ApiError;
use crate::state::AppState;

use auth::{challenge, health, token};
use devices::{delete_device, turn_credentials, ws_upgrade};
use pairing::{pair_complete, pair_initiate, unpair};

type St = State<Arc<AppState>>;

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
        .route("/health", get(health))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz));
    if p("/health") != "/health" {
        app = app.route(&p("/health"), get(health));
    }
    // Outermost first: security headers on everything, then CORS (which
    // answers a preflight before routing and signing), then JSON errors.
    // Routed requests by route pattern and status (also 429s and store
    // failures); only matched routes, so the labels stay the router's.
    app = app.route_layer(middleware::from_fn_with_state(
        Arc::clone(&state.metrics),
        crate::metrics::count_http,
    ));
    app.fallback(not_found)
        .layer(middleware::map_response(json_errors))
        .layer(DefaultBodyLimit::max(MAX_HTTP_BODY))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            bounded_body,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state.cors),
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
        );
        if let Err(e) = checked {
            st.metrics
                .auth_failure(crate::metrics::AuthFailure::RequestSignature);
            return ApiError::unauthorized(e.to_string()).into_response();
        }
        // The replay cache is the store's, so a nonce is accepted once by
        // the whole deployment, not once per instance.
        let nonce = get(HEADER_NONCE).unwrap_or_default();
        match st.db.record_request_nonce(nonce, now, &st.bounds).await {
            Ok(true) => {}
            Ok(false) => {
                return ApiError::unauthorized(SigningError::Replayed.to_string()).into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
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
