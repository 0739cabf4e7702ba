//! Serves the embedded web client at `/` and `/assets/…` (outside the API
//! prefix); a build without `web/dist` serves a page explaining how to build it.
//!
//! Every file goes out with a strict [`CSP`]: scripts only from this origin
//! (none inline), no framing, no `<base>` or form targets. `nosniff`,
//! `no-referrer` and HSTS are added to all responses in `http_api`.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api_error::ApiError;

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
    ASSETS.iter().any(|(path, _, _)| *path == "/index.html")
}

fn file(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ct, bytes)| (*ct, *bytes))
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
pub(crate) async fn index() -> Response {
    match file("/index.html") {
        Some((ct, body)) => respond(ct, body, "no-cache"),
        None => respond("text/html; charset=utf-8", NOT_BUILT.as_bytes(), "no-cache"),
    }
}

/// `GET /assets/{file}`: content-hashed bundle files, cached for good.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match file(&format!("/assets/{name}")) {
        Some((ct, body)) => respond(ct, body, "public, max-age=31536000, immutable"),
        None => ApiError::new(StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
