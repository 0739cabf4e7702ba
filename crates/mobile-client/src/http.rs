//! Blocking HTTP calls to the signaling server (ureq), every one signed with the
//! muxlink HMAC headers; async callers run them through `spawn_blocking`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use signaling_proto::consts::{DEFAULT_API_VERSION, HTTP_TIMEOUT, MAX_HTTP_BODY};
use signaling_proto::{
    ChallengeRequest, ChallengeResponse, ErrorBody, SignedHeaders, TokenRequest, TokenResponse,
    api_base, api_path,
};

use crate::error::ClientError;
use crate::identity::PhoneIdentity;

/// Wall-clock Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One signed request; returns `(status, body)` whatever the status, reading at
/// most 65 536 bytes of body. An empty `secret` sends no signing headers.
pub fn signed_request(
    method: &str,
    url: &str,
    path: &str,
    secret: &str,
    bearer: Option<&str>,
    body: Option<String>,
) -> Result<(u16, String), ClientError> {
    let transport = |detail: String| ClientError::Transport {
        url: url.to_owned(),
        detail,
    };
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    if let Some(headers) = SignedHeaders::new(secret, path, unix_now()) {
        for (name, value) in headers.pairs() {
            builder = builder.header(name, value);
        }
    }
    if let Some(token) = bearer {
        builder = builder.header("Authorization", format!("Bearer {token}"));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(HTTP_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let result = match body {
        Some(json) => {
            let req = builder
                .header("Content-Type", "application/json")
                .body(json)
                .map_err(|e| transport(e.to_string()))?;
            agent.run(req)
        }
        None => {
            let req = builder.body(()).map_err(|e| transport(e.to_string()))?;
            agent.run(req)
        }
    };
    let mut resp = result.map_err(|e| transport(e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_HTTP_BODY as u64)
        .read_to_string()
        .map_err(|e| ClientError::InvalidResponse {
            url: url.to_owned(),
            detail: e.to_string(),
        })?;
    Ok((status, text))
}

/// A signed JSON call to `endpoint` (e.g. `/auth/token`) expecting 2xx and a `T`.
pub fn signed_json<B: Serialize, T: DeserializeOwned>(
    method: &str,
    server_url: &str,
    endpoint: &str,
    secret: &str,
    body: &B,
) -> Result<T, ClientError> {
    let url = format!("{}{}", api_base(server_url, DEFAULT_API_VERSION), endpoint);
    let path = api_path(DEFAULT_API_VERSION, endpoint);
    let json = serde_json::to_string(body).map_err(|e| ClientError::InvalidResponse {
        url: url.clone(),
        detail: format!("cannot encode request: {e}"),
    })?;
    let (status, text) = signed_request(method, &url, &path, secret, None, Some(json))?;
    if !(200..300).contains(&status) {
        let error = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or_else(|_| text.chars().take(200).collect());
        return Err(ClientError::Http { url, status, error });
    }
    serde_json::from_str(&text).map_err(|e| ClientError::InvalidResponse {
        url,
        detail: e.to_string(),
    })
}

/// `POST /auth/challenge`: a fresh nonce for this device.
pub fn fetch_challenge(
    server_url: &str,
    secret: &str,
    device_id: &str,
) -> Result<String, ClientError> {
    let resp: ChallengeResponse = signed_json(
        "POST",
        server_url,
        "/auth/challenge",
        secret,
        &ChallengeRequest {
            device_id: device_id.to_owned(),
        },
    )?;
    if resp.nonce.is_empty() {
        return Err(ClientError::InvalidResponse {
            url: server_url.to_owned(),
            detail: "empty challenge nonce".into(),
        });
    }
    Ok(resp.nonce)
}

/// Challenge → sign → `POST /auth/token`: a JWT for the WebSocket.
pub fn fetch_token(
    identity: &PhoneIdentity,
    server_url: &str,
    secret: &str,
) -> Result<String, ClientError> {
    let device_id = identity.device_id();
    let nonce = fetch_challenge(server_url, secret, &device_id)?;
    let signature = identity.sign_challenge(&nonce);
    let resp: TokenResponse = signed_json(
        "POST",
        server_url,
        "/auth/token",
        secret,
        &TokenRequest {
            device_id,
            nonce,
            signature,
        },
    )?;
    if resp.token.is_empty() {
        return Err(ClientError::InvalidResponse {
            url: server_url.to_owned(),
            detail: "empty token".into(),
        });
    }
    Ok(resp.token)
}

/// Runs a blocking HTTP call off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ClientError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ClientError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ClientError::Transport {
            url: String::new(),
            detail: format!("http task failed: {e}"),
        })?
}
