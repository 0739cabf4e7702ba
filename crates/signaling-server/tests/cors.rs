//! CORS for the configured web-client origins, against the real server: a
//! listed origin gets its preflight answered (unsigned, before request
//! signing) and `Access-Control-Allow-Origin` + `Vary: Origin` on every
//! response, errors included; any other origin, or any origin when none are
//! configured, gets no CORS header at all. With origins configured, a `/ws`
//! upgrade from a foreign page is refused (403) while native clients (no
//! `Origin`), listed origins and the server's own page still connect. A
//! malformed origin stops the start.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use signaling_proto::SignalingMessage;
use signaling_server::{Server, ServerConfig, StartError};

const APP: &str = "https://app.example.net";
const DEV: &str = "http://localhost:5173";
const EVIL: &str = "https://evil.example.net";

fn config(origins: &[&str]) -> ServerConfig {
    ServerConfig {
        hmac_secret: "test-hmac-secret".into(),
        cors_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        ..test_config()
    }
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Every value of header `name` (a header may repeat, e.g. `Vary`).
fn all<'a>(r: &'a Resp, name: &str) -> Vec<&'a str> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn varies_on_origin(r: &Resp) -> bool {
    all(r, "vary")
        .iter()
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("origin"))
}

fn no_cors_headers(r: &Resp) {
    let cors: Vec<_> = r
        .headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{r:?}");
}

/// A browser's preflight for a signed JSON POST to `path`.
async fn preflight(http: &Http, path: &str, origin: &str) -> Resp {
    http.send_raw(
        "OPTIONS",
        path,
        None,
        h(&[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,muxlink-nonce,muxlink-signature,muxlink-timestamp",
            ),
        ]),
    )
    .await
}

/// A signed `POST /auth/challenge` sent with an `Origin` header.
async fn challenge_from(http: &Http, ts: &TestServer, origin: &str, sign: Sign) -> Resp {
    let path = ts.path("/auth/challenge");
    let mut headers = http.headers(&path, &sign);
    headers.extend(h(&[
        ("origin", origin),
        ("content-type", "application/json"),
    ]));
    let body = json!({ "deviceId": DeviceKeys::random().id }).to_string();
    http.send_raw("POST", &path, Some(body), headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_origins_get_preflight_and_allow_origin() {
    let ts = TestServer::start(config(&[APP, "http://localhost:5173/"])).await;
    let http = ts.http();
    let challenge = ts.path("/auth/challenge");

    for origin in [APP, DEV] {
        let r = preflight(&http, &challenge, origin).await;
        assert_eq!(r.status, 204, "{r:?}");
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        assert!(varies_on_origin(&r), "{r:?}");
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("GET, POST, DELETE")
        );
        assert_eq!(
            r.header("access-control-allow-headers"),
            Some(
                "content-type, authorization, muxlink-timestamp, muxlink-nonce, muxlink-signature"
            )
        );
        assert_eq!(r.header("access-control-max-age"), Some("600"));
        assert_eq!(r.header("access-control-allow-credentials"), None);
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }

    // The actual request, signed, then unsigned (its 401 must be readable too).
    let r = challenge_from(&http, &ts, APP, Sign::Now).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert!(varies_on_origin(&r), "{r:?}");
    assert_eq!(r.header("access-control-allow-methods"), None);
    let r = challenge_from(&http, &ts, APP, Sign::Unsigned).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    // Bearer endpoints and the page as well.
    let r = http.send_raw("GET", "/", None, h(&[("origin", DEV)])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(DEV));

    // Other origins, near misses included, get nothing.
    for origin in [
        EVIL,
        "https://APP.example.net",
        "http://app.example.net",
        "null",
    ] {
        no_cors_headers(&preflight(&http, &challenge, origin).await);
        let r = challenge_from(&http, &ts, origin, Sign::Now).await;
        assert_eq!(r.status, 200, "{r:?}");
        no_cors_headers(&r);
    }
    // No Origin at all (native clients): nothing either.
    let r = http
        .post(
            "/auth/challenge",
            json!({ "deviceId": DeviceKeys::random().id }),
        )
        .await;
    assert_eq!(r.status, 200);
    no_cors_headers(&r);
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_origins_configured_means_no_cors_and_no_origin_check() {
    let ts = TestServer::start(config(&[])).await;
    let http = ts.http();
    let r = preflight(&http, &ts.path("/auth/challenge"), APP).await;
    assert_ne!(r.status, 204, "{r:?}");
    no_cors_headers(&r);
    let r = challenge_from(&http, &ts, APP, Sign::Now).await;
    assert_eq!(r.status, 200, "{r:?}");
    no_cors_headers(&r);
    // As before the setting existed, `/ws` does not look at Origin.
    assert!(
        Ws::connect_with(&http, Sign::Now, &[("origin", EVIL)])
            .await
            .is_ok()
    );
    ts.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_from_foreign_origins_is_refused_when_origins_are_listed() {
    let ts = TestServer::start(config(&[APP])).await;
    let http = ts.http();
    let (_, host_token, _, _) = paired_pair(&ts).await;
    let own = ts.url.clone();
    let allowed: [&[(&str, &str)]; 4] = [
        // A native client.
        &[],
        // The listed web client.
        &[("origin", APP)],
        // The server's own page (Host is 127.0.0.1:PORT).
        &[("origin", &own)],
        // Its own page behind a TLS-terminating proxy that passes the host on.
        &[
            ("origin", "https://signal.example.net"),
            ("x-forwarded-host", "signal.example.net"),
        ],
    ];
    for extra in allowed {
        let mut ws = Ws::connect_with(&http, Sign::Now, extra)
            .await
            .unwrap_or_else(|status| panic!("{extra:?}: {status}"));
        let reply = ws.auth(&host_token, "laptop").await;
        assert_eq!(
            reply,
            Got::Msg(SignalingMessage {
                status: "ok".into(),
                ..SignalingMessage::new("auth")
            }),
            "{extra:?}"
        );
    }
    let refused: [&[(&str, &str)]; 4] = [
        &[("origin", EVIL)],
        &[("origin", "null")],
        // Same host, another port: another origin.
        &[("origin", "http://127.0.0.1:1")],
        &[("origin", EVIL), ("x-forwarded-host", "signal.example.net")],
    ];
    for extra in refused {
        let status = Ws::connect_with(&http, Sign::Now, extra).await.err();
        assert_eq!(status, Some(403), "{extra:?}");
    }
    ts.server.shutdown().await;
}

#[tokio::test]
async fn malformed_origins_stop_the_start() {
    for bad in ["*", "app.example.net", "https://app.example.net/web"] {
        let e = Server::start(config(&[APP, bad])).await.err().unwrap();
        assert!(matches!(e, StartError::CorsOrigin { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains(&format!("{bad:?}")), "{text}");
        assert!(text.contains("scheme://host[:port]"), "{text}");
    }
}
