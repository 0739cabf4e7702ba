//! The NATS side of the router: one client connection per instance, one
//! subscription per device that has a socket here, and the three operations
//! other instances ask of it (deliver a message, "is it here?", close its
//! sockets).
//!
//! Subjects are `muxlink.dev.<device id>.<op>` with op `msg`, `probe` or
//! `kill`; an instance subscribes to `muxlink.dev.<id>.*` while the device
//! has a socket here. Payloads: `msg` carries the message's JSON as the
//! socket will get it, `probe` nothing, `kill` `"<code> <reason>"`. A `msg`
//! or `probe` sent as a request is answered (empty reply) only by an
//! instance that queued it to a socket or holds one; nobody subscribed is
//! NATS's "no responders", at once.
//!
//! Every [`AUDIT_INTERVAL`] an instance also probes the remote hosts its
//! phones were told are online (presence.rs) and tells the phones
//! `host_offline` for each that nobody holds any more (and `host_online`
//! again if it comes back): an instance that dies (SIGKILL, power)
//! announces nothing for its hosts, and this is how the phones elsewhere
//! learn it.
//!
//! The client is opened with `no_echo`, so an instance never hears its own
//! publications (it already delivered locally), and with
//! `retry_on_initial_connect` and unlimited reconnects: an instance whose
//! bus is down serves its own sockets, reports not ready, and takes up its
//! subscriptions again when NATS returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event, Request, RequestErrorKind, Subscriber};
use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt as _;
use futures_util::future::join_all;
use signaling_proto::SignalingMessage;
use signaling_proto::signal::kind;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::presence::{AUDIT_INTERVAL, Believed, Verdict};
use crate::hub::Hub;
use crate::sync::lock;

/// How long a publish, a request or a subscription may take before the
/// caller gives up: a socket's reader waits at most this long on the bus.
pub const BUS_TIMEOUT: Duration = Duration::from_secs(1);

/// Messages NATS queues for one device's subscription before it drops
/// (slow consumer); the dispatcher only pushes to bounded socket queues.
const SUBSCRIPTION_QUEUE: usize = 256;

/// Commands (publishes, subscriptions) queued to the connection's writer.
const CLIENT_QUEUE: usize = 1024;

/// First token of every subject.
const SUBJECT_PREFIX: &str = "muxlink.dev";

/// Close reasons another instance may ask for (`Kill::fire` takes a
/// `&'static str`); anything else becomes "closed".
const KILL_REASONS: [&str; 3] = ["device expired", "device deleted", "device unpaired"];

/// Why a bus operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The URL cannot be used.
    #[error("invalid bus URL: {0}")]
    Url(String),
    /// The connection to NATS is down (reconnecting).
    #[error("the bus is not connected")]
    Down,
    /// NATS did not take the command within [`BUS_TIMEOUT`].
    #[error("the bus did not answer within {BUS_TIMEOUT:?}")]
    Timeout,
    /// The client refused the command.
    #[error("bus error: {0}")]
    Nats(String),
}

/// Hosts one audit round asks about at once.
const AUDIT_BATCH: usize = 64;

/// How a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// An instance delivered it / holds the device.
    Yes,
    /// Nobody is subscribed for the device ("no responders").
    Nobody,
    /// Somebody is subscribed but did not answer in time.
    Silent,
}

/// What an instance is asked about a device.
#[derive(Clone, Copy)]
enum Op {
    Msg,
    Probe,
    Kill,
}

impl Op {
    fn token(self) -> &'static str {
        match self {
            Op::Msg => "msg",
            Op::Probe => "probe",
            Op::Kill => "kill",
        }
    }

    /// The op a subject ends with, if any.
    fn of_subject(subject: &str) -> Option<Op> {
        let token = subject.rsplit('.').next()?;
        [Op::Msg, Op::Probe, Op::Kill]
            .into_iter()
            .find(|op| op.token() == token)
    }
}

/// Waits at most [`BUS_TIMEOUT`] for a client command.
async fn bounded<T, E: std::fmt::Display>(
    command: impl Future<Output = Result<T, E>>,
) -> Result<T, BusError> {
    match timeout(BUS_TIMEOUT, command).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(BusError::Nats(e.to_string())),
        Err(_) => Err(BusError::Timeout),
    }
}

