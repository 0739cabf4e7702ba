//! Routing between devices whichever instance holds their sockets: the
//! [`Router`] every handler and socket task calls (`AppState::hub`). Without
//! `--bus` it is this process's [`Hub`] and nothing else (no task hop, no
//! extra await on the relay path). With `--bus nats://…` it also speaks to
//! the other instances through NATS ([`nats`]).
//!
//! Design:
//! - **One subject per device.** An instance subscribes to
//!   `muxlink.dev.<id>.*` when a device's first socket here authenticates
//!   and unsubscribes when its last leaves. NATS then knows which instance
//!   holds whom: a message for a device reaches only the instances that
//!   hold it, and a request to a device nobody holds gets "no responders"
//!   at once, which is how "offline" is told apart across instances. One
//!   wildcard subscription per instance would send every message to every
//!   instance and need a presence table of our own to answer "offline".
//! - **Sending** delivers to the sockets here and publishes once on the
//!   bus (other instances may hold more sockets of the same device, e.g. a
//!   host's old socket while its new one authenticates elsewhere); the
//!   connection uses `no_echo`, so the sender does not hear it back.
//! - **`connect_request`** ([`Router::deliver`]) needs to know whether
//!   anyone delivered it (else the phone gets `host_offline`): not held
//!   here, it is a NATS request that only an instance which queued it to a
//!   socket answers; no responders, or no answer within
//!   [`nats::BUS_TIMEOUT`], is offline.
//! - **Online hosts** (a phone's snapshot at auth,
//!   [`Router::online_notices`]) are asked the same way (`probe`), all of
//!   the phone's hosts at once.
//! - **`kill_device`** (device expired, deleted, unpaired) closes the
//!   sockets here and publishes a `kill` the other instances obey.
//! - **Per instance only:** the socket cap per device
//!   (`max_sockets_per_device`: a device may hold that many sockets on each
//!   instance; counting across instances would cost a round trip to every
//!   instance at each auth), the per-client socket and connection caps and
//!   [`Router::socket_count`].
//! - **An instance dies:** NATS drops its connection and with it its
//!   subscriptions, so its devices are offline to every request at once.
//!   Its hosts redial another instance, which announces `host_online`
//!   again. Phones elsewhere that were told a host of the dead instance is
//!   online are told `host_offline` by their own instance's presence audit
//!   (`presence`: every 5 s it probes the remote hosts its phones believe
//!   online; nobody subscribed in 3 rounds in a row = gone, so 10–15 s;
//!   one that answers again within 10 min is announced `host_online`
//!   again), and a `connect_request` to such a host gets `host_offline` at
//!   once (no responders).
//! - **The bus is down:** sockets here keep relaying to each other;
//!   anything for another instance fails at once (logged at debug,
//!   counted in `muxlink_bus_errors_total`), a `connect_request` to a host
//!   elsewhere gets `host_offline`, the presence audit pauses, `/readyz` answers 503, and the client redials NATS and
//!   restores every subscription by itself, also those of devices that
//!   authenticated meanwhile (queued in the client; one that cannot even be
//!   queued within the timeout is logged and waits for the device's next
//!   auth). Presence changes announced while it was down are lost (a phone
//!   learns at its next auth, or from `host_offline` when it connects).
//! - **Bounded:** NATS queues at most 256 messages per device subscription
//!   and 1024 commands per instance; every publish and subscription waits
//!   at most [`nats::BUS_TIMEOUT`] (1 s) and a request twice that (its
//!   answer, and a full command queue before it), so a slow bus holds a
//!   socket's reader for at most 2 s per message. The audit's table is
//!   capped (presence.rs).

pub mod nats;
mod presence;

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use futures_util::future::join_all;
use signaling_proto::SignalingMessage;
use signaling_proto::signal::kind;
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, SocketHandle};
use crate::metrics::Metrics;
use nats::{BusError, NatsBus};

/// Where messages for a device go: this process's sockets, and with a bus
/// the other instances'.
pub struct Router {
    hub: Arc<Hub>,
    /// The bus and the metrics its failures are counted in.
    bus: Option<(NatsBus, Arc<Metrics>)>,
}

impl Router {
    /// One process, in memory (no `--bus`).
    pub fn local() -> Router {
        Router {
            hub: Arc::new(Hub::default()),
            bus: None,
        }
    }

