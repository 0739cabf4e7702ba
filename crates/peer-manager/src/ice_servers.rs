//! ICE server list for new peers: `GET /turn/credentials` (Bearer JWT + signed
//! headers, through `signaling_client::http`'s one signed call path on the
//! API version of the manager's configuration), cached 10 min process-wide,
//! STUN-only fallback on any failure.

use std::sync::Mutex;
use std::time::Instant;

use rtc_transport::IceServer;
use signaling_proto::TurnCredentials;
use signaling_proto::consts::TURN_CACHE_TTL;

/// Default STUN port used for the fallback URL.
pub const DEFAULT_STUN_PORT: u16 = 3478;

/// A successful fetch, shared by all peers of the process.
struct Cached {
    server_url: String,
    api_version: String,
    fetched_at: Instant,
    servers: Vec<IceServer>,
}

static CACHE: Mutex<Option<Cached>> = Mutex::new(None);

/// Why a fetch failed (logged; the caller falls back to STUN).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No JWT available yet.
    #[error("no jwt available")]
    NoJwt,
    /// Transport or HTTP status failure.
    #[error("turn credentials request failed: {0}")]
    Http(String),
    /// The response had no usable URL.
    #[error("turn credentials response has no urls")]
    Empty,
}

/// The fallback STUN URL for `server_url`: `stun:<host>:3478`, which the
/// bundled server (`muxlink serve`) answers with its STUN responder. The
/// agent replaces it with `stun_url` / `MUXLINK_STUN_URL` through
/// `PeerManagerConfig::stun_url`.
pub fn default_stun_url(server_url: &str) -> String {
    let rest = server_url
        .split_once("://")
        .map_or(server_url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        // Keep the brackets of an IPv6 literal.
        match v6.split_once(']') {
            Some((addr, _)) => format!("[{addr}]"),
            None => authority.to_owned(),
        }
    } else {
        authority
            .split_once(':')
            .map_or(authority, |(h, _)| h)
            .to_owned()
    };
    format!("stun:{host}:{DEFAULT_STUN_PORT}")
}

/// A STUN-only server list for `stun_url`.
pub fn stun_only(stun_url: &str) -> Vec<IceServer> {
    vec![IceServer {
        urls: vec![stun_url.to_owned()],
        username: String::new(),
        credential: String::new(),
    }]
}

/// Cached servers for `server_url` on `api_version`, if still fresh at `now`.
fn cached(server_url: &str, api_version: &str, now: Instant) -> Option<Vec<IceServer>> {
    let guard = CACHE.lock().ok()?;
    let c = guard.as_ref()?;
    (c.server_url == server_url
        && c.api_version == api_version
        && now.saturating_duration_since(c.fetched_at) < TURN_CACHE_TTL)
        .then(|| c.servers.clone())
}

/// ICE servers for a new peer: cache, else fetch on `api_version` (blocking
/// HTTP on the blocking pool), else STUN only at `stun_url`.
pub async fn ice_servers(
    server_url: &str,
    api_version: &str,
    jwt: String,
    hmac_secret: &str,
    stun_url: &str,
) -> Vec<IceServer> {
    if let Some(s) = cached(server_url, api_version, Instant::now()) {
        return s;
    }
    let (url, version, secret) = (
        server_url.to_owned(),
        api_version.to_owned(),
        hmac_secret.to_owned(),
    );
    let fetched =
        tokio::task::spawn_blocking(move || fetch_blocking(&url, &version, &jwt, &secret)).await;
    match fetched {
        Ok(Ok(servers)) => {
            if let Ok(mut guard) = CACHE.lock() {
                *guard = Some(Cached {
                    server_url: server_url.to_owned(),
                    api_version: api_version.to_owned(),
                    fetched_at: Instant::now(),
                    servers: servers.clone(),
                });
            }
            servers
        }
        Ok(Err(e)) => {
            tracing::warn!("{e}; using STUN only");
            stun_only(stun_url)
        }
        Err(e) => {
            tracing::warn!("turn credentials task failed: {e}; using STUN only");
            stun_only(stun_url)
        }
    }
}

