//! A hostile signaling server for tests: [`SignalingRelay`] sits between the
//! devices and the real bundled server, forwards every HTTP request and every
//! WebSocket message, and lets a test's [`Hook`] pass, rewrite, drop or inject
//! signaling messages in either direction (README trust model: the server may
//! drop, delay, reorder, replay or rewrite anything).
//!
//! HTTP goes through unchanged (any method, path, query, headers except
//! hop-by-hop and `Host`, body), each request forwarded exactly once (the
//! server's replay cache sees every signed nonce once). A WebSocket upgrade on
//! `…/ws` opens the relay's own socket to the server with the same path, query
//! and signing headers; from then on every text message passes the hook. The
//! relay learns which socket is the host's and which the phone's from the
//! claims of the JWT in the socket's first `auth` message.
//!
//! Queues are bounded; dropping the relay stops its listener and every socket.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as TsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Messages waiting to be written to one side of one socket pair.
const SOCKET_QUEUE: usize = 256;
/// Largest HTTP body the relay forwards (the server's own limit is far lower).
const MAX_BODY: usize = 1 << 20;
/// Frames kept in [`RelayHandle::frames`]; older ones are discarded.
const MAX_LOG: usize = 4096;
/// Timeout of one forwarded HTTP request and of the upstream WS handshake.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Which device a socket belongs to (from its JWT's `deviceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A host (`muxlink pair` or the agent).
    Host,
    /// A phone.
    Phone,
    /// No `auth` seen yet, or a token the relay could not read.
    Unknown,
}

/// Direction of a WebSocket message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Device → server (`targetDeviceId` names the addressee).
    Up,
    /// Server → device (after a relay, `targetDeviceId` names the sender).
    Down,
}

/// One WebSocket text message as the hook sees it.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The socket pair it travels on (ids start at 1, in accept order).
    pub conn: u64,
    /// The device the socket belongs to.
    pub role: Role,
    /// That device's id (empty before `auth`).
    pub device_id: String,
    /// Direction.
    pub dir: Dir,
    /// The text as received.
    pub text: String,
}

impl Frame {
    /// The text as a JSON object (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or(serde_json::Value::Null)
    }

    /// The message's `type` ("" when absent).
    pub fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }

    /// Whether this frame travels `dir` on a socket of `role` and has type `kind`.
    pub fn is(&self, role: Role, dir: Dir, kind: &str) -> bool {
        self.role == role && self.dir == dir && self.kind() == kind
    }
}

/// What happens to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward unchanged.
    Pass,
    /// Forward this text instead.
    Replace(String),
    /// Forward nothing.
    Drop,
}

/// The tamper hook: called for every text message, in order per socket, on
/// the socket's own task (keep it quick; hand slow work to a task of your own,
/// and inject its results through the [`RelayHandle`]).
pub type Hook = Arc<dyn Fn(&Frame, &RelayHandle) -> Verdict + Send + Sync>;

/// The hook that forwards everything.
pub fn pass_through() -> Hook {
    Arc::new(|_, _| Verdict::Pass)
}

struct Conn {
    role: Role,
    device_id: String,
    to_client: mpsc::Sender<String>,
    to_server: mpsc::Sender<String>,
}

