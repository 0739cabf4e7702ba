//! Pairing: initiate/complete with key-possession proof, pair_complete to
//! every host socket, replacement notice, single-use and expiring codes,
//! type conflicts, unpair and device deletion; pairing v2's confirmation is
//! required, checked before the code is used, relayed verbatim and not stored.
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
        mobile_confirmation: confirmation_of(&mobile),
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
    // The old phone, paired with nobody now, is deleted and disconnected.
    assert_eq!(old_ws.closed().await, Some(4004));
    assert_eq!(http.token_resp(&old).await.status, 401);
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
                "name": name, "nonce": nonce, "signature": signature, "confirmation": confirmation_of(&mobile) })
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
    // The phone, paired with nobody now, is deleted: its socket closes and
    // its token stops working.
    assert_eq!(phone.closed().await, Some(4004));
    let r = http
        .send("GET", "/turn/credentials", None, Some(&mt), Sign::Now)
        .await;
    assert_eq!((r.status, r.error()), (401, "unknown device"));
    let r = http
        .send("DELETE", "/auth/pairing", None, Some(&ht), Sign::Now)
        .await;
    assert_eq!(r.body, json!({ "removed": false }));

    http.pair(&host, &mobile).await;
    let mt = http.token(&mobile).await;
    let mut phone = Ws::authed(&ts, &mt, "phone").await;
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

/// A 128-character confirmation with characters JSON must escape and
/// non-ASCII ones: the server relays it as it came.
fn odd_confirmation() -> String {
    let mut c = String::from("QsO8l31s/WKvrPA9L+6RFga8NJQEAgAbIunhzjZVMUo= \"q\" \\ é 😀 ");
    while c.chars().count() < signaling_proto::MAX_CONFIRMATION_LEN {
        c.push('x');
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_is_required_before_the_code_is_used_and_relayed_verbatim() {
    let ts = TestServer::start(test_config()).await;
    let http = ts.http();
    let (host, mobile) = (DeviceKeys::random(), DeviceKeys::random());
    let code = http.initiate(&host, "laptop").await;
    let mut cli = Ws::authed(&ts, &http.token(&host).await, "").await;

    let r = http.complete_with(&code, &mobile, "phone", None).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error().starts_with("missing confirmation"), "{r:?}");
    let r = http.complete_with(&code, &mobile, "phone", Some("")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error().starts_with("missing confirmation"), "{r:?}");
    let too_long = "A".repeat(signaling_proto::MAX_CONFIRMATION_LEN + 1);
    let r = http
        .complete_with(&code, &mobile, "phone", Some(&too_long))
        .await;
    assert_eq!(
        (r.status, r.error()),
        (400, "confirmation is longer than 128 characters")
    );
    let too_long = format!("{}é", odd_confirmation());
    let r = http
        .complete_with(&code, &mobile, "phone", Some(&too_long))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    // Not a string at all.
    let (nonce, signature) = http.proof(&mobile).await;
    let r = http
        .post(
            "/auth/pair/complete",
            json!({ "pairingCode": code, "deviceId": mobile.id, "ed25519PublicKey": mobile.ed_b64(),
                    "x25519PublicKey": mobile.x_b64(), "nonce": nonce, "signature": signature,
                    "confirmation": 42 }),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");

    // None of that used the code, and the host heard nothing of it.
    let posted = odd_confirmation();
    assert_eq!(posted.chars().count(), 128);
    let r = http
        .complete_with(&code, &mobile, "phone", Some(&posted))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let raw = cli.text().await;
    let msg: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(msg["type"], "pair_complete", "{raw}");
    assert_eq!(msg["mobileDeviceId"], mobile.id.as_str(), "{raw}");
    assert_eq!(msg["mobileConfirmation"], posted.as_str(), "{raw}");
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("signaling.db");
    let ts = TestServer::start(signaling_server::ServerConfig {
        database: Some(db.clone()),
        ..test_config()
    })
    .await;
    let http = ts.http();
    let (host, mobile) = (DeviceKeys::random(), DeviceKeys::random());
    let code = http.initiate(&host, "laptop").await;
    let mut cli = Ws::authed(&ts, &http.token(&host).await, "").await;
    let marker = "Zm9yZ2V0LW1lLWNvbmZpcm1hdGlvbi1tYXJrZXI=";
    let r = http
        .complete_with(&code, &mobile, "phone", Some(marker))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(cli.msg().await.mobile_confirmation, marker);
    // The pairing itself is stored: the phone gets a token.
    http.token(&mobile).await;
    ts.server.shutdown().await;

    // No column for it, no cell holding it.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.contains(&"pairings".to_owned()), "{tables:?}");
    let mut cells = 0;
    for table in &tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        assert!(
            !columns.iter().any(|c| c.to_lowercase().contains("confirm")),
            "{table}: {columns:?}"
        );
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, column) in columns.iter().enumerate() {
                let text = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                        String::from_utf8_lossy(b).into_owned()
                    }
                    other => format!("{other:?}"),
                };
                assert!(!text.contains(marker), "{table}.{column}");
                cells += 1;
            }
        }
    }
    assert!(cells > 0, "the store holds the devices and the pairing");
    drop(conn);
    // Nor anywhere in the files (database, WAL, shared memory).
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{}",
            path.display()
        );
    }
}
