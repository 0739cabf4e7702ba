//! Test clients for the signaling server: a blocking HTTP client (ureq, run
//! off the async workers) and a WebSocket client (tokio-tungstenite), both
//! speaking the wire format by hand.
#![allow(dead_code, clippy::unwrap_used, clippy::large_enum_variant)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use signaling_proto::ed25519_dalek::SigningKey;
use signaling_proto::x25519_dalek::{PublicKey, StaticSecret};
use signaling_proto::{SignalingMessage, api_path, device_id, sign_challenge, sign_request};
use signaling_server::{Clock, RateLimits, RunningServer, Server, ServerConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const JWT_SECRET: &[u8] = b"test-jwt-secret-0123456789-abcdefgh";
/// How long a test waits for an event before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// Config for tests: fixed JWT secret, rate limits off.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        jwt_secret: JWT_SECRET.to_vec(),
        rate_limits: RateLimits::disabled(),
        ..ServerConfig::default()
    }
}

/// A running server plus what clients need to talk to it.
pub struct TestServer {
    pub server: RunningServer,
    pub url: String,
    pub version: String,
    pub hmac: String,
    pub clock: Clock,
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> TestServer {
        let (version, hmac, clock) = (
            config.api_version.clone(),
            config.hmac_secret.clone(),
            config.clock.clone(),
        );
        let server = Server::start(config).await.unwrap();
        TestServer {
            url: server.url(),
            server,
            version,
            hmac,
            clock,
        }
    }

    pub fn path(&self, p: &str) -> String {
        api_path(&self.version, p)
    }

    pub fn http(&self) -> Http {
        Http {
            url: self.url.clone(),
            version: self.version.clone(),
            hmac: self.hmac.clone(),
            clock: self.clock.clone(),
            ca: None,
        }
    }
}

/// A device identity.
#[derive(Clone)]
pub struct DeviceKeys {
    pub key: SigningKey,
    pub id: String,
    pub x25519: [u8; 32],
}

impl DeviceKeys {
    pub fn random() -> DeviceKeys {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let id = device_id(&key.verifying_key().to_bytes());
        let x = StaticSecret::random_from_rng(rand::rngs::OsRng);
        DeviceKeys {
            key,
            id,
            x25519: PublicKey::from(&x).to_bytes(),
        }
    }

    pub fn ed_b64(&self) -> String {
        STANDARD.encode(self.key.verifying_key().to_bytes())
    }

    pub fn x_b64(&self) -> String {
        STANDARD.encode(self.x25519)
    }
}

/// How a request is signed.
#[derive(Clone, Debug)]
pub enum Sign {
    /// Valid headers at the server clock's now (none when the secret is empty).
    Now,
    /// No headers.
    Unsigned,
    /// Explicit header values: timestamp, nonce, signature.
    Raw(Option<String>, Option<String>, Option<String>),
}

/// A response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// HTTP client for one server.
#[derive(Clone)]
pub struct Http {
    pub url: String,
    pub version: String,
    pub hmac: String,
    pub clock: Clock,
    /// DER certificate to trust for `https://` (a test's self-signed one).
    pub ca: Option<Vec<u8>>,
}