struct Shared {
    upstream: String,
    hook: RwLock<Hook>,
    conns: Mutex<BTreeMap<u64, Conn>>,
    next_conn: AtomicU64,
    log: Mutex<Vec<Frame>>,
    http: ureq::Agent,
    cancel: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A handle to a running relay: swap the hook, inject messages, read the log.
#[derive(Clone)]
pub struct RelayHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle")
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl RelayHandle {
    /// Replaces the hook; messages already being handled keep the old one.
    pub fn set_hook(&self, hook: Hook) {
        *self.shared.hook.write().unwrap_or_else(|p| p.into_inner()) = hook;
    }

    /// Sends `text` on socket pair `conn`: to its device (`Dir::Down`) or to
    /// the server as if the device sent it (`Dir::Up`). False when the socket
    /// is gone or its queue is full.
    pub fn inject_to(&self, conn: u64, dir: Dir, text: &str) -> bool {
        let conns = lock(&self.shared.conns);
        let Some(c) = conns.get(&conn) else {
            return false;
        };
        let q = match dir {
            Dir::Down => &c.to_client,
            Dir::Up => &c.to_server,
        };
        q.try_send(text.to_owned()).is_ok()
    }

    /// [`RelayHandle::inject_to`] on every live socket of `role`; returns how
    /// many took the message.
    pub fn inject(&self, role: Role, dir: Dir, text: &str) -> usize {
        let ids: Vec<u64> = lock(&self.shared.conns)
            .iter()
            .filter(|(_, c)| c.role == role)
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter(|id| self.inject_to(*id, dir, text))
            .count()
    }

    /// Live socket pairs: `(conn, role, device id)`.
    pub fn connections(&self) -> Vec<(u64, Role, String)> {
        lock(&self.shared.conns)
            .iter()
            .map(|(id, c)| (*id, c.role, c.device_id.clone()))
            .collect()
    }

    /// The last messages the relay saw (before the hook's verdict), oldest first.
    pub fn frames(&self) -> Vec<Frame> {
        lock(&self.shared.log).clone()
    }

    fn hook(&self) -> Hook {
        Arc::clone(&self.shared.hook.read().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A hostile signaling server in front of a real one. Stops when dropped.
pub struct SignalingRelay {
    addr: SocketAddr,
    handle: RelayHandle,
    _stop: DropGuard,
}

impl std::fmt::Debug for SignalingRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingRelay")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SignalingRelay {
    /// Listens on 127.0.0.1:0 and forwards to `upstream` (the real server's
    /// URL without API version, `http://…`), passing everything through until
    /// a hook is set.
    pub async fn start(upstream: &str) -> Result<SignalingRelay> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the relay")?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(UPSTREAM_TIMEOUT))
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .build()
            .into();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            hook: RwLock::new(pass_through()),
            conns: Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(1),
            log: Mutex::new(Vec::new()),
            http,
            cancel: cancel.clone(),
        });
        let handle = RelayHandle { shared };
        let app = Router::new().fallback(forward).with_state(handle.clone());
        let stop = cancel.clone();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::debug!(error = %e, "relay listener ended");
            }
        });
        Ok(SignalingRelay {
            addr,
            handle,
            _stop: cancel.drop_guard(),
        })
    }

    /// The relay's URL (what devices are told the server is).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A handle for hooks and attack tasks.
    pub fn handle(&self) -> RelayHandle {
        self.handle.clone()
    }

    /// Replaces the hook.
    pub fn set_hook(&self, hook: Hook) {
        self.handle.set_hook(hook);
    }
}

/// Headers that belong to one hop, never forwarded (RFC 9110 §7.6.1), plus
/// `Host` and `Content-Length` (each hop sets its own).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

fn is_ws_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Status, headers and body of a forwarded HTTP response.
type Upstreamed = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);

fn error_response(status: StatusCode, text: String) -> Response {
    (status, text).into_response()
}

