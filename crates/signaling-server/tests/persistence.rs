//! Restarting the server on the same SQLite file keeps devices and pairings.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use signaling_proto::SignalingMessage;
use signaling_server::ServerConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_pairings() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        database: Some(dir.path().join("signaling.db")),
        ..test_config()
    };

    let ts = TestServer::start(config.clone()).await;
    let (host, _, mobile, _) = paired_pair(&ts).await;
    ts.server.shutdown().await;

    // Same file, new process state (and a new port).
    let ts = TestServer::start(config).await;
    let http = ts.http();
    let (ht, mt) = (http.token(&host).await, http.token(&mobile).await);
    let mut agent = Ws::authed(&ts, &ht, "laptop").await;
    let mut phone = Ws::authed(&ts, &mt, "phone").await;
    assert_eq!(phone.msg().await.kind, "host_online");
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
    ts.server.shutdown().await;
}