pub fn fresh_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl Http {
    /// Signing headers for `path` as `sign` says.
    pub fn headers(&self, path: &str, sign: &Sign) -> Vec<(String, String)> {
        let (ts, nonce, sig) = match sign {
            Sign::Unsigned => return vec![],
            Sign::Now if self.hmac.is_empty() => return vec![],
            Sign::Now => {
                let now = self.clock.now_unix();
                let nonce = fresh_nonce();
                let sig = sign_request(&self.hmac, now, &nonce, path);
                (Some(now.to_string()), Some(nonce), Some(sig))
            }
            Sign::Raw(t, n, s) => (t.clone(), n.clone(), s.clone()),
        };
        let mut out = vec![];
        for (k, v) in [
            ("muxlink-timestamp", ts),
            ("muxlink-nonce", nonce),
            ("muxlink-signature", sig),
        ] {
            if let Some(v) = v {
                out.push((k.to_owned(), v));
            }
        }
        out
    }

    /// Sends one request (off the async workers) and reads the JSON body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        bearer: Option<&str>,
        sign: Sign,
    ) -> Resp {
        let full_path = api_path(&self.version, path);
        let mut headers = self.headers(&full_path, &sign);
        if let Some(t) = bearer {
            headers.push(("authorization".to_owned(), format!("Bearer {t}")));
        }
        self.send_raw(method, &full_path, body, headers).await
    }

    /// Sends one request to `full_path` (API prefix included, or a path
    /// outside the API) with exactly these extra headers.
    pub async fn send_raw(
        &self,
        method: &str,
        full_path: &str,
        body: Option<String>,
        headers: Vec<(String, String)>,
    ) -> Resp {
        let url = format!("{}{}", self.url, full_path);
        let method = method.to_owned();
        let ca = self.ca.clone();
        tokio::task::spawn_blocking(move || raw_request(&method, &url, body, &headers, ca))
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, Some(body.to_string()), None, Sign::Now)
            .await
    }

    pub async fn challenge(&self, id: &str) -> String {
        let r = self
            .post("/auth/challenge", json!({ "deviceId": id }))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["nonce"].as_str().unwrap().to_owned()
    }

    /// `(nonce, signature)` of a fresh challenge.
    pub async fn proof(&self, dev: &DeviceKeys) -> (String, String) {
        let nonce = self.challenge(&dev.id).await;
        let sig = sign_challenge(&dev.key, &dev.id, &nonce);
        (nonce, sig)
    }

    pub async fn token_resp(&self, dev: &DeviceKeys) -> Resp {
        let (nonce, signature) = self.proof(dev).await;
        self.post(
            "/auth/token",
            json!({ "deviceId": dev.id, "nonce": nonce, "signature": signature }),
        )
        .await
    }

    pub async fn token(&self, dev: &DeviceKeys) -> String {
        let r = self.token_resp(dev).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["token"].as_str().unwrap().to_owned()
    }

    pub async fn initiate_resp(&self, host: &DeviceKeys, name: &str) -> Resp {
        let (nonce, signature) = self.proof(host).await;
        self.post(
            "/auth/pair/initiate",
            json!({ "deviceId": host.id, "ed25519PublicKey": host.ed_b64(), "x25519PublicKey": host.x_b64(),
                    "name": name, "nonce": nonce, "signature": signature }),
        )
        .await
    }

    pub async fn initiate(&self, host: &DeviceKeys, name: &str) -> String {
        let r = self.initiate_resp(host, name).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["pairingCode"].as_str().unwrap().to_owned()
    }

    pub async fn complete_resp(&self, code: &str, mobile: &DeviceKeys, name: &str) -> Resp {
        self.complete_with(code, mobile, name, Some(&confirmation_of(mobile)))
            .await
    }

    /// `pair/complete` with this `confirmation` (`None`: the field left out).
    pub async fn complete_with(
        &self,
        code: &str,
        mobile: &DeviceKeys,
        name: &str,
        confirmation: Option<&str>,
    ) -> Resp {
        let (nonce, signature) = self.proof(mobile).await;
        let mut body = json!({ "pairingCode": code, "deviceId": mobile.id, "ed25519PublicKey": mobile.ed_b64(),
                "x25519PublicKey": mobile.x_b64(), "name": name, "nonce": nonce, "signature": signature });
        if let Some(c) = confirmation {
            body["confirmation"] = json!(c);
        }
        self.post("/auth/pair/complete", body).await
    }

    /// Registers and pairs `host` with `mobile`.
    pub async fn pair(&self, host: &DeviceKeys, mobile: &DeviceKeys) {
        let code = self.initiate(host, "host").await;
        let r = self.complete_resp(&code, mobile, "phone").await;
        assert_eq!(r.status, 200, "{r:?}");
    }
}

/// A confirmation for `mobile`'s `pair/complete`: the server treats it as
/// opaque, so any base64 of 32 bytes will do; distinct per device so a test
/// can tell relayed values apart.
pub fn confirmation_of(mobile: &DeviceKeys) -> String {
    STANDARD.encode(mobile.key.verifying_key().to_bytes())
}

fn raw_request(
    method: &str,
    url: &str,
    body: Option<String>,
    headers: &[(String, String)],
    ca: Option<Vec<u8>>,
) -> Resp {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(der) = ca {
        let root = ureq::tls::Certificate::from_der(&der).to_owned();
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
            root,
        ])));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let req = ureq::http::Request::builder().method(method).uri(url);
    let req = headers.iter().fold(req, |r, (k, v)| r.header(k, v));
    let mut resp = match body {
        Some(b) => agent.run(
            req.header("content-type", "application/json")
                .body(b)
                .unwrap(),
        ),
        None => agent.run(req.body(()).unwrap()),
    }
    .unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Resp {
        status,
        body,
        headers,
    }
}

/// A WebSocket client.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What came back when waiting for a message.
#[derive(Debug, PartialEq)]
pub enum Got {
    Msg(SignalingMessage),
    Closed(Option<u16>),
}

