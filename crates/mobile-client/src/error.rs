//! Errors of the phone client, one enum for every layer it drives.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Reading or writing the config directory failed.
    #[error("config store: {0}")]
    Io(#[from] std::io::Error),
    /// A stored file is not what muxlink writes.
    #[error("config store: {0}")]
    Store(String),
    /// The phone has not been paired yet.
    #[error("not paired: run `muxlink-phone pair <payload>` first")]
    NotPaired,
    /// The network call did not complete (connect, timeout, TLS, ...).
    #[error("cannot reach {url}: {detail}")]
    Transport {
        /// URL of the request.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The server answered with an error status.
    #[error("server refused {url}: {status} {error}")]
    Http {
        /// URL of the request.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's `error` string.
        error: String,
    },
    /// The server answered with something that is not the expected body.
    #[error("unexpected reply from {url}: {detail}")]
    InvalidResponse {
        /// URL of the request.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The QR payload or a key in it is malformed.
    #[error("invalid pairing payload: {0}")]
    Payload(String),
    /// The server's pairing reply names another host than the QR code: it may be hostile.
    #[error("pairing aborted: the server's reply does not match the QR code ({0})")]
    PairingMismatch(&'static str),
    /// The signaling WebSocket failed or closed.
    #[error("signaling: {0}")]
    Signaling(String),
    /// The signaling server rejected our `auth`.
    #[error("signaling auth rejected: {0}")]
    AuthRejected(String),
    /// The host refused the connection (`connection_rejected`).
    #[error("host rejected the connection: {0}")]
    Rejected(String),
    /// The host is not online.
    #[error("host is offline")]
    HostOffline,
    /// The host misbehaved before our proof went out (bad challenge, wrong first message).
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The host did not prove the pairing key after our proof (no, malformed
    /// or wrong `auth_ok`, or no DTLS certificate): a relay may sit in the
    /// middle, so nothing was shown or sent on the channel.
    #[error(
        "the computer could not prove the pairing key — the connection may be intercepted ({0})"
    )]
    Intercepted(String),
    /// The WebRTC layer failed.
    #[error("webrtc: {0}")]
    Rtc(#[from] rtc_transport::RtcError),
    /// The host answered a request with an `error` event.
    #[error("host error {code}: {message}")]
    Remote {
        /// Error code (terminal-protocol §8).
        code: String,
        /// Human-readable message.
        message: String,
    },
    /// The host answered attach with `pane_closed`: the pane does not exist.
    #[error("pane {0} is closed")]
    PaneClosed(String),
    /// No answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

/// The signed HTTP calls are `signaling_client::http`'s; each of its errors
/// keeps its URL and detail in the matching variant here.
impl From<signaling_client::HttpError> for ClientError {
    fn from(e: signaling_client::HttpError) -> Self {
        use signaling_client::HttpError;
        match e {
            HttpError::Transport { url, detail } => ClientError::Transport { url, detail },
            HttpError::Timeout { ref url, .. } => ClientError::Transport {
                url: url.clone(),
                detail: e.to_string(),
            },
            HttpError::Status { url, status, error } => ClientError::Http { url, status, error },
            HttpError::InvalidResponse { url, detail } => {
                ClientError::InvalidResponse { url, detail }
            }
            // `HttpError` is non-exhaustive: a later kind keeps its own message.
            other => ClientError::Signaling(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling_client::HttpError;

    #[test]
    fn http_errors_keep_their_url_status_and_server_message() {
        let e = ClientError::from(HttpError::Status {
            url: "http://h/v1/auth/token".into(),
            status: 401,
            error: "unknown device".into(),
        });
        assert!(matches!(&e, ClientError::Http { status: 401, .. }));
        assert_eq!(
            e.to_string(),
            "server refused http://h/v1/auth/token: 401 unknown device"
        );
        let e = ClientError::from(HttpError::Transport {
            url: "http://h/v1/auth/challenge".into(),
            detail: "connection refused".into(),
        });
        assert_eq!(
            e.to_string(),
            "cannot reach http://h/v1/auth/challenge: connection refused"
        );
        let e = ClientError::from(HttpError::InvalidResponse {
            url: "http://h/v1/auth/token".into(),
            detail: "empty token".into(),
        });
        assert_eq!(
            e.to_string(),
            "unexpected reply from http://h/v1/auth/token: empty token"
        );
    }
}