fn subject(device_id: &str, op: Op) -> String {
    format!("{SUBJECT_PREFIX}.{device_id}.{}", op.token())
}

/// One subscription's switch; `generation` tells a late failure of an
/// older subscription from the current one.
struct Sub {
    generation: u64,
    stop: CancellationToken,
}

/// One instance's NATS connection and its per-device subscriptions.
pub struct NatsBus {
    client: Client,
    hub: Arc<Hub>,
    /// Devices subscribed here. Taken before the hub's map whenever both
    /// are needed, so "last socket left" and "first socket came" cannot
    /// interleave between the two tables.
    subs: Mutex<HashMap<String, Sub>>,
    next_generation: std::sync::atomic::AtomicU64,
    /// Remote hosts the phones here were told are online (the audit's).
    believed: Arc<Mutex<Believed>>,
    /// Parent of every subscription's switch (the server's shutdown).
    stop: CancellationToken,
}

impl NatsBus {
    /// Opens the connection in the background (the call returns at once,
    /// also when NATS is down; the client keeps redialling).
    pub async fn connect(
        url: &str,
        hub: Arc<Hub>,
        stop: CancellationToken,
    ) -> Result<NatsBus, BusError> {
        // Counts the connection's (re)connects, so the audit can tell that
        // the link was lost between two of its rounds.
        let links = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Arc::clone(&links);
        let options = ConnectOptions::new()
            .name("muxlink-signaling-server")
            .no_echo()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .ping_interval(Duration::from_secs(20))
            .subscription_capacity(SUBSCRIPTION_QUEUE)
            .client_capacity(CLIENT_QUEUE)
            .event_callback(move |event| {
                let counted = Arc::clone(&counted);
                async move {
                    match event {
                        Event::Connected => {
                            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::info!("bus connected")
                        }
                        Event::Disconnected => {
                            tracing::warn!(
                                "bus disconnected: relays to other instances fail until it returns"
                            )
                        }
                        Event::SlowConsumer(sid) => {
                            tracing::warn!(sid, "bus subscription full: messages dropped")
                        }
                        // Each failed redial is one; the disconnect was logged.
                        Event::ClientError(e) => tracing::debug!(error = %e, "bus client error"),
                        other => tracing::info!(event = %other, "bus event"),
                    }
                }
            });
        let client = options
            .connect(url)
            .await
            .map_err(|e| BusError::Url(e.to_string()))?;
        let believed = Arc::new(Mutex::new(Believed::default()));
        tokio::spawn(audit(
            client.clone(),
            Arc::clone(&hub),
            Arc::clone(&believed),
            links,
            stop.clone(),
        ));
        Ok(NatsBus {
            client,
            hub,
            subs: Mutex::new(HashMap::new()),
            next_generation: std::sync::atomic::AtomicU64::new(1),
            believed,
            stop,
        })
    }

