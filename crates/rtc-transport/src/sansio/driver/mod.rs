//! The task that drives one peer's `rtc` core: it owns the core and the
//! peer's UDP socket and is the only code that touches either. After every
//! input (a command from the handles, a datagram, a timer) it takes the core's
//! events and received messages, then writes every datagram the core has
//! queued, then sleeps until the next input or the core's next deadline. That
//! order matters: datagrams produced while handling events (the SCTP INIT
//! after DTLS, the channel-open messages after SCTP) leave in the same turn,
//! not at the next timer (docs/transport-sansio.md).
//!
//! Receiving is bounded: a channel whose queue is full stops the driver from
//! reading the socket until the owner takes a message, so the kernel's socket
//! buffer and then SCTP's receive window hold the rest and the sender slows.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::data_channel::RTCDataChannelId;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::sync::{mpsc, oneshot};

use super::channel::{ChanShared, ChanState, ChannelOp};
use super::command::{Command, Reply};
use super::gather::{HostSocket, StunQueries, StunReply};
use super::shared::PeerShared;
use super::turn::{Relay, RelayEvent};
use crate::event::{PeerState, RtcEvent};

/// Room for one UDP datagram (the core sends at most its SCTP MTU).
const DATAGRAM: usize = 2048;
/// When the core has no deadline, wake anyway after this long (nothing is
/// due; the wake only re-checks).
const IDLE_WAKE: Duration = Duration::from_secs(3600);

mod apply;

pub(super) struct Driver {
    pub(super) pc: RTCPeerConnection,
    /// The host sockets, one per local address; never empty.
    pub(super) sockets: Vec<HostSocket>,
    /// The resolved STUN servers each ICE generation asks.
    pub(super) stun_servers: Vec<SocketAddr>,
    /// This generation's binding requests.
    pub(super) stun: StunQueries,
    /// One client per TURN server, each speaking from one host socket.
    pub(super) relays: Vec<Relay>,
    /// Relay-only policy: no host or server-reflexive candidate is offered.
    pub(super) relay_only: bool,
    /// The generation's first candidates are out but its end of gathering is
    /// not yet (STUN queries or TURN allocations still open).
    pub(super) gathering: bool,
    /// Where the next receive starts polling the sockets.
    pub(super) next_socket: usize,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) channel_ops: mpsc::Receiver<ChannelOp>,
    pub(super) events: mpsc::Sender<RtcEvent>,
    pub(super) shared: Arc<PeerShared>,
    pub(super) channels: HashMap<RTCDataChannelId, Arc<ChanShared>>,
    /// A received message whose channel queue was full, and that channel.
    pub(super) stalled: Option<(Arc<ChanShared>, Bytes)>,
    /// A remote description is set: remote candidates go to the core.
    pub(super) remote_set: bool,
    /// Remote candidates that came before the remote description.
    pub(super) pending: Vec<rtc::peer_connection::transport::RTCIceCandidateInit>,
    /// The ICE generation (local ufrag) whose host candidate was reported.
    pub(super) gathered_ufrag: Option<String>,
}