/// One blocking `GET /turn/credentials` on `api_version`.
pub fn fetch_blocking(
    server_url: &str,
    api_version: &str,
    jwt: &str,
    hmac_secret: &str,
) -> Result<Vec<IceServer>, FetchError> {
    if jwt.is_empty() {
        return Err(FetchError::NoJwt);
    }
    let creds: TurnCredentials = signaling_client::http::signed_json::<(), _>(
        "GET",
        server_url,
        api_version,
        "/turn/credentials",
        hmac_secret,
        Some(jwt),
        None,
    )
    .map_err(|e| FetchError::Http(e.to_string()))?;
    let urls: Vec<String> = creds.urls.into_iter().filter(|u| !u.is_empty()).collect();
    if urls.is_empty() {
        return Err(FetchError::Empty);
    }
    Ok(vec![IceServer {
        urls,
        username: creds.username,
        credential: creds.credential,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_fallback_url_uses_server_host_and_3478() {
        assert_eq!(
            default_stun_url("https://sig.example.com:8443/x"),
            "stun:sig.example.com:3478"
        );
        assert_eq!(
            default_stun_url("http://127.0.0.1:5000"),
            "stun:127.0.0.1:3478"
        );
        assert_eq!(default_stun_url("http://[::1]:5000"), "stun:[::1]:3478");
        assert_eq!(default_stun_url("example.org"), "stun:example.org:3478");
    }

    #[test]
    fn missing_jwt_fails_without_network() {
        assert!(matches!(
            fetch_blocking("http://127.0.0.1:9", "v1", "", ""),
            Err(FetchError::NoJwt)
        ));
    }

    /// Serves one HTTP request with `body`, returning the request head it read.
    fn one_shot_server(body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
                if s.read(&mut b).unwrap() == 0 {
                    break;
                }
                head.push(b[0]);
            }
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).unwrap();
            String::from_utf8_lossy(&head).into_owned()
        });
        (url, h)
    }

    #[tokio::test]
    async fn turn_credentials_fetched_with_bearer_and_signed_headers_then_cached() {
        let (url, server) = one_shot_server(
            r#"{"urls":["turn:127.0.0.1:3478","stun:127.0.0.1:3478"],"username":"1700003600:dev","credential":"c2VjcmV0"}"#,
        );
        let s = ice_servers(
            &url,
            "v1",
            "the.jwt".into(),
            "test-hmac-secret",
            "stun:x:3478",
        )
        .await;
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].urls.len(), 2);
        assert_eq!(s[0].username, "1700003600:dev");
        assert_eq!(s[0].credential, "c2VjcmV0");
        let head = server.join().unwrap();
        assert!(
            head.starts_with("GET /v1/turn/credentials HTTP/1.1"),
            "{head}"
        );
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
                .unwrap_or_default()
        };
        assert_eq!(header("authorization"), "Bearer the.jwt");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        signaling_proto::verify_request(
            "test-hmac-secret",
            Some(&header("muxlink-timestamp")),
            Some(&header("muxlink-nonce")),
            Some(&header("muxlink-signature")),
            "/v1/turn/credentials",
            now,
        )
        .unwrap();
        // The server is gone: a second peer within 10 min still gets the cached list.
        let again = ice_servers(
            &url,
            "v1",
            "the.jwt".into(),
            "test-hmac-secret",
            "stun:x:3478",
        )
        .await;
        assert_eq!(again[0].username, "1700003600:dev");
        // Once stale, the cache is bypassed (and the failed fetch falls back to STUN).
        let stale = Instant::now() + TURN_CACHE_TTL;
        assert!(cached(&url, "v1", stale).is_none());
        assert!(cached(&url, "v1", Instant::now()).is_some());
        // Another API version is another endpoint: not served from this cache.
        assert!(cached(&url, "v2", Instant::now()).is_none());
    }

    #[tokio::test]
    async fn unreachable_server_falls_back_to_stun() {
        // Port 9 (discard) on loopback is closed: the fetch fails fast.
        let s = ice_servers(
            "http://127.0.0.1:9",
            "v1",
            "jwt".into(),
            "",
            "stun:127.0.0.1:3478",
        )
        .await;
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].urls, vec!["stun:127.0.0.1:3478".to_owned()]);
    }
}
