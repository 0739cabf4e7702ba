//! Shared test setup: a real signaling server on 127.0.0.1:0, a host identity
//! that initiates pairing over HTTP, and a minimal test host that answers the
//! phone over real WebRTC (loopback) with the terminal protocol.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mobile_client::{
    PhoneClient, PhoneConfig, PhoneIdentity, RtcConfig, Signaling, SignalingOptions,
};
use rtc_transport::{Candidate, RtcChannel, RtcEvent, RtcPeer};
use signaling_client::http::{fetch_challenge, signed_json};
use signaling_proto::consts::DEFAULT_API_VERSION;
use signaling_proto::{PairInitiateRequest, PairInitiateResponse, QrPayload, Signal};
use signaling_server::{RunningServer, Server, ServerConfig};
use terminal_protocol::{AuthTranscript, Compressor, Event, Request, new_nonce, nonce_b64};
use tokio::sync::mpsc;
use x25519_dalek::{PublicKey, StaticSecret};

pub const HMAC: &str = "test-hmac-secret";
pub const WAIT: Duration = Duration::from_secs(20);

pub async fn server() -> RunningServer {
    let config = ServerConfig {
        hmac_secret: HMAC.into(),
        ..Default::default()
    };
    Server::start(config).await.unwrap()
}

/// The host side of pairing, done with plain signed HTTP.
pub struct TestHost {
    pub identity: PhoneIdentity,
    pub x25519: StaticSecret,
    /// The pairing token its QR payload carries.
    pub token: [u8; 16],
    pub server_url: String,
}

impl TestHost {
    pub fn new(server_url: &str) -> Self {
        TestHost {
            identity: PhoneIdentity::generate(),
            x25519: StaticSecret::random_from_rng(rand::rngs::OsRng),
            token: *signaling_proto::new_pairing_token(),
            server_url: server_url.to_owned(),
        }
    }

    pub fn device_id(&self) -> String {
        self.identity.device_id().to_owned()
    }

    pub fn x25519_b64(&self) -> String {
        STANDARD.encode(PublicKey::from(&self.x25519).as_bytes())
    }

    /// `POST /auth/pair/initiate` → the QR payload text.
    pub async fn initiate(&self) -> String {
        let id = self.identity.clone();
        let url = self.server_url.clone();
        let x = self.x25519_b64();
        let code = tokio::task::spawn_blocking(move || {
            let nonce = fetch_challenge(&url, DEFAULT_API_VERSION, HMAC, id.device_id()).unwrap();
            let resp: PairInitiateResponse = signed_json(
                "POST",
                &url,
                DEFAULT_API_VERSION,
                "/auth/pair/initiate",
                HMAC,
                None,
                Some(&PairInitiateRequest {
                    device_id: id.device_id().to_owned(),
                    ed25519_public_key: id.public_key_b64(),
                    x25519_public_key: x,
                    name: Some("test-host".into()),
                    signature: id.sign_challenge(&nonce),
                    nonce,
                }),
            )
            .unwrap();
            resp.pairing_code
        })
        .await
        .unwrap();
        QrPayload {
            code,
            host_x25519_public_key: self.x25519_b64(),
            host_device_id: self.device_id(),
            server_url: self.server_url.clone(),
            token: zeroize::Zeroizing::new(self.token),
        }
        .to_string()
    }

    /// The host's own signaling socket.
    pub async fn signaling(&self) -> Arc<Signaling> {
        let mut opts = SignalingOptions::new(&self.server_url);
        opts.hmac_secret = HMAC.into();
        opts.name = "test-host".into();
        Arc::new(Signaling::connect(&self.identity, &opts).await.unwrap())
    }
}

pub fn phone(dir: &std::path::Path) -> PhoneClient {
    let mut config = PhoneConfig::new(dir);
    config.hmac_secret = HMAC.into();
    config.name = "test-phone".into();
    config.rtc = RtcConfig::loopback();
    PhoneClient::open(config).unwrap()
}

/// A paired phone and host with both signaling sockets up; returns
/// (phone, host, host signaling, shared secret).
pub async fn paired(
    server: &RunningServer,
    dir: &std::path::Path,
) -> (PhoneClient, TestHost, Arc<Signaling>, [u8; 32]) {
    let host = TestHost::new(&server.url());
    let payload = host.initiate().await;
    let host_sig = host.signaling().await;
    let phone = phone(dir);
    let record = phone.pair(&payload).await.unwrap();
    let complete = tokio::time::timeout(WAIT, async {
        loop {
            if let Signal::PairComplete {
                mobile_device_id,
                mobile_x25519_public_key,
                mobile_confirmation,
                ..
            } = host_sig.recv_other().await.unwrap()
            {
                return (
                    mobile_device_id,
                    mobile_x25519_public_key,
                    mobile_confirmation,
                );
            }
        }
    })
    .await
    .unwrap();
    let (mobile_device_id, mobile_x25519_public_key, mobile_confirmation) = complete;
    assert_eq!(mobile_device_id, phone.identity().device_id());
    let phone_x = signaling_proto::decode_public_key(&mobile_x25519_public_key).unwrap();
    let host_secret =
        *signaling_proto::derive_pairing_secret(&host.x25519, &phone_x, &host.token).unwrap();
    assert_eq!(host_secret, record.secret);
    // The host's check of pairing.md §9.6 passes on what the server relayed.
    signaling_proto::verify_pairing_confirmation(
        &host_secret,
        &mobile_device_id,
        &mobile_x25519_public_key,
        &host.device_id(),
        &mobile_confirmation,
    )
    .unwrap();
    (phone, host, host_sig, host_secret)
}

