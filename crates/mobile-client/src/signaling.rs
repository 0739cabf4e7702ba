//! The phone's signaling WebSocket: the signed dial of
//! `signaling_client::ws` (the host's own, with its proxy handling), `auth`
//! (its reply sorted by `signaling_client::core::classify`, the host's own
//! rule), presence every 30 s, host presence tracking, and routing of relayed
//! messages, typed as [`Signal`]s, to the connection that waits for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use signaling_client::SignalingError;
use signaling_client::core::{Failure, Inbound, classify};
use signaling_client::http::fetch_token;
use signaling_client::ws::{DialTarget, Socket as Ws, dial};
use signaling_proto::consts::{DEFAULT_API_VERSION, ERR_UNKNOWN_DEVICE, PRESENCE_INTERVAL};
use signaling_proto::{Signal, SignalingMessage};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::error::ClientError;
use crate::http::blocking;
use crate::identity::PhoneIdentity;

const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Outgoing messages waiting for the socket.
const OUT_QUEUE: usize = 64;
/// Messages routed to one connection, and unrouted messages for the app.
const ROUTE_QUEUE: usize = 256;

/// Settings of one signaling session.
#[derive(Debug, Clone)]
pub struct SignalingOptions {
    /// Server URL without API version, e.g. `http://127.0.0.1:5000`.
    pub server_url: String,
    /// Request-signing secret (empty: no signing headers).
    pub hmac_secret: String,
    /// API version (default `v1`; empty: no prefix).
    pub api_version: String,
    /// Name sent in `auth` (empty: none).
    pub name: String,
    /// Presence interval (spec: 30 s).
    pub presence_interval: Duration,
}

impl SignalingOptions {
    /// Defaults for a server URL.
    pub fn new(server_url: &str) -> Self {
        SignalingOptions {
            server_url: server_url.to_owned(),
            hmac_secret: String::new(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            name: String::new(),
            presence_interval: PRESENCE_INTERVAL,
        }
    }
}

type Routes = Arc<Mutex<HashMap<String, mpsc::Sender<Signal>>>>;

/// What the session's task is asked to do, in order.
// Moved once through the queue: boxing the message would only add an
// allocation per send (the same reasoning as `Signal` itself).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Command {
    /// Write this message.
    Send(Signal),
    /// Close the socket (close 1000) and end.
    Close,
}

/// A live, authenticated signaling session. Dropping it closes the socket.
pub struct Signaling {
    device_id: String,
    out: mpsc::Sender<Command>,
    routes: Routes,
    other: tokio::sync::Mutex<mpsc::Receiver<Signal>>,
    hosts: watch::Receiver<HashMap<String, String>>,
    closed: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Signaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signaling")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl Drop for Signaling {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Signaling {
    /// Exchanges a JWT, opens the WebSocket with a signed upgrade, sends `auth`
    /// and waits for the server's verdict.
    pub async fn connect(
        identity: &PhoneIdentity,
        opts: &SignalingOptions,
    ) -> Result<Signaling, ClientError> {
        let id = identity.clone();
        let (url, version, secret) = (
            opts.server_url.clone(),
            opts.api_version.clone(),
            opts.hmac_secret.clone(),
        );
        let token = blocking(move || Ok(fetch_token(&id, &url, &version, &secret)?)).await?;
        Self::connect_with_token(identity, opts, &token).await
    }