impl Driver {
    /// Runs until the peer is closed or every handle is gone.
    pub(super) async fn run(mut self) {
        let mut buf = vec![0u8; DATAGRAM];
        loop {
            self.turn();
            if self.shared.closed.load(Ordering::SeqCst) {
                break;
            }
            let now = Instant::now();
            let core_due = self.pc.poll_timeout().unwrap_or(now + IDLE_WAKE);
            let mut deadline = self.stun.deadline().map_or(core_due, |d| d.min(core_due));
            for relay in &mut self.relays {
                if let Some(due) = relay.poll_timeout() {
                    deadline = deadline.min(due);
                }
            }
            if deadline <= now {
                self.timeout(now);
                continue;
            }
            let stalled = self.stalled.as_ref().map(|(ch, _)| Arc::clone(ch));
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => apply::apply(&mut self, cmd),
                    None => break,
                },
                Some(op) = self.channel_ops.recv() => apply::apply_op(&mut self, op),
                got = recv_any(&self.sockets, self.next_socket, &mut buf), if stalled.is_none() => match got {
                    (index, Ok((n, peer_addr))) => {
                        self.next_socket = index + 1;
                        self.datagram(index, &buf[..n], peer_addr);
                    }
                    (_, Err(e)) => tracing::debug!(error = %e, "udp receive"),
                },
                _ = wait_room(stalled.as_deref()), if stalled.is_some() => self.retry_stalled(),
                _ = tokio::time::sleep_until(deadline.into()) => self.timeout(Instant::now()),
            }
        }
        self.shut_down();
    }

    /// Events, then received messages, then every queued datagram.
    fn turn(&mut self) {
        while let Some(ev) = self.pc.poll_event() {
            self.event(ev);
        }
        while self.stalled.is_none() {
            let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() else {
                break;
            };
            if let RTCMessage::DataChannelMessage(id, m) = message {
                self.deliver(id, m.data.freeze());
            }
        }
        self.update_buffered();
        self.write_datagrams();
    }

    /// Every datagram the core has queued, each from its socket or through
    /// its relay, then the TURN clients' own.
    fn write_datagrams(&mut self) {
        while let Some(dgram) = self.pc.poll_write() {
            let (local, peer) = (dgram.transport.local_addr, dgram.transport.peer_addr);
            if let Some(relay) = self.relays.iter_mut().find(|r| r.relayed == Some(local)) {
                relay.send_to(dgram.now, &dgram.message, peer);
                continue;
            }
            let socket = self.socket_for(local);
            // A full socket buffer or an unreachable address is a lost
            // datagram to SCTP, which retransmits it.
            if let Err(e) = socket.try_send_to(&dgram.message, peer) {
                tracing::trace!(error = %e, "udp send");
            }
        }
        self.flush_relays();
    }

    /// Writes every datagram the TURN clients have queued for their servers.
    fn flush_relays(&mut self) {
        for relay in &mut self.relays {
            let Some(socket) = self.sockets.get(relay.socket) else {
                continue;
            };
            while let Some(bytes) = relay.poll_write() {
                if let Err(e) = socket.socket.try_send_to(&bytes, relay.server) {
                    tracing::trace!(error = %e, "udp send to the TURN server");
                }
            }
        }
    }

    /// Acts on what a TURN client reported.
    fn relay_events(&mut self, index: usize, events: Vec<RelayEvent>) {
        for event in events {
            match event {
                RelayEvent::Allocated(relayed) => {
                    tracing::debug!(%relayed, "TURN allocation");
                    if self.gathered_ufrag.is_some() {
                        apply::relayed(self, index);
                    }
                }
                RelayEvent::Failed => {}
                RelayEvent::Data { from, data } => {
                    let Some(relayed) = self.relays.get(index).and_then(|r| r.relayed) else {
                        continue;
                    };
                    let msg = TaggedBytesMut {
                        now: Instant::now(),
                        transport: TransportContext {
                            local_addr: relayed,
                            peer_addr: from,
                            ecn: None,
                            transport_protocol: TransportProtocol::UDP,
                        },
                        message: data,
                    };
                    if let Err(e) = self.pc.handle_read(msg) {
                        tracing::debug!(error = %e, "rtc core rejected a relayed datagram");
                    }
                }
            }
        }
        self.check_gathered();
    }

    /// Reports the end of gathering once the STUN queries and the TURN
    /// allocations are all over.
    pub(super) fn check_gathered(&mut self) {
        if self.gathering && self.stun.finished() && self.relays.iter().all(Relay::settled) {
            self.gathering = false;
            emit(&self.events, RtcEvent::GatheringComplete);
        }
    }

    /// The socket a datagram of the core's leaves from: the one its local
    /// address names, else the first of the same family (a server-reflexive
    /// candidate's base).
    fn socket_for(&self, local: SocketAddr) -> &tokio::net::UdpSocket {
        let same = |s: &&HostSocket| s.local.is_ipv4() == local.is_ipv4();
        let found = self.sockets.iter().find(|s| s.local == local);
        let chosen = found.or_else(|| self.sockets.iter().find(same));
        // `sockets` is never empty (the peer is not built without one).
        &chosen.unwrap_or(&self.sockets[0]).socket
    }

    /// The core's timers, then STUN's.
    fn timeout(&mut self, now: Instant) {
        if self.pc.poll_timeout().is_some_and(|due| due <= now)
            && let Err(e) = self.pc.handle_timeout(now)
        {
            tracing::debug!(error = %e, "rtc core timeout handling");
        }
        for index in 0..self.relays.len() {
            let events = self.relays[index].handle_timeout(now);
            self.relay_events(index, events);
        }
        self.send_stun(now);
    }

    /// Sends the binding requests due now; reports the end of gathering once
    /// every query is over.
    pub(super) fn send_stun(&mut self, now: Instant) {
        for (index, server, request) in self.stun.poll(now) {
            if let Some(s) = self.sockets.get(index)
                && let Err(e) = s.socket.try_send_to(&request, server)
            {
                tracing::debug!(error = %e, %server, "STUN request send");
            }
        }
        self.check_gathered();
    }

    fn datagram(&mut self, index: usize, bytes: &[u8], peer_addr: SocketAddr) {
        if let Some(relay) = self
            .relays
            .iter()
            .position(|r| r.socket == index && r.server == peer_addr)
        {
            let local = self.sockets[index].local;
            let events = self.relays[relay].handle_read(local, bytes);
            self.relay_events(relay, events);
            return;
        }
        if self.stun_servers.contains(&peer_addr) {
            match self.stun.reply(index, peer_addr, bytes) {
                Some(StunReply::Mapped { socket, mapped }) => {
                    apply::server_reflexive(self, socket, mapped);
                    self.send_stun(Instant::now());
                    return;
                }
                Some(StunReply::Consumed) => {
                    self.send_stun(Instant::now());
                    return;
                }
                None => {}
            }
        }
        let Some(local_addr) = self.sockets.get(index).map(|s| s.local) else {
            return;
        };
        let msg = TaggedBytesMut {
            now: Instant::now(),
            transport: TransportContext {
                local_addr,
                peer_addr,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(bytes),
        };
        if let Err(e) = self.pc.handle_read(msg) {
            tracing::debug!(error = %e, "rtc core rejected a datagram");
        }
    }

    fn event(&mut self, ev: RTCPeerConnectionEvent) {
        match ev {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => {
                let state = map_state(s);
                self.shared.set_state(state);
                emit(&self.events, RtcEvent::State(state));
            }
            RTCPeerConnectionEvent::OnDataChannel(dc) => self.channel_event(dc),
            _ => {}
        }
    }

    fn channel_event(&mut self, ev: RTCDataChannelEvent) {
        match ev {
            RTCDataChannelEvent::OnOpen(id) => {
                if let Some(ch) = self.channels.get(&id) {
                    ch.set_state(ChanState::Open);
                    return;
                }
                // Opened by the remote side: announce it.
                let Some(dc) = self.pc.data_channel(id) else {
                    return;
                };
                let options = crate::options::ChannelOptions {
                    ordered: dc.ordered(),
                    max_retransmits: dc.max_retransmits(),
                };
                let label = dc.label().to_owned();
                let (ch, handle) = ChanShared::new(
                    id,
                    label,
                    options,
                    Arc::clone(&self.shared.remote_max),
                    self.shared.channel_ops.clone(),
                );
                ch.set_state(ChanState::Open);
                self.channels.insert(id, ch);
                if self.shared.closed.load(Ordering::SeqCst) {
                    handle.close();
                } else {
                    self.shared.remember(handle.clone());
                    emit(&self.events, RtcEvent::DataChannel(handle));
                }
            }
            RTCDataChannelEvent::OnClose(id) | RTCDataChannelEvent::OnError(id) => {
                if let Some(ch) = self.channels.remove(&id) {
                    ch.set_state(ChanState::Closed);
                }
            }
            _ => {}
        }
    }

    fn deliver(&mut self, id: RTCDataChannelId, data: Bytes) {
        let Some(ch) = self.channels.get(&id) else {
            return;
        };
        if let Err(data) = ch.offer(data) {
            self.stalled = Some((Arc::clone(ch), data));
        }
    }

    fn retry_stalled(&mut self) {
        if let Some((ch, data)) = self.stalled.take()
            && let Err(data) = ch.offer(data)
        {
            self.stalled = Some((ch, data));
        }
    }

    /// Publishes each channel's unacknowledged bytes and wakes waiting senders
    /// once a channel has drained to the low-water mark.
    fn update_buffered(&mut self) {
        for (id, ch) in &self.channels {
            let outstanding = self
                .pc
                .data_channel(*id)
                .map_or(0, |dc| dc.outstanding_bytes());
            ch.set_outstanding(outstanding);
        }
    }

    fn shut_down(&mut self) {
        for ch in self.channels.values() {
            ch.set_state(ChanState::Closed);
        }
        if let Err(e) = self.pc.close() {
            tracing::debug!(error = %e, "rtc core close");
        }
        // The close's own datagrams (SCTP ABORT, DTLS close_notify) leave
        // now, then the relays' deallocations.
        self.write_datagrams();
        let now = Instant::now();
        for relay in &mut self.relays {
            relay.close(now);
        }
        self.flush_relays();
        self.shared.set_state(PeerState::Closed);
    }
}

