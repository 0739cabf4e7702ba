//! Where candidates come from beyond loopback: host candidates on the
//! machine's other addresses, and server-reflexive ones from a STUN server
//! (a small responder here that reports a made-up public address, as a NAT
//! would). Gathering completes whether or not the server answers.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{candidates_until_complete, connect_from};
use rtc_transport::{IceServer, RtcConfig, RtcPeer};
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// The address the responder reports: TEST-NET-3, never a local address.
const MAPPED_IP: [u8; 4] = [203, 0, 113, 9];
const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// Answers every STUN binding request with a success carrying
/// XOR-MAPPED-ADDRESS `MAPPED_IP`:(the request's source port), or, when
/// `silent`, reads and never answers.
async fn stun_responder(silent: bool) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let req = &buf[..n];
            if silent || n < 20 || req[..2] != [0x00, 0x01] || req[4..8] != MAGIC {
                continue;
            }
            let mut resp = vec![0x01, 0x01, 0x00, 0x0c];
            resp.extend_from_slice(&req[4..20]); // magic cookie and transaction id
            let port = from.port() ^ 0x2112;
            resp.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
            resp.extend_from_slice(&port.to_be_bytes());
            resp.extend(MAPPED_IP.iter().zip(MAGIC).map(|(b, m)| b ^ m));
            let _ = socket.send_to(&resp, from).await;
        }
    });
    addr
}

fn with_stun(server: SocketAddr) -> RtcConfig {
    RtcConfig {
        ice_servers: vec![IceServer {
            urls: vec![format!("stun:{server}")],
            ..Default::default()
        }],
        ..RtcConfig::loopback()
    }
}

/// The candidates an offerer reports until the end of gathering.
async fn offer_candidates(config: &RtcConfig) -> Vec<String> {
    let (peer, mut events) = RtcPeer::new(config).await.unwrap();
    let _channel = peer.create_data_channel("terminal").await.unwrap();
    let _offer = peer.create_offer(false).await.unwrap();
    let got = candidates_until_complete(&mut events).await;
    peer.close().await;
    got
}

#[tokio::test]
async fn a_stun_server_adds_a_server_reflexive_candidate() {
    let server = stun_responder(false).await;
    let got = offer_candidates(&with_stun(server)).await;
    let srflx: Vec<_> = got.iter().filter(|c| c.contains("typ srflx")).collect();
    assert_eq!(srflx.len(), 1, "{got:?}");
    assert!(srflx[0].contains("203.0.113.9"), "{got:?}");
    assert!(got.iter().any(|c| c.contains("typ host")), "{got:?}");
}

#[tokio::test]
async fn gathering_completes_when_the_stun_server_never_answers() {
    let server = stun_responder(true).await;
    let got = offer_candidates(&with_stun(server)).await;
    assert!(got.iter().any(|c| c.contains("typ host")), "{got:?}");
    assert!(!got.iter().any(|c| c.contains("typ srflx")), "{got:?}");
}

#[tokio::test]
async fn peers_connect_over_the_machines_other_addresses() {
    // Every address but loopback: this needs a machine with a network
    // interface that is up, as any host that runs the agent has.
    let config = RtcConfig::default();
    let got = offer_candidates(&config).await;
    assert!(!got.is_empty(), "no candidate on any non-loopback address");
    assert!(
        got.iter()
            .all(|c| !c.contains(" 127.0.0.1 ") && !c.contains(" ::1 ")),
        "{got:?}"
    );
    let pair = connect_from(&config, false).await;
    pair.off_ch.send(b"over the wire").await.unwrap();
    let got = common::recv(&pair.ans_ch).await;
    assert_eq!(&got[..], b"over the wire");
    timeout(Duration::from_secs(5), pair.offerer.close())
        .await
        .unwrap();
    pair.answerer.close().await;
}
