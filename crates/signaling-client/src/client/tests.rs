//! Tests of the handle and the driver loop: defaults, `send` without a link,
//! permanent-error texts, a TLS failure retried, and a host sleep (a moved
//! wall clock) replacing the link against the real bundled server.

use std::time::Duration;

use signaling_proto::consts;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::core::*;
use crate::http;

#[test]
fn core_defaults_are_the_proto_constants() {
    assert_eq!(DEFAULT_PRESENCE_INTERVAL, consts::PRESENCE_INTERVAL);
    assert_eq!(MAX_PRESENCE_INTERVAL, consts::MAX_PRESENCE_INTERVAL);
    assert_eq!(DEFAULT_READ_DEADLINE_GRACE, consts::READ_DEADLINE_GRACE);
    assert_eq!(DEFAULT_TOKEN_REFRESH_MARGIN, consts::TOKEN_REFRESH_MARGIN);
    assert_eq!(DEFAULT_TOKEN_LIFETIME, consts::JWT_LIFETIME);
    assert_eq!(DEFAULT_DORMANCY_TIMEOUT, consts::DORMANCY_TIMEOUT);
    assert_eq!(DEFAULT_INITIAL_BACKOFF, consts::INITIAL_BACKOFF);
    assert_eq!(DEFAULT_MAX_BACKOFF, consts::MAX_BACKOFF);
}

#[test]
fn send_fails_at_once_when_not_connected_or_closed() {
    let (client, driver, _incoming) = SignalingClient::new(ClientConfig::new(
        Identity::generate(),
        "http://127.0.0.1:9",
        "h",
    ));
    assert_eq!(
        client.send(Signal::Presence),
        Err(SignalingError::NotConnected)
    );
    client.close();
    assert_eq!(client.send(Signal::Presence), Err(SignalingError::Closed));
    // A closed client's driver ends at once.
    drop(driver);
}

#[tokio::test]
async fn a_driver_closed_before_it_runs_returns_at_once() {
    let (client, driver, mut incoming) = SignalingClient::new(ClientConfig::new(
        Identity::generate(),
        "http://127.0.0.1:9",
        "h",
    ));
    client.close();
    assert_eq!(driver.run(CancellationToken::new()).await, Ok(()));
    // The driver is gone: the receiver ends.
    assert_eq!(incoming.recv().await, None);
}

#[tokio::test]
async fn a_full_receiver_holds_the_driver_back_until_read_or_shutdown() {
    use futures_util::FutureExt as _;
    let (client, driver, mut incoming) = SignalingClient::new(ClientConfig {
        incoming_capacity: 1,
        ..ClientConfig::new(Identity::generate(), "http://127.0.0.1:9", "h")
    });
    let cancel = CancellationToken::new();
    let first = Signal::ConnectRequest {
        target_device_id: "a".into(),
    };
    let second = Signal::ConnectRequest {
        target_device_id: "b".into(),
    };
    // Room for one: delivered at once.
    assert!(
        driver
            .deliver(first.clone(), &cancel)
            .now_or_never()
            .is_some()
    );
    // Full: the driver waits (nothing is dropped) ...
    let mut waiting = Box::pin(driver.deliver(second.clone(), &cancel));
    assert!(waiting.as_mut().now_or_never().is_none());
    // ... until the reader makes room, and the message arrives in order.
    assert_eq!(incoming.recv().await, Some(first));
    assert!(waiting.as_mut().now_or_never().is_some());
    assert_eq!(incoming.recv().await, Some(second));
    // Full again: a shutdown ends the wait (the message is not delivered).
    let third = Signal::Presence;
    assert!(
        driver
            .deliver(third.clone(), &cancel)
            .now_or_never()
            .is_some()
    );
    let mut waiting = Box::pin(driver.deliver(Signal::PresenceAck, &cancel));
    assert!(waiting.as_mut().now_or_never().is_none());
    client.close();
    assert!(waiting.as_mut().now_or_never().is_some());
    assert_eq!(incoming.try_recv(), Ok(third));
    assert!(incoming.try_recv().is_err());
}

#[test]
fn permanent_errors_name_their_cause() {
    let e = SignalingError::permanent_from(401, "invalid client signature", "d").unwrap();
    assert_eq!(
        e.to_string(),
        "the signaling server rejected this agent's request signature (invalid client signature): set the deployment's request-signing secret as MUXLINK_HMAC_SECRET or hmac_secret in config.toml"
    );
    let e = SignalingError::permanent_from(401, "unknown device", "abc").unwrap();
    assert!(e.to_string().contains("does not know this device (abc)"));
    assert_eq!(
        SignalingError::permanent_from(401, "request expired", "d"),
        None
    );
    assert_eq!(
        SignalingError::permanent_from(500, "invalid client signature", "d"),
        None
    );
}

