//! Opening the signaling WebSocket, for the host's driver and the phone
//! (`mobile-client`) alike: signed upgrade request, the proxy of the
//! environment (an HTTP CONNECT tunnel, see `proxy`), TLS for `wss://`, the
//! bounded handshake, and refusals sorted into permanent and transient.

use std::time::Duration;

use signaling_proto::consts::{MAX_WS_MESSAGE, MAX_WS_UPGRADE_ERROR_BODY};
use signaling_proto::{ErrorBody, SignedHeaders, api_base, api_path, ws_url};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};

use crate::core::Failure;
use crate::error::SignalingError;
use crate::http::unix_now;
use crate::proxy::{self, ProxyError};

/// Default bound on TCP connect + WebSocket upgrade (spec: 15 s).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The open signaling socket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What one dial needs.
#[derive(Debug, Clone)]
pub struct DialTarget {
    /// `ws://host:port/v1/ws`, or `wss://…` (TLS via rustls; the bundled Mozilla
    /// roots and the operating system's store).
    pub url: String,
    /// The signed path, `/v1/ws`.
    pub path: String,
    /// The API base and version, named when the server does not serve it.
    pub api_base: String,
    /// The configured API version.
    pub api_version: String,
    /// HMAC secret; empty sends no signing headers.
    pub secret: String,
    /// Used to name the device in an `unknown device` error.
    pub device_id: String,
    /// Bound on proxy tunnel + TCP connect + TLS + upgrade (spec: 15 s).
    pub handshake_timeout: Duration,
}

impl DialTarget {
    /// The socket of `server_url` (bare, e.g. `https://h`) under
    /// `api_version`, with the spec's 15 s handshake bound.
    pub fn new(server_url: &str, api_version: &str, secret: &str, device_id: &str) -> Self {
        DialTarget {
            url: ws_url(server_url, api_version),
            path: api_path(api_version, "/ws"),
            api_base: api_base(server_url, api_version),
            api_version: api_version.to_owned(),
            secret: secret.to_owned(),
            device_id: device_id.to_owned(),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }
}

/// Dials and upgrades within the handshake bound, through the proxy the
/// environment names unless `NO_PROXY` matches the host. Refusals the spec
/// calls permanent, a 404 (the server does not serve this API version) and
/// a proxy of an unsupported kind come back as [`Failure::Permanent`];
/// everything else is transient.
pub async fn dial(target: &DialTarget) -> Result<Socket, Failure<SignalingError>> {
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| Failure::Permanent(SignalingError::WebSocket(format!("bad url: {e}"))))?;
    if let Some(headers) = SignedHeaders::new(&target.secret, &target.path, unix_now()) {
        for (name, value) in headers.pairs() {
            let value = HeaderValue::from_str(value)
                .map_err(|e| Failure::Transient(SignalingError::WebSocket(e.to_string())))?;
            request.headers_mut().insert(name, value);
        }
    }
    match tokio::time::timeout(target.handshake_timeout, connect(target, request)).await {
        Err(_) => Err(Failure::Transient(SignalingError::WebSocket(format!(
            "handshake took longer than {:?}",
            target.handshake_timeout
        )))),
        Ok(result) => result,
    }
}

/// TCP (direct or tunnelled), then TLS and the upgrade.
async fn connect(target: &DialTarget, request: Request) -> Result<Socket, Failure<SignalingError>> {
    let transient = |detail: String| Failure::Transient(SignalingError::WebSocket(detail));
    let uri = request.uri();
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tls = uri.scheme_str() == Some("wss");
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let stream = match proxy::from_env(&host, port) {
        Some(proxy) => proxy::connect_tunnel(&proxy, &host, port)
            .await
            .map_err(|e| match e {
                ProxyError::Unsupported { .. } => {
                    Failure::Permanent(SignalingError::Proxy(e.to_string()))
                }
                ProxyError::Tunnel { .. } => transient(e.to_string()),
            })?,
        None => {
            let stream = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| transient(format!("cannot connect to {host}:{port}: {e}")))?;
            let _ = stream.set_nodelay(true);
            stream
        }
    };
    // A signaling message is at most 16 384 characters (≤ 4 bytes each).
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE * 4))
        .max_frame_size(Some(MAX_WS_MESSAGE * 4));
    let upgrade =
        tokio_tungstenite::client_async_tls_with_config(request, stream, Some(config), None);
    match upgrade.await {
        Ok((ws, _response)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            let body = &body[..body.len().min(MAX_WS_UPGRADE_ERROR_BODY)];
            let text = String::from_utf8_lossy(body);
            let error = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error)
                .unwrap_or_else(|_| text.chars().take(200).collect());
            if status == 404 {
                return Err(Failure::Permanent(SignalingError::ApiNotServed {
                    base: target.api_base.clone(),
                    version: target.api_version.clone(),
                }));
            }
            match SignalingError::permanent_from(status, &error, &target.device_id) {
                Some(permanent) => Err(Failure::Permanent(permanent)),
                None => Err(Failure::Transient(SignalingError::UpgradeRefused {
                    status,
                    error,
                })),
            }
        }
        Err(e) => Err(transient(e.to_string())),
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
        let mut target = DialTarget::new(&format!("https://{addr}"), "v1", "s", "d");
        target.handshake_timeout = Duration::from_secs(20);
        let err = dial(&target).await.map(|_| ()).unwrap_err();
        assert!(
            matches!(err, Failure::Transient(SignalingError::WebSocket(_))),
            "{err:?}"
        );
        assert_eq!(first_bytes.recv().await, Some(TLS_HANDSHAKE_RECORD));
    }
}
