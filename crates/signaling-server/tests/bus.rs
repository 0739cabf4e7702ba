//! Several server instances routing over NATS (`--bus`): three in-process
//! servers share one PostgreSQL database and one `nats-server` (both private
//! to the test), with a device's socket on one instance and its peer's on
//! another. Relays, presence, `pair_complete`, unpairing and "offline" work
//! across instances; with the bus killed each instance still relays between
//! its own sockets and reports not ready, and once NATS is back the
//! instances reach each other again.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt as _;
use serde_json::json;
use signaling_proto::SignalingMessage;
use signaling_server::ServerConfig;
use test_support::{PrivateNats, PrivatePostgres, TcpFaultProxy, wait_until};
use tokio_tungstenite::tungstenite::Message;

/// How long the client may take to notice NATS came back and redial (its
/// backoff tops out at 4 s).
const RECONNECT: Duration = Duration::from_secs(20);

async fn readyz(ts: &TestServer) -> u16 {
    ts.http()
        .send_raw("GET", "/readyz", None, Vec::new())
        .await
        .status
}

fn to(kind: &str, target: &str) -> SignalingMessage {
    SignalingMessage {
        target_device_id: target.to_owned(),
        ..SignalingMessage::new(kind)
    }
}

/// `count` instances on one database and one bus, or `None` (skipped)
/// when PostgreSQL or nats-server is not installed.
async fn instances(count: usize) -> Option<(PrivatePostgres, PrivateNats, Vec<TestServer>)> {
    let pg = PrivatePostgres::start()?;
    let nats = PrivateNats::start()?;
    let url = pg.create_database("signaling").unwrap();
    let config = ServerConfig {
        database: Some(url.into()),
        bus: Some(nats.url()),
        ..test_config()
    };
    let mut servers = Vec::new();
    for _ in 0..count {
        let ts = TestServer::start(config.clone()).await;
        assert!(
            wait_until(RECONNECT, || async { readyz(&ts).await == 200 }).await,
            "an instance never became ready"
        );
        servers.push(ts);
    }
    Some((pg, nats, servers))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_presence_and_pairing_across_instances() {
    let Some((_pg, _nats, servers)) = instances(3).await else {
        return;
    };
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let (host, mobile) = (DeviceKeys::random(), DeviceKeys::random());

    // The host waits on A; the phone pairs through B: `pair_complete`
    // reaches the host on A.
    let code = b.http().initiate(&host, "laptop").await;
    let ht = a.http().token(&host).await;
    let mut agent = Ws::authed(a, &ht, "laptop").await;
    let r = b.http().complete_resp(&code, &mobile, "phone").await;
    assert_eq!(r.status, 200, "{r:?}");
    let done = agent.msg().await;
    assert_eq!(done.kind, "pair_complete");
    assert_eq!(done.mobile_device_id, mobile.id);
    assert_eq!(done.mobile_confirmation, confirmation_of(&mobile));

    // The phone on B sees the host on A online in its snapshot (a probe
    // over the bus), and its relays reach the host and back.
    let mt = b.http().token(&mobile).await;
    let mut phone = Ws::authed(b, &mt, "phone").await;
    let online = phone.msg().await;
    assert_eq!(
        (online.kind.as_str(), online.device_id.as_str()),
        ("host_online", host.id.as_str())
    );
    phone.send(&to("connect_request", &host.id)).await;
    let req = agent.msg().await;
    assert_eq!(
        (req.kind.as_str(), req.target_device_id.as_str()),
        ("connect_request", mobile.id.as_str())
    );
    agent
        .send(&SignalingMessage {
            sdp: "v=0 offer".into(),
            ..to("sdp_offer", &mobile.id)
        })
        .await;
    let offer = phone.msg().await;
    assert_eq!(
        (offer.kind.as_str(), offer.sdp.as_str()),
        ("sdp_offer", "v=0 offer")
    );
    assert_eq!(offer.target_device_id, host.id);
    phone
        .send(&SignalingMessage {
            sdp: "v=0 answer".into(),
            ..to("sdp_answer", &host.id)
        })
        .await;
    assert_eq!(agent.msg().await.sdp, "v=0 answer");
    phone
        .send(&SignalingMessage {
            candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
            sdp_mid: "0".into(),
            ..to("ice_candidate", &host.id)
        })
        .await;
    assert_eq!(agent.msg().await.kind, "ice_candidate");
    agent
        .send(&SignalingMessage {
            reason: "busy".into(),
            ..to("connection_rejected", &mobile.id)
        })
        .await;
    assert_eq!(phone.msg().await.reason, "busy");

    // The host leaves A: the phone on B hears `host_offline`, and a
    // `connect_request` now finds nobody (no responders on the bus).
    drop(agent);
    let offline = phone.msg().await;
    assert_eq!(
        (offline.kind.as_str(), offline.device_id.as_str()),
        ("host_offline", host.id.as_str())
    );
    phone.send(&to("connect_request", &host.id)).await;
    let offline = phone.msg().await;
    assert_eq!(
        (offline.kind.as_str(), offline.device_id.as_str()),
        ("host_offline", host.id.as_str())
    );

    // The host comes back on C: `host_online` reaches the phone on B; a
    // phone name change on A reaches the host on C.
    let ht = c.http().token(&host).await;
    let mut agent = Ws::authed(c, &ht, "laptop").await;
    assert_eq!(phone.msg().await.kind, "host_online");
    let mt = a.http().token(&mobile).await;
    let mut phone_a = Ws::authed(a, &mt, "renamed phone").await;
    assert_eq!(phone_a.msg().await.kind, "host_online");
    let update = agent.msg().await;
    assert_eq!(
        (update.kind.as_str(), update.name.as_str()),
        ("mobile_name_updated", "renamed phone")
    );

    // The phone has sockets on A and B: a message for it reaches both.
    agent.send(&to("sdp_offer", &mobile.id)).await;
    assert_eq!(phone.msg().await.kind, "sdp_offer");
    assert_eq!(phone_a.msg().await.kind, "sdp_offer");

    // The host unpairs through C: both phone sockets hear it and are
    // closed (the phone, paired with nobody, is deleted) on A and on B.
    let r = c
        .http()
        .send("DELETE", "/auth/pairing", None, Some(&ht), Sign::Now)
        .await;
    assert_eq!(r.body, json!({ "removed": true }));
    for p in [&mut phone, &mut phone_a] {
        let notice = p.msg().await;
        assert_eq!(
            (notice.kind.as_str(), notice.reason.as_str()),
            ("device_unpaired", "host_unpaired")
        );
        assert_eq!(p.closed().await, Some(4004));
    }
    agent.ping().await;
    for ts in servers {
        ts.server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_bus_an_instance_serves_its_own_sockets_and_is_not_ready() {
    let Some((_pg, mut nats, servers)) = instances(2).await else {
        return;
    };
    let (a, b) = (&servers[0], &servers[1]);
    let (host, ht, mobile, mt) = paired_pair(a).await;
    let mut agent = Ws::authed(a, &ht, "laptop").await;
    let mut phone = Ws::authed(b, &mt, "phone").await;
    assert_eq!(phone.msg().await.kind, "host_online");
    phone.send(&to("connect_request", &host.id)).await;
    assert_eq!(agent.msg().await.kind, "connect_request");
    // The phone's instance has its answer: a request still in flight when
    // the bus dies ends as "not delivered" (host_offline) after its timeout.
    phone.ping().await;

    nats.kill();
    for ts in [a, b] {
        assert!(
            wait_until(RECONNECT, || async { readyz(ts).await == 503 }).await,
            "an instance stayed ready without its bus"
        );
    }
    let ready = ts_get(a, "/readyz").await;
    assert_eq!(ready.body["error"], "bus not connected");
    assert_eq!(ts_get(a, "/healthz").await.status, 200);

    // Sockets on the same instance still relay to each other.
    let (host2, ht2, mobile2, mt2) = paired_pair(a).await;
    let mut agent2 = Ws::authed(a, &ht2, "laptop 2").await;
    let mut phone2 = Ws::authed(a, &mt2, "phone").await;
    assert_eq!(phone2.msg().await.kind, "host_online");
    phone2.send(&to("connect_request", &host2.id)).await;
    assert_eq!(agent2.msg().await.target_device_id, mobile2.id);

    // Across instances, the phone learns at once that it cannot reach the host.
    phone.send(&to("connect_request", &host.id)).await;
    assert_eq!(phone.msg().await.kind, "host_offline");

    // NATS returns: the clients redial and restore their subscriptions.
    nats.restart().unwrap();
    for ts in [a, b] {
        assert!(
            wait_until(RECONNECT, || async { readyz(ts).await == 200 }).await,
            "an instance did not get its bus back"
        );
    }
    phone.send(&to("connect_request", &host.id)).await;
    let req = agent.msg().await;
    assert_eq!(
        (req.kind.as_str(), req.target_device_id.as_str()),
        ("connect_request", mobile.id.as_str())
    );
    agent.send(&to("sdp_offer", &mobile.id)).await;
    assert_eq!(phone.msg().await.kind, "sdp_offer");

    // A host that authenticated on A while the bus was down is reachable
    // from B now: its subscription waited in the client for the bus.
    let mut phone2_b = Ws::authed(b, &mt2, "phone").await;
    assert_eq!(phone2_b.msg().await.kind, "host_online");
    phone2_b.send(&to("connect_request", &host2.id)).await;
    assert_eq!(agent2.msg().await.target_device_id, mobile2.id);
    for ts in servers {
        ts.server.shutdown().await;
    }
}

async fn ts_get(ts: &TestServer, path: &str) -> Resp {
    ts.http().send_raw("GET", path, None, Vec::new()).await
}

/// The next text message on `ws` within `limit` (longer than [`WAIT`]: the
/// presence audit takes several rounds).
async fn msg_within(ws: &mut Ws, limit: Duration) -> SignalingMessage {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.stream.next())
            .await
            .expect("timed out waiting for a message");
        match frame {
            Some(Ok(Message::Text(t))) => return SignalingMessage::parse(t.as_str()).unwrap(),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => panic!("socket closed"),
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_elsewhere_hear_when_an_instance_vanishes_from_the_bus_and_returns() {
    let (Some(pg), Some(nats)) = (PrivatePostgres::start(), PrivateNats::start()) else {
        return;
    };
    // Instance A reaches NATS through a proxy the test can cut: to the
    // others A is then gone as if it had died (its subscriptions vanish,
    // it says nothing).
    let link = TcpFaultProxy::start(([127, 0, 0, 1], nats.port()).into())
        .await
        .unwrap();
    let url = pg.create_database("signaling").unwrap();
    let config = |bus: String| ServerConfig {
        database: Some(url.clone().into()),
        bus: Some(bus),
        ..test_config()
    };
    let a = TestServer::start(config(format!("nats://{}", link.addr()))).await;
    let b = TestServer::start(config(nats.url())).await;
    for ts in [&a, &b] {
        assert!(wait_until(RECONNECT, || async { readyz(ts).await == 200 }).await);
    }
    let (host, ht, _, mt) = paired_pair(&a).await;
    let _agent = Ws::authed(&a, &ht, "host").await;
    let mut phone = Ws::authed(&b, &mt, "phone").await;
    assert_eq!(phone.msg().await.kind, "host_online");

    link.refuse_new(true);
    link.cut();
    let started = std::time::Instant::now();
    let gone = msg_within(&mut phone, Duration::from_secs(40)).await;
    assert_eq!(
        (gone.kind.as_str(), gone.device_id.as_str()),
        ("host_offline", host.id.as_str())
    );
    eprintln!("host_offline {:?} after the cut", started.elapsed());

    // A gets its bus back: the host, still connected to A, is online again.
    link.refuse_new(false);
    let started = std::time::Instant::now();
    let back = msg_within(&mut phone, Duration::from_secs(40)).await;
    assert_eq!(
        (back.kind.as_str(), back.device_id.as_str()),
        ("host_online", host.id.as_str())
    );
    assert_eq!(back.name, "host");
    eprintln!(
        "host_online {:?} after the link returned",
        started.elapsed()
    );
    a.server.shutdown().await;
    b.server.shutdown().await;
}
