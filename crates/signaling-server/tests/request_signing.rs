//! Request signing on HTTP and the WS upgrade: missing, malformed, skewed,
//! wrong and replayed signatures each get 401 with the spec's message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use signaling_proto::sign_request;

const SECRET: &str = "test-hmac-secret";

async fn server() -> TestServer {
    TestServer::start(signaling_server::ServerConfig {
        hmac_secret: SECRET.into(),
        ..test_config()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_has_its_message() {
    let ts = server().await;
    let http = ts.http();
    let path = ts.path("/auth/challenge");
    let body = Some(json!({ "deviceId": DeviceKeys::random().id }).to_string());
    let now = ts.clock.now_unix();
    let post = |sign: Sign| http.send("POST", "/auth/challenge", body.clone(), None, sign);

    assert_eq!(post(Sign::Now).await.status, 200);

    let r = post(Sign::Unsigned).await;
    assert_eq!((r.status, r.error()), (401, "missing client signature"));

    let nonce = fresh_nonce();
    let r = post(Sign::Raw(
        Some(now.to_string()),
        None,
        Some(sign_request(SECRET, now, &nonce, &path)),
    ))
    .await;
    assert_eq!((r.status, r.error()), (401, "missing client signature"));

    let r = post(Sign::Raw(
        Some("soon".into()),
        Some(nonce.clone()),
        Some("00".repeat(32)),
    ))
    .await;
    assert_eq!((r.status, r.error()), (401, "invalid timestamp"));

    // Client clock 2 minutes behind.
    let old = now - 120;
    let r = post(Sign::Raw(
        Some(old.to_string()),
        Some(nonce.clone()),
        Some(sign_request(SECRET, old, &nonce, &path)),
    ))
    .await;
    assert_eq!((r.status, r.error()), (401, "request expired"));

    let r = post(Sign::Raw(
        Some(now.to_string()),
        Some(nonce.clone()),
        Some(sign_request("other-secret", now, &nonce, &path)),
    ))
    .await;
    assert_eq!((r.status, r.error()), (401, "invalid client signature"));

    // Signed for another path.
    let r = post(Sign::Raw(
        Some(now.to_string()),
        Some(nonce.clone()),
        Some(sign_request(SECRET, now, &nonce, "/v1/auth/token")),
    ))
    .await;
    assert_eq!((r.status, r.error()), (401, "invalid client signature"));

    let good = Sign::Raw(
        Some(now.to_string()),
        Some(nonce.clone()),
        Some(sign_request(SECRET, now, &nonce, &path)),
    );
    assert_eq!(post(good.clone()).await.status, 200);
    let r = post(good).await;
    assert_eq!((r.status, r.error()), (401, "replayed request"));
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_unsigned_and_ws_upgrade_is_signed() {
    let ts = server().await;
    let http = ts.http();
    let r = http
        .send("GET", "/health", None, None, Sign::Unsigned)
        .await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ok")));
    assert!(r.body["timestamp"].as_i64().unwrap() > 1_700_000_000);

    assert_eq!(Ws::try_open(&ts, Sign::Unsigned).await.err(), Some(401));
    let now = ts.clock.now_unix();
    let nonce = fresh_nonce();
    let wrong = sign_request(SECRET, now, &nonce, "/v1/auth/token");
    assert_eq!(
        Ws::try_open(
            &ts,
            Sign::Raw(Some(now.to_string()), Some(nonce), Some(wrong))
        )
        .await
        .err(),
        Some(401)
    );

    // A fully signed flow works end to end.
    let (_, token, _, _) = paired_pair(&ts).await;
    let mut ws = Ws::authed(&ts, &token, "h").await;
    ws.ping().await;
    ts.server.shutdown().await;
}

/// Browsers cannot set headers on a WebSocket upgrade: on `/ws` the three
/// signing values may come as query parameters (same names, same rules);
/// on every other endpoint a query signature counts for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_upgrade_may_carry_its_signature_in_the_query() {
    use signaling_proto::consts::{HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};
    use tokio_tungstenite::tungstenite::Error;

    let ts = server().await;
    let ws_path = ts.path("/ws");
    let now = ts.clock.now_unix();
    let query = |path: &str| {
        let nonce = fresh_nonce();
        let sig = sign_request(SECRET, now, &nonce, path);
        format!("{HEADER_TIMESTAMP}={now}&{HEADER_NONCE}={nonce}&{HEADER_SIGNATURE}={sig}")
    };
    let open = |q: String| {
        let url = format!("{}?{q}", signaling_proto::ws_url(&ts.url, &ts.version));
        async move {
            match tokio_tungstenite::connect_async(url).await {
                Ok(_) => Ok(()),
                Err(Error::Http(resp)) => Err(resp.status().as_u16()),
                Err(e) => panic!("ws connect failed: {e}"),
            }
        }
    };

    let good = query(&ws_path);
    assert_eq!(open(good.clone()).await, Ok(()));
    // The nonce is single-use there too.
    assert_eq!(open(good).await, Err(401));
    // Signed for another path.
    assert_eq!(open(query(&ts.path("/auth/token"))).await, Err(401));

    let http = ts.http();
    let q = query(&ts.path("/auth/challenge"));
    let body = Some(json!({ "deviceId": DeviceKeys::random().id }).to_string());
    let r = http
        .send(
            "POST",
            &format!("/auth/challenge?{q}"),
            body,
            None,
            Sign::Unsigned,
        )
        .await;
    assert_eq!((r.status, r.error()), (401, "missing client signature"));
    ts.server.shutdown().await;
}
