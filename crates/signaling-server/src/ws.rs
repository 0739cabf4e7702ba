//! One WebSocket connection: auth, presence, relay between paired devices,
//! idle reaping and size limits (signaling.md §6–§7). A reader loop decides;
//! a writer task drains the socket's bounded outbound queue.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use signaling_proto::consts::*;
use signaling_proto::signal::kind;
use signaling_proto::{
    ProtoError, SignalingMessage, is_valid_device_id, jwt_verify, validate_name,
};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};

use crate::hub::{Kill, Outbound, SocketHandle};
use crate::metrics::AuthFailure;
use crate::state::AppState;
use crate::store::DeviceType;
use crate::token_bucket::TokenBucket;

/// Close code for a policy violation (RFC 6455): too many messages, or a
/// second `auth` with another device's token.
const CLOSE_POLICY: u16 = 1008;

static NEXT_SOCKET_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A close the server initiates: code and reason.
type CloseWith = (u16, &'static str);

struct Authed {
    device_id: String,
    device_type: DeviceType,
}

struct Conn {
    st: Arc<AppState>,
    handle: SocketHandle,
    auth: Option<Authed>,
    /// Unread bytes remain in the socket (oversized frame): closing the TCP
    /// connection at once would reset it and lose the close frame.
    linger: bool,
    /// Messages this socket may still send (1008 when empty); `None` when
    /// rate limits are off.
    bucket: Option<TokenBucket>,
    /// When the frame being handled was read (relay latency).
    read_at: Instant,
}

/// How long an oversized-frame socket stays open after its close frame, so
/// the client can read the error before the kernel resets the connection.
const LINGER: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs one upgraded socket to completion.
pub(crate) async fn serve_socket(
    st: Arc<AppState>,
    socket: WebSocket,
    _permit: OwnedSemaphorePermit,
) {
    let (sink, mut stream) = socket.split();
    let _open = st.metrics.socket_opened();
    let (tx, rx) = mpsc::channel(st.config.limits.outbound_queue.max(4));
    let writer = tokio::spawn(write_loop(sink, rx, st.config.write_timeout));
    let id = NEXT_SOCKET_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let handle = SocketHandle {
        id,
        tx,
        kill: Arc::new(Kill::default()),
    };
    let limits = &st.config.limits;
    let bucket = st.config.rate_limits.enabled.then(|| {
        TokenBucket::new(
            limits.ws_messages_per_sec,
            limits.ws_message_burst,
            Instant::now().into_std(),
        )
    });
    let mut conn = Conn {
        st,
        handle,
        auth: None,
        linger: false,
        bucket,
        read_at: Instant::now(),
    };
    let close = conn.read_loop(&mut stream).await;
    conn.finish(close, writer).await;
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    write_timeout: std::time::Duration,
) {
    while let Some(out) = rx.recv().await {
        let (msg, last) = match out {
            Outbound::Text(t) => (Message::Text(t), false),
            Outbound::Close(code, reason) => (
                Message::Close(Some(CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(reason),
                })),
                true,
            ),
        };
        if !matches!(timeout(write_timeout, sink.send(msg)).await, Ok(Ok(()))) || last {
            break;
        }
    }
    let _ = timeout(write_timeout, sink.close()).await;
}

/// True for the read error tungstenite reports when a frame exceeds the
/// configured maximum (its type is not re-exported by axum).
fn is_too_large(e: &axum::Error) -> bool {
    let text = e.to_string();
    text.contains("Message too long") || text.contains("Space limit exceeded")
}

