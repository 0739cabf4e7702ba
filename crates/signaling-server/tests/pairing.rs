//! Pairing: initiate/complete with key-possession proof, pair_complete to
//! every host socket, replacement notice, single-use and expiring codes,
//! type conflicts, unpair and device deletion.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use signaling_proto::{SignalingMessage, is_valid_pairing_code, sign_challenge};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_completes_on_every_host_socket() {
    let ts = TestServer::start(test_config()).await;
    let http = ts.http();
    let (host, mobile) = (DeviceKeys::random(), DeviceKeys::random());
    let code = http.initiate(&host, "laptop").await;
    assert!(is_valid_pairing_code(&code), "{code}");

    let token = http.token(&host).await;
    let mut cli = Ws::authed(&ts, &token, "").await;
    let mut agent = Ws::authed(&ts, &token, "").await;

    let r = http.complete_resp(&code, &mobile, "phone").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        json!({ "hostX25519PublicKey": host.x_b64(), "hostDeviceId": host.id, "hostName": "laptop" })
    );
    let expected = SignalingMessage {
        mobile_device_id: mobile.id.clone(),
        mobile_x25519_public_key: mobile.x_b64(),
        mobile_name: "phone".into(),
        ..SignalingMessage::new("pair_complete")
    };
    assert_eq!(cli.msg().await, expected);
    assert_eq!(agent.msg().await, expected);

    // Single use.
    let r = http.complete_resp(&code, &DeviceKeys::random(), "p2").await;
    assert_eq!(
        (r.status, r.error()),
        (404, "Invalid or expired pairing code")
    );
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_expire_and_are_replaced() {
    let ts = TestServer::start(signaling_server::ServerConfig {
        pairing_ttl: std::time::Duration::from_secs(5),
        ..test_config()
    })
    .await;
    let http = ts.http();
    let host = DeviceKeys::random();
    let code = http.initiate(&host, "laptop").await;
    ts.clock.advance(6);
    let r = http.complete_resp(&code, &DeviceKeys::random(), "p").await;
    assert_eq!(
        (r.status, r.error()),
        (404, "Invalid or expired pairing code")
    );

    // A new initiate invalidates the host's earlier code.
    let first = http.initiate(&host, "laptop").await;
    let second = http.initiate(&host, "laptop").await;
    assert_eq!(
        http.complete_resp(&first, &DeviceKeys::random(), "p")
            .await
            .status,
        404
    );
    assert_eq!(
        http.complete_resp(&second.to_lowercase(), &DeviceKeys::random(), "p")
            .await
            .status,
        200
    );
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_pairing_replaces_old_mobile() {
    let ts = TestServer::start(test_config()).await;
    let http = ts.http();
    let (host, old, new) = (
        DeviceKeys::random(),
        DeviceKeys::random(),
        DeviceKeys::random(),
    );
    http.pair(&host, &old).await;
    let mut old_ws = Ws::authed(&ts, &http.token(&old).await, "phone").await;
    http.pair(&host, &new).await;
    assert_eq!(
        old_ws.msg().await,
        SignalingMessage {
            reason: "replaced_by_new_pairing".into(),
            host_device_id: host.id.clone(),
            host_name: "host".into(),
            ..SignalingMessage::new("device_unpaired")
        }
    );
    // The old phone is no longer paired.
    old_ws
        .send(&SignalingMessage {
            target_device_id: host.id.clone(),
            ..SignalingMessage::new("connect_request")
        })
        .await;
    assert_eq!(old_ws.msg().await.reason, "not_paired");
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_requires_key_possession_and_valid_input() {
    let ts = TestServer::start(test_config()).await;
    let http = ts.http();
    let (host, mobile, other) = (
        DeviceKeys::random(),
        DeviceKeys::random(),
        DeviceKeys::random(),
    );
    let code = http.initiate(&host, "laptop").await;
    let complete = |nonce: String, signature: String, name: &str, ed: String, x: String| {
        json!({ "pairingCode": code, "deviceId": mobile.id, "ed25519PublicKey": ed, "x25519PublicKey": x,
                "name": name, "nonce": nonce, "signature": signature })
    };
    // Signed by another key.
    let nonce = http.challenge(&mobile.id).await;
    let sig = sign_challenge(&other.key, &mobile.id, &nonce);
    let r = http
        .post(
            "/auth/pair/complete",
            complete(nonce, sig, "p", mobile.ed_b64(), mobile.x_b64()),
        )
        .await;
    assert_eq!((r.status, r.error()), (401, "invalid signature"));
    // No challenge at all.
    let r = http
        .post(
            "/auth/pair/complete",
            complete(
                "bogus".into(),
                "AA==".into(),
                "p",
                mobile.ed_b64(),
                mobile.x_b64(),
            ),
        )
        .await;
    assert_eq!((r.status, r.error()), (401, "invalid or expired challenge"));
    // Key that does not derive the device id.
    let (nonce, sig) = http.proof(&mobile).await;
    let r = http
        .post(
            "/auth/pair/complete",
            complete(nonce, sig, "p", other.ed_b64(), mobile.x_b64()),
        )
        .await;
    assert_eq!(
        (r.status, r.error()),
        (400, "deviceId does not match ed25519PublicKey")
    );
    // Bad name / bad x25519 key.
    let (nonce, sig) = http.proof(&mobile).await;
    let r = http
        .post(
            "/auth/pair/complete",
            complete(nonce, sig, "bad\u{7}name", mobile.ed_b64(), mobile.x_b64()),
        )
        .await;
    assert_eq!(r.status, 400);
    let (nonce, sig) = http.proof(&mobile).await;
    let r = http
        .post(
            "/auth/pair/complete",
            complete(nonce, sig, "p", mobile.ed_b64(), "AAAA".into()),
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid x25519PublicKey"));
    // None of that burnt the code.
    assert_eq!(http.complete_resp(&code, &mobile, "p").await.status, 200);
    // A host cannot complete as a mobile, and a mobile cannot initiate.
    let code = http.initiate(&DeviceKeys::random(), "h2").await;
    let r = http.complete_resp(&code, &host, "p").await;
    assert_eq!((r.status, r.error()), (409, "device type conflict"));
    let r = http.initiate_resp(&mobile, "m").await;
    assert_eq!((r.status, r.error()), (409, "device type conflict"));
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpair_and_delete_device() {
    let ts = TestServer::start(test_config()).await;
    let http = ts.http();
    let (host, ht, mobile, mt) = paired_pair(&ts).await;
    let mut phone = Ws::authed(&ts, &mt, "phone").await;

    let r = http
        .send("DELETE", "/auth/pairing", None, Some(&ht), Sign::Now)
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({ "removed": true }))
    );
    let notice = phone.msg().await;
    assert_eq!(
        (notice.kind.as_str(), notice.reason.as_str()),
        ("device_unpaired", "host_unpaired")
    );
    assert_eq!(notice.host_device_id, host.id);
    let r = http
        .send("DELETE", "/auth/pairing", None, Some(&ht), Sign::Now)
        .await;
    assert_eq!(r.body, json!({ "removed": false }));

    http.pair(&host, &mobile).await;
    let mut agent = Ws::authed(&ts, &ht, "laptop").await;
    assert_eq!(phone.msg().await.kind, "host_online");
    let r = http
        .send("DELETE", "/auth/device", None, Some(&ht), Sign::Now)
        .await;
    assert_eq!(r.body, json!({ "removed": true }));
    assert_eq!(phone.msg().await.reason, "host_uninstalled");
    assert_eq!(agent.closed().await, Some(4004));
    let r = http.token_resp(&host).await;
    assert_eq!((r.status, r.error()), (401, "unknown device"));
    let r = http
        .send("DELETE", "/auth/device", None, None, Sign::Now)
        .await;
    assert_eq!((r.status, r.error()), (401, "missing bearer token"));
    ts.server.shutdown().await;
}