    /// True while the connection to NATS is up.
    pub fn is_up(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Subscribes for `device_id` unless it already is, or has no socket
    /// here any more. Returns once NATS has the subscription (or after
    /// [`BUS_TIMEOUT`]; when the bus is down the client sends it on
    /// reconnect).
    pub async fn subscribe(&self, device_id: &str) -> Result<(), BusError> {
        let (generation, stop) = {
            let mut subs = lock(&self.subs);
            if subs.contains_key(device_id) || !self.hub.is_online(device_id) {
                return Ok(());
            }
            let generation = self
                .next_generation
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let stop = self.stop.child_token();
            let sub = Sub {
                generation,
                stop: stop.clone(),
            };
            subs.insert(device_id.to_owned(), sub);
            (generation, stop)
        };
        let wildcard = format!("{SUBJECT_PREFIX}.{device_id}.*");
        let subscriber = match bounded(self.client.subscribe(wildcard)).await {
            Ok(s) => s,
            Err(e) => {
                let mut subs = lock(&self.subs);
                if subs
                    .get(device_id)
                    .is_some_and(|s| s.generation == generation)
                {
                    subs.remove(device_id);
                }
                return Err(e);
            }
        };
        tokio::spawn(dispatch(
            Dispatch {
                client: self.client.clone(),
                hub: Arc::clone(&self.hub),
                believed: Arc::clone(&self.believed),
                device_id: device_id.to_owned(),
            },
            subscriber,
            stop,
        ));
        if self.is_up() {
            // The subscription is live at the server once a PING after it
            // is answered: peers told "online" next can reach this device.
            bounded(self.client.flush()).await?;
        }
        Ok(())
    }

    /// Removes one socket from the hub; on the device's last, drops its
    /// subscription. True when it was the last.
    pub fn unregister(&self, device_id: &str, socket_id: u64) -> bool {
        let mut subs = lock(&self.subs);
        let last = self.hub.unregister(device_id, socket_id);
        if last && let Some(sub) = subs.remove(device_id) {
            sub.stop.cancel();
        }
        if last {
            lock(&self.believed).forget_mobile(device_id);
        }
        last
    }

    /// `mobile` (a phone here) is about to be told that `host`, held by
    /// another instance, is online (`announcement`): the audit keeps an
    /// eye on it.
    pub fn note_online(&self, host: &str, mobile: &str, announcement: &Utf8Bytes) {
        lock(&self.believed).online(host, mobile, announcement.clone());
    }

    /// `host` left or was unpaired: the audit stops watching it.
    pub fn forget_host(&self, host: &str) {
        lock(&self.believed).forget_host(host);
    }

    /// Publishes `text` for `device_id`'s sockets on other instances,
    /// without waiting for anyone to take it.
    pub async fn publish(&self, device_id: &str, text: &Utf8Bytes) -> Result<(), BusError> {
        self.publish_op(device_id, Op::Msg, Bytes::from(text.clone()))
            .await
    }

    /// Asks the other instances to close `device_id`'s sockets.
    pub async fn kill(&self, device_id: &str, code: u16, reason: &str) -> Result<(), BusError> {
        let payload = Bytes::from(format!("{code} {reason}"));
        self.publish_op(device_id, Op::Kill, payload).await
    }

    async fn publish_op(&self, device_id: &str, op: Op, payload: Bytes) -> Result<(), BusError> {
        if !self.is_up() {
            return Err(BusError::Down);
        }
        bounded(self.client.publish(subject(device_id, op), payload)).await
    }

    /// Hands `text` to `device_id` on whichever instance holds it; true
    /// when one of them queued it to a socket.
    pub async fn deliver(&self, device_id: &str, text: &Utf8Bytes) -> Result<bool, BusError> {
        let payload = Bytes::from(text.clone());
        let answer = request(&self.client, device_id, Op::Msg, payload).await?;
        Ok(answer == Answer::Yes)
    }

    /// True when another instance holds a socket of `device_id`.
    pub async fn probe(&self, device_id: &str) -> Result<bool, BusError> {
        let answer = request(&self.client, device_id, Op::Probe, Bytes::new()).await?;
        Ok(answer == Answer::Yes)
    }
}

async fn request(
    client: &Client,
    device_id: &str,
    op: Op,
    payload: Bytes,
) -> Result<Answer, BusError> {
    if client.connection_state() != State::Connected {
        return Err(BusError::Down);
    }
    let request = Request::new().payload(payload).timeout(Some(BUS_TIMEOUT));
    let asked = client.send_request(subject(device_id, op), request);
    // The request's own timeout covers the answer; this one also covers a
    // full command queue.
    match timeout(BUS_TIMEOUT * 2, asked).await {
        Ok(Ok(_)) => Ok(Answer::Yes),
        Ok(Err(e)) => match e.kind() {
            // Not delivered, but not a bus fault either: nobody holds the
            // device, or whoever does had no socket that took it.
            RequestErrorKind::NoResponders => Ok(Answer::Nobody),
            RequestErrorKind::TimedOut => Ok(Answer::Silent),
            _ => Err(BusError::Nats(e.to_string())),
        },
        Err(_) => Err(BusError::Timeout),
    }
}

/// Every [`AUDIT_INTERVAL`] until the server stops: asks about each remote
/// host the phones here believe online and tells them what changed
/// (presence.rs decides; only "no responders" counts against a host).
async fn audit(
    client: Client,
    hub: Arc<Hub>,
    believed: Arc<Mutex<Believed>>,
    links: Arc<std::sync::atomic::AtomicU64>,
    stop: CancellationToken,
) {
    let mut seen_links = links.load(std::sync::atomic::Ordering::Relaxed);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(AUDIT_INTERVAL) => {}
        }
        let now_links = links.load(std::sync::atomic::Ordering::Relaxed);
        if client.connection_state() != State::Connected || now_links != seen_links {
            seen_links = now_links;
            lock(&believed).reset_strikes();
            continue;
        }
        let due = lock(&believed).due();
        for batch in due.chunks(AUDIT_BATCH) {
            let asks = batch.iter().map(|(host, _)| async {
                if hub.is_online(host) {
                    return Verdict::Present;
                }
                match request(&client, host, Op::Probe, Bytes::new()).await {
                    Ok(Answer::Yes) => Verdict::Present,
                    Ok(Answer::Nobody) => Verdict::Nobody,
                    Ok(Answer::Silent) | Err(_) => Verdict::Unknown,
                }
            });
            let verdicts = join_all(asks).await;
            let now = std::time::Instant::now();
            for ((host, generation), verdict) in batch.iter().zip(verdicts) {
                // Under the table's lock, so a `host_online` the dispatcher
                // delivers meanwhile either bumped the generation (nothing
                // sent here) or reaches the phone after this.
                let mut table = lock(&believed);
                if let Some((text, mobiles)) = table.answer(host, *generation, verdict, now) {
                    tracing::info!(host = %host, ?verdict, "presence audit: the host's phones are told it changed");
                    for mobile in mobiles {
                        hub.push(&mobile, &text);
                    }
                }
            }
        }
    }
}

