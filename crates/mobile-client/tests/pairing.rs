//! Pairing and the token flow against a real signaling server.
#![allow(clippy::unwrap_used)]

mod support;

use mobile_client::{ClientError, PhoneClient, PhoneConfig};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_derives_the_hosts_secret_and_gets_tokens() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (phone, host, _host_sig, _secret) = paired(&server, dir.path()).await;
    let rec = phone.pairing().unwrap().unwrap();
    assert_eq!(rec.host_device_id, host.device_id());
    assert_eq!(rec.host_name, "test-host");
    assert_eq!(rec.server_url, server.url());
    let token = phone.fetch_token().await.unwrap();
    let claims = signaling_proto::jwt_expiry_unverified(&token);
    assert!(claims.is_some());
    // Reopening the same directory keeps identity and pairing.
    let again = support::phone(dir.path());
    assert_eq!(again.identity().device_id(), phone.identity().device_id());
    assert_eq!(again.pairing().unwrap().unwrap(), rec);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signaling_sees_the_host_online_and_routes_its_rejection() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (phone, host, host_sig, _secret) = paired(&server, dir.path()).await;
    let sig = phone.signaling().await.unwrap();
    let mut hosts = sig.online_hosts();
    let host_id = host.device_id();
    tokio::time::timeout(WAIT, hosts.wait_for(|h| h.contains_key(&host_id)))
        .await
        .unwrap()
        .unwrap();
    // The host refuses: the phone's connect fails with the reason.
    let phone_id = phone.identity().device_id().to_owned();
    let refuser = tokio::spawn(async move {
        let mut route = host_sig.route(&phone_id);
        let req = route.recv().await.unwrap();
        assert!(
            matches!(req, signaling_proto::Signal::ConnectRequest { .. }),
            "{req:?}"
        );
        let m = signaling_proto::Signal::ConnectionRejected {
            target_device_id: phone_id.clone(),
            reason: "already_connected".into(),
        };
        host_sig.send(m).await.unwrap();
        host_sig
    });
    let err = phone.connect(sig.clone()).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Rejected(r) if r == "already_connected"),
        "{err}"
    );
    let host_sig = refuser.await.unwrap();
    // Host goes away: the phone hears host_offline.
    host_sig.close().await;
    tokio::time::timeout(WAIT, hosts.wait_for(|h| !h.contains_key(&host_id)))
        .await
        .unwrap()
        .unwrap();
    let err = phone.connect(sig).await.unwrap_err();
    assert!(matches!(err, ClientError::HostOffline), "{err}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_aborts_when_the_server_names_another_host_key() {
    let server = server().await;
    let host = TestHost::new(&server.url());
    let payload = host.initiate().await;
    // The QR shows a different host key than the one the server will return.
    let other = TestHost::new(&server.url());
    let mut parts: Vec<String> = payload.split('|').map(str::to_owned).collect();
    parts[1] = other.x25519_b64();
    let forged = parts.join("|");
    let dir = tempfile::tempdir().unwrap();
    let phone = support::phone(dir.path());
    let err = phone.pair(&forged).await.unwrap_err();
    assert!(
        matches!(err, ClientError::PairingMismatch("host key")),
        "{err}"
    );
    assert!(phone.pairing().unwrap().is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_code_bad_payload_wrong_secret_and_unpaired_token_are_refused() {
    let server = server().await;
    let host = TestHost::new(&server.url());
    let payload = host.initiate().await;
    let dir = tempfile::tempdir().unwrap();
    let phone = support::phone(dir.path());

    // Token before pairing: the device is unknown.
    assert!(matches!(
        phone.fetch_token().await,
        Err(ClientError::NotPaired)
    ));
    let id = phone.identity().clone();
    let url = server.url();
    let err = tokio::task::spawn_blocking(move || {
        signaling_client::http::fetch_token(
            &id,
            &url,
            signaling_proto::consts::DEFAULT_API_VERSION,
            HMAC,
        )
        .map_err(ClientError::from)
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(
        matches!(&err, ClientError::Http { status: 401, .. }),
        "{err}"
    );

    let mut parts: Vec<String> = payload.split('|').map(str::to_owned).collect();
    parts[0] = if parts[0] == "ZZZZZZ" {
        "YYYYYY".into()
    } else {
        "ZZZZZZ".into()
    };
    let err = phone.pair(&parts.join("|")).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Http { status: 404, .. }),
        "{err}"
    );

    assert!(matches!(
        phone.pair("not a payload").await,
        Err(ClientError::Payload(_))
    ));

    let mut config = PhoneConfig::new(dir.path());
    config.hmac_secret = "wrong-secret".into();
    let wrong = PhoneClient::open(config).unwrap();
    let err = wrong.pair(&payload).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Http { status: 401, error, .. } if error == "invalid client signature"),
        "{err}"
    );
    assert!(wrong.pairing().unwrap().is_none());
    // The code was not consumed by the refused attempts.
    phone.pair(&payload).await.unwrap();
    server.shutdown().await;
}
