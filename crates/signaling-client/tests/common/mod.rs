//! Shared setup of the signaling-client integration tests: a real bundled
//! server on 127.0.0.1, host registration, short client knobs, state waits.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt as _, StreamExt as _};
use signaling_client::core::CoreConfig;
use signaling_client::{
    ClientConfig, ConnectionState, Identity, Signal, SignalingClient, SignalingError,
    SignalingMessage,
};
use signaling_proto::{
    ChallengeRequest, ChallengeResponse, PairCompleteRequest, PairCompleteResponse,
    PairInitiateRequest, PairInitiateResponse, SignedHeaders,
};
use signaling_server::{RateLimits, RunningServer, Server, ServerConfig};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// Upper bound for any single wait in these tests (never reached when green).
pub const WAIT: Duration = Duration::from_secs(20);

pub const HMAC: &str = "test-hmac-secret";

/// Server settings for tests: no rate limits, fixed JWT key, optional file DB
/// (so a restarted server still knows the host).
pub fn server_config(db: Option<&Path>, bind: Option<SocketAddr>) -> ServerConfig {
    let mut config = ServerConfig {
        database: db.map(Path::to_path_buf),
        jwt_secret: b"test-jwt-secret-for-signaling-client".to_vec(),
        hmac_secret: HMAC.to_owned(),
        rate_limits: RateLimits::disabled(),
        ..ServerConfig::default()
    };
    if let Some(addr) = bind {
        config.bind = addr;
    }
    config
}

pub async fn start_server(config: ServerConfig) -> RunningServer {
    // The port of a just-stopped server may take a moment to be free again.
    let mut last = None;
    for _ in 0..50 {
        match Server::start(config.clone()).await {
            Ok(server) => return server,
            Err(e) => {
                last = Some(e.to_string());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    panic!("server did not start: {last:?}");
}

/// Registers `identity` as a host (pair/initiate), as `muxlink pair` does;
/// returns the pairing code.
pub async fn register_host(identity: &Identity, server_url: &str) -> String {
    let identity = identity.clone();
    let url = server_url.to_owned();
    tokio::task::spawn_blocking(move || {
        let challenge: ChallengeResponse = signaling_client::http::signed_json(
            "POST",
            &url,
            "v1",
            "/auth/challenge",
            HMAC,
            None,
            Some(&ChallengeRequest {
                device_id: identity.device_id().to_owned(),
            }),
        )
        .unwrap();
        let x25519: [u8; 32] = rand::random();
        let initiated: PairInitiateResponse = signaling_client::http::signed_json(
            "POST",
            &url,
            "v1",
            "/auth/pair/initiate",
            HMAC,
            None,
            Some(&PairInitiateRequest {
                device_id: identity.device_id().to_owned(),
                ed25519_public_key: identity.public_key_b64(),
                x25519_public_key: STANDARD.encode(x25519),
                name: Some("test-host".into()),
                signature: identity.sign_challenge(&challenge.nonce),
                nonce: challenge.nonce,
            }),
        )
        .unwrap();
        initiated.pairing_code
    })
    .await
    .unwrap()
}

/// Pairs a new phone with the host that issued `code` (pair/complete; the
/// server treats the confirmation as opaque).
pub async fn pair_phone(code: &str, server_url: &str) -> Identity {
    let phone = Identity::generate();
    let (identity, url, code) = (phone.clone(), server_url.to_owned(), code.to_owned());
    tokio::task::spawn_blocking(move || {
        let challenge: ChallengeResponse = signaling_client::http::signed_json(
            "POST",
            &url,
            "v1",
            "/auth/challenge",
            HMAC,
            None,
            Some(&ChallengeRequest {
                device_id: identity.device_id().to_owned(),
            }),
        )
        .unwrap();
        let x25519: [u8; 32] = rand::random();
        let _: PairCompleteResponse = signaling_client::http::signed_json(
            "POST",
            &url,
            "v1",
            "/auth/pair/complete",
            HMAC,
            None,
            Some(&PairCompleteRequest {
                pairing_code: code,
                device_id: identity.device_id().to_owned(),
                ed25519_public_key: identity.public_key_b64(),
                x25519_public_key: STANDARD.encode(x25519),
                name: Some("test-phone".into()),
                signature: identity.sign_challenge(&challenge.nonce),
                nonce: challenge.nonce,
                confirmation: STANDARD.encode([7u8; 32]),
            }),
        )
        .unwrap();
    })
    .await
    .unwrap();
    phone
}

/// A phone's signaling socket, spoken by hand.
pub struct PhoneSocket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl PhoneSocket {
    /// Opens `/v1/ws` signed and authenticates as `phone`.
    pub async fn open(phone: &Identity, server_url: &str) -> PhoneSocket {
        let (identity, url) = (phone.clone(), server_url.to_owned());
        let token = tokio::task::spawn_blocking(move || {
            signaling_client::http::fetch_token(&identity, &url, "v1", HMAC).unwrap()
        })
        .await
        .unwrap();
        let mut request = signaling_proto::ws_url(server_url, "v1")
            .into_client_request()
            .unwrap();
        let signed =
            SignedHeaders::new(HMAC, "/v1/ws", signaling_client::http::unix_now()).unwrap();
        for (name, value) in signed.pairs() {
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut socket = PhoneSocket { ws };
        socket
            .send(SignalingMessage {
                token,
                name: "test-phone".into(),
                ..SignalingMessage::new("auth")
            })
            .await;
        let reply = socket.next().await;
        assert_eq!((reply.kind.as_str(), reply.status.as_str()), ("auth", "ok"));
        socket
    }

    pub async fn send(&mut self, msg: SignalingMessage) {
        self.ws.send(Message::text(msg.to_json())).await.unwrap();
    }

    /// The next text message, within [`WAIT`].
    pub async fn next(&mut self) -> SignalingMessage {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => return SignalingMessage::parse(&t).unwrap(),
                    Some(Ok(_)) => continue,
                    other => panic!("phone socket ended: {other:?}"),
                }
            }
        })
        .await
        .expect("no message for the phone")
    }

    /// Sends `presence` and returns every message that arrived before its ack.
    pub async fn drain_until_presence_ack(&mut self) -> Vec<SignalingMessage> {
        self.send(SignalingMessage::new("presence")).await;
        let mut before = Vec::new();
        loop {
            let m = self.next().await;
            if m.kind == "presence_ack" {
                return before;
            }
            before.push(m);
        }
    }
}
/// Fast knobs: presence 200 ms, read deadline 1.4 s, backoff 100 ms → 800 ms.
pub fn fast_config() -> CoreConfig {
    CoreConfig {
        presence_interval: Duration::from_millis(200),
        read_deadline_grace: Duration::from_millis(1000),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(800),
        auth_timeout: Duration::from_secs(5),
        ..CoreConfig::default()
    }
}

