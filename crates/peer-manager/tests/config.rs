//! `PeerManagerConfig` reaching the peers: the API version given at
//! construction is the one the TURN credential fetch of a new peer uses
//! (there is no process-wide setter any more).

#![allow(clippy::unwrap_used)]

mod harness;

use std::sync::Arc;

use harness::*;
use peer_manager::{PeerManager, PeerManagerConfig};
use signaling_proto::Signal;
use tokio::io::AsyncReadExt as _;

const SECRET: [u8; 32] = [0x42; 32];
const PHONE: &str = "phone000000000000000000000000001";

#[tokio::test]
async fn the_configured_api_version_reaches_the_turn_fetch() {
    // A server that only records the request head, then hangs up (the peer
    // falls back to STUN).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (_net, sink) = Net::new();
    let (handler, _seen) = TestHandler::new();
    let config = PeerManagerConfig {
        server_url: url,
        api_version: "v2".into(),
        rtc_override: None,
        stun_url: Some("stun:127.0.0.1:9".into()),
        ..Net::host_config(PHONE, SECRET)
    };
    let pm = PeerManager::new(config, sink, Arc::new(|| "the.jwt".to_owned()), handler);
    pm.handle_signaling_message(Signal::ConnectRequest {
        target_device_id: PHONE.to_owned(),
    });
    let (mut socket, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("no TURN credential request")
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
        if socket.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    drop(socket);
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.starts_with("GET /v2/turn/credentials HTTP/1.1"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer the.jwt")
    );
    pm.close_all().await;
    assert_eq!(pm.task_count(), 0);
}
