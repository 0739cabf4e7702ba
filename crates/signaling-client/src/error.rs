//! Error types of the signaling client: what `run` and `send` return, and
//! what the blocking HTTP helpers return.

/// Why an HTTP call to the signaling server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The request never got an answer (connection refused, timeout, DNS,
    /// failed TLS handshake or certificate check on an `https://` URL).
    #[error("request to {url} failed: {detail}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The server answered with a non-success status.
    #[error("{url} answered {status}: {error}")]
    Status {
        /// The URL requested.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The `error` field of the JSON body (or the raw body when not JSON).
        error: String,
    },
    /// The call got no answer within its timeout (the server accepted the
    /// connection but did not respond).
    #[error(
        "request to {url} failed: no answer within {secs} s (the server accepts connections but does not respond)"
    )]
    Timeout {
        /// The URL requested.
        url: String,
        /// The timeout, in seconds.
        secs: u64,
    },
    /// A 404 where every muxlink endpoint exists: the server does not serve
    /// this API version under `base` (permanent; fix `api_version`).
    #[error("{}", api_not_served(version, base))]
    ApiNotServed {
        /// The API base asked, e.g. `https://signal.example.net/v2`.
        base: String,
        /// The configured API version (empty: no prefix).
        version: String,
    },
    /// The answer was not what the spec promises (bad JSON, empty nonce or
    /// token, body over the 65 536-byte limit).
    #[error("invalid response from {url}: {detail}")]
    InvalidResponse {
        /// The URL requested.
        url: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// "the server does not serve API v2 at https://h/v2: check api_version".
fn api_not_served(version: &str, base: &str) -> String {
    if version.is_empty() {
        format!(
            "the server does not serve the API without a version prefix at {base}: check api_version"
        )
    } else {
        format!("the server does not serve API {version} at {base}: check api_version")
    }
}

impl HttpError {
    /// True when retrying cannot help: 401 with a permanent signing error
    /// or `unknown device` (signaling.md §5), or an API version the server
    /// does not serve.
    pub fn is_permanent(&self) -> bool {
        match self {
            HttpError::Status { status, error, .. } => {
                signaling_proto::is_permanent_error(*status, error)
            }
            HttpError::ApiNotServed { .. } => true,
            _ => false,
        }
    }
}

/// Errors of [`SignalingClient`](crate::SignalingClient).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalingError {
    /// The server refused the request-signing headers: permanent.
    #[error(
        "the signaling server rejected this agent's request signature ({detail}): set the deployment's request-signing secret as MUXLINK_HMAC_SECRET or hmac_secret in config.toml"
    )]
    SignatureRejected {
        /// The server's `error` string, e.g. `invalid client signature`.
        detail: String,
    },
    /// The server does not know this device: it was unpaired or removed.
    #[error(
        "the signaling server does not know this device ({device_id}): it was unpaired or removed; pair again"
    )]
    UnknownDevice {
        /// This device's id.
        device_id: String,
    },
    /// The server does not serve the configured API version: permanent.
    #[error("{}", api_not_served(version, base))]
    ApiNotServed {
        /// The API base asked, e.g. `https://signal.example.net/v2`.
        base: String,
        /// The configured API version.
        version: String,
    },
    /// The proxy named by the environment cannot carry the WebSocket
    /// (permanent: only `http://` proxies are spoken).
    #[error("{0}")]
    Proxy(String),
    /// The server refused the WebSocket upgrade (transient statuses).
    #[error("signaling websocket upgrade refused: {status} {error}")]
    UpgradeRefused {
        /// HTTP status of the refusal.
        status: u16,
        /// The `error` field of the JSON body (or the raw body).
        error: String,
    },
    /// `send` while the link is not authenticated.
    #[error("not connected to the signaling server; the message was not sent")]
    NotConnected,
    /// `send` while the outgoing queue is full.
    #[error("the signaling send queue is full; the message was not sent")]
    QueueFull,
    /// The client was closed.
    #[error("the signaling client is closed")]
    Closed,
    /// A transient failure (only surfaced by helpers, never ends `run`).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The WebSocket could not be opened (TCP, TLS for `wss://`, upgrade) or
    /// broke (transient).
    #[error("signaling websocket: {0}")]
    WebSocket(String),
}

impl SignalingError {
    /// The permanent error a failed HTTP call stands for, if it is one.
    pub(crate) fn permanent_from_http(e: &HttpError, device_id: &str) -> Option<Self> {
        match e {
            HttpError::Status { status, error, .. } => {
                Self::permanent_from(*status, error, device_id)
            }
            HttpError::ApiNotServed { base, version } => Some(SignalingError::ApiNotServed {
                base: base.clone(),
                version: version.clone(),
            }),
            _ => None,
        }
    }

    /// The permanent error for a refused HTTP call or WS upgrade, if it is one.
    pub(crate) fn permanent_from(status: u16, error: &str, device_id: &str) -> Option<Self> {
        if !signaling_proto::is_permanent_error(status, error) {
            return None;
        }
        Some(if error == signaling_proto::consts::ERR_UNKNOWN_DEVICE {
            SignalingError::UnknownDevice {
                device_id: device_id.to_owned(),
            }
        } else {
            SignalingError::SignatureRejected {
                detail: error.to_owned(),
            }
        })
    }
}