/// A running client and what it delivered.
pub struct Running {
    pub client: SignalingClient,
    pub messages: mpsc::Receiver<Signal>,
    pub cancel: CancellationToken,
    pub task: JoinHandle<Result<(), SignalingError>>,
}

impl Running {
    pub async fn stop(self) -> Result<(), SignalingError> {
        self.cancel.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap()
    }
}

/// The test client's configuration: `core` knobs, a 5 s handshake bound.
pub fn client_config(
    identity: Identity,
    server_url: &str,
    secret: &str,
    core: CoreConfig,
) -> ClientConfig {
    ClientConfig {
        hmac_secret: secret.to_owned(),
        handshake_timeout: Duration::from_secs(5),
        core,
        // Presence acks pile up while a test looks elsewhere.
        incoming_capacity: 256,
        ..ClientConfig::new(identity, server_url, "test-host")
    }
}

/// Builds a client with `config`, spawns its driver.
pub fn spawn_client(
    identity: Identity,
    server_url: &str,
    secret: &str,
    config: CoreConfig,
) -> Running {
    let (client, driver, messages) =
        SignalingClient::new(client_config(identity, server_url, secret, config));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(driver.run(cancel.clone()));
    Running {
        client,
        messages,
        cancel,
        task,
    }
}

/// Waits until the client's state satisfies `pred`.
pub async fn wait_state(client: &SignalingClient, pred: impl FnMut(&ConnectionState) -> bool) {
    let mut rx = client.subscribe_state();
    tokio::time::timeout(WAIT, rx.wait_for(pred))
        .await
        .unwrap_or_else(|_| panic!("state wait timed out; state is {:?}", client.state()))
        .unwrap();
}

/// Waits for a delivered signal matching `pred` (`what` names it in the
/// failure), skipping the others.
pub async fn wait_signal(
    messages: &mut mpsc::Receiver<Signal>,
    what: &str,
    mut pred: impl FnMut(&Signal) -> bool,
) -> Signal {
    tokio::time::timeout(WAIT, async {
        loop {
            let s = messages.recv().await.unwrap();
            if pred(&s) {
                return s;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} message"))
}

/// Waits for a `presence_ack`.
pub async fn wait_presence_ack(messages: &mut mpsc::Receiver<Signal>) {
    wait_signal(messages, "presence_ack", |s| {
        matches!(s, Signal::PresenceAck)
    })
    .await;
}
