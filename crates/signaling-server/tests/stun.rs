//! The STUN responder: a Binding request over real UDP gets the client's
//! address back as XOR-MAPPED-ADDRESS (library and binary, `--stun-bind`),
//! other datagrams get nothing, a real ICE agent (the WebRTC stack through
//! rtc-transport) gathers a server-reflexive candidate from it, `off` and
//! the port-0 default start no responder, and an address that cannot be
//! bound stops the start with one line naming the setting.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use rtc_transport::{IceServer, RtcConfig, RtcEvent, RtcPeer};
use signaling_server::{Server, ServerConfig, StartError, StunBind};
use stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Getter as _, Message, TransactionId};
use stun::xoraddr::XorMappedAddress;
use tokio::net::UdpSocket;

fn stun_config(bind: StunBind) -> ServerConfig {
    ServerConfig {
        stun_bind: bind,
        ..test_config()
    }
}

fn loopback_any_port() -> StunBind {
    StunBind::At("127.0.0.1:0".parse().unwrap())
}

/// Sends one Binding request from `socket` to `server` and returns the
/// mapped address of the answer (bounded wait, a few retransmits as UDP
/// allows loss even on loopback).
async fn binding(socket: &UdpSocket, server: SocketAddr) -> SocketAddr {
    let mut req = Message::new();
    req.build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)])
        .unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..5 {
        socket.send_to(&req.raw, server).await.unwrap();
        let Ok(got) =
            tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await
        else {
            continue;
        };
        let (n, from) = got.unwrap();
        assert_eq!(from, server);
        let mut resp = Message::new();
        resp.raw = buf[..n].to_vec();
        resp.decode().unwrap();
        assert_eq!(resp.typ, BINDING_SUCCESS);
        assert_eq!(resp.transaction_id, req.transaction_id);
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&resp).unwrap();
        return SocketAddr::new(mapped.ip, mapped.port);
    }
    panic!("no STUN answer from {server}");
}

#[tokio::test]
async fn a_binding_request_gets_the_source_address_and_junk_gets_nothing() {
    let server = Server::start(stun_config(loopback_any_port()))
        .await
        .unwrap();
    let stun = server.stun_addr().unwrap();
    assert_ne!(stun.port(), 0);
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(binding(&client, stun).await, client.local_addr().unwrap());

    // Not a Binding request: no answer (else `binding` would read that
    // answer first and fail on it); the next real request still works.
    client
        .send_to(b"hello there, not STUN at all", stun)
        .await
        .unwrap();
    let mut success = Message::new();
    success
        .build(&[Box::new(TransactionId::new()), Box::new(BINDING_SUCCESS)])
        .unwrap();
    client.send_to(&success.raw, stun).await.unwrap();
    assert_eq!(binding(&client, stun).await, client.local_addr().unwrap());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_agent_gathers_a_server_reflexive_candidate_from_it() {
    let server = Server::start(stun_config(loopback_any_port()))
        .await
        .unwrap();
    let stun = server.stun_addr().unwrap();
    let config = RtcConfig {
        ice_servers: vec![IceServer {
            urls: vec![format!("stun:{stun}")],
            ..IceServer::default()
        }],
        ..RtcConfig::loopback()
    };
    let (peer, mut events) = RtcPeer::new(&config).await.unwrap();
    let _channel = peer.create_data_channel("terminal").await.unwrap();
    let _offer = peer.create_offer(false).await.unwrap();
    let srflx = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.recv().await {
            if let RtcEvent::LocalCandidate(c) = event
                && c.candidate.contains(" typ srflx")
            {
                return c.candidate;
            }
        }
        panic!("event stream ended without a srflx candidate");
    })
    .await
    .expect("no server-reflexive candidate gathered within 10 s");
    // candidate:<f> 1 udp <prio> <addr> <port> typ srflx raddr <a> rport <p>
    let f: Vec<&str> = srflx.split_whitespace().collect();
    let at = |name: &str| f[f.iter().position(|w| *w == name).unwrap() + 1];
    assert_eq!(f[4], "127.0.0.1", "{srflx}");
    // No NAT on loopback: the mapped port is the agent's own socket's port.
    assert_eq!(f[5], at("rport"), "{srflx}");
    peer.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn off_and_the_port_zero_default_start_no_responder() {
    let off = Server::start(stun_config(StunBind::Off)).await.unwrap();
    assert_eq!(off.stun_addr(), None);
    off.shutdown().await;
    // ServerConfig::default(): Auto with the HTTP listener on port 0.
    let default = Server::start(test_config()).await.unwrap();
    assert_eq!(default.stun_addr(), None);
    default.shutdown().await;
}

#[tokio::test]
async fn an_address_in_use_stops_the_start_with_one_line() {
    let taken = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let Err(e) = Server::start(stun_config(StunBind::At(addr))).await else {
        panic!("started on a taken STUN port");
    };
    assert!(matches!(e, StartError::StunBind { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&addr.to_string()) && text.contains("--stun-bind"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_on_the_stun_bind_flag_and_env() {
    for via_env in [false, true] {
        // A free port: bound and released (the server binds it right after).
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut args = vec!["--bind", "127.0.0.1:0"];
        let mut envs = Vec::new();
        if via_env {
            envs.push(("MUXLINK_SERVER_STUN_BIND", addr.as_str()));
        } else {
            args.extend(["--stun-bind", addr.as_str()]);
        }
        let proc = ServerProcess::spawn(&args, &envs);
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(
            binding(&client, addr.parse().unwrap()).await,
            client.local_addr().unwrap()
        );
        assert!(proc.terminate().success());
    }
}
