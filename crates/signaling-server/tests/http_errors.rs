//! HTTP status codes and JSON error bodies of signaling.md §1 (404, 405 with
//! Allow, 426, 429 with Retry-After), and TURN credentials.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use common::*;
use hmac::Mac as _;
use serde_json::json;
use signaling_server::{RateLimits, ServerConfig, TurnConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_codes_have_json_bodies() {
    let ts = TestServer::start(test_config()).await;
    let http = ts.http();
    let r = http.send("GET", "/nowhere", None, None, Sign::Now).await;
    assert_eq!((r.status, r.error()), (404, "not found"));
    let r = http.send("GET", "/auth/token", None, None, Sign::Now).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert!(!r.error().is_empty(), "{r:?}");
    let r = http.send("GET", "/ws", None, None, Sign::Now).await;
    assert_eq!((r.status, r.error()), (426, "websocket upgrade required"));
    let r = http
        .send(
            "POST",
            "/auth/challenge",
            Some("x".repeat(70_000)),
            None,
            Sign::Now,
        )
        .await;
    assert_eq!(r.status, 413);
    assert!(!r.error().is_empty());
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let ts = TestServer::start(ServerConfig {
        rate_limits: RateLimits::default(),
        ..test_config()
    })
    .await;
    let http = ts.http();
    let id = DeviceKeys::random().id;
    for _ in 0..30 {
        assert_eq!(
            http.post("/auth/challenge", json!({ "deviceId": id }))
                .await
                .status,
            200
        );
    }
    let r = http
        .post("/auth/challenge", json!({ "deviceId": id }))
        .await;
    assert_eq!((r.status, r.error()), (429, "rate limit exceeded"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Another endpoint has its own window; the next window opens again.
    assert_eq!(http.post("/auth/token", json!({})).await.status, 400);
    ts.clock.advance(61);
    assert_eq!(
        http.post("/auth/challenge", json!({ "deviceId": id }))
            .await
            .status,
        200
    );

    // WS upgrades: 8 per 10 s.
    for _ in 0..8 {
        drop(Ws::open(&ts).await);
    }
    assert_eq!(Ws::try_open(&ts, Sign::Now).await.err(), Some(429));
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_static_and_rest_credentials() {
    let urls = TurnConfig::rest_urls("turn.example.net");
    let static_turn = TurnConfig {
        urls: urls.clone(),
        username: "u".into(),
        credential: "c".into(),
        ..TurnConfig::default()
    };
    let ts = TestServer::start(ServerConfig {
        turn: static_turn,
        ..test_config()
    })
    .await;
    let (_, token, _, _) = paired_pair(&ts).await;
    let r = ts
        .http()
        .send("GET", "/turn/credentials", None, Some(&token), Sign::Now)
        .await;
    assert_eq!(
        r.body,
        json!({ "urls": urls, "username": "u", "credential": "c" })
    );
    let r = ts
        .http()
        .send("GET", "/turn/credentials", None, None, Sign::Now)
        .await;
    assert_eq!((r.status, r.error()), (401, "missing bearer token"));
    ts.server.shutdown().await;

    let rest = TurnConfig {
        urls: urls.clone(),
        secret: "turn-secret".into(),
        ttl: std::time::Duration::from_secs(3600),
        ..TurnConfig::default()
    };
    let ts = TestServer::start(ServerConfig {
        turn: rest,
        ..test_config()
    })
    .await;
    let (host, token, _, _) = paired_pair(&ts).await;
    let r = ts
        .http()
        .send("GET", "/turn/credentials", None, Some(&token), Sign::Now)
        .await;
    assert_eq!(r.status, 200);
    let username = r.body["username"].as_str().unwrap();
    let (expiry, id) = username.split_once(':').unwrap();
    assert_eq!(id, host.id);
    let expiry: i64 = expiry.parse().unwrap();
    assert!((expiry - ts.clock.now_unix() - 3600).abs() <= 2);
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(b"turn-secret").unwrap();
    mac.update(username.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(r.body["credential"].as_str().unwrap(), expected);
    assert_eq!(r.body["urls"], json!(urls));
    ts.server.shutdown().await;
}