impl Conn {
    /// Reads until the peer leaves (`None`) or the server decides to close.
    async fn read_loop(&mut self, stream: &mut SplitStream<WebSocket>) -> Option<CloseWith> {
        let cfg = &self.st.config;
        let (idle, auth_deadline) = (cfg.idle_timeout, Instant::now() + cfg.auth_timeout);
        let kill = Arc::clone(&self.handle.kill);
        let shutdown = self.st.shutdown.clone();
        let mut last_seen = Instant::now();
        loop {
            let authed = self.auth.is_some();
            let deadline = if authed {
                last_seen + idle
            } else {
                (last_seen + idle).min(auth_deadline)
            };
            let frame = tokio::select! {
                _ = shutdown.cancelled() => return Some((1001, "server shutting down")),
                reason = kill.fired() => return Some(reason),
                _ = sleep_until(deadline) => {
                    return if authed || last_seen + idle <= Instant::now() {
                        Some((CLOSE_IDLE, "idle timeout"))
                    } else {
                        self.refuse_auth(
                            "Authentication timeout",
                            AuthFailure::Timeout,
                            (CLOSE_AUTH_FAILED, "authentication timeout"),
                        )
                    };
                }
                frame = stream.next() => frame,
            };
            last_seen = Instant::now();
            self.read_at = last_seen;
            if matches!(
                &frame,
                Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_)))
            ) && self
                .bucket
                .as_mut()
                .is_some_and(|b| !b.take(last_seen.into_std()))
            {
                self.error("Rate limit exceeded");
                self.st.metrics.ws_message_rate_limited();
                return Some((CLOSE_POLICY, "rate limit exceeded"));
            }
            match frame {
                None | Some(Ok(Message::Close(_))) => return None,
                Some(Err(e)) if is_too_large(&e) => {
                    self.linger = true;
                    self.error(ERR_MESSAGE_TOO_LARGE);
                    return Some((CLOSE_MESSAGE_TOO_LARGE, "message too large"));
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "websocket read failed");
                    return None;
                }
                Some(Ok(Message::Text(text))) => {
                    if let Some(close) = self.on_text(text.as_str()).await {
                        return Some(close);
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    self.error("Binary messages are not supported");
                    return Some((1003, "binary messages are not supported"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            }
        }
    }

    /// Queues a message to this socket (a full queue closes it).
    fn reply(&self, msg: &SignalingMessage) {
        self.handle.push(Utf8Bytes::from(msg.to_json()));
    }

    fn error(&self, text: &str) {
        self.reply(&SignalingMessage::error(text));
    }

    /// Refuses an `auth`: the error to the client, the failure counted, and
    /// the close to use.
    fn refuse_auth(&self, text: &str, why: AuthFailure, close: CloseWith) -> Option<CloseWith> {
        self.error(text);
        self.st.metrics.auth_failure(why);
        Some(close)
    }

    async fn on_text(&mut self, text: &str) -> Option<CloseWith> {
        let msg = match SignalingMessage::parse(text) {
            Ok(m) => m,
            Err(ProtoError::MessageTooLarge { .. }) => {
                self.error(ERR_MESSAGE_TOO_LARGE);
                return Some((CLOSE_MESSAGE_TOO_LARGE, "message too large"));
            }
            Err(_) => {
                self.error("Invalid message format");
                return Some((1007, "invalid message format"));
            }
        };
        if msg.kind == kind::AUTH {
            return self.on_auth(msg).await;
        }
        let Some(auth) = &self.auth else {
            self.error(ERR_NOT_AUTHENTICATED);
            return None;
        };
        let me = auth.device_id.clone();
        match msg.kind.as_str() {
            kind::PRESENCE => self.reply(&SignalingMessage::new(kind::PRESENCE_ACK)),
            kind::CONNECT_REQUEST
            | kind::SDP_OFFER
            | kind::SDP_ANSWER
            | kind::ICE_CANDIDATE
            | kind::CONNECTION_REJECTED => self.relay(me, msg).await,
            other => {
                let shown: String = other.chars().take(64).collect();
                self.error(&format!("Unknown message type: {shown}"));
            }
        }
        None
    }

    async fn on_auth(&mut self, msg: SignalingMessage) -> Option<CloseWith> {
        if msg.token.is_empty() {
            return self.refuse_auth(
                "Missing token",
                AuthFailure::MissingToken,
                (CLOSE_AUTH_FAILED, "missing token"),
            );
        }
        let Ok(claims) = jwt_verify(&self.st.jwt_secret, &msg.token, self.st.now()) else {
            return self.refuse_auth(
                "Invalid token",
                AuthFailure::InvalidToken,
                (CLOSE_AUTH_FAILED, "invalid token"),
            );
        };
        if self
            .auth
            .as_ref()
            .is_some_and(|auth| auth.device_id != claims.device_id)
        {
            // One socket speaks for one device for its whole life.
            return self.refuse_auth(
                "Token is for another device",
                AuthFailure::WrongDevice,
                (CLOSE_POLICY, "token is for another device"),
            );
        }
        let device = match self.st.live_device(&claims.device_id).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return self.refuse_auth(
                    "Device not found",
                    AuthFailure::DeviceNotFound,
                    (CLOSE_DEVICE_NOT_FOUND, "device not found"),
                );
            }
            Err(e) => {
                tracing::error!(error = ?e, "device lookup failed");
                self.st.metrics.store_error();
                self.error("Internal error");
                return Some((CLOSE_SOCKET_ERROR, "internal error"));
            }
        };
        if device.device_type.as_str() != claims.device_type {
            return self.refuse_auth(
                "Invalid token",
                AuthFailure::InvalidToken,
                (CLOSE_AUTH_FAILED, "invalid token"),
            );
        }
        if self.auth.is_some() {
            // A second `auth` on an authenticated socket is a JWT refresh
            // (same device, checked above): the new token was verified like
            // the first, the socket stays registered, and nobody is told the
            // device went offline or came online.
            self.reply(&auth_ok());
            return None;
        }
        let new_name =
            (!msg.name.is_empty() && msg.name != device.name && validate_name(&msg.name).is_ok())
                .then(|| msg.name.clone());
        // Every store call happens before the socket is registered, so what
        // follows registration runs without a pause in memory: a peer that
        // comes online meanwhile is either in the snapshot below or
        // announces itself to this socket afterwards, never both (with a
        // bus, see `announce`).
        let peers = match self.presence_peers(&device, new_name.as_deref()).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "presence lookup failed");
                self.st.metrics.store_error();
                Vec::new()
            }
        };
        let max = self.st.config.limits.max_sockets_per_device;
        // The `auth` reply is queued as the socket registers: a `host_online`
        // pushed by another task right after must not arrive before it.
        let ok = Utf8Bytes::from(auth_ok().to_json());
        if !self
            .st
            .hub
            .register(&device.id, self.handle.clone(), max, ok)
        {
            self.error("Too many connections");
            return Some((
                CLOSE_TOO_MANY_SOCKETS,
                "too many connections for this device",
            ));
        }
        self.auth = Some(Authed {
            device_id: device.id.clone(),
            device_type: device.device_type,
        });
        // With a bus, other instances reach this device from here on; the
        // announcement below comes after, so whoever hears it can answer.
        self.st.hub.subscribe(&device.id).await;
        self.announce(&device, new_name, peers).await;
        None
    }

    /// The store side of an auth: stores a new name, and returns the paired
    /// devices with their names.
    async fn presence_peers(
        &self,
        device: &crate::store::Device,
        new_name: Option<&str>,
    ) -> Result<Vec<(String, String)>, crate::store::StoreError> {
        let db = &self.st.db;
        if let Some(n) = new_name {
            db.set_name(&device.id, n).await?;
        }
        let peers = match device.device_type {
            DeviceType::Host => db.paired_mobile(&device.id).await?.into_iter().collect(),
            DeviceType::Mobile => db.paired_hosts(&device.id).await?,
        };
        let mut named = Vec::with_capacity(peers.len());
        for p in peers {
            let peer_name = db.device(&p).await?.map(|d| d.name).unwrap_or_default();
            named.push((p, peer_name));
        }
        Ok(named)
    }

    /// Presence side effects of a successful auth: `host_online` to the
    /// paired mobile, or the name update and the online-hosts snapshot for
    /// a mobile. Without a bus nothing here waits, so a peer that comes
    /// online meanwhile is in the snapshot or announces itself, never both;
    /// across instances it may be both (a duplicate `host_online`).
    async fn announce(
        &self,
        device: &crate::store::Device,
        new_name: Option<String>,
        peers: Vec<(String, String)>,
    ) {
        let name = new_name.unwrap_or_else(|| device.name.clone());
        match device.device_type {
            DeviceType::Host => {
                for (peer, _) in peers {
                    let online = SignalingMessage {
                        device_id: device.id.clone(),
                        name: name.clone(),
                        ..SignalingMessage::new(kind::HOST_ONLINE)
                    };
                    self.st.hub.send(&peer, &online).await;
                }
            }
            DeviceType::Mobile => {
                if name != device.name {
                    for (peer, _) in &peers {
                        let update = SignalingMessage {
                            device_id: device.id.clone(),
                            name: name.clone(),
                            ..SignalingMessage::new(kind::MOBILE_NAME_UPDATED)
                        };
                        self.st.hub.send(peer, &update).await;
                    }
                }
                for online in self.st.hub.online_notices(&device.id, peers).await {
                    self.reply(&online);
                }
            }
        }
    }

    /// Relays between paired devices only, with the sender's id as
    /// `targetDeviceId` and only the fields signaling.md §6 allows.
    async fn relay(&self, me: String, msg: SignalingMessage) {
        let target = msg.target_device_id.clone();
        let is_connect = msg.kind == kind::CONNECT_REQUEST;
        let paired = if is_valid_device_id(&target) {
            match self.st.db.is_paired(&me, &target).await {
                Ok(paired) => paired,
                Err(e) => {
                    // Not relayed, but not "not paired" either: a phone must
                    // not take a database outage for an unpairing.
                    tracing::warn!(error = %e, "pairing lookup for a relay failed");
                    self.st.metrics.store_error();
                    if is_connect {
                        self.error("Internal error: try again");
                    }
                    return;
                }
            }
        } else {
            false
        };
        if !paired {
            if is_connect {
                self.reply(&SignalingMessage {
                    target_device_id: target,
                    reason: REASON_NOT_PAIRED.to_owned(),
                    ..SignalingMessage::new(kind::CONNECTION_REJECTED)
                });
            }
            return;
        }
        let forward = if is_connect {
            SignalingMessage {
                target_device_id: me,
                ..SignalingMessage::new(kind::CONNECT_REQUEST)
            }
        } else {
            SignalingMessage {
                target_device_id: me,
                sdp: msg.sdp,
                candidate: msg.candidate,
                sdp_mid: msg.sdp_mid,
                sdp_m_line_index: msg.sdp_m_line_index,
                reason: msg.reason,
                ..SignalingMessage::new(&msg.kind)
            }
        };
        let delivered = if is_connect {
            self.st.hub.deliver(&target, &forward).await
        } else {
            self.st.hub.send(&target, &forward).await
        };
        if delivered {
            self.st
                .metrics
                .relayed(&forward.kind, self.read_at.elapsed());
        }
        if !delivered && is_connect {
            self.reply(&SignalingMessage {
                device_id: target,
                ..SignalingMessage::new(kind::HOST_OFFLINE)
            });
        }
    }

    /// Unregisters, announces `host_offline` if this was the host's last
    /// socket, sends the close frame and waits (bounded) for the writer.
    async fn finish(self, close: Option<CloseWith>, mut writer: JoinHandle<()>) {
        let Conn {
            st,
            handle,
            auth,
            linger,
            ..
        } = self;
        if let Some(auth) = auth {
            let last = st.hub.unregister(&auth.device_id, handle.id);
            if last && auth.device_type == DeviceType::Host {
                let id = auth.device_id.clone();
                match st.db.paired_mobile(&id).await {
                    Ok(Some(mobile)) => {
                        let offline = SignalingMessage {
                            device_id: auth.device_id.clone(),
                            ..SignalingMessage::new(kind::HOST_OFFLINE)
                        };
                        st.hub.send(&mobile, &offline).await;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "pairing lookup for host_offline failed");
                        st.metrics.store_error();
                    }
                }
            }
        }
        if let Some((code, reason)) = close {
            let _ = handle.tx.try_send(Outbound::Close(code, reason));
        }
        drop(handle);
        if timeout(st.config.write_timeout, &mut writer).await.is_err() {
            writer.abort();
        }
        if linger {
            tokio::select! {
                _ = tokio::time::sleep(LINGER) => {}
                _ = st.shutdown.cancelled() => {}
            }
        }
    }
}

fn auth_ok() -> SignalingMessage {
    SignalingMessage {
        status: "ok".to_owned(),
        ..SignalingMessage::new(kind::AUTH)
    }
}