    /// Like [`Signaling::connect`] with a JWT the caller already has.
    pub async fn connect_with_token(
        identity: &PhoneIdentity,
        opts: &SignalingOptions,
        token: &str,
    ) -> Result<Signaling, ClientError> {
        let err = |d: String| ClientError::Signaling(d);
        let target = DialTarget::new(
            &opts.server_url,
            &opts.api_version,
            &opts.hmac_secret,
            identity.device_id(),
        );
        let mut ws = dial(&target).await.map_err(|failure| {
            let e = match failure {
                Failure::Permanent(e) | Failure::Transient(e) => e,
            };
            // A refused upgrade keeps its status and the server's words.
            let refused = |status: u16, error: String| ClientError::Http {
                url: target.url.clone(),
                status,
                error,
            };
            match e {
                SignalingError::UpgradeRefused { status, error } => refused(status, error),
                SignalingError::SignatureRejected { detail } => refused(401, detail),
                SignalingError::UnknownDevice { .. } => refused(401, ERR_UNKNOWN_DEVICE.into()),
                other => err(other.to_string()),
            }
        })?;

        let auth = Signal::Auth {
            token: token.to_owned(),
            name: opts.name.clone(),
        };
        tokio::time::timeout(WRITE_TIMEOUT, ws.send(text(auth)))
            .await
            .map_err(|_| err("auth write timed out".into()))?
            .map_err(|e| err(e.to_string()))?;
        let reply = tokio::time::timeout(AUTH_TIMEOUT, async {
            while let Some(frame) = ws.next().await {
                match frame {
                    Ok(Message::Text(t)) => {
                        if let Ok(m) = SignalingMessage::parse(t.as_str()) {
                            return Ok(Signal::from(m));
                        }
                    }
                    Ok(Message::Close(f)) => {
                        let why = f
                            .map(|f| format!("{} {}", f.code, f.reason))
                            .unwrap_or_default();
                        return Err(ClientError::AuthRejected(format!("socket closed {why}")));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(err(e.to_string())),
                }
            }
            Err(err("socket closed before auth reply".into()))
        })
        .await
        .map_err(|_| ClientError::Timeout("signaling auth reply"))??;
        let kind = reply.kind().to_owned();
        match classify(reply) {
            Inbound::AuthOk => {}
            Inbound::Error(e) if !e.is_empty() => return Err(ClientError::AuthRejected(e)),
            Inbound::Error(_) | Inbound::Message(_) | Inbound::Ignored => {
                return Err(ClientError::AuthRejected(kind));
            }
        }

        let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
        let (other_tx, other_rx) = mpsc::channel(ROUTE_QUEUE);
        let (hosts_tx, hosts_rx) = watch::channel(HashMap::new());
        let (closed_tx, closed_rx) = watch::channel(false);
        let routes: Routes = Arc::default();
        let task = tokio::spawn(drive(
            ws,
            out_rx,
            Arc::clone(&routes),
            other_tx,
            hosts_tx,
            closed_tx,
            opts.presence_interval,
        ));
        Ok(Signaling {
            device_id: identity.device_id().to_owned(),
            out: out_tx,
            routes,
            other: tokio::sync::Mutex::new(other_rx),
            hosts: hosts_rx,
            closed: closed_rx,
            task,
        })
    }

    /// Our device id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Queues a message for the server; fails if the socket is gone.
    pub async fn send(&self, signal: Signal) -> Result<(), ClientError> {
        self.command(Command::Send(signal)).await
    }

    async fn command(&self, command: Command) -> Result<(), ClientError> {
        self.out
            .send(command)
            .await
            .map_err(|_| ClientError::Signaling("connection closed".into()))
    }

    /// Routes every message from (or about) `host_device_id` to the returned
    /// receiver until it is dropped: relayed SDP/ICE, `connection_rejected`,
    /// and `host_offline` for that host. A new route replaces the old one.
    pub fn route(&self, host_device_id: &str) -> mpsc::Receiver<Signal> {
        let (tx, rx) = mpsc::channel(ROUTE_QUEUE);
        lock(&self.routes).insert(host_device_id.to_owned(), tx);
        rx
    }

    /// The next message no route took (`host_online`, `device_unpaired`, ...).
    /// `None` once the socket is closed.
    pub async fn recv_other(&self) -> Option<Signal> {
        self.other.lock().await.recv().await
    }

    /// Hosts currently online (id → name) as the server reported them.
    pub fn online_hosts(&self) -> watch::Receiver<HashMap<String, String>> {
        self.hosts.clone()
    }

    /// Whether the socket has closed.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves when the socket closes.
    pub async fn closed(&self) {
        let mut c = self.closed.clone();
        let _ = c.wait_for(|c| *c).await;
    }

    /// Closes the socket (close 1000).
    pub async fn close(&self) {
        let _ = self.command(Command::Close).await;
        self.closed().await;
    }
}

async fn drive(
    mut ws: Ws,
    mut out: mpsc::Receiver<Command>,
    routes: Routes,
    other: mpsc::Sender<Signal>,
    hosts: watch::Sender<HashMap<String, String>>,
    closed: watch::Sender<bool>,
    presence: Duration,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + presence, presence);
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let Ok(msg) = SignalingMessage::parse(t.as_str()) else {
                        tracing::debug!("malformed signaling message skipped");
                        continue;
                    };
                    dispatch(Signal::from(msg), &routes, &other, &hosts);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            command = out.recv() => match command {
                Some(Command::Close) => {
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, ws.close(None)).await;
                    break;
                }
                Some(Command::Send(signal)) => {
                    let sent = tokio::time::timeout(WRITE_TIMEOUT, ws.send(text(signal))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                }
                None => {
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, ws.close(None)).await;
                    break;
                }
            },
            _ = tick.tick() => {
                let ok = tokio::time::timeout(WRITE_TIMEOUT, async {
                    ws.send(text(Signal::Presence)).await?;
                    ws.send(Message::Ping(Vec::new().into())).await
                }).await;
                if !matches!(ok, Ok(Ok(()))) {
                    break;
                }
            }
        }
    }
    closed.send_replace(true);
    // Dropping the route senders ends every waiting connection's receiver.
    lock(&routes).clear();
}

