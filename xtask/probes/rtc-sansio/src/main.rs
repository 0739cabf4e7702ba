//! Two peers of the `rtc` 0.21.1 sans-IO core over loopback UDP, each driven
//! by one task on its own current-thread runtime and thread (as the agent and
//! the phone would be): time from the offer to the open "terminal" channel,
//! 64-byte round trips on it, then a bulk transfer of 16 KiB messages with
//! the sender kept at most 1 MiB ahead, and each thread's CPU time. No
//! signaling server and no candidates beyond one loopback host candidate per
//! peer; the two descriptions cross in-process.
//!
//! Environment: `CHECK_MS` (ICE check interval, the library's default is
//! 200), `SOCKBUF` (SO_RCVBUF and SO_SNDBUF in bytes; the system default when
//! unset), `PINGS` (default 2000), `BULK_MB` (default 48), `GAP_US` (the
//! phone sends its next ping this long after the last echo arrived, as the
//! bench types keys 5 ms apart; default 0, back to back). `TMUX_ECHO=1`:
//! the host echoes through a tmux pane on its own thread (see `pane`), the
//! phone sends 1-byte keys, and there is no bulk part.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::BytesMut;
use rtc::data_channel::{RTCDataChannelId, RTCDataChannelInit};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

mod common;
mod pane;
use common::{AHEAD, MESSAGE, PING, cpu, env_num, host_and_phone};

const START_BULK: &[u8] = b"bulk!";

fn thread_cpu() -> f64 {
    cpu(libc::RUSAGE_THREAD)
}

fn socket() -> Result<UdpSocket> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    if let Ok(size) = std::env::var("SOCKBUF") {
        let size: libc::c_int = size.parse().context("SOCKBUF")?;
        for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
            // SAFETY: a plain setsockopt on a socket we own, with an int.
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
    sock.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(sock)?)
}

fn peer(local: SocketAddr) -> Result<RTCPeerConnection> {
    let check = Duration::from_millis(env_num("CHECK_MS", 200));
    let settings = SettingEngineBuilder::new()
        .with_ice_connection_attempts(Some(check), None)
        .build();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings)
        .build(Instant::now())?;
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".into(),
            address: local.ip().to_string(),
            port: local.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&host).to_json()?)?;
    Ok(pc)
}

/// What one side does with the channel; `None` from `on_message` means done.
struct App {
    host: bool,
    /// `TMUX_ECHO`: 1-byte keys echoed by a tmux pane; no bulk part.
    tmux: bool,
    started: Instant,
    pings: usize,
    rtts: Vec<f64>,
    sent_at: Instant,
    /// `GAP_US`: the phone sends its next ping this long after the last echo.
    gap: Duration,
    next_ping: Option<(Instant, BytesMut)>,
    bulk_left: usize,
    bulk_total: usize,
    bulk_got: usize,
    bulk_started: Instant,
    cpu_at_bulk: f64,
    process_cpu_at_bulk: f64,
}

fn send(pc: &mut RTCPeerConnection, id: RTCDataChannelId, data: BytesMut) -> Result<()> {
    let mut dc = pc.data_channel(id).ok_or_else(|| anyhow!("channel gone"))?;
    Ok(dc.send(Instant::now(), data)?)
}

impl App {
    fn opened(&mut self, pc: &mut RTCPeerConnection, id: RTCDataChannelId) -> Result<()> {
        let who = if self.host { "host" } else { "phone" };
        println!(
            "{who}: channel open {:.1} ms after the offer",
            ms(self.started.elapsed())
        );
        if !self.host {
            self.sent_at = Instant::now();
            let first = if self.tmux {
                &b"a"[..]
            } else {
                &[1u8; PING][..]
            };
            send(pc, id, BytesMut::from(first))?;
        }
        Ok(())
    }

