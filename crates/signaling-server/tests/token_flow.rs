//! Challenge → token flow: a valid JWT for registered devices, 401 with the
//! right message for every failure, and expired tokens refused on `/ws`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use signaling_proto::{Claims, jwt_encode, jwt_verify, sign_challenge};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_for_registered_device() {
    let ts = TestServer::start(test_config()).await;
    let http = ts.http();
    let (host, mobile) = (DeviceKeys::random(), DeviceKeys::random());
    http.pair(&host, &mobile).await;
    let token = http.token(&host).await;
    let claims = jwt_verify(JWT_SECRET, &token, ts.clock.now_unix()).unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.device_type.as_str()),
        (host.id.as_str(), "host")
    );
    assert_eq!(claims.exp - claims.iat, 3600);
    let claims = jwt_verify(JWT_SECRET, &http.token(&mobile).await, ts.clock.now_unix()).unwrap();
    assert_eq!(claims.device_type, "mobile");
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_failures() {
    let ts = TestServer::start(test_config()).await;
    let http = ts.http();
    let (host, mobile, stranger) = (
        DeviceKeys::random(),
        DeviceKeys::random(),
        DeviceKeys::random(),
    );
    http.pair(&host, &mobile).await;

    let r = http.token_resp(&stranger).await;
    assert_eq!((r.status, r.error()), (401, "unknown device"));

    // Signature by another key.
    let nonce = http.challenge(&host.id).await;
    let sig = sign_challenge(&stranger.key, &host.id, &nonce);
    let r = http
        .post(
            "/auth/token",
            json!({ "deviceId": host.id, "nonce": nonce, "signature": sig }),
        )
        .await;
    assert_eq!((r.status, r.error()), (401, "invalid signature"));

    // Nonce used twice.
    let (nonce, sig) = http.proof(&host).await;
    let body = json!({ "deviceId": host.id, "nonce": nonce, "signature": sig });
    assert_eq!(http.post("/auth/token", body.clone()).await.status, 200);
    let r = http.post("/auth/token", body).await;
    assert_eq!((r.status, r.error()), (401, "invalid or expired challenge"));

    // Nonce issued for another device.
    let nonce = http.challenge(&mobile.id).await;
    let sig = sign_challenge(&host.key, &host.id, &nonce);
    let r = http
        .post(
            "/auth/token",
            json!({ "deviceId": host.id, "nonce": nonce, "signature": sig }),
        )
        .await;
    assert_eq!(r.status, 401);

    // Challenge older than 300 s.
    let (nonce, sig) = http.proof(&host).await;
    ts.clock.advance(301);
    let r = http
        .post(
            "/auth/token",
            json!({ "deviceId": host.id, "nonce": nonce, "signature": sig }),
        )
        .await;
    assert_eq!((r.status, r.error()), (401, "invalid or expired challenge"));

    // Missing field / bad JSON / bad id.
    let r = http
        .post("/auth/token", json!({ "deviceId": host.id }))
        .await;
    assert_eq!(r.status, 400);
    let r = http
        .send("POST", "/auth/token", Some("{nope".into()), None, Sign::Now)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error().starts_with("invalid request body"));
    let r = http
        .post("/auth/challenge", json!({ "deviceId": "XYZ" }))
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid deviceId"));
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_or_forged_jwt_refused_on_ws() {
    let ts = TestServer::start(test_config()).await;
    let (host, _, _, _) = paired_pair(&ts).await;
    let now = ts.clock.now_unix();

    let expired = jwt_encode(JWT_SECRET, &Claims::new(&host.id, "host", now - 7200, 3600));
    let mut ws = Ws::open(&ts).await;
    assert_eq!(
        ws.auth(&expired, "").await,
        Got::Msg(signaling_proto::SignalingMessage::error("Invalid token"))
    );
    assert_eq!(ws.closed().await, Some(4001));

    let forged = jwt_encode(b"wrong-secret", &Claims::new(&host.id, "host", now, 3600));
    let mut ws = Ws::open(&ts).await;
    assert_eq!(
        ws.auth(&forged, "").await,
        Got::Msg(signaling_proto::SignalingMessage::error("Invalid token"))
    );
    assert_eq!(ws.closed().await, Some(4001));

    let unknown = jwt_encode(
        JWT_SECRET,
        &Claims::new(&DeviceKeys::random().id, "host", now, 3600),
    );
    let mut ws = Ws::open(&ts).await;
    assert_eq!(
        ws.auth(&unknown, "").await,
        Got::Msg(signaling_proto::SignalingMessage::error("Device not found"))
    );
    assert_eq!(ws.closed().await, Some(4004));

    let mut ws = Ws::open(&ts).await;
    assert_eq!(
        ws.auth("", "").await,
        Got::Msg(signaling_proto::SignalingMessage::error("Missing token"))
    );
    assert_eq!(ws.closed().await, Some(4001));

    // An expired bearer token on an HTTP endpoint.
    let r = ts
        .http()
        .send("GET", "/turn/credentials", None, Some(&expired), Sign::Now)
        .await;
    assert_eq!((r.status, r.error()), (401, "invalid token: token expired"));
    ts.server.shutdown().await;
}
