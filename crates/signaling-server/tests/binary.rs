//! The `muxlink-signaling-server` binary: flags, env and TOML file are
//! honoured (CORS origins too: a repeated flag, a comma-separated env list, a
//! TOML array), it prints its address, serves, and exits cleanly on SIGTERM;
//! a malformed CORS origin stops it with one line.
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

/// Which of `origins` the server at `url` answers a preflight for.
async fn cors_allowed(url: &str, origins: &[&str]) -> Vec<String> {
    let http = Http {
        url: url.to_owned(),
        version: "v1".into(),
        hmac: String::new(),
        clock: signaling_server::Clock::system(),
        ca: None,
    };
    let mut allowed = vec![];
    for origin in origins {
        let r = http
            .send_raw(
                "OPTIONS",
                "/v1/auth/challenge",
                None,
                vec![
                    ("origin".into(), (*origin).into()),
                    ("access-control-request-method".into(), "POST".into()),
                ],
            )
            .await;
        if let Some(o) = r.header("access-control-allow-origin") {
            assert_eq!(o, *origin);
            allowed.push(o.to_owned());
        }
    }
    allowed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_origins_from_flags_env_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, "cors_origins = [\"https://file.example\"]\n").unwrap();
    let all = [
        "https://file.example",
        "https://a.example",
        "https://b.example",
        "https://flag.example",
        "http://localhost:5173",
    ];
    let config = file.to_str().unwrap();

    let proc = ServerProcess::spawn(&["--config", config], &[]);
    assert_eq!(
        cors_allowed(&proc.url, &all).await,
        ["https://file.example"]
    );
    drop(proc);

    // The env list (comma-separated) replaces the file's.
    let env = [(
        "MUXLINK_SERVER_CORS_ORIGINS",
        "https://a.example, https://b.example/",
    )];
    let proc = ServerProcess::spawn(&["--config", config], &env);
    assert_eq!(
        cors_allowed(&proc.url, &all).await,
        ["https://a.example", "https://b.example"]
    );
    drop(proc);

    // Repeated flags replace both.
    let proc = ServerProcess::spawn(
        &[
            "--config",
            config,
            "--cors-origin",
            "https://flag.example",
            "--cors-origin",
            "http://localhost:5173",
        ],
        &env,
    );
    assert_eq!(
        cors_allowed(&proc.url, &all).await,
        ["https://flag.example", "http://localhost:5173"]
    );
    drop(proc);

    // Without any: no CORS at all.
    let proc = ServerProcess::spawn(&[], &[]);
    assert!(cors_allowed(&proc.url, &all).await.is_empty());
}

#[test]
fn binary_refuses_a_malformed_cors_origin_in_one_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_muxlink-signaling-server"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--cors-origin",
            "https://app.example.net/web",
        ])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it never listened");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("\"https://app.example.net/web\""), "{err}");
    assert!(err.contains("scheme://host[:port]"), "{err}");
}

#[test]
fn a_short_jwt_secret_is_refused_and_help_warns_about_the_flag() {
    let bin = env!("CARGO_BIN_EXE_muxlink-signaling-server");
    let out = std::process::Command::new(bin)
        .args(["--bind", "127.0.0.1:0", "--jwt-secret", "short-secret"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it never listened");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("12 bytes; use at least 32"), "{err}");

    let help = std::process::Command::new(bin)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("visible to every user"), "{help}");
    assert!(help.contains("--jwt-secret-file"), "{help}");
    assert!(help.contains("--trusted-proxy"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwt_secret_comes_from_a_file_by_flag_or_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt-secret");
    let secret = "a-jwt-secret-of-forty-bytes-0123456789ab";
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let path = file.to_str().unwrap();
    for (args, envs) in [
        (vec!["--jwt-secret-file", path], vec![]),
        (vec![], vec![("MUXLINK_SERVER_JWT_SECRET_FILE", path)]),
    ] {
        let mut all = vec!["--bind", "127.0.0.1:0"];
        all.extend(args);
        let proc = ServerProcess::spawn(&all, &envs);
        let http = Http {
            url: proc.url.clone(),
            version: "v1".into(),
            hmac: String::new(),
            clock: signaling_server::Clock::system(),
            ca: None,
        };
        let host = DeviceKeys::random();
        http.initiate(&host, "laptop").await;
        let token = http.token(&host).await;
        let now = http.clock.now_unix();
        // Signed with the file's secret, without its trailing newline.
        let claims = signaling_proto::jwt_verify(secret.as_bytes(), &token, now).unwrap();
        assert_eq!(claims.device_id, host.id);
    }
}
