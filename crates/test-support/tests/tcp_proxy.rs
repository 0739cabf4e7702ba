//! TcpFaultProxy against a plain TCP echo server: pass, delay, black hole, cut,
//! refuse and stop.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use test_support::{TcpFaultProxy, TcpMode, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);
/// Short window in which "nothing arrives" is checked.
const QUIET: Duration = Duration::from_millis(200);

async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).await.unwrap();
    let mut buf = vec![0u8; msg.len()];
    timeout(WAIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf
}

#[tokio::test]
async fn passes_and_delays_bytes() {
    let proxy = TcpFaultProxy::start(echo_server().await).await.unwrap();
    assert!(proxy.http_url().starts_with("http://127.0.0.1:"));
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut s, b"hello").await, b"hello");
    assert_eq!(proxy.connections(), 1);

    let d = Duration::from_millis(150);
    proxy.delay(d);
    assert_eq!(proxy.mode(), TcpMode::Delay(d));
    let t = Instant::now();
    assert_eq!(roundtrip(&mut s, b"slow").await, b"slow");
    // Delayed in both directions: a lower bound only, never an upper one.
    assert!(t.elapsed() >= 2 * d);
    proxy.stop().await;
}

#[tokio::test]
async fn black_hole_stalls_without_losing_bytes() {
    let proxy = TcpFaultProxy::start(echo_server().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut s, b"a").await, b"a");
    proxy.black_hole();
    s.write_all(b"held").await.unwrap();
    let mut buf = [0u8; 4];
    assert!(timeout(QUIET, s.read_exact(&mut buf)).await.is_err());
    proxy.pass();
    timeout(WAIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"held");
}

#[tokio::test]
async fn cut_closes_current_connections_only() {
    let proxy = TcpFaultProxy::start(echo_server().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut s, b"x").await, b"x");
    proxy.cut();
    let mut buf = [0u8; 1];
    let r = timeout(WAIT, s.read(&mut buf)).await.unwrap();
    assert!(matches!(r, Ok(0) | Err(_)));
    assert!(wait_until(WAIT, || async { proxy.connections() == 0 }).await);
    let mut s2 = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut s2, b"again").await, b"again");
}

#[tokio::test]
async fn refuse_new_then_listen_again_on_the_same_port() {
    let proxy = TcpFaultProxy::start(echo_server().await).await.unwrap();
    let mut kept = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut kept, b"1").await, b"1");
    proxy.refuse_new(true);
    let refused = wait_until(WAIT, || async {
        TcpStream::connect(proxy.addr()).await.is_err()
    })
    .await;
    assert!(refused);
    // Existing connections keep working.
    assert_eq!(roundtrip(&mut kept, b"2").await, b"2");
    proxy.refuse_new(false);
    assert!(
        wait_until(WAIT, || async {
            TcpStream::connect(proxy.addr()).await.is_ok()
        })
        .await
    );
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut fresh, b"3").await, b"3");
}

#[tokio::test]
async fn stop_closes_everything() {
    let proxy = TcpFaultProxy::start(echo_server().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut s, b"x").await, b"x");
    timeout(WAIT, proxy.stop()).await.unwrap();
    assert_eq!(proxy.connections(), 0);
    let mut buf = [0u8; 1];
    let r = timeout(WAIT, s.read(&mut buf)).await.unwrap();
    assert!(matches!(r, Ok(0) | Err(_)));
    assert!(TcpStream::connect(proxy.addr()).await.is_err());
}
