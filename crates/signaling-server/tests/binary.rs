//! The `muxlink-signaling-server` binary: flags, env and TOML file are
//! honoured, it prints its address, serves, and exits cleanly on SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(
        &file,
        "api_version = \"api\"\nhmac_secret = \"from-file\"\n",
    )
    .unwrap();
    let db = dir.path().join("s.db");
    let proc = ServerProcess::spawn(
        &[
            "--config",
            file.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
            "--database",
            db.to_str().unwrap(),
        ],
        // Env overrides the file.
        &[("MUXLINK_SERVER_HMAC_SECRET", "from-env")],
    );
    assert!(proc.url.starts_with("http://127.0.0.1:"), "{}", proc.url);
    let clock = signaling_server::Clock::system();
    let http = Http {
        url: proc.url.clone(),
        version: "api".into(),
        hmac: "from-env".into(),
        clock: clock.clone(),
        ca: None,
    };
    let r = http
        .send("GET", "/health", None, None, Sign::Unsigned)
        .await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ok")));
    let id = DeviceKeys::random().id;
    assert_eq!(
        http.post("/auth/challenge", json!({ "deviceId": id }))
            .await
            .status,
        200
    );
    let wrong = Http {
        hmac: "from-file".into(),
        ..http.clone()
    };
    assert_eq!(
        wrong
            .post("/auth/challenge", json!({ "deviceId": id }))
            .await
            .status,
        401
    );

    let mut ws = Ws::connect(&http, Sign::Now).await.unwrap();
    let status = tokio::task::spawn_blocking(move || proc.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    // Open sockets were told the server is going away.
    assert_eq!(ws.closed().await, Some(1001));
    assert!(db.exists());
}