    /// Returns false once the phone has measured everything.
    fn message(
        &mut self,
        pc: &mut RTCPeerConnection,
        id: RTCDataChannelId,
        data: BytesMut,
    ) -> Result<bool> {
        if self.host {
            if data.len() == PING {
                send(pc, id, data)?;
            } else if &data[..] == START_BULK {
                self.bulk_left = self.bulk_total;
                self.cpu_at_bulk = thread_cpu();
            }
            return Ok(true);
        }
        if self.tmux || data.len() == PING {
            self.rtts.push(self.sent_at.elapsed().as_secs_f64() * 1e6);
            if self.rtts.len() < self.pings {
                if self.gap.is_zero() {
                    self.sent_at = Instant::now();
                    send(pc, id, data)?;
                } else {
                    self.next_ping = Some((Instant::now() + self.gap, data));
                }
            } else {
                let mut s = self.rtts.clone();
                s.sort_by(f64::total_cmp);
                println!(
                    "round trip ({} × {} B): p50 {:.0} µs, p99 {:.0} µs",
                    s.len(),
                    if self.tmux { 1 } else { PING },
                    s[s.len() / 2],
                    s[s.len() * 99 / 100]
                );
                if self.tmux {
                    return Ok(false);
                }
                self.cpu_at_bulk = thread_cpu();
                self.process_cpu_at_bulk = cpu(libc::RUSAGE_SELF);
                self.bulk_started = Instant::now();
                send(pc, id, BytesMut::from(START_BULK))?;
            }
            return Ok(true);
        }
        self.bulk_got += data.len();
        if self.bulk_got < self.bulk_total {
            return Ok(true);
        }
        let secs = self.bulk_started.elapsed().as_secs_f64();
        println!(
            "bulk {:.0} MB in {secs:.2} s = {:.1} MB/s; receiver CPU {:.2} s, process CPU (both peers) {:.2} s",
            self.bulk_total as f64 / 1e6,
            self.bulk_total as f64 / secs / 1e6,
            thread_cpu() - self.cpu_at_bulk,
            cpu(libc::RUSAGE_SELF) - self.process_cpu_at_bulk
        );
        Ok(false)
    }

