//! Abuse suite against the bundled signaling server as a real process
//! (`muxlink serve`, settings from a TOML file named by `MUXLINK_SERVER_CONFIG`),
//! over loopback only: slow-loris variants closed by the header and body
//! timeouts, connection caps, a socket flood closed with 1008, forwarding
//! headers believed only from a trusted proxy, a pairing-code guesser spread
//! over many addresses stopped with 429, full tables that evict instead of
//! refusing everyone, an unpaired phone's token refused (and no TURN
//! credentials), never-paired devices deleted after their lifetime, and new
//! devices per address prefix capped.
//!
//! Every case uses short configured timeouts and bounded waits (no sleep
//! asserts a duration), at most a few dozen sockets, and well under 15 s.
//! HTTP and WebSocket are spoken by hand over std sockets, so what the server
//! receives is exactly what the test wrote.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mobile_client::PhoneIdentity;
use serde_json::{Value, json};
use test_support::wait_until_blocking;

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
/// Upper bound of any single wait in this suite.
const WAIT: Duration = Duration::from_secs(10);

/// `muxlink serve` on 127.0.0.1:0 with `toml` as its server settings; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(toml: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.toml");
        std::fs::write(&file, toml).unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("MUXLINK_HOME", dir.path())
            .env("MUXLINK_SERVER_CONFIG", &file)
            .env("RUST_LOG", "warn")
            .env_remove("MUXLINK_HMAC_SECRET")
            .env_remove("MUXLINK_SERVER_TLS_CERT")
            .env_remove("MUXLINK_SERVER_TLS_KEY")
            .env_remove("MUXLINK_SERVER_CORS_ORIGINS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(WAIT).expect("server printed no address");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Server {
            child,
            addr,
            _dir: dir,
        }
    }

    /// A TCP connection from `src` (any 127.0.0.0/8 address is loopback).
    fn connect_from(&self, src: Ipv4Addr) -> TcpStream {
        let addr = self.addr;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let stream = rt.block_on(async move {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind(SocketAddr::from((src, 0))).unwrap();
            s.connect(addr).await.unwrap()
        });
        let std = stream.into_std().unwrap();
        std.set_nonblocking(false).unwrap();
        std.set_read_timeout(Some(WAIT)).unwrap();
        std
    }

    fn connect(&self) -> TcpStream {
        self.connect_from(Ipv4Addr::LOCALHOST)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, headers (lowercase names), JSON body (or Null).
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }
}

/// Reads an HTTP response head byte by byte (so nothing after it is consumed).
fn read_head(s: &mut TcpStream) -> Option<(u16, Vec<(String, String)>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((status, headers))
}