/// The next datagram on any of the sockets, with the socket's index. Polls
/// them in turn from `first` (the one after the last that had a datagram),
/// so a busy socket cannot starve the others.
async fn recv_any(
    sockets: &[HostSocket],
    first: usize,
    buf: &mut [u8],
) -> (usize, std::io::Result<(usize, SocketAddr)>) {
    std::future::poll_fn(|cx| {
        for i in 0..sockets.len() {
            let index = (first + i) % sockets.len();
            let s = &sockets[index];
            let mut read = tokio::io::ReadBuf::new(&mut *buf);
            if let std::task::Poll::Ready(got) = s.socket.poll_recv_from(cx, &mut read) {
                let n = read.filled().len();
                return std::task::Poll::Ready((index, got.map(|from| (n, from))));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Resolves when `ch` has room for one more received message.
async fn wait_room(ch: Option<&ChanShared>) {
    match ch {
        Some(ch) => ch.room().await,
        None => std::future::pending().await,
    }
}

fn map_state(s: RTCPeerConnectionState) -> PeerState {
    match s {
        RTCPeerConnectionState::Connecting => PeerState::Connecting,
        RTCPeerConnectionState::Connected => PeerState::Connected,
        RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
        RTCPeerConnectionState::Failed => PeerState::Failed,
        RTCPeerConnectionState::Closed => PeerState::Closed,
        _ => PeerState::New,
    }
}

/// Queues an event for the owner without waiting; a full queue drops it with a log.
fn emit(tx: &mpsc::Sender<RtcEvent>, ev: RtcEvent) {
    if let Err(mpsc::error::TrySendError::Full(ev)) = tx.try_send(ev) {
        tracing::warn!(?ev, "rtc event queue full; event dropped");
    }
}

/// Sends a command's answer; the caller may have stopped waiting.
fn answer<T>(reply: Reply<T>, value: T) {
    let _: Result<(), T> = oneshot::Sender::send(reply, value);
}
