//! The signaling client against the real bundled server: connect/auth/presence,
//! restart with backoff, JWT refresh, permanent errors (an API version the
//! server does not serve among them), dormancy and wake-up.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use signaling_client::http::unix_now;
use signaling_client::{
    ConnectionState, Identity, Signal, SignalingClient, SignalingError, SignalingMessage,
};
use tokio::sync::broadcast;

const MS: Duration = Duration::from_millis(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_authenticates_and_keeps_presence() {
    let server = start_server(server_config(None, None)).await;
    let identity = Identity::generate();
    register_host(&identity, &server.url()).await;
    let mut run = spawn_client(identity, &server.url(), HMAC, fast_config());
    wait_state(&run.client, |s| *s == ConnectionState::Connected).await;
    assert!(run.client.jwt().is_some());
    let mut changes = run.client.state_changes();

    // Presence + ping keep the link alive past one read deadline (1.4 s).
    for _ in 0..10 {
        wait_presence_ack(&mut run.messages).await;
    }
    assert!(
        matches!(
            changes.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ),
        "the link dropped while presence was running"
    );
    assert_eq!(run.client.state(), ConnectionState::Connected);

    // send() reaches the server: a connect_request for an unpaired device is refused.
    let request = Signal::ConnectRequest {
        target_device_id: "0".repeat(32),
    };
    run.client.send(request).unwrap();
    let answer = wait_signal(&mut run.messages, "connection_rejected", |s| {
        matches!(s, Signal::ConnectionRejected { .. })
    })
    .await;
    assert!(
        matches!(&answer, Signal::ConnectionRejected { reason, .. } if reason == "not_paired"),
        "{answer:?}"
    );

    run.stop().await.unwrap();
    server.shutdown().await;
}

/// Collects `Backoff` waits from `changes` until `n` are seen.
async fn backoff_waits(
    changes: &mut broadcast::Receiver<ConnectionState>,
    n: usize,
) -> Vec<Duration> {
    let mut waits = Vec::new();
    tokio::time::timeout(WAIT, async {
        while waits.len() < n {
            if let ConnectionState::Backoff { wait } = changes.recv().await.unwrap() {
                waits.push(wait);
            }
        }
    })
    .await
    .expect("backoff waits");
    waits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_on_the_backoff_schedule_after_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("signaling.db");
    let mut server = start_server(server_config(Some(&db), None)).await;
    let addr = server.local_addr();
    let identity = Identity::generate();
    register_host(&identity, &server.url()).await;
    let config = signaling_client::core::CoreConfig {
        initial_backoff: 20 * MS,
        max_backoff: 160 * MS,
        ..fast_config()
    };
    let run = spawn_client(identity, &server.url(), HMAC, config);
    wait_state(&run.client, |s| *s == ConnectionState::Connected).await;

    // Twice: the second round also proves the backoff was reset by the
    // session that authenticated in between.
    for _round in 0..2 {
        let mut changes = run.client.state_changes();
        server.shutdown().await;
        let waits = backoff_waits(&mut changes, 5).await;
        // The session ended (initial wait), then every refused attempt doubles
        // the wait up to the maximum.
        assert_eq!(waits, [20 * MS, 40 * MS, 80 * MS, 160 * MS, 160 * MS]);
        server = start_server(server_config(Some(&db), Some(addr))).await;
        wait_state(&run.client, |s| *s == ConnectionState::Connected).await;
    }
    run.stop().await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_refresh_reauthenticates_the_open_socket_and_the_phone_sees_no_churn() {
    let mut config = server_config(None, None);
    config.jwt_lifetime = Duration::from_secs(4);
    let server = start_server(config).await;
    let host = Identity::generate();
    let code = register_host(&host, &server.url()).await;
    let phone_id = pair_phone(&code, &server.url()).await;
    let mut phone = PhoneSocket::open(&phone_id, &server.url()).await;
    let mut run = spawn_client(
        host.clone(),
        &server.url(),
        HMAC,
        signaling_client::core::CoreConfig {
            token_check_interval: 100 * MS,
            token_refresh_margin: Duration::from_secs(2),
            ..fast_config()
        },
    );
    wait_state(&run.client, |s| *s == ConnectionState::Connected).await;
    assert_eq!(phone.next().await.kind, "host_online");
    let mut changes = run.client.state_changes();
    let first = run.client.jwt().unwrap();
    let first_exp = signaling_proto::jwt_expiry_unverified(&first).unwrap();

    // Tokens live 4 s and are refreshed 2 s before `exp`: wait for two
    // refreshes, sending all the while. Not one send fails (no gap).
    let mut tokens = vec![first];
    let mut tick = tokio::time::interval(20 * MS);
    tokio::time::timeout(WAIT, async {
        while tokens.len() < 3 {
            tick.tick().await;
            run.client.send(Signal::Presence).unwrap();
            let jwt = run.client.jwt().unwrap();
            if tokens.last() != Some(&jwt) {
                tokens.push(jwt);
            }
        }
    })
    .await
    .expect("two JWT refreshes");
    // The socket outlived the token it first authenticated with, and never
    // left Connected: no close, no dial.
    assert!(
        unix_now() >= first_exp,
        "the first token has not expired yet"
    );
    assert!(
        matches!(
            changes.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ),
        "the link was replaced during the refresh"
    );
    assert_eq!(run.client.state(), ConnectionState::Connected);

    // The phone watching presence heard nothing: no host_offline / host_online.
    let heard = phone.drain_until_presence_ack().await;
    assert!(heard.is_empty(), "the phone saw presence churn: {heard:?}");
    // And the host's socket, authenticated with the newest token, still
    // receives what the phone relays.
    phone
        .send(SignalingMessage {
            target_device_id: host.device_id().to_owned(),
            ..SignalingMessage::new("connect_request")
        })
        .await;
    let relayed = wait_signal(&mut run.messages, "connect_request", |s| {
        matches!(s, Signal::ConnectRequest { .. })
    })
    .await;
    assert_eq!(
        relayed,
        Signal::ConnectRequest {
            target_device_id: phone_id.device_id().to_owned()
        }
    );

    run.stop().await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_secret_mismatch_stops_run_with_a_permanent_error() {
    let server = start_server(server_config(None, None)).await;
    let identity = Identity::generate();
    register_host(&identity, &server.url()).await;
    let run = spawn_client(identity, &server.url(), "not-the-secret", fast_config());
    let result = tokio::time::timeout(WAIT, run.task).await.unwrap().unwrap();
    let error = result.unwrap_err();
    assert!(
        matches!(&error, SignalingError::SignatureRejected { detail } if detail == "invalid client signature"),
        "{error:?}"
    );
    assert!(error.to_string().contains("MUXLINK_HMAC_SECRET"));
    assert_eq!(run.client.state(), ConnectionState::Stopped);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_device_stops_run_with_a_permanent_error() {
    let server = start_server(server_config(None, None)).await;
    let identity = Identity::generate(); // never registered
    let device_id = identity.device_id().to_owned();
    let run = spawn_client(identity, &server.url(), HMAC, fast_config());
    let result = tokio::time::timeout(WAIT, run.task).await.unwrap().unwrap();
    assert_eq!(result, Err(SignalingError::UnknownDevice { device_id }));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_version_the_server_does_not_serve_stops_run_in_words() {
    let server = start_server(server_config(None, None)).await;
    let identity = Identity::generate();
    register_host(&identity, &server.url()).await;
    let config = signaling_client::ClientConfig {
        api_version: "v2".into(),
        ..client_config(identity.clone(), &server.url(), HMAC, fast_config())
    };
    let (client, driver, _incoming) = SignalingClient::new(config);
    let cancel = tokio_util::sync::CancellationToken::new();
    let result = tokio::time::timeout(WAIT, driver.run(cancel))
        .await
        .unwrap();
    assert_eq!(client.state(), ConnectionState::Stopped);
    let base = format!("{}/v2", server.url());
    assert_eq!(
        result,
        Err(SignalingError::ApiNotServed {
            base: base.clone(),
            version: "v2".into(),
        })
    );
    assert_eq!(
        result.unwrap_err().to_string(),
        format!("the server does not serve API v2 at {base}: check api_version")
    );

    // The socket alone: a 404 on the upgrade is the same permanent error.
    let target =
        signaling_client::ws::DialTarget::new(&server.url(), "v3", HMAC, identity.device_id());
    match signaling_client::ws::dial(&target).await {
        Err(signaling_client::core::Failure::Permanent(SignalingError::ApiNotServed {
            version,
            ..
        })) => assert_eq!(version, "v3"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a v3 socket opened on a v1 server"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_outage_goes_dormant_and_activity_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("signaling.db");
    let server = start_server(server_config(Some(&db), None)).await;
    let addr = server.local_addr();
    let identity = Identity::generate();
    register_host(&identity, &server.url()).await;
    let run = spawn_client(
        identity,
        &server.url(),
        HMAC,
        signaling_client::core::CoreConfig {
            dormancy_timeout: Duration::from_millis(500),
            ..fast_config()
        },
    );
    wait_state(&run.client, |s| *s == ConnectionState::Connected).await;
    server.shutdown().await;
    wait_state(&run.client, |s| *s == ConnectionState::Dormant).await;

    // The server is back, but a dormant client does not look: it needs a wake-up.
    let server = start_server(server_config(Some(&db), Some(addr))).await;
    assert_eq!(run.client.state(), ConnectionState::Dormant);
    run.client.signal_activity();
    wait_state(&run.client, |s| *s == ConnectionState::Connected).await;

    run.stop().await.unwrap();
    server.shutdown().await;
}
