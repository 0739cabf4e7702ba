//! One peer connection on the sans-IO stack: [`RtcPeer`], a handle whose
//! calls become commands to the peer's driver task (started here, on the
//! process's stack thread, `crate::stack`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::setting_engine::{
    SctpMaxMessageSize, SettingEngineBuilder,
};
use tokio::sync::{mpsc, oneshot};

use super::channel::RtcChannel;
use super::command::Command;
use super::driver::Driver;
use super::gather::{HostSocket, bind, host_ips, stun_servers};
use super::shared::PeerShared;
use super::turn::{Relay, turn_servers};
use crate::config::RtcConfig;
use crate::dtls::DtlsFingerprints;
use crate::error::RtcError;
use crate::event::{Candidate, PeerState, RtcEvent};
use crate::options::ChannelOptions;
use crate::sdp::{MAX_MESSAGE_SIZE, parse_max_message_size};

/// Events waiting for the owner; when full, further events are dropped with a log.
const EVENT_QUEUE: usize = 256;
/// Commands waiting for the driver (sends included): a full queue makes
/// `send` wait and `try_send` drop.
const COMMAND_QUEUE: usize = 256;
/// ICE connectivity checks this often while connecting: a pair that works is
/// nominated within one interval (the library's default, 200 ms, was most of
/// a loopback connect).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// The handles' part: dropping the last handle closes the peer.
struct PeerInner {
    shared: Arc<PeerShared>,
}

impl Drop for PeerInner {
    fn drop(&mut self) {
        if !self.shared.closed.swap(true, Ordering::SeqCst) {
            let _ = self.shared.commands.try_send(Command::Close);
        }
    }
}

/// One WebRTC peer connection. Cheap to clone; all clones share the connection.
#[derive(Clone)]
pub struct RtcPeer {
    inner: Arc<PeerInner>,
}

impl std::fmt::Debug for RtcPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcPeer")
            .field("state", &self.state())
            .finish()
    }
}