/// The text frame of `signal`.
fn text(signal: Signal) -> Message {
    Message::text(SignalingMessage::from(signal).to_json())
}

/// The device a message is from or about, for routing: the relayed sender
/// (`targetDeviceId` after relay), or the host of `host_offline`; empty
/// when it names none.
fn route_key(signal: &Signal) -> &str {
    match signal {
        Signal::HostOffline { device_id } => device_id,
        Signal::ConnectRequest { target_device_id }
        | Signal::SdpOffer {
            target_device_id, ..
        }
        | Signal::SdpAnswer {
            target_device_id, ..
        }
        | Signal::IceCandidate {
            target_device_id, ..
        }
        | Signal::ConnectionRejected {
            target_device_id, ..
        } => target_device_id,
        Signal::Other(m) => &m.target_device_id,
        _ => "",
    }
}

fn dispatch(
    signal: Signal,
    routes: &Routes,
    other: &mpsc::Sender<Signal>,
    hosts: &watch::Sender<HashMap<String, String>>,
) {
    match &signal {
        Signal::PresenceAck => return,
        Signal::HostOnline { device_id, name } => {
            let (id, name) = (device_id.clone(), name.clone());
            hosts.send_modify(|h| {
                h.insert(id, name);
            });
        }
        Signal::HostOffline { device_id } => {
            hosts.send_modify(|h| {
                h.remove(device_id);
            });
        }
        Signal::Error { error } => tracing::debug!(%error, "signaling error message"),
        _ => {}
    }
    let key = route_key(&signal).to_owned();
    if key.is_empty() && matches!(signal, Signal::ConnectionRejected { .. }) {
        // The server's own refusal (`not_paired`) names no device: tell every
        // waiting connection.
        let all: Vec<_> = lock(routes).values().cloned().collect();
        for tx in all {
            let _ = tx.try_send(signal.clone());
        }
        return;
    }
    let routed = {
        let routes = lock(routes);
        routes.get(&key).cloned()
    };
    if let Some(tx) = routed
        && !tx.is_closed()
    {
        if tx.try_send(signal).is_err() {
            tracing::warn!("connection route full; signaling message dropped");
        }
        return;
    }
    if other.try_send(signal).is_err() {
        tracing::debug!("unrouted signaling message dropped (queue full)");
    }
}
