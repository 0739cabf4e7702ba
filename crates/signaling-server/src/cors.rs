//! CORS for a configured list of web-client origins, and the `Origin` check of
//! `/ws` upgrades. A web client served from another origin than the server
//! (e.g. a static host, so the page's code does not come from the signaling
//! server) needs both; a client served by the server itself needs neither.
//!
//! [`CorsPolicy`] holds the decisions and does no I/O: which origins are
//! listed, whether an `Origin` may open `/ws`, and the preflight answer.
//! [`layer`] is the thin axum middleware around it. With an empty list (the
//! default) nothing here adds a header or refuses a request: same-origin only,
//! as before the setting existed.
//!
//! The server's own origin on `/ws` is recognised by authority alone: an
//! `Origin` whose `host[:port]` equals the request's `Host` (or its URI
//! authority on HTTP/2, or the first `X-Forwarded-Host`) is the server's own
//! page, whatever the scheme, so it also works behind a TLS-terminating proxy
//! that passes the browser's host on. A browser cannot set any of these
//! headers on a WebSocket upgrade, so trusting them does not let a foreign
//! page in; a native client sends no `Origin` at all and is never refused.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Methods the API uses, as answered to a preflight.
pub(crate) const ALLOW_METHODS: &str = "GET, POST, DELETE";
/// How long a browser may cache a preflight answer, in seconds.
pub(crate) const MAX_AGE_SECS: u32 = 600;
/// `content-type`, `authorization` and the three request-signing headers,
/// spelled out because `concat!` takes literals only (a unit test checks them
/// against the `HEADER_*` constants).
pub(crate) const ALLOW_HEADERS: &str =
    "content-type, authorization, muxlink-timestamp, muxlink-nonce, muxlink-signature";

/// A configured origin that can never equal a browser's `Origin` header;
/// reported as [`crate::StartError::CorsOrigin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CorsOriginError {
    /// The value as configured.
    pub origin: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The origin in the form browsers send it: lowercase, no trailing `/`, no
/// default port. `Ok(None)` for an empty entry (e.g. an empty env variable).
pub(crate) fn normalize_origin(raw: &str) -> Result<Option<String>, CorsOriginError> {
    let fail = |reason| CorsOriginError {
        origin: raw.to_owned(),
        reason,
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let lower = trimmed
        .strip_suffix('/')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    let (scheme, authority) = if let Some(rest) = lower.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        ("http", rest)
    } else {
        return Err(fail(
            "it must start with http:// or https:// (no wildcards)",
        ));
    };
    if authority.is_empty() {
        return Err(fail("it has no host"));
    }
    if authority
        .chars()
        .any(|c| matches!(c, '/' | '?' | '#' | '@' | '*') || c.is_whitespace() || c.is_control())
    {
        return Err(fail(
            "an origin has no path, query, user or wildcard, only scheme, host and port",
        ));
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Ok(Some(format!("{scheme}://{authority}")))
}

/// The configured origins and the answers that depend on them.
#[derive(Debug)]
pub(crate) struct CorsPolicy {
    origins: Vec<String>,
}

impl CorsPolicy {
    /// Checks and normalises every configured origin.
    pub fn new(configured: &[String]) -> Result<CorsPolicy, CorsOriginError> {
        let mut origins = Vec::new();
        for raw in configured {
            if let Some(o) = normalize_origin(raw)?
                && !origins.contains(&o)
            {
                origins.push(o);
            }
        }
        Ok(CorsPolicy { origins })
    }

    /// The normalised origins.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// Whether `origin` (a request's `Origin` header) is listed, exactly.
    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }

    /// Whether a `/ws` upgrade with this `Origin` may proceed. `origin` is
    /// `None` when the header is absent (a native client) and `Some("")` when
    /// it is present but not text; `own` are the authorities the request
    /// names for this server (`Host`, URI authority, `X-Forwarded-Host`).
    pub fn ws_origin_allowed(&self, origin: Option<&str>, own: &[&str]) -> bool {
        if self.origins.is_empty() {
            return true;
        }
        let Some(origin) = origin else { return true };
        if self.allows(origin) {
            return true;
        }
        let Some(authority) = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
        else {
            return false;
        };
        !authority.is_empty() && own.iter().any(|h| h.trim().eq_ignore_ascii_case(authority))
    }
}

/// The authorities a request names for this server, for
/// [`CorsPolicy::ws_origin_allowed`].
pub(crate) fn own_authorities<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Vec<&'a str> {
    let mut own = Vec::with_capacity(3);
    if let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        own.push(host);
    }
    if let Some(authority) = uri.authority() {
        own.push(authority.as_str());
    }
    if let Some(fwd) = headers
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
    {
        own.push(fwd);
    }
    own
}

