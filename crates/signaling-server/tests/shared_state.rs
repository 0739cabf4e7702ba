//! Two server instances on one PostgreSQL database (a private cluster the
//! test starts), with no bus between them: what one instance issues, the
//! other honours, once. A challenge from A is answered at B, a pairing code
//! made at A is redeemed at B (and not again at A), an expired code is
//! refused at the other instance after the shared clock moves, a signed
//! request replayed at the other instance is refused, and failed guesses at
//! both instances spend one budget.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use signaling_proto::sign_challenge;
use signaling_server::{Limits, ServerConfig};
use test_support::PrivatePostgres;

const SECRET: &str = "test-hmac-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_instance_issues_the_other_honours_once() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let url = pg.create_database("shared").unwrap();
    let config = ServerConfig {
        database: Some(url.into()),
        hmac_secret: SECRET.into(),
        limits: Limits {
            pairing_failures_per_prefix: 2,
            ..Limits::default()
        },
        ..test_config()
    };
    // One clock for both (clones share its offset), like synchronised hosts.
    let a = TestServer::start(config.clone()).await;
    let b = TestServer::start(config).await;
    let (ha, hb) = (a.http(), b.http());
    let (host, mobile) = (DeviceKeys::random(), DeviceKeys::random());

    // The host's challenge comes from B; it initiates at A.
    let (nonce, signature) = hb.proof(&host).await;
    let initiate = json!({ "deviceId": host.id, "ed25519PublicKey": host.ed_b64(),
        "x25519PublicKey": host.x_b64(), "name": "desk", "nonce": nonce, "signature": signature });
    let r = ha.post("/auth/pair/initiate", initiate.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let code = r.body["pairingCode"].as_str().unwrap().to_owned();
    // The nonce was used up for the whole deployment.
    let again = hb.post("/auth/pair/initiate", initiate).await;
    assert_eq!(
        (again.status, again.error()),
        (401, "invalid or expired challenge")
    );

    // The code made at A is redeemed at B, and then at neither.
    let r = hb.complete_resp(&code, &mobile, "phone").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["hostDeviceId"], host.id.as_str());
    assert_eq!(r.body["hostName"], "desk");
    let r = ha
        .complete_resp(&code, &DeviceKeys::random(), "other")
        .await;
    assert_eq!(r.status, 404, "{r:?}");

    // A token: challenge at A, answered at B.
    let nonce = ha.challenge(&mobile.id).await;
    let proof = json!({ "deviceId": mobile.id, "nonce": nonce,
        "signature": sign_challenge(&mobile.key, &mobile.id, &nonce) });
    let r = hb.post("/auth/token", proof.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(ha.post("/auth/token", proof).await.status, 401);

    // A code past its lifetime is refused at the other instance too.
    let code = ha.initiate(&host, "desk").await;
    a.clock.advance(301);
    let r = hb.complete_resp(&code, &mobile, "phone").await;
    assert_eq!(r.status, 404, "{r:?}");

    // Two failed attempts so far, one per instance (the used code at A,
    // the expired one at B): the budget of two for this address is spent
    // at both.
    for http in [&ha, &hb] {
        let r = http.complete_resp("BBBBBB", &mobile, "phone").await;
        assert_eq!(r.status, 429, "{r:?}");
    }

    // A signed request accepted at A is a replay at B.
    let path = a.path("/auth/challenge");
    let headers = ha.headers(&path, &Sign::Now);
    let body = Some(json!({ "deviceId": host.id }).to_string());
    let first = ha
        .send_raw("POST", &path, body.clone(), headers.clone())
        .await;
    assert_eq!(first.status, 200, "{first:?}");
    let replayed = hb.send_raw("POST", &path, body, headers).await;
    assert_eq!(
        (replayed.status, replayed.error()),
        (401, "replayed request")
    );

    a.server.shutdown().await;
    b.server.shutdown().await;
}