/// What a device's subscription task delivers with.
struct Dispatch {
    client: Client,
    hub: Arc<Hub>,
    believed: Arc<Mutex<Believed>>,
    device_id: String,
}

impl Dispatch {
    /// Queues a message from the bus to the device's sockets here; a
    /// `host_online`, `host_offline` or `device_unpaired` for a phone
    /// updates the audit's table first, under its lock (see `audit`).
    fn push(&self, text: &Utf8Bytes) -> bool {
        // Only presence notices are parsed; relays pass untouched.
        if !text.contains("\"host_o") && !text.contains(kind::DEVICE_UNPAIRED) {
            return self.hub.push(&self.device_id, text);
        }
        let mut table = lock(&self.believed);
        if let Ok(msg) = SignalingMessage::parse(text) {
            match msg.kind.as_str() {
                kind::HOST_ONLINE => table.online(&msg.device_id, &self.device_id, text.clone()),
                kind::HOST_OFFLINE => table.forget_host(&msg.device_id),
                kind::DEVICE_UNPAIRED => table.forget_host(&msg.host_device_id),
                _ => {}
            }
        }
        self.hub.push(&self.device_id, text)
    }
}

/// Serves one device's subscription until its last socket here leaves (or
/// the server stops); dropping the subscriber unsubscribes.
async fn dispatch(d: Dispatch, mut subscriber: Subscriber, stop: CancellationToken) {
    let Dispatch {
        client,
        hub,
        device_id,
        ..
    } = &d;
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            msg = subscriber.next() => match msg {
                Some(m) => m,
                None => break,
            },
        };
        let answer = match Op::of_subject(&msg.subject) {
            Some(Op::Msg) => match Utf8Bytes::try_from(msg.payload) {
                Ok(text) => d.push(&text),
                Err(_) => {
                    tracing::warn!(device = %device_id, "bus message is not UTF-8: dropped");
                    false
                }
            },
            Some(Op::Probe) => hub.is_online(device_id),
            Some(Op::Kill) => {
                let text = String::from_utf8_lossy(&msg.payload);
                let (code, reason) = text.split_once(' ').unwrap_or((&text, ""));
                let code = code
                    .parse()
                    .unwrap_or(signaling_proto::consts::CLOSE_SOCKET_ERROR);
                let reason = KILL_REASONS
                    .into_iter()
                    .find(|r| *r == reason)
                    .unwrap_or("closed");
                hub.kill_device(device_id, code, reason);
                false
            }
            None => false,
        };
        if answer && let Some(reply) = msg.reply {
            // Only an instance that delivered answers, so the requester
            // hears "delivered" from whichever did, never a "no" first.
            let _ = timeout(BUS_TIMEOUT, client.publish(reply, Bytes::new())).await;
        }
    }
    drop(subscriber);
}
