//! Opening the signaling WebSocket: signed upgrade request, bounded
//! handshake, and sorting upgrade refusals into permanent and transient.

use std::time::Duration;

use signaling_proto::consts::{MAX_WS_MESSAGE, MAX_WS_UPGRADE_ERROR_BODY};
use signaling_proto::{ErrorBody, SignedHeaders};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};

use crate::core::Failure;
use crate::error::SignalingError;
use crate::http::unix_now;

/// The open signaling socket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What one dial needs.
#[derive(Debug, Clone)]
pub(crate) struct DialTarget {
    /// `ws://host:port/v1/ws`, or `wss://…` (TLS via rustls; the bundled Mozilla
    /// roots and the operating system's store, see `http::trusted_roots`).
    pub url: String,
    /// The signed path, `/v1/ws`.
    pub path: String,
    /// HMAC secret; empty sends no signing headers.
    pub secret: String,
    /// Used to name the device in an `unknown device` error.
    pub device_id: String,
    /// Bound on TCP connect + upgrade (spec: 15 s).
    pub handshake_timeout: Duration,
}

/// Dials and upgrades. Refusals the spec calls permanent come back as
/// [`Failure::Permanent`]; everything else is transient.
pub(crate) async fn dial(target: DialTarget) -> Result<Ws, Failure<SignalingError>> {
    let transient = |detail: String| Failure::Transient(SignalingError::WebSocket(detail));
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| Failure::Permanent(SignalingError::WebSocket(format!("bad url: {e}"))))?;
    if let Some(headers) = SignedHeaders::new(&target.secret, &target.path, unix_now()) {
        for (name, value) in headers.pairs() {
            let value = HeaderValue::from_str(value).map_err(|e| transient(e.to_string()))?;
            request.headers_mut().insert(name, value);
        }
    }
    // A signaling message is at most 16 384 characters (≤ 4 bytes each).
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE * 4))
        .max_frame_size(Some(MAX_WS_MESSAGE * 4));
    let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    match tokio::time::timeout(target.handshake_timeout, connect).await {
        Err(_) => Err(transient(format!(
            "handshake took longer than {:?}",
            target.handshake_timeout
        ))),
        Ok(Ok((ws, _response))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            let body = &body[..body.len().min(MAX_WS_UPGRADE_ERROR_BODY)];
            let text = String::from_utf8_lossy(body);
            let error = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error)
                .unwrap_or_else(|_| text.chars().take(200).collect());
            match SignalingError::permanent_from(status, &error, &target.device_id) {
                Some(permanent) => Err(Failure::Permanent(permanent)),
                None => Err(transient(format!("upgrade refused: {status} {error}"))),
            }
        }
        Ok(Err(e)) => Err(transient(e.to_string())),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    /// The first byte of a TLS handshake record (a ClientHello).
    pub(crate) const TLS_HANDSHAKE_RECORD: u8 = 0x16;

    /// A plain-TCP server that is not TLS: it reports the first byte each
    /// connection sends, then answers in plaintext HTTP and closes. Lives as
    /// long as the test's runtime.
    pub(crate) async fn plain_tcp_server() -> (SocketAddr, mpsc::Receiver<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (first_bytes, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                if n > 0 && first_bytes.try_send(buf[0]).is_err() {
                    return;
                }
                let _ = conn
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn wss_dial_speaks_tls_and_a_non_tls_server_is_a_transient_failure() {
        let (addr, mut first_bytes) = plain_tcp_server().await;
        let target = DialTarget {
            url: format!("wss://{addr}/v1/ws"),
            path: "/v1/ws".into(),
            secret: "s".into(),
            device_id: "d".into(),
            handshake_timeout: Duration::from_secs(20),
        };
        let err = dial(target).await.map(|_| ()).unwrap_err();
        assert!(
            matches!(err, Failure::Transient(SignalingError::WebSocket(_))),
            "{err:?}"
        );
        assert_eq!(first_bytes.recv().await, Some(TLS_HANDSHAKE_RECORD));
    }
}