impl RtcPeer {
    /// Builds a peer connection and its bounded event receiver.
    pub async fn new(config: &RtcConfig) -> Result<(RtcPeer, mpsc::Receiver<RtcEvent>), RtcError> {
        check_urls(config)?;
        let ips = host_ips(config)?;
        // The core caps this at its own ceiling (`MAX_TRANSPORT_MESSAGE`).
        let send_limit = u32::try_from(MAX_MESSAGE_SIZE).unwrap_or(u32::MAX);
        let mut settings = SettingEngineBuilder::new()
            .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), None)
            .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(send_limit));
        if config.loopback_only {
            // When a check from the peer arrives before its trickled
            // candidate, the pair is peer-reflexive and the controlling side
            // waits 1 s before nominating it; on loopback that pair is the
            // right one (one connect in seven took 1 s in the bench).
            settings = settings.with_prflx_acceptance_min_wait(Some(Duration::ZERO));
        }
        let settings = settings.build();
        let pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings)
            .build(Instant::now())?;
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (ops_tx, channel_ops) = mpsc::channel(COMMAND_QUEUE);
        let shared = Arc::new(PeerShared::new(commands_tx, ops_tx));
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let driver_shared = Arc::clone(&shared);
        let config = config.clone();
        let started = crate::stack::on_stack(async move {
            let mut sockets = Vec::new();
            for ip in ips {
                match bind(ip) {
                    Ok(s) => sockets.push(s),
                    Err(e) => tracing::info!(%ip, error = %e, "no host candidate on this address"),
                }
            }
            if sockets.is_empty() {
                return Err("no local address to gather host candidates on".to_owned());
            }
            let stun_servers = stun_servers(&config).await;
            let relays = start_relays(&config, &sockets).await;
            if config.relay_only && relays.is_empty() {
                return Err(
                    "relay-only, but no TURN server (turn: over UDP) could be used".to_owned(),
                );
            }
            let driver = Driver {
                pc,
                sockets,
                stun_servers,
                stun: Default::default(),
                relays,
                relay_only: config.relay_only,
                gathering: false,
                next_socket: 0,
                commands,
                channel_ops,
                events: events_tx,
                shared: driver_shared,
                channels: Default::default(),
                stalled: None,
                remote_set: false,
                pending: Vec::new(),
                gathered_ufrag: None,
            };
            tokio::spawn(driver.run());
            Ok(())
        })
        .await?;
        started.map_err(RtcError::Invalid)?;
        Ok((
            RtcPeer {
                inner: Arc::new(PeerInner { shared }),
            },
            events,
        ))
    }

    /// Offerer: creates an ordered, reliable DataChannel (the `terminal`
    /// channel, before the offer).
    pub async fn create_data_channel(&self, label: &str) -> Result<RtcChannel, RtcError> {
        self.create_data_channel_with(label, ChannelOptions::reliable())
            .await
    }

    /// Either side: creates an in-band negotiated DataChannel with these
    /// delivery options; on a connected peer the other side sees
    /// [`RtcEvent::DataChannel`].
    pub async fn create_data_channel_with(
        &self,
        label: &str,
        options: ChannelOptions,
    ) -> Result<RtcChannel, RtcError> {
        let label = label.to_owned();
        self.call(|reply| Command::CreateChannel {
            label,
            options,
            reply,
        })
        .await?
    }

    /// Offerer: creates an offer (with fresh ICE credentials when
    /// `ice_restart`), sets it as the local description and returns its SDP.
    /// Until the next answer is set, remote candidates are queued again.
    pub async fn create_offer(&self, ice_restart: bool) -> Result<String, RtcError> {
        self.call(|reply| Command::CreateOffer { ice_restart, reply })
            .await?
    }

    /// Offerer: applies the remote answer, then the queued candidates.
    pub async fn set_remote_answer(&self, sdp: &str) -> Result<(), RtcError> {
        let sdp = self.incoming_sdp(sdp)?;
        self.call(|reply| Command::SetAnswer { sdp, reply }).await?
    }

    /// Answerer: applies a remote offer, applies queued candidates, creates
    /// and sets the answer and returns its SDP.
    pub async fn accept_offer(&self, sdp: &str) -> Result<String, RtcError> {
        let sdp = self.incoming_sdp(sdp)?;
        self.call(|reply| Command::AcceptOffer { sdp, reply })
            .await?
    }

    /// Adds a remote candidate, or queues it (at most 64) while no remote
    /// description is set. An empty candidate is ignored.
    pub async fn add_remote_candidate(&self, candidate: Candidate) -> Result<(), RtcError> {
        self.check_open()?;
        let value = candidate.candidate.trim();
        if value.is_empty() || value == "candidate:" {
            return Ok(());
        }
        self.inner
            .shared
            .commands
            .send(Command::AddCandidate { candidate })
            .await
            .map_err(|_| RtcError::Closed)
    }

    /// Closes every channel (waking their waiters at once) and then the connection.
    pub async fn close(&self) {
        let shared = &self.inner.shared;
        if shared.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        for ch in &shared.take_channels() {
            ch.close();
        }
        let _ = shared.commands.send(Command::Close).await;
    }

    /// SHA-256 fingerprints of our DTLS certificate and of the certificate the
    /// remote end presented in the handshake; fails before DTLS is up.
    pub async fn dtls_fingerprints(&self) -> Result<DtlsFingerprints, RtcError> {
        self.call(|reply| Command::Fingerprints { reply }).await?
    }

    /// The connection's current state.
    pub fn state(&self) -> PeerState {
        let shared = &self.inner.shared;
        if shared.closed.load(Ordering::SeqCst) {
            return PeerState::Closed;
        }
        shared.state()
    }

    /// The remote side's max-message-size (65 536 until a remote description
    /// advertising another value is set).
    pub fn remote_max_message_size(&self) -> usize {
        self.inner.shared.remote_max.load(Ordering::Relaxed)
    }

    fn check_open(&self) -> Result<(), RtcError> {
        if self.inner.shared.closed.load(Ordering::SeqCst) {
            Err(RtcError::Closed)
        } else {
            Ok(())
        }
    }

    fn incoming_sdp(&self, sdp: &str) -> Result<String, RtcError> {
        if sdp.trim().is_empty() {
            return Err(RtcError::Invalid("empty session description".to_owned()));
        }
        self.inner
            .shared
            .remote_max
            .store(parse_max_message_size(sdp), Ordering::Relaxed);
        Ok(sdp.to_owned())
    }

    /// Sends a command that answers, and waits for the answer.
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RtcError> {
        self.check_open()?;
        let (tx, rx) = oneshot::channel();
        self.inner
            .shared
            .commands
            .send(make(tx))
            .await
            .map_err(|_| RtcError::Closed)?;
        rx.await.map_err(|_| RtcError::Closed)
    }
}

/// A TURN client for each usable `turn:` server, on the first host socket of
/// its address family, with its allocation under way.
async fn start_relays(config: &RtcConfig, sockets: &[HostSocket]) -> Vec<Relay> {
    let now = Instant::now();
    let mut relays = Vec::new();
    for server in turn_servers(config).await {
        let same_family = sockets
            .iter()
            .position(|s| s.local.is_ipv4() == server.addr.is_ipv4());
        let Some(index) = same_family else {
            tracing::info!(server = %server.addr, "no local address of the TURN server's family");
            continue;
        };
        match Relay::start(&server, index, sockets[index].local, now) {
            Ok(relay) => relays.push(relay),
            Err(e) => tracing::info!(server = %server.addr, error = %e, "TURN client"),
        }
    }
    relays
}

/// Every ICE server URL must be `stun:`, `stuns:`, `turn:` or `turns:` with a
/// host: a typo fails the peer at once instead of
/// leaving it without the candidates the user asked for.
fn check_urls(config: &RtcConfig) -> Result<(), RtcError> {
    for url in config.ice_servers.iter().flat_map(|s| &s.urls) {
        let host = url.trim().split_once(':').and_then(|(scheme, rest)| {
            let known = ["stun", "stuns", "turn", "turns"]
                .iter()
                .any(|k| scheme.eq_ignore_ascii_case(k));
            known.then_some(rest)
        });
        if host.is_none_or(|h| h.is_empty() || h.starts_with(':') || h.starts_with('?')) {
            return Err(RtcError::Invalid(format!(
                "not a STUN or TURN URL: {url:?}"
            )));
        }
    }
    Ok(())
}
