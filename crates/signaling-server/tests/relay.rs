//! Relay between paired devices: presence notices, connect_request, SDP and
//! ICE forwarding with sender-id rewriting and field filtering; refusal for
//! unpaired devices and offline hosts.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use signaling_proto::SignalingMessage;

fn msg(kind: &str, target: &str) -> SignalingMessage {
    SignalingMessage {
        target_device_id: target.to_owned(),
        ..SignalingMessage::new(kind)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paired_devices_exchange_signals() {
    let ts = TestServer::start(test_config()).await;
    let (host, ht, mobile, mt) = paired_pair(&ts).await;

    let mut phone = Ws::authed(&ts, &mt, "phone").await;
    let mut agent = Ws::authed(&ts, &ht, "laptop").await;
    let online = phone.msg().await;
    assert_eq!(
        online,
        SignalingMessage {
            device_id: host.id.clone(),
            name: "laptop".into(),
            ..SignalingMessage::new("host_online")
        }
    );

    phone.send(&msg("connect_request", &host.id)).await;
    assert_eq!(agent.msg().await, msg("connect_request", &mobile.id));

    // Extra fields are stripped; the target becomes the sender.
    let offer = SignalingMessage {
        sdp: "v=0 offer".into(),
        token: "secret".into(),
        name: "x".into(),
        ..msg("sdp_offer", &mobile.id)
    };
    agent.send(&offer).await;
    assert_eq!(
        phone.msg().await,
        SignalingMessage {
            sdp: "v=0 offer".into(),
            ..msg("sdp_offer", &host.id)
        }
    );

    let answer = SignalingMessage {
        sdp: "v=0 answer".into(),
        ..msg("sdp_answer", &host.id)
    };
    phone.send(&answer).await;
    assert_eq!(
        agent.msg().await,
        SignalingMessage {
            sdp: "v=0 answer".into(),
            ..msg("sdp_answer", &mobile.id)
        }
    );

    let ice = SignalingMessage {
        candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
        sdp_mid: "0".into(),
        sdp_m_line_index: Some(0),
        device_id: "spoof".into(),
        ..msg("ice_candidate", &host.id)
    };
    phone.send(&ice).await;
    let got = agent.msg().await;
    assert_eq!(
        got,
        SignalingMessage {
            device_id: String::new(),
            target_device_id: mobile.id.clone(),
            ..ice
        }
    );
    assert!(got.to_json().contains(r#""sdpMLineIndex":0"#));

    let reject = SignalingMessage {
        reason: "already_connected".into(),
        ..msg("connection_rejected", &mobile.id)
    };
    agent.send(&reject).await;
    assert_eq!(
        phone.msg().await,
        SignalingMessage {
            reason: "already_connected".into(),
            ..msg("connection_rejected", &host.id)
        }
    );

    // Host leaves: the phone hears host_offline; connect_request now says so too.
    drop(agent);
    assert_eq!(
        phone.msg().await,
        SignalingMessage {
            device_id: host.id.clone(),
            ..SignalingMessage::new("host_offline")
        }
    );
    phone.send(&msg("connect_request", &host.id)).await;
    assert_eq!(
        phone.msg().await,
        SignalingMessage {
            device_id: host.id.clone(),
            ..SignalingMessage::new("host_offline")
        }
    );

    // A phone connecting while its host is online gets the snapshot.
    let mut agent = Ws::authed(&ts, &ht, "laptop").await;
    assert_eq!(phone.msg().await.kind, "host_online");
    let mut phone2 = Ws::authed(&ts, &mt, "phone").await;
    assert_eq!(phone2.msg().await, online);
    agent.ping().await;
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaired_devices_are_refused() {
    let ts = TestServer::start(test_config()).await;
    let (host, ht, _mobile, _) = paired_pair(&ts).await;
    let (other_host, oht, intruder, it) = paired_pair(&ts).await;

    let mut agent = Ws::authed(&ts, &ht, "laptop").await;
    let mut other_agent = Ws::authed(&ts, &oht, "other").await;
    let mut evil = Ws::authed(&ts, &it, "evil").await;
    assert_eq!(evil.msg().await.kind, "host_online"); // its own host
    // It authenticated under a new name, which its own host hears about.
    assert_eq!(
        other_agent.msg().await,
        SignalingMessage {
            device_id: intruder.id.clone(),
            name: "evil".into(),
            ..SignalingMessage::new("mobile_name_updated")
        }
    );

    evil.send(&msg("connect_request", &host.id)).await;
    assert_eq!(
        evil.msg().await,
        SignalingMessage {
            reason: "not_paired".into(),
            ..msg("connection_rejected", &host.id)
        }
    );
    // Relays to a device it is not paired with are dropped silently.
    evil.send(&SignalingMessage {
        sdp: "x".into(),
        ..msg("sdp_offer", &host.id)
    })
    .await;
    evil.send(&SignalingMessage {
        candidate: "c".into(),
        ..msg("ice_candidate", &host.id)
    })
    .await;
    evil.ping().await;
    // A host cannot reach another host either.
    other_agent.send(&msg("sdp_offer", &host.id)).await;
    other_agent.ping().await;
    // Nothing arrived at the victim host: its next message is its own presence ack.
    agent.ping().await;
    let _ = (other_host, intruder);
    ts.server.shutdown().await;
}