impl Ws {
    /// Opens `/ws` with valid signing headers (if the server has a secret).
    pub async fn open(ts: &TestServer) -> Ws {
        Self::try_open(ts, Sign::Now).await.unwrap()
    }

    /// Opens `/ws`; `Err(status)` when the upgrade is refused.
    pub async fn try_open(ts: &TestServer, sign: Sign) -> Result<Ws, u16> {
        Self::connect(&ts.http(), sign).await
    }

    /// Opens `/ws` of the server `http` points at.
    pub async fn connect(http: &Http, sign: Sign) -> Result<Ws, u16> {
        Self::connect_with(http, sign, &[]).await
    }

    /// Opens `/ws` with `extra` headers (e.g. `Origin`) besides the signing ones.
    pub async fn connect_with(http: &Http, sign: Sign, extra: &[(&str, &str)]) -> Result<Ws, u16> {
        let path = api_path(&http.version, "/ws");
        let url = signaling_proto::ws_url(&http.url, &http.version);
        let mut req = url.into_client_request().unwrap();
        let extra = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        for (k, v) in http.headers(&path, &sign).into_iter().chain(extra) {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let connector = http.ca.as_deref().map(|der| {
            tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(tls_client_config(der)))
        });
        match tokio_tungstenite::connect_async_tls_with_config(req, None, false, connector).await {
            Ok((stream, _)) => Ok(Ws { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("ws connect failed: {e}"),
        }
    }

    /// Opens a socket and authenticates it.
    pub async fn authed(ts: &TestServer, token: &str, name: &str) -> Ws {
        let mut ws = Ws::open(ts).await;
        let reply = ws.auth(token, name).await;
        assert_eq!(
            reply,
            Got::Msg(SignalingMessage {
                status: "ok".into(),
                ..SignalingMessage::new("auth")
            })
        );
        ws
    }

    pub async fn auth(&mut self, token: &str, name: &str) -> Got {
        let m = SignalingMessage {
            token: token.into(),
            name: name.into(),
            ..SignalingMessage::new("auth")
        };
        self.send(&m).await;
        self.next().await
    }

    pub async fn send(&mut self, msg: &SignalingMessage) {
        self.send_text(&msg.to_json()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    /// Next text message or the close, within [`WAIT`].
    pub async fn next(&mut self) -> Got {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("timed out waiting for a message");
            match frame {
                Some(Ok(Message::Text(t))) => {
                    return Got::Msg(SignalingMessage::parse(t.as_str()).unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    return Got::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Got::Closed(None),
            }
        }
    }

    /// Next text frame exactly as received, within [`WAIT`].
    pub async fn text(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("timed out waiting for a message");
            match frame {
                Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => panic!("socket closed"),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Next message, which must be a message (not a close).
    pub async fn msg(&mut self) -> SignalingMessage {
        match self.next().await {
            Got::Msg(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Reads messages until the close frame; returns its code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Got::Closed(code) = self.next().await {
                return code;
            }
        }
    }

    /// A presence round trip: proves the socket is alive and everything
    /// queued before it has been delivered.
    pub async fn ping(&mut self) {
        self.send(&SignalingMessage::new("presence")).await;
        assert_eq!(self.msg().await, SignalingMessage::new("presence_ack"));
    }
}

/// Pairs a fresh host and mobile and returns them with tokens.
pub async fn paired_pair(ts: &TestServer) -> (DeviceKeys, String, DeviceKeys, String) {
    let http = ts.http();
    let (host, mobile) = (DeviceKeys::random(), DeviceKeys::random());
    http.pair(&host, &mobile).await;
    let (ht, mt) = (http.token(&host).await, http.token(&mobile).await);
    (host, ht, mobile, mt)
}

/// The `muxlink-signaling-server` binary running as a child process.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub url: String,
}

impl ServerProcess {
    /// Starts the binary with `args` and waits (bounded) for its
    /// "listening on URL" line.
    pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> ServerProcess {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_muxlink-signaling-server"))
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server printed no address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("unexpected first line")
            .to_owned();
        ServerProcess { child, url }
    }

    /// Resident memory of the server in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        let pid = self.child.id();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let mut me = self;
        let waiter = std::thread::spawn(move || {
            let status = me.child.wait();
            let _ = tx.send(status.map_err(|e| e.to_string()));
            me
        });
        let status = rx
            .recv_timeout(Duration::from_secs(15))
            .expect("server did not exit on SIGTERM")
            .unwrap();
        drop(waiter.join());
        status
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A rustls client (ring provider) that trusts only `ca_der`.
pub fn tls_client_config(ca_der: &[u8]) -> tokio_rustls::rustls::ClientConfig {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
        .unwrap();
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth()
}
