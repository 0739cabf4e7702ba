//! The agent's signaling socket honours the proxy environment like its HTTP
//! calls: with `HTTPS_PROXY` naming an `http://` proxy, `muxlink pair` (whose
//! signaling client is the daemon's) reaches the real server through HTTP
//! CONNECT tunnels, the WebSocket among them; `NO_PROXY=127.0.0.1` sends
//! everything direct. The proxy is a small task on 127.0.0.1 that counts
//! the tunnels it opens (to loopback only).

#![allow(clippy::unwrap_used)]

use std::io::BufRead as _;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use muxlink_e2e::Home;
use muxlink_e2e::pairing::{PAIR_ARGS, blocking, init};
use signaling_server::{Server, ServerConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const T: Duration = Duration::from_secs(30);

/// Tunnels the proxy opened: all of them, and those carrying the `/ws` upgrade.
#[derive(Default)]
struct Tunnels {
    all: AtomicUsize,
    websocket: AtomicUsize,
}

/// An HTTP CONNECT proxy on 127.0.0.1 that tunnels to loopback targets only.
async fn connect_proxy() -> (String, Arc<Tunnels>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let tunnels = Arc::new(Tunnels::default());
    let counts = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(tunnel(conn, counts.clone()));
        }
    });
    (url, tunnels)
}

async fn tunnel(mut client: TcpStream, tunnels: Arc<Tunnels>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || client.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = match head.split_whitespace().collect::<Vec<_>>()[..] {
        ["CONNECT", target, ..] if target.starts_with("127.0.0.1:") => target.to_owned(),
        _ => {
            let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
            return;
        }
    };
    let Ok(mut upstream) = TcpStream::connect(&target).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    tunnels.all.fetch_add(1, Ordering::SeqCst);
    let mut first = [0u8; 1024];
    let n = client.read(&mut first).await.unwrap_or(0);
    if first[..n].starts_with(b"GET /v1/ws ") {
        tunnels.websocket.fetch_add(1, Ordering::SeqCst);
    }
    if upstream.write_all(&first[..n]).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

/// Runs `muxlink pair --payload-only` with `env` until it prints its payload
/// (so its signaling socket is connected), then stops it.
fn pair_until_payload(home: &Home, env: &[(&str, &str)]) {
    let mut cmd = home.cmd(PAIR_ARGS);
    for var in [
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if line.starts_with("PAIRING_PAYLOAD ") {
                let _ = tx.send(());
            }
        }
    });
    let printed = rx.recv_timeout(T);
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        printed.is_ok(),
        "no payload with {env:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signaling_socket_goes_through_https_proxy_unless_no_proxy_matches() {
    let server = Server::start(ServerConfig::default()).await.unwrap();
    let (proxy, tunnels) = connect_proxy().await;
    let mut home = Home::new(BIN, "mxl-e2e-unused").unwrap();
    home.server = Some(server.url());
    init(&home, T).unwrap();

    blocking(|| pair_until_payload(&home, &[("HTTPS_PROXY", &proxy), ("NO_PROXY", "")]));
    assert_eq!(tunnels.websocket.load(Ordering::SeqCst), 1);
    // The HTTP calls went through it too (challenge, pair/initiate, token).
    let through = tunnels.all.load(Ordering::SeqCst);
    assert!(through >= 2, "{through} tunnels");

    blocking(|| pair_until_payload(&home, &[("HTTPS_PROXY", &proxy), ("NO_PROXY", "127.0.0.1")]));
    assert_eq!(tunnels.all.load(Ordering::SeqCst), through);
    assert_eq!(tunnels.websocket.load(Ordering::SeqCst), 1);
}