/// One request on a fresh connection from `src` (`Connection: close`).
fn request_from(
    server: &Server,
    src: Ipv4Addr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Resp {
    let mut s = server.connect_from(src);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.addr,
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let (status, headers) = read_head(&mut s).expect("no response head");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let body = serde_json::from_slice(&rest).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

fn request(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Resp {
    request_from(server, Ipv4Addr::LOCALHOST, method, path, headers, body)
}

/// True when the server closes `s` within [`WAIT`] (after any response bytes).
fn closed_by_server(s: &mut TcpStream) -> bool {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
    false
}

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A fresh device identity (Ed25519).
struct Keys {
    me: PhoneIdentity,
    id: String,
}

impl Keys {
    fn new() -> Keys {
        let me = PhoneIdentity::generate();
        let id = me.device_id().to_owned();
        Keys { me, id }
    }

    fn ed(&self) -> String {
        self.me.public_key_b64()
    }

    fn sign(&self, nonce: &str) -> String {
        self.me.sign_challenge(nonce)
    }
}

/// Header of a request forwarded for `client` by the (trusted) proxy.
fn xff(client: &str) -> [(&'static str, &str); 1] {
    [("X-Forwarded-For", client)]
}

/// A challenge nonce for `k` (asserting 200).
fn challenge(server: &Server, h: &[(&str, &str)], k: &Keys) -> String {
    let r = request(
        server,
        "POST",
        "/v1/auth/challenge",
        h,
        Some(&json!({ "deviceId": k.id })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    r.body["nonce"].as_str().unwrap().to_owned()
}

/// `pair/initiate` for host `k`: the response.
fn initiate(server: &Server, h: &[(&str, &str)], k: &Keys) -> Resp {
    let nonce = challenge(server, h, k);
    let body = json!({
        "deviceId": k.id, "ed25519PublicKey": k.ed(), "x25519PublicKey": b64(&[9u8; 32]),
        "name": "host", "nonce": nonce, "signature": k.sign(&nonce),
    });
    request(server, "POST", "/v1/auth/pair/initiate", h, Some(&body))
}

/// `pair/complete` for phone `k` with `code`: the response.
fn complete(server: &Server, h: &[(&str, &str)], k: &Keys, code: &str) -> Resp {
    let nonce = challenge(server, h, k);
    let body = json!({
        "pairingCode": code, "deviceId": k.id, "ed25519PublicKey": k.ed(),
        "x25519PublicKey": b64(&[5u8; 32]), "name": "phone", "confirmation": "c",
        "nonce": nonce, "signature": k.sign(&nonce),
    });
    request(server, "POST", "/v1/auth/pair/complete", h, Some(&body))
}

/// `auth/token` for `k`: the response.
fn token(server: &Server, k: &Keys) -> Resp {
    let nonce = challenge(server, &[], k);
    let body = json!({
        "deviceId": k.id, "nonce": nonce, "signature": k.sign(&nonce),
    });
    request(server, "POST", "/v1/auth/token", &[], Some(&body))
}

fn bearer(server: &Server, method: &str, path: &str, jwt: &str) -> Resp {
    let auth = format!("Bearer {jwt}");
    request(server, method, path, &[("Authorization", &auth)], None)
}

/// A hand-made WebSocket client.
struct Ws(TcpStream);

impl Ws {
    /// Upgrades on a connection from `src`; `Err(status)` when refused.
    fn open_from(server: &Server, src: Ipv4Addr) -> Result<Ws, u16> {
        let mut s = server.connect_from(src);
        let req = format!(
            "GET /v1/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            server.addr
        );
        s.write_all(req.as_bytes()).unwrap();
        match read_head(&mut s) {
            Some((101, _)) => Ok(Ws(s)),
            Some((status, _)) => Err(status),
            None => Err(0),
        }
    }

    fn open(server: &Server) -> Ws {
        Ws::open_from(server, Ipv4Addr::LOCALHOST).unwrap()
    }

    /// Sends a masked text frame; false when the connection is gone.
    fn send(&mut self, text: &str) -> bool {
        let data = text.as_bytes();
        let mut frame = vec![0x81u8];
        if data.len() < 126 {
            frame.push(0x80 | data.len() as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(data.len() as u16).to_be_bytes());
        }
        let mask = [1u8, 2, 3, 4];
        frame.extend_from_slice(&mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.0.write_all(&frame).is_ok()
    }

    /// Reads frames until a close; its code (None: connection ended without one).
    fn close_code(&mut self) -> Option<u16> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let mut head = [0u8; 2];
            self.0.read_exact(&mut head).ok()?;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.0.read_exact(&mut b).ok()?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.0.read_exact(&mut b).ok()?;
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; usize::try_from(len).ok()?];
            self.0.read_exact(&mut payload).ok()?;
            if head[0] & 0x0f == 8 {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
        None
    }
}

#[test]
fn slow_loris_partial_headers_partial_body_and_silence_are_closed() {
    let server = Server::start("header_timeout_secs = 1\nbody_timeout_secs = 1\n");
    // Nothing at all.
    let mut silent = server.connect();
    // Half a request head, then nothing.
    let mut partial_head = server.connect();
    partial_head
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    // A full head announcing 100 body bytes, then only 10.
    let mut partial_body = server.connect();
    partial_body
        .write_all(
            b"POST /v1/auth/challenge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"deviceId",
        )
        .unwrap();
    // A finished request on a keep-alive connection, then idling.
    let mut idle = server.connect();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_head(&mut idle).map(|h| h.0), Some(200));

    assert!(
        closed_by_server(&mut silent),
        "a silent connection stayed open"
    );
    assert!(
        closed_by_server(&mut partial_head),
        "a partial request head kept the connection"
    );
    assert!(
        closed_by_server(&mut idle),
        "an idle keep-alive connection stayed open"
    );
    // The trickled body is answered 408, then the connection is closed.
    let head = read_head(&mut partial_body).expect("no 408 for a trickled body");
    assert_eq!(head.0, 408);
    assert!(closed_by_server(&mut partial_body));
    // Everyone else is still served.
    assert_eq!(request(&server, "GET", "/health", &[], None).status, 200);
}

#[test]
fn connection_caps_hold_per_address_and_in_total() {
    let server = Server::start(
        "max_connections = 5\nmax_connections_per_client = 3\nheader_timeout_secs = 30\n",
    );
    let [a, b, c] = [2, 3, 4].map(|n| Ipv4Addr::new(127, 0, 0, n));
    let mut held: Vec<TcpStream> = (0..3).map(|_| server.connect_from(a)).collect();
    // The server handles connections in order; a request on the last proves
    // all three were accepted before the next one arrives.
    held[2]
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_head(&mut held[2]).map(|h| h.0), Some(200));
    // A fourth from the same address is closed at once.
    let mut over = server.connect_from(a);
    assert!(closed_by_server(&mut over), "per-address cap not enforced");
    // Another address gets its own share, up to the total.
    held.extend((0..2).map(|_| server.connect_from(b)));
    held[4]
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_head(&mut held[4]).map(|h| h.0), Some(200));
    let mut over_total = server.connect_from(c);
    assert!(closed_by_server(&mut over_total), "total cap not enforced");
    // A slot given back is usable again.
    drop(held.remove(0));
    let back = wait_until_blocking(WAIT, || {
        let mut s = server.connect_from(c);
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        read_head(&mut s).map(|h| h.0) == Some(200)
    });
    assert!(back, "the freed slot never came back");
}

#[test]
fn socket_floods_and_silent_sockets_are_closed() {
    let server = Server::start(
        "ws_messages_per_sec = 5\nws_message_burst = 10\nmax_sockets_per_client = 3\n\
         auth_timeout_secs = 1\n",
    );
    // A flood of messages is closed with 1008.
    let mut flood = Ws::open(&server);
    for _ in 0..60 {
        if !flood.send(r#"{"type":"presence"}"#) {
            break;
        }
    }
    assert_eq!(flood.close_code(), Some(1008));
    // A socket that never sends `auth` is closed (4001) at the auth timeout.
    let mut silent = Ws::open(&server);
    assert_eq!(silent.close_code(), Some(4001));
    // At most three sockets per address; another address is unaffected.
    let held: Vec<Ws> = (0..3).map(|_| Ws::open(&server)).collect();
    assert_eq!(Ws::open_from(&server, Ipv4Addr::LOCALHOST).err(), Some(429));
    assert!(Ws::open_from(&server, Ipv4Addr::new(127, 0, 0, 9)).is_ok());
    drop(held);
}

#[test]
fn forwarding_headers_are_believed_only_from_a_trusted_proxy() {
    // Challenges: 30 a minute per client.
    let server = Server::start("trusted_proxies = [\"127.0.0.1\"]\n");
    let post = |src: Ipv4Addr, client: &str| {
        let k = Keys::new();
        let h = xff(client);
        request_from(
            &server,
            src,
            "POST",
            "/v1/auth/challenge",
            &h,
            Some(&json!({ "deviceId": k.id })),
        )
    };
    let proxy = Ipv4Addr::LOCALHOST;
    for _ in 0..30 {
        assert_eq!(post(proxy, "203.0.113.1").status, 200);
    }
    let limited = post(proxy, "203.0.113.1");
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    // The proxy's other clients have their own budgets.
    assert_eq!(post(proxy, "203.0.113.2").status, 200);
    // An IPv6 client is one /64: its neighbours share its budget.
    for i in 0..30 {
        assert_eq!(post(proxy, &format!("2001:db8:0:1::{i:x}")).status, 200);
    }
    assert_eq!(post(proxy, "2001:db8:0:1:ffff::1").status, 429);
    assert_eq!(post(proxy, "2001:db8:0:2::1").status, 200);
    // From an untrusted address, the header is ignored: varying it does not help.
    let stranger = Ipv4Addr::new(127, 0, 0, 7);
    for i in 0..30 {
        assert_eq!(post(stranger, &format!("198.51.100.{i}")).status, 200);
    }
    assert_eq!(post(stranger, "198.51.100.200").status, 429);
}

#[test]
fn a_pairing_code_guesser_spread_over_many_addresses_gets_429() {
    let server = Server::start(
        "trusted_proxies = [\"127.0.0.1\"]\npairing_failures_per_prefix = 3\n\
         pairing_failures_global = 10\npairing_failure_window_secs = 600\n",
    );
    // A live code exists; the guesser does not know it.
    assert_eq!(initiate(&server, &[], &Keys::new()).status, 200);
    let guess = |client: &str| complete(&server, &xff(client), &Keys::new(), "AAAAAA");
    // One /24: three failures, then 429 for the whole prefix.
    for i in 1..=3 {
        assert_eq!(guess(&format!("198.51.100.{i}")).status, 404);
    }
    let r = guess("198.51.100.99");
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.header("retry-after").is_some());
    // Spread over many /24s: the server-wide budget (10) stops it.
    let mut failures = 3;
    let mut stopped = None;
    for i in 0..20 {
        let r = guess(&format!("203.0.{i}.1"));
        match r.status {
            404 => failures += 1,
            429 => {
                stopped = Some(r);
                break;
            }
            other => panic!("unexpected {other}: {r:?}"),
        }
    }
    let r = stopped.expect("a guesser over 20 prefixes was never stopped");
    assert_eq!(failures, 10);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
}

#[test]
fn full_tables_evict_instead_of_refusing_everyone() {
    let server = Server::start(
        "trusted_proxies = [\"127.0.0.1\"]\nmax_rate_keys = 4\nmax_challenges = 4\n\
         max_pairing_codes = 2\n",
    );
    // A spammer over 20 addresses fills every table.
    for i in 0..20 {
        let client = format!("203.0.113.{i}");
        let r = initiate(&server, &xff(&client), &Keys::new());
        assert_eq!(r.status, 200, "spam {i}: {r:?}");
    }
    // Someone new still gets a challenge, a pairing code, and can pair.
    let host = Keys::new();
    let r = initiate(&server, &xff("198.51.100.1"), &host);
    assert_eq!(r.status, 200, "{r:?}");
    let code = r.body["pairingCode"].as_str().unwrap().to_owned();
    let r = complete(&server, &xff("198.51.100.2"), &Keys::new(), &code);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn an_unpaired_phone_is_refused_and_gets_no_turn_credentials() {
    let server = Server::start("turn_urls = [\"stun:127.0.0.1:3478\"]\n");
    let (host, phone) = (Keys::new(), Keys::new());
    let code = initiate(&server, &[], &host).body["pairingCode"]
        .as_str()
        .unwrap()
        .to_owned();
    // A host that never paired gets no TURN credentials.
    let host_jwt = token(&server, &host).body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        bearer(&server, "GET", "/v1/turn/credentials", &host_jwt).status,
        403
    );
    assert_eq!(complete(&server, &[], &phone, &code).status, 200);
    let phone_jwt = token(&server, &phone).body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = bearer(&server, "GET", "/v1/turn/credentials", &phone_jwt);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        bearer(&server, "GET", "/v1/turn/credentials", &host_jwt).status,
        200
    );

    // The host unpairs: the phone is deleted and its token stops working.
    let r = bearer(&server, "DELETE", "/v1/auth/pairing", &host_jwt);
    assert_eq!((r.status, &r.body), (200, &json!({ "removed": true })));
    let r = bearer(&server, "GET", "/v1/turn/credentials", &phone_jwt);
    assert_eq!((r.status, r.error()), (401, "unknown device"));
    assert_eq!(
        bearer(&server, "DELETE", "/v1/auth/pairing", &phone_jwt).status,
        401
    );
    assert_eq!(token(&server, &phone).status, 401);
    let mut ws = Ws::open(&server);
    ws.send(&json!({ "type": "auth", "token": phone_jwt }).to_string());
    assert_eq!(ws.close_code(), Some(4004));
    // The host stays, but unpaired it gets no TURN credentials either.
    assert_eq!(
        bearer(&server, "GET", "/v1/turn/credentials", &host_jwt).status,
        403
    );
}

#[test]
fn never_paired_devices_disappear_after_their_lifetime() {
    let server = Server::start("unpaired_device_ttl_secs = 1\n");
    let (host, paired_host, phone) = (Keys::new(), Keys::new(), Keys::new());
    assert_eq!(initiate(&server, &[], &host).status, 200);
    let code = initiate(&server, &[], &paired_host).body["pairingCode"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(complete(&server, &[], &phone, &code).status, 200);
    assert_eq!(token(&server, &host).status, 200);
    // Bounded wait for the lifetime (1 s) to pass.
    let mut last = None;
    let gone = wait_until_blocking(WAIT, || {
        let r = token(&server, &host);
        let refused = r.status == 401;
        last = Some(r);
        refused
    });
    assert!(gone, "a never-paired device outlived its lifetime");
    assert_eq!(last.unwrap().error(), "unknown device");
    // Paired devices stay.
    assert_eq!(token(&server, &paired_host).status, 200);
    assert_eq!(token(&server, &phone).status, 200);
}

#[test]
fn new_devices_per_address_prefix_are_capped() {
    let server =
        Server::start("trusted_proxies = [\"127.0.0.1\"]\nregistrations_per_prefix_per_hour = 3\n");
    // Three new hosts from one /24 (different addresses), then 429.
    for i in 1..=3 {
        let r = initiate(&server, &xff(&format!("198.51.100.{i}")), &Keys::new());
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = initiate(&server, &xff("198.51.100.77"), &Keys::new());
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.header("retry-after").is_some());
    // A known device re-initiating is not a registration; another /24 is not capped.
    let known = Keys::new();
    assert_eq!(initiate(&server, &xff("198.51.101.1"), &known).status, 200);
    assert_eq!(initiate(&server, &xff("198.51.100.78"), &known).status, 200);
}
