//! UdpFaultProxy against a plain UDP echo server: pass, black hole, drop rate,
//! delay and stop.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use test_support::UdpFaultProxy;
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(200);

async fn echo_server() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&buf[..n], from).await;
        }
    });
    addr
}

async fn client(proxy: &UdpFaultProxy) -> UdpSocket {
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.connect(proxy.addr()).await.unwrap();
    c
}

async fn recv_within(c: &UdpSocket, d: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    match timeout(d, c.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

#[tokio::test]
async fn forwards_both_ways_for_several_clients() {
    let proxy = UdpFaultProxy::start(echo_server().await).await.unwrap();
    let a = client(&proxy).await;
    let b = client(&proxy).await;
    a.send(b"from a").await.unwrap();
    b.send(b"from b").await.unwrap();
    assert_eq!(recv_within(&a, WAIT).await.unwrap(), b"from a");
    assert_eq!(recv_within(&b, WAIT).await.unwrap(), b"from b");
    assert_eq!(proxy.stats().forwarded, 4);
    proxy.stop().await;
}

#[tokio::test]
async fn black_hole_drops_until_switched_off() {
    let proxy = UdpFaultProxy::start(echo_server().await).await.unwrap();
    let c = client(&proxy).await;
    proxy.black_hole(true);
    c.send(b"lost").await.unwrap();
    assert!(recv_within(&c, QUIET).await.is_none());
    assert!(proxy.stats().dropped >= 1);
    proxy.black_hole(false);
    c.send(b"kept").await.unwrap();
    assert_eq!(recv_within(&c, WAIT).await.unwrap(), b"kept");
}

#[tokio::test]
async fn drop_rate_drops_some_and_keeps_some() {
    let proxy = UdpFaultProxy::start(echo_server().await).await.unwrap();
    let c = client(&proxy).await;
    proxy.set_drop_rate(1.0);
    c.send(b"x").await.unwrap();
    assert!(recv_within(&c, QUIET).await.is_none());
    proxy.set_drop_rate(0.5);
    for i in 0..200u8 {
        c.send(&[i]).await.unwrap();
    }
    let mut got = 0;
    while recv_within(&c, QUIET).await.is_some() {
        got += 1;
    }
    // Each of 200 datagrams crosses two 50 % drops: all-or-nothing is ~2^-200 likely.
    assert!(got > 0 && got < 200, "got {got}");
    let st = proxy.stats();
    assert!(st.dropped > 0 && st.forwarded > 0);
    proxy.pass();
    c.send(b"clean").await.unwrap();
    assert_eq!(recv_within(&c, WAIT).await.unwrap(), b"clean");
}

#[tokio::test]
async fn delay_holds_datagrams_back() {
    let proxy = UdpFaultProxy::start(echo_server().await).await.unwrap();
    let c = client(&proxy).await;
    let d = Duration::from_millis(100);
    proxy.set_delay(d);
    let t = Instant::now();
    c.send(b"late").await.unwrap();
    assert_eq!(recv_within(&c, WAIT).await.unwrap(), b"late");
    // Lower bound only: delayed on the way there and back.
    assert!(t.elapsed() >= 2 * d);
    timeout(WAIT, proxy.stop()).await.unwrap();
    c.send(b"after stop").await.unwrap();
    assert!(recv_within(&c, QUIET).await.is_none());
}
