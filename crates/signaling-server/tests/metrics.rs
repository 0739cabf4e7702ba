//! Prometheus metrics on their own listener (`metrics_bind`): a real server
//! is driven through auths, relays, a bad token, a rate-limited request and a
//! socket over its message rate, and `GET /metrics` on the metrics address
//! shows each counter moved; the public listener has no `/metrics`. With
//! PostgreSQL (a private cluster) gone, failed requests count store errors
//! and a relay whose pairing cannot be checked gets an error, not "not paired".
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use signaling_proto::SignalingMessage;
use signaling_server::{RateLimit, RateLimits};
use test_support::wait_until;

/// `GET /metrics` on `addr`: (content type, body).
async fn scrape(addr: SocketAddr) -> (String, String) {
    tokio::task::spawn_blocking(move || {
        let mut resp = ureq::get(&format!("http://{addr}/metrics")).call().unwrap();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (content_type, resp.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap()
}

/// The value of the sample line `series` (name and labels exactly as
/// encoded), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn msg(kind: &str, target: &str) -> SignalingMessage {
    SignalingMessage {
        target_device_id: target.to_owned(),
        ..SignalingMessage::new(kind)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sockets_relays_auth_failures_and_limits() {
    let mut config = test_config();
    config.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    // Limits on, but only TURN credentials (1 per minute) and the socket
    // message rate (a burst of 3) are low enough to hit.
    config.rate_limits = RateLimits {
        turn: RateLimit {
            max: 1,
            window: Duration::from_secs(60),
        },
        ..RateLimits::default()
    };
    config.limits.ws_messages_per_sec = 1;
    config.limits.ws_message_burst = 3;
    let ts = TestServer::start(config).await;
    let addr = ts.server.metrics_addr().expect("metrics listener");
    assert_ne!(addr.port(), 0);

    let (content_type, text) = scrape(addr).await;
    assert!(content_type.contains("text"), "{content_type}");
    assert_eq!(sample(&text, "muxlink_websockets_open"), 0.0, "{text}");

    // Two devices online, a relay each way.
    let (host, ht, mobile, mt) = paired_pair(&ts).await;
    let mut phone = Ws::authed(&ts, &mt, "phone").await;
    let mut agent = Ws::authed(&ts, &ht, "laptop").await;
    assert_eq!(phone.msg().await.kind, "host_online");
    phone.send(&msg("connect_request", &host.id)).await;
    assert_eq!(agent.msg().await, msg("connect_request", &mobile.id));
    agent.send(&msg("sdp_offer", &mobile.id)).await;
    assert_eq!(phone.msg().await.kind, "sdp_offer");

    // A bad token.
    let mut stranger = Ws::open(&ts).await;
    assert!(matches!(
        stranger.auth("not-a-jwt", "x").await,
        Got::Msg(m) if m.kind == "error"
    ));
    assert!(stranger.closed().await.is_some());

    // Over the socket's message rate: closed with 1008. One message past the
    // burst, no more: a later send could meet the closed socket (broken pipe).
    let mut chatty = Ws::open(&ts).await;
    for _ in 0..4 {
        chatty.send(&SignalingMessage::new("presence")).await;
    }
    assert_eq!(chatty.closed().await, Some(1008));

    // A second TURN request within the minute: 429.
    let http = ts.http();
    let first = http
        .send("GET", "/turn/credentials", None, Some(&ht), Sign::Now)
        .await;
    assert_ne!(first.status, 429);
    let second = http
        .send("GET", "/turn/credentials", None, Some(&ht), Sign::Now)
        .await;
    assert_eq!(second.status, 429);

    // The refused sockets' tasks end just after their close frames.
    assert!(
        wait_until(Duration::from_secs(5), || async {
            sample(&scrape(addr).await.1, "muxlink_websockets_open") == 2.0
        })
        .await
    );
    let (_, text) = scrape(addr).await;
    let v = |series: &str| sample(&text, series);
    assert_eq!(v("muxlink_devices_online"), 2.0, "{text}");
    assert_eq!(
        v(r#"muxlink_relayed_messages_total{type="connect_request"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        v(r#"muxlink_relayed_messages_total{type="sdp_offer"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(v("muxlink_relay_latency_seconds_count"), 2.0, "{text}");
    assert!(v("muxlink_relay_latency_seconds_sum") > 0.0, "{text}");
    assert_eq!(
        v(r#"muxlink_auth_failures_total{reason="invalid_token"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        v(r#"muxlink_rate_limited_total{endpoint="ws_messages"}"#),
        1.0,
        "{text}"
    );
    let turn_route = ts.path("/turn/credentials");
    assert_eq!(
        v(&format!(
            r#"muxlink_rate_limited_total{{endpoint="{turn_route}"}}"#
        )),
        1.0,
        "{text}"
    );
    assert_eq!(
        v(&format!(
            r#"muxlink_http_requests_total{{route="{turn_route}",status="429"}}"#
        )),
        1.0,
        "{text}"
    );
    let token_route = ts.path("/auth/token");
    assert!(
        v(&format!(
            r#"muxlink_http_requests_total{{route="{token_route}",status="200"}}"#
        )) >= 2.0,
        "{text}"
    );
    assert_eq!(v("muxlink_store_errors_total"), 0.0, "{text}");
    assert!(text.contains("muxlink_bus_errors_total 0"), "{text}");
    // No device id or address ever becomes a label.
    for id in [&host.id, &mobile.id] {
        assert!(!text.contains(id.as_str()), "{text}");
    }
    assert!(!text.contains("127.0.0.1"), "{text}");

    // Sockets that end leave the gauges.
    drop(phone);
    drop(agent);
    assert!(
        wait_until(Duration::from_secs(5), || async {
            let (_, text) = scrape(addr).await;
            sample(&text, "muxlink_websockets_open") == 0.0
                && sample(&text, "muxlink_devices_online") == 0.0
        })
        .await
    );

    // The public listener has no /metrics.
    let public = http.send_raw("GET", "/metrics", None, vec![]).await;
    assert_eq!(public.status, 404);
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_metrics_listener_unless_configured() {
    let ts = TestServer::start(test_config()).await;
    assert_eq!(ts.server.metrics_addr(), None);
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_errors_are_counted_once_the_database_is_gone() {
    let Some(pg) = test_support::PrivatePostgres::start() else {
        return;
    };
    let url = pg.create_database("signaling").unwrap();
    let mut config = test_config();
    config.database = Some(url.into());
    config.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let ts = TestServer::start(config).await;
    let addr = ts.server.metrics_addr().unwrap();
    let http = ts.http();
    let id = DeviceKeys::random().id;
    let challenge = http
        .post("/auth/challenge", serde_json::json!({ "deviceId": id }))
        .await;
    assert_eq!(challenge.status, 200);
    // A paired phone and host, online before the outage.
    let (host, ht, _mobile, mt) = paired_pair(&ts).await;
    let mut phone = Ws::authed(&ts, &mt, "phone").await;
    let _agent = Ws::authed(&ts, &ht, "laptop").await;
    assert_eq!(phone.msg().await.kind, "host_online");

    drop(pg);
    // The pairing cannot be checked: the phone hears an error, never
    // "not paired" (it must not take an outage for an unpairing).
    phone.send(&msg("connect_request", &host.id)).await;
    let reply = phone.msg().await;
    assert_eq!(reply.kind, "error", "{reply:?}");
    let challenge = http
        .post("/auth/challenge", serde_json::json!({ "deviceId": id }))
        .await;
    assert_eq!(challenge.status, 500, "{:?}", challenge.body);
    let (_, text) = scrape(addr).await;
    let route = ts.path("/auth/challenge");
    // (The background sweep may fail on the store too.)
    assert!(sample(&text, "muxlink_store_errors_total") >= 1.0, "{text}");
    assert_eq!(
        sample(
            &text,
            &format!(r#"muxlink_http_requests_total{{route="{route}",status="500"}}"#)
        ),
        1.0,
        "{text}"
    );
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_scrape_does_not_hold_shutdown() {
    use tokio::io::AsyncWriteExt as _;
    let mut config = test_config();
    config.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let ts = TestServer::start(config).await;
    let addr = ts.server.metrics_addr().unwrap();
    // Half a request head, never finished.
    let mut stuck = tokio::net::TcpStream::connect(addr).await.unwrap();
    stuck.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
    let (_, text) = scrape(addr).await;
    assert!(text.contains("muxlink_websockets_open"));
    tokio::time::timeout(Duration::from_secs(15), ts.server.shutdown())
        .await
        .expect("shutdown waited for the stuck scrape");
    drop(stuck);
}