#[tokio::test]
async fn https_server_failing_tls_is_retried_not_a_permanent_stop() {
    use crate::ws::tests::{TLS_HANDSHAKE_RECORD, plain_tcp_server};
    let (addr, mut first_bytes) = plain_tcp_server().await;
    let url = format!("https://{addr}");
    let (_client, driver, _incoming) =
        SignalingClient::new(ClientConfig::new(Identity::generate(), &url, "h"));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(driver.run(cancel.clone()));
    // Two TLS attempts: the first failed handshake was transient, so the
    // client backed off and tried again instead of stopping.
    for _ in 0..2 {
        let first = tokio::time::timeout(Duration::from_secs(20), first_bytes.recv())
            .await
            .unwrap();
        assert_eq!(first, Some(TLS_HANDSHAKE_RECORD));
    }
    assert!(!task.is_finished());
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Ok(()));
}

/// Offset added to the real wall clock by [`slept_wall_clock`].
static SLEPT_SECS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn slept_wall_clock() -> i64 {
    http::unix_now() + SLEPT_SECS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Registers `identity` as a host with the server (pair/initiate).
fn register_host(identity: &Identity, url: &str) {
    use base64::Engine as _;
    use signaling_proto::{
        ChallengeRequest, ChallengeResponse, PairInitiateRequest, PairInitiateResponse,
    };
    let challenge: ChallengeResponse = http::signed_json(
        "POST",
        url,
        "v1",
        "/auth/challenge",
        "",
        None,
        Some(&ChallengeRequest {
            device_id: identity.device_id().to_owned(),
        }),
    )
    .unwrap();
    let _: PairInitiateResponse = http::signed_json(
        "POST",
        url,
        "v1",
        "/auth/pair/initiate",
        "",
        None,
        Some(&PairInitiateRequest {
            device_id: identity.device_id().to_owned(),
            ed25519_public_key: identity.public_key_b64(),
            x25519_public_key: base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
            name: Some("h".into()),
            signature: identity.sign_challenge(&challenge.nonce),
            nonce: challenge.nonce,
        }),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_jump_replaces_the_link_at_the_next_wake_up() {
    use signaling_server::{RateLimits, Server, ServerConfig};
    let server = Server::start(ServerConfig {
        rate_limits: RateLimits::disabled(),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let identity = Identity::generate();
    let url = server.url();
    tokio::task::spawn_blocking({
        let (identity, url) = (identity.clone(), url.clone());
        move || register_host(&identity, &url)
    })
    .await
    .unwrap();
    // Presence every 200 ms; the read deadline (an hour) is out of reach of
    // the test's bound, so only the clock check can replace the link in time.
    let (client, mut driver, _incoming) = SignalingClient::new(ClientConfig {
        core: crate::core::CoreConfig {
            presence_interval: Duration::from_millis(200),
            read_deadline_grace: Duration::from_secs(3600),
            ..crate::core::CoreConfig::default()
        },
        ..ClientConfig::new(identity, &url, "h")
    });
    driver.wall_clock = slept_wall_clock;
    let cancel = CancellationToken::new();
    let task = tokio::spawn(driver.run(cancel.clone()));
    let wait = Duration::from_secs(20);
    let mut state = client.subscribe_state();
    tokio::time::timeout(wait, state.wait_for(|s| *s == ConnectionState::Connected))
        .await
        .unwrap()
        .unwrap();
    let mut changes = client.state_changes();

    // The host "sleeps" two hours: only the wall clock moves.
    SLEPT_SECS.store(2 * 3600, std::sync::atomic::Ordering::Relaxed);
    // At the next wake-up the link is replaced at once: a token exchange
    // (the old one expired by the wall clock), a new socket, no backoff.
    let seen = tokio::time::timeout(wait, async {
        let mut seen = Vec::new();
        loop {
            let s = changes.recv().await.unwrap();
            seen.push(s);
            if s == ConnectionState::Connected {
                return seen;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        seen,
        [
            ConnectionState::FetchingToken,
            ConnectionState::Connecting,
            ConnectionState::Authenticating,
            ConnectionState::Connected
        ]
    );

    cancel.cancel();
    assert_eq!(
        tokio::time::timeout(wait, task).await.unwrap().unwrap(),
        Ok(())
    );
    server.shutdown().await;
}