/// The request's `Origin` as [`CorsPolicy::ws_origin_allowed`] takes it.
pub(crate) fn request_origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or_default())
}

/// Axum middleware: answers a preflight from a listed origin itself (before
/// routing and request signing: browsers send no custom headers on a
/// preflight) and adds `Access-Control-Allow-Origin` + `Vary: Origin` to every
/// response for a listed origin. Other requests pass untouched.
pub(crate) async fn layer(
    State(policy): State<Arc<CorsPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    let listed = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| o.to_str().is_ok_and(|o| policy.allows(o)))
        .cloned();
    let Some(origin) = listed else {
        return next.run(req).await;
    };
    if req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(MAX_AGE_SECS),
        );
        allow(h, origin);
        return resp;
    }
    let mut resp = next.run(req).await;
    allow(resp.headers_mut(), origin);
    resp
}

fn allow(h: &mut HeaderMap, origin: HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use signaling_proto::consts::{HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};

    #[test]
    fn allow_headers_name_the_signing_headers() {
        let listed: Vec<&str> = ALLOW_HEADERS.split(", ").collect();
        assert_eq!(
            listed,
            [
                "content-type",
                "authorization",
                HEADER_TIMESTAMP,
                HEADER_NONCE,
                HEADER_SIGNATURE
            ]
        );
    }

    #[test]
    fn origins_are_normalised_to_the_browser_form() {
        let n = |s: &str| normalize_origin(s).unwrap();
        assert_eq!(
            n("https://App.Example.net/"),
            Some("https://app.example.net".into())
        );
        assert_eq!(
            n(" https://a.example:443 "),
            Some("https://a.example".into())
        );
        assert_eq!(n("http://a.example:80"), Some("http://a.example".into()));
        assert_eq!(
            n("http://127.0.0.1:5173"),
            Some("http://127.0.0.1:5173".into())
        );
        assert_eq!(
            n("https://a.example:8443"),
            Some("https://a.example:8443".into())
        );
        assert_eq!(n("   "), None);
        for bad in [
            "*",
            "null",
            "app.example.net",
            "ftp://a.example",
            "https://",
            "https://a.example/app",
            "https://a.example?x",
            "https://u@a.example",
            "https://*.example.net",
        ] {
            let e = normalize_origin(bad).unwrap_err();
            assert_eq!(e.origin, bad);
            assert!(!e.reason.is_empty());
        }
    }

    #[test]
    fn policy_lists_exact_origins_once() {
        let p = CorsPolicy::new(&[
            "https://a.example/".into(),
            "https://a.example".into(),
            String::new(),
        ])
        .unwrap();
        assert_eq!(p.origins(), ["https://a.example"]);
        assert!(p.allows("https://a.example"));
        assert!(!p.allows("https://a.example.evil"));
        assert!(!p.allows("http://a.example"));
        assert!(CorsPolicy::new(&["https://a.example/x".into()]).is_err());
    }

    #[test]
    fn ws_origin_rule() {
        let open = CorsPolicy::new(&[]).unwrap();
        assert!(open.ws_origin_allowed(Some("https://evil.example"), &["s.example"]));

        let p = CorsPolicy::new(&["https://app.example".into()]).unwrap();
        // Native clients send no Origin.
        assert!(p.ws_origin_allowed(None, &[]));
        assert!(p.ws_origin_allowed(Some("https://app.example"), &["s.example"]));
        // The server's own page, also behind a TLS proxy (scheme differs).
        assert!(p.ws_origin_allowed(Some("https://s.example"), &["s.example"]));
        assert!(p.ws_origin_allowed(Some("https://S.example:8443"), &["s.example:8443"]));
        assert!(p.ws_origin_allowed(Some("http://127.0.0.1:5000"), &["127.0.0.1:5000"]));
        assert!(p.ws_origin_allowed(Some("https://s.example"), &["127.0.0.1:5000", "s.example"]));
        // Anything else is refused.
        assert!(!p.ws_origin_allowed(Some("https://evil.example"), &["s.example"]));
        assert!(!p.ws_origin_allowed(Some("https://s.example:1"), &["s.example"]));
        assert!(!p.ws_origin_allowed(Some("null"), &["null"]));
        assert!(!p.ws_origin_allowed(Some(""), &[""]));
        assert!(!p.ws_origin_allowed(Some("https://"), &[""]));
        assert!(!p.ws_origin_allowed(Some("https://s.example"), &[]));
    }
}
