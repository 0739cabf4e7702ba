//! WebSocket limits: oversize and malformed messages close only the sender,
//! pre-auth and unknown messages get errors, the sixth socket of a device is
//! refused without disturbing the others, idle sockets are reaped.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use signaling_proto::SignalingMessage;

async fn mobile(ts: &TestServer, token: &str) -> Ws {
    let mut ws = Ws::authed(ts, token, "phone").await;
    assert_eq!(ws.msg().await.kind, "host_online");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_and_malformed_close_only_the_sender() {
    let ts = TestServer::start(test_config()).await;
    let (_, ht, _, mt) = paired_pair(&ts).await;
    let mut bystander = Ws::authed(&ts, &ht, "h").await;
    // Mobile sockets reuse the stored name ("phone") so the host gets no
    // rename notices, and each first reads its host_online snapshot.
    let mut sibling = mobile(&ts, &mt).await;

    // Exactly at the limit is fine (unknown type, so an error but no close).
    let pad = |n: usize| format!(r#"{{"type":"x","sdp":"{}"}}"#, "a".repeat(n));
    let overhead = pad(0).len();
    let mut ws = mobile(&ts, &mt).await;
    ws.send_text(&pad(16_384 - overhead)).await;
    assert_eq!(
        ws.msg().await,
        SignalingMessage::error("Unknown message type: x")
    );
    ws.send_text(&pad(16_384 - overhead + 1)).await;
    assert_eq!(ws.msg().await, SignalingMessage::error("Message too large"));
    assert_eq!(ws.closed().await, Some(1009));

    // Far above the frame limit (2 MiB): still an error and 1009.
    let mut ws = mobile(&ts, &mt).await;
    ws.send_text(&pad(2 << 20)).await;
    assert_eq!(
        ws.next().await,
        Got::Msg(SignalingMessage::error("Message too large"))
    );
    assert_eq!(ws.closed().await, Some(1009));

    let mut ws = mobile(&ts, &mt).await;
    ws.send_text("{not json").await;
    assert_eq!(
        ws.msg().await,
        SignalingMessage::error("Invalid message format")
    );
    assert_eq!(ws.closed().await, Some(1007));

    let mut ws = mobile(&ts, &mt).await;
    ws.stream
        .send(tokio_tungstenite::tungstenite::Message::binary(vec![
            1, 2, 3,
        ]))
        .await
        .unwrap();
    assert_eq!(ws.closed().await, Some(1003));

    bystander.ping().await;
    sibling.ping().await;
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_before_auth_and_for_unknown_types() {
    let ts = TestServer::start(test_config()).await;
    let (_, ht, _, _) = paired_pair(&ts).await;
    let mut ws = Ws::open(&ts).await;
    ws.send(&SignalingMessage::new("presence")).await;
    assert_eq!(ws.msg().await, SignalingMessage::error("Not authenticated"));
    ws.send(&SignalingMessage::new("sdp_offer")).await;
    assert_eq!(ws.msg().await, SignalingMessage::error("Not authenticated"));
    assert_eq!(
        ws.auth(&ht, "h").await,
        Got::Msg(SignalingMessage {
            status: "ok".into(),
            ..SignalingMessage::new("auth")
        })
    );
    ws.send(&SignalingMessage::new("dance")).await;
    assert_eq!(
        ws.msg().await,
        SignalingMessage::error("Unknown message type: dance")
    );
    ws.ping().await;
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixth_socket_refused_others_unaffected() {
    let ts = TestServer::start(test_config()).await;
    let (_, ht, _, _) = paired_pair(&ts).await;
    let mut five = Vec::new();
    for _ in 0..5 {
        five.push(Ws::authed(&ts, &ht, "h").await);
    }
    let mut sixth = Ws::open(&ts).await;
    assert_eq!(
        sixth.auth(&ht, "h").await,
        Got::Msg(SignalingMessage::error("Too many connections"))
    );
    assert_eq!(sixth.closed().await, Some(1008));
    for ws in &mut five {
        ws.ping().await;
    }
    // Closing one frees a slot.
    drop(five.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    while ts.server.socket_count() > 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "socket not released"
        );
        tokio::task::yield_now().await;
    }
    let mut again = Ws::authed(&ts, &ht, "h").await;
    again.ping().await;
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_reaped() {
    let ts = TestServer::start(signaling_server::ServerConfig {
        idle_timeout: std::time::Duration::from_millis(1000),
        auth_timeout: std::time::Duration::from_millis(200),
        ..test_config()
    })
    .await;
    let (_, ht, _, _) = paired_pair(&ts).await;
    let mut ws = Ws::authed(&ts, &ht, "h").await;
    assert_eq!(ws.closed().await, Some(1000));
    let mut unauthenticated = Ws::open(&ts).await;
    assert_eq!(
        unauthenticated.msg().await,
        SignalingMessage::error("Authentication timeout")
    );
    assert_eq!(unauthenticated.closed().await, Some(4001));
    ts.server.shutdown().await;
}

use futures_util::SinkExt as _;