    /// Routes over NATS at `url` as well; returns at once, connecting in
    /// the background. Fails only for a URL NATS cannot use.
    pub async fn with_bus(
        url: &str,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Result<Router, BusError> {
        let hub = Arc::new(Hub::default());
        let bus = NatsBus::connect(url, Arc::clone(&hub), stop).await?;
        Ok(Router {
            hub,
            bus: Some((bus, metrics)),
        })
    }

    /// `None` without a bus, else whether it is connected now (`/readyz`).
    pub fn bus_up(&self) -> Option<bool> {
        self.bus.as_ref().map(|(bus, _)| bus.is_up())
    }

    fn failed(&self, what: &'static str, device_id: &str, e: &BusError) {
        if let Some((_, metrics)) = &self.bus {
            metrics.bus_error();
        }
        // Debug only: a bus outage fails every remote relay, and the
        // client logs the outage itself once (nats.rs).
        tracing::debug!(error = %e, device = %device_id, what, "bus operation failed");
    }

    /// Adds a socket here unless the device already has `max` here, with
    /// `first` queued to it before anything another task sends; false when
    /// full. Call [`Router::subscribe`] after the socket's `auth` reply.
    pub fn register(
        &self,
        device_id: &str,
        handle: SocketHandle,
        max: usize,
        first: Utf8Bytes,
    ) -> bool {
        self.hub.register(device_id, handle, max, first)
    }

    /// With a bus, makes this instance answer for `device_id` (its first
    /// socket here subscribes; later ones find it done). Before this
    /// returns, other instances may still find the device offline.
    pub async fn subscribe(&self, device_id: &str) {
        if let Some((bus, _)) = &self.bus
            && let Err(e) = bus.subscribe(device_id).await
        {
            self.failed("subscribe", device_id, &e);
            tracing::warn!(error = %e, device = %device_id, "bus subscription failed");
        }
    }

    /// Removes a socket; true when it was the device's last one here.
    pub fn unregister(&self, device_id: &str, socket_id: u64) -> bool {
        match &self.bus {
            Some((bus, _)) => bus.unregister(device_id, socket_id),
            None => self.hub.unregister(device_id, socket_id),
        }
    }

    /// Sends `msg` to every socket of `device_id`, here and (with a bus)
    /// on other instances, without waiting for them. True when a socket
    /// here took it or it was published.
    pub async fn send(&self, device_id: &str, msg: &SignalingMessage) -> bool {
        let text = Utf8Bytes::from(msg.to_json());
        let here = self.hub.push(device_id, &text);
        let Some((bus, _)) = &self.bus else {
            return here;
        };
        match msg.kind.as_str() {
            kind::HOST_OFFLINE => bus.forget_host(&msg.device_id),
            kind::DEVICE_UNPAIRED => bus.forget_host(&msg.host_device_id),
            _ => {}
        }
        match bus.publish(device_id, &text).await {
            Ok(()) => true,
            Err(e) => {
                self.failed("publish", device_id, &e);
                here
            }
        }
    }

    /// Like [`Router::send`], but true only when some socket took it: here,
    /// or on an instance that answered within [`nats::BUS_TIMEOUT`].
    pub async fn deliver(&self, device_id: &str, msg: &SignalingMessage) -> bool {
        let text = Utf8Bytes::from(msg.to_json());
        let here = self.hub.push(device_id, &text);
        let Some((bus, _)) = &self.bus else {
            return here;
        };
        if here {
            if let Err(e) = bus.publish(device_id, &text).await {
                self.failed("publish", device_id, &e);
            }
            return true;
        }
        match bus.deliver(device_id, &text).await {
            Ok(delivered) => delivered,
            Err(e) => {
                self.failed("deliver", device_id, &e);
                false
            }
        }
    }

    /// The `host_online` notices for `mobile` (a phone authenticating
    /// here) of those of its `hosts` (id, name) that have a socket here or
    /// (with a bus) on another instance; the remote ones are asked all at
    /// once and from then on watched by the presence audit.
    pub async fn online_notices(
        &self,
        mobile: &str,
        hosts: Vec<(String, String)>,
    ) -> Vec<SignalingMessage> {
        let notice = |device_id: String, name: String| SignalingMessage {
            device_id,
            name,
            ..SignalingMessage::new(kind::HOST_ONLINE)
        };
        let Some((bus, _)) = &self.bus else {
            return hosts
                .into_iter()
                .filter(|(id, _)| self.hub.is_online(id))
                .map(|(id, name)| notice(id, name))
                .collect();
        };
        let asks = hosts.into_iter().map(|(id, name)| async move {
            if self.hub.is_online(&id) {
                return Some(notice(id, name));
            }
            match bus.probe(&id).await {
                Ok(true) => {
                    let online = notice(id, name);
                    let text = Utf8Bytes::from(online.to_json());
                    bus.note_online(&online.device_id, mobile, &text);
                    Some(online)
                }
                Ok(false) => None,
                Err(e) => {
                    self.failed("probe", &id, &e);
                    None
                }
            }
        });
        join_all(asks).await.into_iter().flatten().collect()
    }

    /// Closes every socket of the device, here and on other instances.
    pub async fn kill_device(&self, device_id: &str, code: u16, reason: &'static str) {
        self.hub.kill_device(device_id, code, reason);
        if let Some((bus, _)) = &self.bus
            && let Err(e) = bus.kill(device_id, code, reason).await
        {
            self.failed("kill", device_id, &e);
            tracing::warn!(error = %e, device = %device_id, "closing the device's sockets on other instances failed");
        }
    }

    /// Authenticated sockets on this instance.
    pub fn socket_count(&self) -> usize {
        self.hub.socket_count()
    }

    /// Devices with an authenticated socket on this instance.
    pub fn device_count(&self) -> usize {
        self.hub.device_count()
    }
}