async fn forward(State(relay): State<RelayHandle>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let path_q = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    if parts.uri.path().ends_with("/ws") && is_ws_upgrade(&parts.headers) {
        let headers = parts.headers.clone();
        return match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(upgrade) => ws_forward(relay, upgrade, &path_q, &headers).await,
            Err(e) => e.into_response(),
        };
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return error_response(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
    };
    let mut builder = ureq::http::Request::builder()
        .method(parts.method.as_str())
        .uri(format!("{}{path_q}", relay.shared.upstream));
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
    }
    let agent = relay.shared.http.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Upstreamed> {
        let mut resp = if body.is_empty() {
            agent.run(builder.body(())?)?
        } else {
            agent.run(builder.body(body.to_vec())?)?
        };
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY as u64)
            .read_to_vec()?;
        Ok((status, headers, bytes))
    })
    .await;
    let (status, headers, bytes) = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return error_response(StatusCode::BAD_GATEWAY, format!("{e:#}")),
        Err(e) => return error_response(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) && !hop_by_hop(&n)
        {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

/// Opens the relay's own socket to the server first, so a refused upgrade
/// (bad signature, replayed nonce) reaches the device as the server's answer.
async fn ws_forward(
    relay: RelayHandle,
    upgrade: WebSocketUpgrade,
    path_q: &str,
    headers: &HeaderMap,
) -> Response {
    let base = &relay.shared.upstream;
    let ws_base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        format!("ws://{}", base.trim_start_matches("http://"))
    };
    let mut request = match format!("{ws_base}{path_q}").into_client_request() {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    for (name, value) in headers {
        if !hop_by_hop(name) && !name.as_str().starts_with("sec-websocket-") {
            request.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let dial = tokio_tungstenite::connect_async(request);
    let upstream = match tokio::time::timeout(UPSTREAM_TIMEOUT, dial).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            let (parts, body) = resp.into_parts();
            let mut out = Response::new(Body::from(body.unwrap_or_default()));
            *out.status_mut() = parts.status;
            for (n, v) in &parts.headers {
                if !hop_by_hop(n) {
                    out.headers_mut().append(n.clone(), v.clone());
                }
            }
            return out;
        }
        Ok(Err(e)) => return error_response(StatusCode::BAD_GATEWAY, e.to_string()),
        Err(_) => {
            return error_response(StatusCode::GATEWAY_TIMEOUT, "upstream handshake".into());
        }
    };
    upgrade.on_upgrade(move |client| pump(relay, client, upstream))
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The device and type of a JWT, from its unverified claims.
fn claims_of(token: &str) -> Option<(Role, String)> {
    let middle = token.split('.').nth(1)?;
    let raw = URL_SAFE_NO_PAD.decode(middle).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    let role = match v["deviceType"].as_str()? {
        "host" => Role::Host,
        "mobile" => Role::Phone,
        _ => Role::Unknown,
    };
    let id = v["deviceId"].as_str().or(v["sub"].as_str())?.to_owned();
    Some((role, id))
}

/// One socket pair: two readers that run the hook, two writers that drain
/// the bounded queues. The first of the four to end ends the pair.
async fn pump(relay: RelayHandle, client: WebSocket, upstream: Upstream) {
    let shared = Arc::clone(&relay.shared);
    let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
    let (to_client, mut client_q) = mpsc::channel::<String>(SOCKET_QUEUE);
    let (to_server, mut server_q) = mpsc::channel::<String>(SOCKET_QUEUE);
    lock(&shared.conns).insert(
        id,
        Conn {
            role: Role::Unknown,
            device_id: String::new(),
            to_client: to_client.clone(),
            to_server: to_server.clone(),
        },
    );
    let (mut client_tx, mut client_rx) = client.split();
    let (mut server_tx, mut server_rx) = upstream.split();

    let up = {
        let relay = relay.clone();
        async move {
            while let Some(Ok(msg)) = client_rx.next().await {
                match msg {
                    AxMessage::Text(t) => {
                        let text = t.as_str().to_owned();
                        if let Some(out) = relay.observe(id, Dir::Up, text)
                            && to_server.send(out).await.is_err()
                        {
                            break;
                        }
                    }
                    AxMessage::Close(_) => break,
                    // Binary frames are not part of the protocol; ping/pong are per hop.
                    _ => {}
                }
            }
        }
    };
    let down = {
        let relay = relay.clone();
        async move {
            while let Some(Ok(msg)) = server_rx.next().await {
                match msg {
                    TsMessage::Text(t) => {
                        let text = t.as_str().to_owned();
                        if let Some(out) = relay.observe(id, Dir::Down, text)
                            && to_client.send(out).await.is_err()
                        {
                            break;
                        }
                    }
                    TsMessage::Close(_) => break,
                    _ => {}
                }
            }
        }
    };
    let write_client = async move {
        while let Some(text) = client_q.recv().await {
            if client_tx.send(AxMessage::Text(text.into())).await.is_err() {
                break;
            }
        }
        let _ = client_tx.close().await;
    };
    let write_server = async move {
        while let Some(text) = server_q.recv().await {
            if server_tx.send(TsMessage::Text(text.into())).await.is_err() {
                break;
            }
        }
        let _ = server_tx.close().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
        () = write_client => {}
        () = write_server => {}
        () = shared.cancel.cancelled() => {}
    }
    // Dropping the halves closes both sockets.
    lock(&shared.conns).remove(&id);
}

impl RelayHandle {
    /// Logs a frame, learns the socket's device from `auth`, runs the hook.
    /// Returns the text to forward, if any.
    fn observe(&self, conn: u64, dir: Dir, text: String) -> Option<String> {
        let (role, device_id) = {
            let mut conns = lock(&self.shared.conns);
            let c = conns.get_mut(&conn)?;
            if dir == Dir::Up && c.role == Role::Unknown {
                let v: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                if v["type"] == "auth"
                    && let Some((role, id)) = v["token"].as_str().and_then(claims_of)
                {
                    c.role = role;
                    c.device_id = id;
                }
            }
            (c.role, c.device_id.clone())
        };
        let frame = Frame {
            conn,
            role,
            device_id,
            dir,
            text,
        };
        {
            let mut log = lock(&self.shared.log);
            if log.len() >= MAX_LOG {
                log.remove(0);
            }
            log.push(frame.clone());
        }
        match (self.hook())(&frame, self) {
            Verdict::Pass => Some(frame.text),
            Verdict::Replace(t) => Some(t),
            Verdict::Drop => None,
        }
    }
}
