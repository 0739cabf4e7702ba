//! The real server on PostgreSQL: two instances share one database (a
//! private cluster the test starts), so a pairing made through one is known
//! to the other, and `/readyz` says an instance is not ready once its
//! database is gone while `/healthz` still answers.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use signaling_proto::SignalingMessage;
use signaling_server::ServerConfig;
use test_support::PrivatePostgres;

async fn get(ts: &TestServer, path: &str) -> Resp {
    ts.http().send_raw("GET", path, None, Vec::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_devices_and_pairings_and_report_readiness() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let url = pg.create_database("signaling").unwrap();
    let config = ServerConfig {
        database: Some(url.into()),
        ..test_config()
    };
    let a = TestServer::start(config.clone()).await;
    let b = TestServer::start(config).await;
    for ts in [&a, &b] {
        assert_eq!(get(ts, "/healthz").await.status, 200);
        let ready = get(ts, "/readyz").await;
        assert_eq!(ready.status, 200, "{:?}", ready.body);
        assert_eq!(ready.body["store"], "postgres");
    }

    // Paired through instance A; instance B knows both devices and the pairing.
    let (host, _, mobile, _) = paired_pair(&a).await;
    let http = b.http();
    let (ht, mt) = (http.token(&host).await, http.token(&mobile).await);
    let mut agent = Ws::authed(&b, &ht, "laptop").await;
    let mut phone = Ws::authed(&b, &mt, "phone").await;
    assert_eq!(phone.msg().await.kind, "host_online");
    phone
        .send(&SignalingMessage {
            target_device_id: host.id.clone(),
            ..SignalingMessage::new("connect_request")
        })
        .await;
    assert_eq!(agent.msg().await.kind, "connect_request");

    // The database goes away: the process is up, but not ready.
    drop(pg);
    assert_eq!(get(&a, "/healthz").await.status, 200);
    let ready = get(&a, "/readyz").await;
    assert_eq!(ready.status, 503, "{:?}", ready.body);
    assert_eq!(ready.body["status"], "not ready");
    a.server.shutdown().await;
    b.server.shutdown().await;
}

#[tokio::test]
async fn an_sqlite_server_is_ready() {
    let ts = TestServer::start(test_config()).await;
    let ready = get(&ts, "/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["store"], "sqlite");
    assert_eq!(get(&ts, "/healthz").await.body["status"], "ok");
    ts.server.shutdown().await;
}