    fn fill(
        &mut self,
        pc: &mut RTCPeerConnection,
        id: RTCDataChannelId,
        payload: &BytesMut,
    ) -> Result<()> {
        if self.bulk_left == 0 {
            return Ok(());
        }
        let mut dc = pc.data_channel(id).ok_or_else(|| anyhow!("channel gone"))?;
        while self.bulk_left > 0 && dc.outstanding_bytes() < AHEAD {
            dc.send(Instant::now(), payload.clone())?;
            self.bulk_left = self.bulk_left.saturating_sub(MESSAGE);
        }
        if self.bulk_left == 0 {
            println!(
                "sender CPU until the last message was queued: {:.2} s",
                thread_cpu() - self.cpu_at_bulk
            );
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The driver: after every input (a datagram or a timer), hand the core's
/// events and messages to the app, then send every datagram the core has,
/// then sleep until the next datagram or the core's next deadline.
async fn run(
    host: bool,
    out: mpsc::Sender<RTCSessionDescription>,
    mut inbox: mpsc::Receiver<RTCSessionDescription>,
    started: Instant,
) -> Result<()> {
    let tmux = env_num("TMUX_ECHO", 0) == 1;
    let (mut pane, mut ctl_out) = if tmux && host {
        let (pane, ctl_out) = pane::Pane::start().await?;
        (Some(pane), Some(ctl_out))
    } else {
        (None, None)
    };
    let mut pane_buf = vec![0u8; 65536];
    let mut ctl_buf = vec![0u8; 65536];
    let sock = socket()?;
    let local = sock.local_addr()?;
    let mut pc = peer(local)?;
    let closed = || anyhow!("the other side went away");
    if host {
        pc.create_data_channel(
            "terminal",
            Some(RTCDataChannelInit {
                ordered: true,
                ..Default::default()
            }),
        )?;
        let offer = pc.create_offer(None)?;
        pc.set_local_description(Instant::now(), offer.clone())?;
        out.send(offer).await?;
        let answer = inbox.recv().await.ok_or_else(closed)?;
        pc.set_remote_description(Instant::now(), answer)?;
    } else {
        let offer = inbox.recv().await.ok_or_else(closed)?;
        pc.set_remote_description(Instant::now(), offer)?;
        let answer = pc.create_answer(None)?;
        pc.set_local_description(Instant::now(), answer.clone())?;
        out.send(answer).await?;
    }
    let mut app = App {
        host,
        tmux,
        started,
        pings: env_num("PINGS", 2000) as usize,
        rtts: Vec::new(),
        sent_at: Instant::now(),
        gap: Duration::from_micros(env_num("GAP_US", 0)),
        next_ping: None,
        bulk_left: 0,
        bulk_total: env_num("BULK_MB", 48) as usize * 1_000_000,
        bulk_got: 0,
        bulk_started: Instant::now(),
        cpu_at_bulk: 0.0,
        process_cpu_at_bulk: 0.0,
    };
    let payload = BytesMut::from(&vec![7u8; MESSAGE][..]);
    let mut channel = None;
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(ev) = pc.poll_event() {
            if let RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id)) = ev {
                channel = Some(id);
                app.opened(&mut pc, id)?;
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = pc.poll_read() {
            if let RTCMessage::DataChannelMessage(id, m) = message {
                if let Some(pane) = pane.as_mut() {
                    pane.key(&m.data)?;
                } else if !app.message(&mut pc, id, m.data)? {
                    return Ok(());
                }
            }
        }
        if let Some(id) = channel {
            if let Some((at, _)) = &app.next_ping
                && *at <= Instant::now()
                && let Some((_, data)) = app.next_ping.take()
            {
                app.sent_at = Instant::now();
                send(&mut pc, id, data)?;
            }
            app.fill(&mut pc, id, &payload)?;
        }
        while let Some(dgram) = pc.poll_write() {
            // Loopback drops count as loss; SCTP recovers them.
            let _ = sock
                .send_to(&dgram.message, dgram.transport.peer_addr)
                .await;
        }
        let mut deadline = pc
            .poll_timeout()
            .unwrap_or(Instant::now() + Duration::from_secs(3600));
        if let Some((at, _)) = &app.next_ping {
            deadline = deadline.min(*at);
        }
        if deadline <= Instant::now() {
            pc.handle_timeout(Instant::now())?;
            continue;
        }
        tokio::select! {
            biased;
            got = sock.recv_from(&mut buf) => {
                let (n, peer_addr) = got?;
                let transport = TransportContext { local_addr: local, peer_addr, ecn: None, transport_protocol: TransportProtocol::UDP };
                pc.handle_read(TaggedBytesMut { now: Instant::now(), transport, message: BytesMut::from(&buf[..n]) })?;
            }
            got = async {
                match pane.as_mut() {
                    Some(p) => p.read(&mut pane_buf).await,
                    None => std::future::pending().await,
                }
            } => {
                let n = got?;
                if n == 0 {
                    return Err(anyhow!("the pane's pipe ended"));
                }
                if let Some(id) = channel {
                    send(&mut pc, id, BytesMut::from(&pane_buf[..n]))?;
                }
            }
            _ = async {
                match ctl_out.as_mut() {
                    Some(c) => tokio::io::AsyncReadExt::read(c, &mut ctl_buf).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = tokio::time::sleep_until(deadline.into()) => {
                if pc.poll_timeout().is_some_and(|t| t <= Instant::now()) {
                    pc.handle_timeout(Instant::now())?;
                }
            }
        }
    }
}

fn main() -> Result<()> {
    let result = host_and_phone(run);
    // The host thread never ends on its own, so its pane is not dropped.
    pane::clean_up();
    result
}
