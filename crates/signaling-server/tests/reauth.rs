//! A second `auth` on an authenticated socket (the host's JWT refresh): the
//! same device is re-authenticated in place with no presence change; another
//! device's token closes the socket (1008); a bad token is refused like a
//! first one (4001).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use signaling_proto::SignalingMessage;

fn auth_ok() -> Got {
    Got::Msg(SignalingMessage {
        status: "ok".into(),
        ..SignalingMessage::new("auth")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_device_reauth_keeps_the_socket_without_presence_churn() {
    let ts = TestServer::start(test_config()).await;
    let (host, ht, mobile, mt) = paired_pair(&ts).await;
    let mut phone = Ws::authed(&ts, &mt, "phone").await;
    let mut agent = Ws::authed(&ts, &ht, "laptop").await;
    assert_eq!(phone.msg().await.kind, "host_online");

    // A token issued later (the refresh) on the same socket.
    ts.clock.advance(120);
    let fresh = ts.http().token(&host).await;
    assert_ne!(fresh, ht);
    assert_eq!(agent.auth(&fresh, "laptop").await, auth_ok());
    // Twice is as good as once.
    assert_eq!(agent.auth(&fresh, "laptop").await, auth_ok());

    // The phone heard nothing: its next message is the reply to its own
    // presence, not host_offline / host_online.
    phone.ping().await;
    // The host socket still relays both ways.
    phone
        .send(&SignalingMessage {
            target_device_id: host.id.clone(),
            ..SignalingMessage::new("connect_request")
        })
        .await;
    assert_eq!(
        agent.msg().await,
        SignalingMessage {
            target_device_id: mobile.id.clone(),
            ..SignalingMessage::new("connect_request")
        }
    );
    agent.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauth_with_another_devices_token_closes_with_a_policy_error() {
    let ts = TestServer::start(test_config()).await;
    let (_host, ht, _mobile, mt) = paired_pair(&ts).await;
    let mut phone = Ws::authed(&ts, &mt, "phone").await;
    let mut agent = Ws::authed(&ts, &ht, "laptop").await;
    assert_eq!(phone.msg().await.kind, "host_online");

    assert_eq!(
        agent.auth(&mt, "laptop").await,
        Got::Msg(SignalingMessage::error("Token is for another device"))
    );
    assert_eq!(agent.closed().await, Some(1008));
    // The host's only socket is gone: the phone is told so.
    assert_eq!(phone.msg().await.kind, "host_offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauth_with_an_invalid_or_expired_token_is_refused_like_a_first_auth() {
    let ts = TestServer::start(test_config()).await;
    let (_host, ht, _mobile, _mt) = paired_pair(&ts).await;

    let mut agent = Ws::authed(&ts, &ht, "laptop").await;
    assert_eq!(
        agent.auth("not-a-jwt", "laptop").await,
        Got::Msg(SignalingMessage::error("Invalid token"))
    );
    assert_eq!(agent.closed().await, Some(4001));

    // A token past its `exp` is no refresh either.
    let mut agent = Ws::authed(&ts, &ht, "laptop").await;
    ts.clock.advance(2 * 3600);
    assert_eq!(
        agent.auth(&ht, "laptop").await,
        Got::Msg(SignalingMessage::error("Invalid token"))
    );
    assert_eq!(agent.closed().await, Some(4001));
}