/// Commands to a running [`mini_host`].
pub enum HostCmd {
    /// Send an ICE-restart offer on the current peer.
    IceRestart,
}

/// A minimal host: answers `connect_request` with an offer over real WebRTC,
/// runs the key-possession check, and serves a few requests. Returns a command
/// sender and a receiver of what the host saw ("auth ok", "auth failed", request names).
pub fn mini_host(
    sig: Arc<Signaling>,
    phone_id: String,
    secret: [u8; 32],
) -> (mpsc::Sender<HostCmd>, mpsc::Receiver<String>) {
    let (cmd_tx, mut cmd_rx) = mpsc::channel(4);
    let (seen_tx, seen_rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut route = sig.route(&phone_id);
        let mut peer: Option<RtcPeer> = None;
        loop {
            tokio::select! {
                m = route.recv() => {
                    let Some(m) = m else { break };
                    match m {
                        Signal::ConnectRequest { .. } => {
                            if let Some(old) = peer.take() {
                                old.close().await;
                            }
                            let (p, events) = RtcPeer::new(&RtcConfig::loopback()).await.unwrap();
                            let ch = p.create_data_channel("terminal").await.unwrap();
                            let offer = p.create_offer(false).await.unwrap();
                            let offer = Signal::SdpOffer { target_device_id: phone_id.clone(), sdp: offer };
                            sig.send(offer).await.unwrap();
                            let (fast_tx, fast_rx) = mpsc::channel(1);
                            tokio::spawn(forward_candidates(Arc::clone(&sig), phone_id.clone(), events, fast_tx));
                            tokio::spawn(serve(ch, fast_rx, p.clone(), secret, seen_tx.clone()));
                            peer = Some(p);
                        }
                        Signal::SdpAnswer { sdp, .. } => {
                            if let Some(p) = &peer {
                                p.set_remote_answer(&sdp).await.unwrap();
                            }
                        }
                        Signal::IceCandidate { candidate, sdp_mid, sdp_m_line_index, .. } => {
                            if let Some(p) = &peer {
                                let c = Candidate {
                                    candidate,
                                    sdp_mid: Some(sdp_mid),
                                    sdp_m_line_index,
                                };
                                let _ = p.add_remote_candidate(c).await;
                            }
                        }
                        _ => {}
                    }
                }
                c = cmd_rx.recv() => match c {
                    Some(HostCmd::IceRestart) => {
                        if let Some(p) = &peer {
                            let offer = p.create_offer(true).await.unwrap();
                            let offer = Signal::SdpOffer { target_device_id: phone_id.clone(), sdp: offer };
                            sig.send(offer).await.unwrap();
                            let _ = seen_tx.send("restart offer sent".into()).await;
                        }
                    }
                    None => break,
                },
            }
        }
        if let Some(p) = peer {
            p.close().await;
        }
    });
    (cmd_tx, seen_rx)
}

/// Local candidates to the phone; a channel the phone opens (its stream v2
/// fast channel) to `fast`.
async fn forward_candidates(
    sig: Arc<Signaling>,
    to: String,
    mut events: mpsc::Receiver<RtcEvent>,
    fast: mpsc::Sender<RtcChannel>,
) {
    while let Some(ev) = events.recv().await {
        if let RtcEvent::DataChannel(ch) = ev {
            let _ = fast.try_send(ch);
        } else if let RtcEvent::LocalCandidate(c) = ev {
            let m = Signal::IceCandidate {
                target_device_id: to.clone(),
                candidate: c.candidate,
                sdp_mid: c.sdp_mid.unwrap_or_default(),
                sdp_m_line_index: c.sdp_m_line_index,
            };
            let _ = sig.send(m).await;
        }
    }
}

/// V8 of terminal-protocol §10: two output frames of one deflate stream.
pub const V8_FRAME1: [u8; 13] = [
    0xca, 0x48, 0xcd, 0xc9, 0xc9, 0xe7, 0xe5, 0x02, 0x00, 0x00, 0x00, 0xff, 0xff,
];
pub const V8_FRAME2: [u8; 9] = [0xca, 0x80, 0x50, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff];

/// What the mini host knows of the phone's stream v2 side.
#[derive(Default)]
struct V2 {
    /// The fast channel the phone opened.
    fast: Option<RtcChannel>,
    /// The attachment has offsets: the next output offset and its pane.
    out: Option<(u64, String)>,
}

/// Where the mini host's pane streams start (any base works).
pub const MINI_STREAM_BASE: u64 = 1000;

