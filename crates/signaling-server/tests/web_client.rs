//! The web client is served at `/` outside the API prefix, unsigned even when
//! the server signs requests: the built page and its assets when `web/dist`
//! was embedded, else a page saying how to build it; unknown assets are 404 JSON.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn get(url: String) -> (u16, String, String, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent.get(&url).call().unwrap();
    let status = resp.status().as_u16();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (ct, cache) = (header("content-type"), header("cache-control"));
    let body = resp.body_mut().read_to_vec().unwrap();
    (status, ct, cache, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_are_served_unsigned() {
    let ts = TestServer::start(signaling_server::ServerConfig {
        hmac_secret: "test-hmac-secret".into(),
        ..test_config()
    })
    .await;
    let url = ts.url.clone();
    tokio::task::spawn_blocking(move || {
        let (status, ct, cache, body) = get(format!("{url}/"));
        assert_eq!(status, 200);
        assert!(ct.starts_with("text/html"), "{ct}");
        assert_eq!(cache, "no-cache");
        let page = String::from_utf8(body).unwrap();
        assert!(page.contains("muxlink"));
        if page.contains("cargo xtask web") {
            // Built without web/dist: the explanatory page, no assets.
            assert!(!page.contains("/assets/"));
        } else {
            // Every asset the page references is served with its type and long caching.
            let mut refs = 0;
            for part in page.split("\"/assets/").skip(1) {
                let name = part.split('"').next().unwrap();
                let (status, ct, cache, body) = get(format!("{url}/assets/{name}"));
                assert_eq!(status, 200, "{name}");
                assert!(!body.is_empty());
                assert!(cache.contains("immutable"));
                if name.ends_with(".js") {
                    assert!(ct.starts_with("text/javascript"), "{ct}");
                }
                refs += 1;
            }
            assert!(refs >= 1, "the built page references its bundle");
        }
        let (status, ct, _, body) = get(format!("{url}/assets/missing.js"));
        assert_eq!(status, 404);
        assert!(ct.starts_with("application/json"));
        assert!(String::from_utf8(body).unwrap().contains("not found"));
    })
    .await
    .unwrap();
    ts.server.shutdown().await;
}
