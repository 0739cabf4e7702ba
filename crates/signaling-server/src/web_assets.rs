//! Serves the embedded web client at `/` and `/assets/…` (outside the API
//! prefix); a build without `web/dist` serves a page explaining how to build it.
//!
//! Every file goes out with a strict [`CSP`]: scripts only from this origin
//! (none inline), no framing, no `<base>` or form targets. `nosniff`,
//! `no-referrer` and HSTS are added to all responses in `http_api`.
//!
//! Text files are embedded pre-compressed too (`build.rs`): brotli or gzip
//! goes out when the request's `Accept-Encoding` allows it (`Vary` says so).

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api_error::ApiError;

/// (URL path, content type, bytes, gzip bytes, brotli bytes).
type Asset = (
    &'static str,
    &'static str,
    &'static [u8],
    Option<&'static [u8]>,
    Option<&'static [u8]>,
);

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Content-Security-Policy of the web client's files. `style-src` allows
/// inline styles because xterm.js injects `<style>` elements; `connect-src`
/// allows any http(s)/ws(s) URL because the page talks to the signaling server
/// named in the pairing payload, which may be another origin.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
    connect-src 'self' https: wss: http: ws:; worker-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>muxlink</title></head>\
<body style=\"font-family:system-ui,sans-serif;max-width:36em;margin:2em auto;padding:0 1em\">\
<h1>muxlink</h1><p>The web client was not built into this server: run <code>cargo xtask web</code> \
(needs Node.js and npm) and rebuild the server.</p>\
<p>The signaling API under <code>/v1</code> works without it.</p></body></html>";

/// Whether the web client's files are embedded in this binary.
pub(crate) fn is_built() -> bool {
    ASSETS.iter().any(|(path, ..)| *path == "/index.html")
}

/// The embedded web client's files as (path relative to the site root, bytes),
/// for hosting the same client on another origin; empty when not built.
pub fn files() -> Vec<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .map(|(path, _, bytes, ..)| (path.trim_start_matches('/'), *bytes))
        .collect()
}

fn file(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|(p, ..)| *p == path)
}

/// Whether `Accept-Encoding` accepts `coding` (listed without `q=0`, or `*`).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    let mut star = false;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if name.eq_ignore_ascii_case(coding) {
            return !refused;
        }
        if name == "*" {
            star = !refused;
        }
    }
    star
}

fn respond_asset(asset: &'static Asset, headers: &HeaderMap, cache: &'static str) -> Response {
    let (_, ct, plain, gz, br) = *asset;
    let (body, coding) = match (br, gz) {
        (Some(b), _) if accepts(headers, "br") => (b, Some("br")),
        (_, Some(g)) if accepts(headers, "gzip") => (g, Some("gzip")),
        _ => (plain, None),
    };
    let mut resp = respond(ct, body, cache);
    let h = resp.headers_mut();
    if gz.is_some() || br.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if let Some(coding) = coding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    resp
}

fn respond(content_type: &'static str, body: &'static [u8], cache: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

/// `GET /`: the client's page (never cached, so a new build is picked up).
pub(crate) async fn index(headers: HeaderMap) -> Response {
    match file("/index.html") {
        Some(asset) => respond_asset(asset, &headers, "no-cache"),
        None => respond("text/html; charset=utf-8", NOT_BUILT.as_bytes(), "no-cache"),
    }
}

/// `GET /assets/{file}`: content-hashed bundle files, cached for good.
pub(crate) async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match file(&format!("/assets/{name}")) {
        Some(asset) => respond_asset(asset, &headers, "public, max-age=31536000, immutable"),
        None => ApiError::new(StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &'static str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
        m
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts(&h("gzip, deflate, br"), "br"));
        assert!(accepts(&h("gzip;q=1.0, br;q=0.5"), "gzip"));
        assert!(!accepts(&h("gzip, br;q=0"), "br"));
        assert!(accepts(&h("*"), "br"));
        assert!(!accepts(&h("*, br;q=0"), "br"));
        assert!(!accepts(&HeaderMap::new(), "gzip"));
        assert!(!accepts(&h("identity"), "gzip"));
    }
}