async fn serve(
    ch: rtc_transport::RtcChannel,
    mut fast_rx: mpsc::Receiver<RtcChannel>,
    peer: RtcPeer,
    secret: [u8; 32],
    seen: mpsc::Sender<String>,
) {
    if ch.wait_open().await.is_err() {
        return;
    }
    let nonce = new_nonce();
    let challenge = Event::AuthChallenge {
        nonce: nonce_b64(&nonce),
    };
    ch.send(&challenge.encode()).await.unwrap();
    let Some(first) = ch.recv().await else { return };
    let fp = peer.dtls_fingerprints().await.unwrap();
    let transcript = match Request::decode(&first) {
        Ok(Request::AuthResponse { nonce: n_m, mac }) => terminal_protocol::decode_nonce(&n_m)
            .ok()
            .map(|mobile_nonce| AuthTranscript {
                host_nonce: nonce,
                mobile_nonce,
                host_fingerprint: fp.local,
                mobile_fingerprint: fp.remote,
            })
            .filter(|t| t.verify_mobile_mac(&secret, &mac).is_ok()),
        _ => None,
    };
    let Some(transcript) = transcript else {
        let _ = seen.send("auth failed".into()).await;
        peer.close().await;
        return;
    };
    let _ = seen.send("auth ok".into()).await;
    let ok = Event::AuthOk {
        mac: transcript.host_mac_b64(&secret),
    };
    ch.send(&ok.encode()).await.unwrap();
    let mut compressor: Option<Compressor> = None;
    let mut v2 = V2::default();
    loop {
        let fast = v2.fast.clone();
        let bytes = tokio::select! {
            m = ch.recv() => match m {
                Some(b) => b,
                None => break,
            },
            Some(f) = fast_rx.recv() => {
                let _ = f.wait_open().await;
                let _ = seen.try_send(format!("fast channel {}", f.label()));
                v2.fast = Some(f);
                continue;
            }
            Some(b) = async {
                match &fast {
                    Some(f) => f.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                // Input copies are only recorded; the reliable copy is echoed.
                if let Ok(Request::Input { offset: Some(o), .. }) = Request::decode(&b) {
                    let _ = seen.try_send(format!("fast input {o}"));
                }
                continue;
            }
        };
        let Ok(req) = Request::decode(&bytes) else {
            let _ = seen.send("undecodable".into()).await;
            continue;
        };
        let _ = seen.send(req.type_name().to_owned()).await;
        let replies = match req {
            Request::ListSessions => vec![Event::Sessions {
                sessions: vec![],
                agent_version: Some("test".into()),
                update_available: None,
            }],
            Request::Ping => vec![Event::Pong { latency: 0 }],
            Request::Attach(a) if a.pane_id == "%404" => {
                vec![Event::PaneClosed { pane_id: a.pane_id }]
            }
            Request::Attach(a) => {
                // Stream v2 when asked: offsets from MINI_STREAM_BASE, no snapshot.
                let deflate = a.compression.as_deref() == Some("deflate");
                compressor = deflate.then(Compressor::new);
                let base = a.offsets.then_some(MINI_STREAM_BASE);
                // "hello\r\n" twice deflated (the spec's V8 frames), once plain.
                let frames: &[&[u8]] = if deflate {
                    &[&V8_FRAME1, &V8_FRAME2]
                } else {
                    &[b"hello\r\n"]
                };
                v2.out = base.map(|b| (b + 7 * frames.len() as u64, a.pane_id.clone()));
                let mut v = vec![Event::Attached {
                    pane_id: a.pane_id,
                    compression: a.compression.filter(|_| deflate),
                    offset: base,
                    resumed: false,
                }];
                for (i, frame) in frames.iter().enumerate() {
                    v.push(Event::Output {
                        data: frame.to_vec(),
                        offset: base.map(|b| b + 7 * i as u64),
                        snapshot: false,
                        pane_id: None,
                    });
                }
                v
            }
            Request::Input { data, .. } => {
                // The echo, with stream v2 as a fast copy first, then reliably.
                let offset = match &mut v2.out {
                    Some((next, pane)) => {
                        let at = *next;
                        *next += data.len() as u64;
                        if let Some(f) = &v2.fast {
                            let copy = Event::Output {
                                data: data.clone(),
                                offset: Some(at),
                                snapshot: false,
                                pane_id: Some(pane.clone()),
                            };
                            f.try_send(&copy.encode());
                        }
                        Some(at)
                    }
                    None => None,
                };
                let data = match compressor.as_mut() {
                    Some(c) => c.compress(&data).unwrap(),
                    None => data,
                };
                vec![Event::Output {
                    data,
                    offset,
                    snapshot: false,
                    pane_id: None,
                }]
            }
            Request::Detach => {
                compressor = None;
                v2.out = None;
                vec![Event::Detached]
            }
            Request::KillSession { session } => vec![Event::SessionEnded { session }],
            Request::CreateSession => vec![Event::error(
                terminal_protocol::ErrorCode::CreateSessionFailed,
                "not in this test host",
            )],
            _ => vec![],
        };
        for ev in replies {
            if ch.send(&ev.encode()).await.is_err() {
                return;
            }
        }
    }
}
