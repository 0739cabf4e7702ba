//! Graceful drain of the `muxlink-signaling-server` binary on SIGTERM:
//! `/readyz` turns 503 at once, the WebSockets are closed with 1001 (going
//! away: clients reconnect elsewhere), a request in flight still gets its
//! whole answer, and the process exits 0. With `--drain-secs` the sockets
//! stay up (and `/readyz` 503) until the delay ends or a second signal.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::time::Duration;

use common::*;
use serde_json::json;
use signaling_proto::consts::DEFAULT_API_VERSION;
use signaling_server::{Server, ServerConfig};
use test_support::{wait_until, wait_until_blocking};

fn http_of(proc: &ServerProcess) -> Http {
    Http {
        url: proc.url.clone(),
        version: DEFAULT_API_VERSION.into(),
        hmac: String::new(),
        clock: signaling_server::Clock::system(),
        ca: None,
    }
}

fn sigterm(proc: &ServerProcess) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &proc.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (bounded) for the process to exit and returns its status.
async fn exit_status(mut proc: ServerProcess) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || {
        let mut status = None;
        let exited = wait_until_blocking(Duration::from_secs(15), || {
            status = proc.child.try_wait().unwrap();
            status.is_some()
        });
        assert!(exited, "the server did not exit after SIGTERM");
        status.unwrap()
    })
    .await
    .unwrap()
}

/// An authenticated socket of a fresh paired host.
async fn authed_socket(http: &Http) -> Ws {
    let (host, mobile) = (DeviceKeys::random(), DeviceKeys::random());
    http.pair(&host, &mobile).await;
    let token = http.token(&host).await;
    let mut ws = Ws::connect(http, Sign::Now).await.unwrap();
    assert!(matches!(ws.auth(&token, "laptop").await, Got::Msg(m) if m.status == "ok"));
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_with_1001_finishes_requests_and_exits_0() {
    let proc = ServerProcess::spawn(&["--bind", "127.0.0.1:0"], &[]);
    let http = http_of(&proc);
    let mut ws = authed_socket(&http).await;

    // A request in flight: its head is read and the handler is reading the
    // body (hyper's `100 Continue` says so) when the signal comes.
    let addr = proc.url.strip_prefix("http://").unwrap().to_owned();
    let body = json!({ "deviceId": DeviceKeys::random().id }).to_string();
    let path = signaling_proto::api_path(DEFAULT_API_VERSION, "/auth/challenge");
    let len = body.len();
    let mut slow = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        write!(
            tcp,
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            len
        )
        .unwrap();
        let mut head = [0u8; 25];
        tcp.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 100 Continue\r\n\r\n");
        tcp
    })
    .await
    .unwrap();

    sigterm(&proc);
    // The socket is told to go away…
    assert_eq!(ws.closed().await, Some(1001));
    // …and the request in flight still gets its whole answer.
    let response = tokio::task::spawn_blocking(move || {
        slow.write_all(body.as_bytes()).unwrap();
        let mut response = String::new();
        slow.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("\"nonce\""), "{response}");
    let status = exit_status(proc).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_secs_keeps_serving_with_readyz_503_until_a_second_signal() {
    let proc = ServerProcess::spawn(&["--bind", "127.0.0.1:0", "--drain-secs", "600"], &[]);
    let http = http_of(&proc);
    let mut ws = authed_socket(&http).await;
    let readyz = |http: Http| async move { http.send_raw("GET", "/readyz", None, vec![]).await };
    assert_eq!(readyz(http.clone()).await.status, 200);

    sigterm(&proc);
    assert!(
        wait_until(Duration::from_secs(10), || async {
            readyz(http.clone()).await.status == 503
        })
        .await,
        "/readyz did not turn 503"
    );
    let draining = readyz(http.clone()).await;
    assert_eq!(draining.body["status"], "draining", "{:?}", draining.body);
    // Still serving meanwhile: the socket answers, liveness holds.
    ws.ping().await;
    let healthz = http.send_raw("GET", "/healthz", None, vec![]).await;
    assert_eq!(healthz.status, 200);

    // A second signal ends the wait.
    sigterm(&proc);
    assert_eq!(ws.closed().await, Some(1001));
    let status = exit_status(proc).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_draining_flips_readyz_only() {
    let config = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..test_config()
    };
    let server = Server::start(config).await.unwrap();
    let ts = TestServer {
        url: server.url(),
        server,
        version: DEFAULT_API_VERSION.into(),
        hmac: String::new(),
        clock: signaling_server::Clock::system(),
    };
    let http = ts.http();
    let ready = http.send_raw("GET", "/readyz", None, vec![]).await;
    assert_eq!(ready.status, 200);
    assert!(!ts.server.is_draining());
    ts.server.start_draining();
    assert!(ts.server.is_draining());
    let ready = http.send_raw("GET", "/readyz", None, vec![]).await;
    assert_eq!(ready.status, 503);
    // New sockets are still accepted until shutdown.
    let (_, _, _, token) = paired_pair(&ts).await;
    let mut ws = Ws::authed(&ts, &token, "phone").await;
    let TestServer { server, .. } = ts;
    let stopping = tokio::spawn(server.shutdown());
    assert_eq!(ws.closed().await, Some(1001));
    stopping.await.unwrap();
}
