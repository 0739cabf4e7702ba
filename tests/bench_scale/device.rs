//! One simulated device's task: keep a socket authenticated on some
//! instance, redial with the agent's backoff (1 s, doubling to 30 s, reset
//! by every authenticated session, signaling.md §7) on the next instance
//! when its socket dies — what a load balancer in front of the instances
//! would do — and, while the orchestrator says so, relay `ice_candidate`s:
//! a host sends one to its phone every period, the phone answers each with
//! one back. Every candidate carries its send time (microseconds since the
//! bench's epoch), so the receiver records the one-way relay latency.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use signaling_client::Identity;
use signaling_client::ws::Socket;
use signaling_proto::{SignalingMessage, kind};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::link::{self, OpenError};
use crate::stats::{Stats, lock};

/// The agent's first reconnect wait and its cap (signaling.md §7).
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The agent's presence period (signaling.md §7).
const PRESENCE: Duration = Duration::from_secs(30);

/// What the orchestrator tells every device.
#[derive(Debug, Clone, Copy)]
pub struct Control {
    /// Hosts send and phones answer.
    pub sending: bool,
    /// Relays sent after this instant count for recovery ([`Stats::follow_mark`]).
    pub mark: Instant,
    /// Close the socket and end the task.
    pub stop: bool,
}

/// Which end of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends a candidate every period.
    Host,
    /// Answers each candidate.
    Phone,
}

/// What every device shares.
#[derive(Debug)]
pub struct Shared {
    /// The instances' URLs.
    pub urls: Vec<String>,
    /// Send times in candidates count from here.
    pub epoch: Instant,
    /// A host's sending period.
    pub period: Duration,
}

/// One simulated device.
pub struct Device {
    /// Host or phone.
    pub role: Role,
    /// Its key.
    pub identity: Identity,
    /// Its name in `auth`.
    pub name: String,
    /// The other end's device id.
    pub peer_id: String,
    /// A JWT fetched when it paired (kept while the server takes it, as the agent does).
    pub token: String,
    /// The instance it dials first.
    pub home: usize,
}

/// Starts `device`'s task.
pub fn spawn(
    device: Device,
    shared: Arc<Shared>,
    control: watch::Receiver<Control>,
    stats: Arc<Mutex<Stats>>,
) -> JoinHandle<()> {
    tokio::spawn(run(device, shared, control, stats))
}

async fn run(
    device: Device,
    shared: Arc<Shared>,
    mut control: watch::Receiver<Control>,
    stats: Arc<Mutex<Stats>>,
) {
    let n = shared.urls.len();
    let mut at = device.home;
    let mut wait = INITIAL_BACKOFF;
    let mut token = Some(device.token.clone());
    let id = device.identity.device_id().to_owned();
    loop {
        if control.borrow().stop {
            return;
        }
        let url = &shared.urls[at];
        let current = match token.clone() {
            Some(t) => Some(t),
            None => link::token(&device.identity, url).await.ok(),
        };
        if let Some(current) = current {
            token = Some(current.clone());
            match link::open(url, &id, &current, &device.name).await {
                Ok((ws, early)) => {
                    wait = INITIAL_BACKOFF;
                    {
                        let mut s = lock(&stats);
                        s.instance = Some(at);
                        s.authenticated_at = Some(Instant::now());
                    }
                    for msg in &early {
                        let _ = inbound(&device, &shared, msg, &control, &stats);
                    }
                    let stopped = session(&device, &shared, ws, &mut control, &stats).await;
                    lock(&stats).instance = None;
                    if stopped {
                        return;
                    }
                }
                Err(OpenError::Refused(_)) => token = None,
                Err(OpenError::Dial(_)) => {}
            }
        }
        // A load balancer would send the next dial to a live instance.
        at = (at + 1) % n;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped(&mut control) => return,
        }
        wait = (wait * 2).min(MAX_BACKOFF);
    }
}

/// Resolves once the orchestrator says stop (or is gone).
async fn stopped(control: &mut watch::Receiver<Control>) {
    loop {
        if control.changed().await.is_err() || control.borrow().stop {
            return;
        }
    }
}

/// One authenticated socket until it dies (false) or the orchestrator
/// stops the run (true).
async fn session(
    device: &Device,
    shared: &Shared,
    ws: Socket,
    control: &mut watch::Receiver<Control>,
    stats: &Mutex<Stats>,
) -> bool {
    let (mut sink, mut stream) = ws.split();
    // Hosts start at a random point of their period so 500 of them do not tick together.
    let offset = shared.period.mul_f64(rand::random::<f64>());
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, shared.period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut presence = tokio::time::interval_at(tokio::time::Instant::now() + PRESENCE, PRESENCE);
    let mut sending = control.borrow().sending;
    loop {
        tokio::select! {
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return false,
                    Some(Ok(_)) => continue,
                };
                let Ok(msg) = SignalingMessage::parse(&text) else { continue };
                if let Some(reply) = inbound(device, shared, &msg, control, stats)
                    && sink.send(reply).await.is_err()
                {
                    return false;
                }
            }
            _ = ticker.tick(), if sending && device.role == Role::Host => {
                lock(stats).sent += 1;
                if sink.send(candidate(&device.peer_id, shared)).await.is_err() {
                    return false;
                }
            }
            _ = presence.tick() => {
                let msg = Message::text(SignalingMessage::new(kind::PRESENCE).to_json());
                if sink.send(msg).await.is_err() {
                    return false;
                }
            }
            changed = control.changed() => {
                if changed.is_err() || control.borrow().stop {
                    let _ = sink.send(Message::Close(None)).await;
                    return true;
                }
                sending = control.borrow().sending;
            }
        }
    }
}

/// Handles one message from the server; returns the answer to send, if any.
fn inbound(
    device: &Device,
    shared: &Shared,
    msg: &SignalingMessage,
    control: &watch::Receiver<Control>,
    stats: &Mutex<Stats>,
) -> Option<Message> {
    let now = Instant::now();
    let current = *control.borrow();
    let mut s = lock(stats);
    s.follow_mark(current.mark);
    if msg.kind == kind::HOST_ONLINE && msg.device_id == device.peer_id {
        if now > current.mark && s.host_online_after_mark.is_none() {
            s.host_online_after_mark = Some(now);
        }
        return None;
    }
    if msg.kind != kind::ICE_CANDIDATE || msg.target_device_id != device.peer_id {
        return None;
    }
    let sent_at = shared.epoch + Duration::from_micros(sent_us(&msg.candidate)?);
    s.record(now.saturating_duration_since(sent_at));
    if sent_at > current.mark && s.first_relay_after_mark.is_none() {
        s.first_relay_after_mark = Some(now);
    }
    if device.role == Role::Phone && current.sending {
        s.sent += 1;
        return Some(candidate(&device.peer_id, shared));
    }
    None
}

/// An `ice_candidate` for `target` whose foundation is the send time.
fn candidate(target: &str, shared: &Shared) -> Message {
    let us = shared.epoch.elapsed().as_micros();
    let msg = SignalingMessage {
        target_device_id: target.to_owned(),
        candidate: format!("candidate:{us} 1 udp 2122260223 127.0.0.1 9 typ host"),
        sdp_mid: "0".to_owned(),
        sdp_m_line_index: Some(0),
        ..SignalingMessage::new(kind::ICE_CANDIDATE)
    };
    Message::text(msg.to_json())
}

/// The send time carried by [`candidate`].
fn sent_us(candidate: &str) -> Option<u64> {
    candidate
        .strip_prefix("candidate:")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}
