//! The web client is served at `/` outside the API prefix, unsigned even when
//! the server signs requests: the built page and its assets when `web/dist`
//! was embedded, else a page saying how to build it; unknown assets are 404 JSON.
//! Page and assets carry the strict Content-Security-Policy, `nosniff` and
//! `no-referrer` (HSTS only over TLS: see tests/tls.rs). Text files go out
//! brotli- or gzip-compressed when the client accepts it.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// The Content-Security-Policy every web client file must carry.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self' https: wss: http: ws:; worker-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Status, headers (lowercase names) and body of a plain GET.
fn get_with_headers(url: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent.get(url).call().unwrap();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    (
        resp.status().as_u16(),
        headers,
        resp.body_mut().read_to_vec().unwrap(),
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The headers a web client file must carry over plain HTTP.
fn assert_hardened(what: &str, headers: &[(String, String)]) {
    assert_eq!(
        header(headers, "content-security-policy"),
        Some(CSP),
        "{what}"
    );
    assert_eq!(
        header(headers, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header(headers, "referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(header(headers, "strict-transport-security"), None, "{what}");
    let csp_count = headers
        .iter()
        .filter(|(k, _)| k == "content-security-policy")
        .count();
    assert_eq!(csp_count, 1, "{what}");
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_carry_security_headers() {
    let ts = TestServer::start(test_config()).await;
    let url = ts.url.clone();
    tokio::task::spawn_blocking(move || {
        let (status, headers, body) = get_with_headers(&format!("{url}/"));
        assert_eq!(status, 200);
        assert_hardened("/", &headers);
        let page = String::from_utf8(body).unwrap();
        // The policy forbids inline script: the page must have none.
        for tag in page.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap();
            assert!(
                open.contains(" src="),
                "inline script in the page: <script{open}>"
            );
        }
        let mut assets = 0;
        for part in page.split("\"/assets/").skip(1) {
            let name = part.split('"').next().unwrap();
            let (status, headers, _) = get_with_headers(&format!("{url}/assets/{name}"));
            assert_eq!(status, 200, "{name}");
            assert_hardened(name, &headers);
            assets += 1;
        }
        assert_eq!(assets == 0, page.contains("cargo xtask web"), "{page}");
        // API responses get the generic headers (not the page's policy).
        let (status, headers, _) = get_with_headers(&format!("{url}/health"));
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&headers, "referrer-policy"), Some("no-referrer"));
        assert_eq!(header(&headers, "strict-transport-security"), None);
    })
    .await
    .unwrap();
    ts.server.shutdown().await;
}

/// GET with an `Accept-Encoding`: status, `Content-Encoding`, `Vary`, raw body.
fn get_encoded(url: &str, accept: &str) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .header("accept-encoding", accept)
        .call()
        .unwrap();
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (ce, vary) = (h("content-encoding"), h("vary"));
    (
        resp.status().as_u16(),
        ce,
        vary,
        resp.body_mut().read_to_vec().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_bundle_are_compressed_when_accepted() {
    use std::io::Read as _;
    let ts = TestServer::start(test_config()).await;
    let url = ts.url.clone();
    tokio::task::spawn_blocking(move || {
        let files = signaling_server::web_client_files();
        let Some((bundle, plain)) = files.iter().find(|(p, _)| p.ends_with(".js")) else {
            println!("web client not built: nothing to compress");
            return;
        };
        let bundle_url = format!("{url}/{bundle}");
        let (status, ce, vary, body) = get_encoded(&bundle_url, "gzip, deflate, br");
        assert_eq!((status, ce.as_deref()), (200, Some("br")));
        assert_eq!(vary.as_deref(), Some("accept-encoding"));
        assert!(
            body.len() * 2 < plain.len(),
            "{} vs {}",
            body.len(),
            plain.len()
        );
        let mut decoded = Vec::new();
        brotli::Decompressor::new(&body[..], 4096)
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(&decoded, plain);

        let (status, ce, _, body) = get_encoded(&bundle_url, "gzip;q=1, br;q=0");
        assert_eq!((status, ce.as_deref()), (200, Some("gzip")));
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(&decoded, plain);

        let (_, ce, _, body) = get_encoded(&bundle_url, "identity");
        assert_eq!((ce, &body[..]), (None, *plain));
        let (_, ce, vary, _) = get_encoded(&format!("{url}/"), "br");
        assert_eq!(
            (ce.as_deref(), vary.as_deref()),
            (Some("br"), Some("accept-encoding"))
        );
    })
    .await
    .unwrap();
    ts.server.shutdown().await;
}
