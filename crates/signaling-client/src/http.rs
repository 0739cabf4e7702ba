//! The client side of the signaling HTTP API, shared by every caller: the
//! driver (inside `spawn_blocking`), the agent's CLI (`agent-bin`), the
//! host's TURN fetch (`peer-manager`) and the phone (`mobile-client`).
//!
//! One ureq agent builder ([`agent`]: timeout, the bundled and system TLS
//! roots, the proxy environment read by ureq), one signed call path
//! ([`signed_json`] over [`signed_request`]) and one challenge → signature
//! step ([`signed_challenge`]) that the token exchange ([`fetch_token`]) and
//! both pairing requests build on (signaling.md §1, §3, §5). A 404 from an
//! endpoint that always exists means the server serves another API version:
//! [`HttpError::ApiNotServed`], permanent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use signaling_proto::consts::{ERR_INVALID_PAIRING_CODE, HTTP_TIMEOUT, MAX_HTTP_BODY};
use signaling_proto::{
    ChallengeRequest, ChallengeResponse, ErrorBody, SignedHeaders, TokenRequest, TokenResponse,
    api_base, api_path,
};

use crate::error::HttpError;
use crate::identity::Identity;

/// Wall-clock Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A blocking HTTP agent for the signaling server: `timeout` bounds each whole
/// call, error statuses come back as responses, and `https://` trusts
/// [`trusted_roots`] (the bundled Mozilla list and the operating system's store).
/// The proxy comes from the environment as ureq reads it (`ALL_PROXY`,
/// `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, upper or lower case).
pub fn agent(timeout: Duration) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(trusted_roots())
        .build();
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .into()
}

/// The root certificates `https://` calls trust: the bundled Mozilla roots
/// (webpki-root-certs) plus the operating system's store (rustls-native-certs,
/// which honours `SSL_CERT_FILE` / `SSL_CERT_DIR`), so a server with a
/// private-CA certificate (e.g. mkcert) whose root is installed works. Loaded
/// once per process; an unreadable system store leaves the bundled roots.
pub fn trusted_roots() -> ureq::tls::RootCerts {
    static ROOTS: std::sync::OnceLock<ureq::tls::RootCerts> = std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let native = rustls_native_certs::load_native_certs();
            if !native.errors.is_empty() {
                tracing::debug!(errors = ?native.errors, "some system root certificates could not be loaded");
            }
            let bundled = webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter();
            bundled
                .chain(native.certs.iter())
                .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
                .collect::<Vec<_>>()
                .into()
        })
        .clone()
}

/// Sends one request signed with the muxlink HMAC headers and returns
/// `(status, body)` whatever the status; the body is read up to 65 536 bytes.
///
/// `url` is the full URL, `path` the signed path (e.g. `/v1/auth/token`,
/// see [`signaling_proto::api_path`]). An empty `secret` sends no signing
/// headers. `bearer` adds `Authorization: Bearer <jwt>`; `body` is sent as
/// JSON. `https://` URLs use rustls with [`trusted_roots`] (bundled and system roots).
/// HTTP timeout 10 s; honours the proxy environment variables.
pub fn signed_request(
    method: &str,
    url: &str,
    path: &str,
    secret: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), HttpError> {
    signed_request_with_timeout(method, url, path, secret, bearer, body, HTTP_TIMEOUT)
}

/// [`signed_request`] with an explicit timeout.
pub fn signed_request_with_timeout(
    method: &str,
    url: &str,
    path: &str,
    secret: &str,
    bearer: Option<&str>,
    body: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), HttpError> {
    let transport = |detail: String| HttpError::Transport {
        url: url.to_owned(),
        detail,
    };
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    if let Some(headers) = SignedHeaders::new(secret, path, unix_now()) {
        for (name, value) in headers.pairs() {
            builder = builder.header(name, value);
        }
    }
    if let Some(token) = bearer {
        builder = builder.header("Authorization", format!("Bearer {token}"));
    }
    let agent = agent(timeout);
    let result = match body {
        Some(json) => {
            let request = builder
                .header("Content-Type", "application/json")
                .body(json.to_owned())
                .map_err(|e| transport(e.to_string()))?;
            agent.run(request)
        }
        None => {
            let request = builder.body(()).map_err(|e| transport(e.to_string()))?;
            agent.run(request)
        }
    };
    // A failed TLS handshake or certificate check is transient like any
    // other transport failure: the proxy or its certificate may be fixed.
    let mut response = result.map_err(|e| match e {
        ureq::Error::Timeout(_) => HttpError::Timeout {
            url: url.to_owned(),
            secs: timeout.as_secs(),
        },
        other => transport(other.to_string()),
    })?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_HTTP_BODY as u64)
        .read_to_string()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => HttpError::InvalidResponse {
                url: url.to_owned(),
                detail: format!("body larger than {MAX_HTTP_BODY} bytes"),
            },
            other => transport(other.to_string()),
        })?;
    Ok((status, text))
}

/// A signed JSON call that expects 2xx and a `T` body; any other status
/// becomes [`HttpError::Status`] carrying the server's `error` string, except
/// a 404 that is not a pairing code's: no muxlink endpoint is missing under
/// the right prefix, so the server does not serve `api_version` there
/// ([`HttpError::ApiNotServed`], permanent).
pub fn signed_json<B: Serialize, T: DeserializeOwned>(
    method: &str,
    server_url: &str,
    api_version: &str,
    endpoint: &str,
    secret: &str,
    bearer: Option<&str>,
    body: Option<&B>,
) -> Result<T, HttpError> {
    let url = format!("{}{}", api_base(server_url, api_version), endpoint);
    let path = api_path(api_version, endpoint);
    let json =
        body.map(serde_json::to_string)
            .transpose()
            .map_err(|e| HttpError::InvalidResponse {
                url: url.clone(),
                detail: format!("cannot encode request: {e}"),
            })?;
    let (status, text) = signed_request(method, &url, &path, secret, bearer, json.as_deref())?;
    if !(200..300).contains(&status) {
        let error = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or_else(|_| text.chars().take(200).collect());
        if status == 404 && error != ERR_INVALID_PAIRING_CODE {
            return Err(HttpError::ApiNotServed {
                base: api_base(server_url, api_version),
                version: api_version.to_owned(),
            });
        }
        return Err(HttpError::Status { url, status, error });
    }
    serde_json::from_str(&text).map_err(|e| HttpError::InvalidResponse {
        url,
        detail: e.to_string(),
    })
}

/// A signed `POST` of the auth flow whose answer is one string `what`
/// (taken out by `pick`), which may not be empty (signaling.md §3).
fn post_for_string<B: Serialize, T: DeserializeOwned>(
    server_url: &str,
    api_version: &str,
    endpoint: &str,
    secret: &str,
    body: &B,
    what: &str,
    pick: impl FnOnce(T) -> String,
) -> Result<String, HttpError> {
    let answer: T = signed_json(
        "POST",
        server_url,
        api_version,
        endpoint,
        secret,
        None,
        Some(body),
    )?;
    let value = pick(answer);
    if value.is_empty() {
        return Err(HttpError::InvalidResponse {
            url: format!("{}{endpoint}", api_base(server_url, api_version)),
            detail: format!("empty {what}"),
        });
    }
    Ok(value)
}

/// `POST /auth/challenge` (signaling.md §3): a fresh nonce for `device_id`,
/// to be signed for the token, pairing or pair-initiate request.
pub fn fetch_challenge(
    server_url: &str,
    api_version: &str,
    secret: &str,
    device_id: &str,
) -> Result<String, HttpError> {
    let request = ChallengeRequest {
        device_id: device_id.to_owned(),
    };
    post_for_string(
        server_url,
        api_version,
        "/auth/challenge",
        secret,
        &request,
        "nonce",
        |c: ChallengeResponse| c.nonce,
    )
}

/// A fetched challenge and this device's signature of it: the proof of
/// identity that `/auth/token`, `/auth/pair/initiate` and
/// `/auth/pair/complete` carry (signaling.md §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedChallenge {
    /// The device id the nonce was issued for.
    pub device_id: String,
    /// The server's nonce.
    pub nonce: String,
    /// Standard base64 of the Ed25519 signature of `deviceId|nonce`.
    pub signature: String,
}

/// Challenge → signature: `POST /auth/challenge` for `identity`'s device id,
/// then signs the nonce.
pub fn signed_challenge(
    identity: &Identity,
    server_url: &str,
    api_version: &str,
    secret: &str,
) -> Result<SignedChallenge, HttpError> {
    let device_id = identity.device_id().to_owned();
    let nonce = fetch_challenge(server_url, api_version, secret, &device_id)?;
    let signature = identity.sign_challenge(&nonce);
    Ok(SignedChallenge {
        device_id,
        nonce,
        signature,
    })
}

/// `POST /auth/token` with a [`SignedChallenge`] (signaling.md §3): the JWT.
pub fn exchange_token(
    server_url: &str,
    api_version: &str,
    secret: &str,
    proof: SignedChallenge,
) -> Result<String, HttpError> {
    let request = TokenRequest {
        device_id: proof.device_id,
        nonce: proof.nonce,
        signature: proof.signature,
    };
    post_for_string(
        server_url,
        api_version,
        "/auth/token",
        secret,
        &request,
        "token",
        |t: TokenResponse| t.token,
    )
}

/// Challenge → sign → token (signaling.md §3): [`signed_challenge`] then
/// [`exchange_token`]. Returns the JWT.
///
/// `api_version` is the configured one, usually
/// [`DEFAULT_API_VERSION`](signaling_proto::consts::DEFAULT_API_VERSION).
pub fn fetch_token(
    identity: &Identity,
    server_url: &str,
    api_version: &str,
    secret: &str,
) -> Result<String, HttpError> {
    let proof = signed_challenge(identity, server_url, api_version, secret)?;
    exchange_token(server_url, api_version, secret, proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_to_a_plain_tcp_server_fails_in_the_tls_handshake_as_a_transient_error() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}/v1/health", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut first = [0u8; 1];
            conn.read_exact(&mut first).unwrap();
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            first[0]
        });
        let err = signed_request("GET", &url, "/v1/health", "", None, None).unwrap_err();
        assert!(matches!(err, HttpError::Transport { .. }), "{err:?}");
        assert!(!err.is_permanent());
        // The client opened with a TLS handshake record (a ClientHello).
        assert_eq!(server.join().unwrap(), 0x16);
    }

    #[test]
    fn a_server_that_never_answers_is_a_timeout_in_words() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/health", listener.local_addr().unwrap());
        let held = std::thread::spawn(move || listener.accept().map(|(conn, _)| conn));
        let err = signed_request_with_timeout(
            "GET",
            &url,
            "/v1/health",
            "",
            None,
            None,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(
            matches!(&err, HttpError::Timeout { secs: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("no answer within 1 s"), "{err}");
        drop(held.join());
    }

    #[test]
    fn error_status_carries_the_server_error_string() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = r#"{"error":"invalid client signature"}"#;
            write!(
                conn,
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            request
        });
        let url = format!("http://{addr}");
        let err = signed_json::<ChallengeRequest, ChallengeResponse>(
            "POST",
            &url,
            "v1",
            "/auth/challenge",
            "secret",
            None,
            Some(&ChallengeRequest {
                device_id: "d".into(),
            }),
        )
        .unwrap_err();
        assert!(err.is_permanent());
        assert!(
            matches!(&err, HttpError::Status { status: 401, error, .. } if error == "invalid client signature")
        );
        let request = server.join().unwrap().to_lowercase();
        assert!(request.starts_with("post /v1/auth/challenge "));
        for header in ["muxlink-timestamp:", "muxlink-nonce:", "muxlink-signature:"] {
            assert!(request.contains(header), "{header} missing");
        }
    }

    /// Answers one request with `status` and the JSON `{"error": error}`.
    fn one_answer(status: &'static str, error: &'static str) -> String {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).unwrap();
            let body = format!(r#"{{"error":"{error}"}}"#);
            write!(
                conn,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        });
        url
    }

    #[test]
    fn a_404_means_the_api_version_is_not_served_but_a_pairing_code_404_does_not() {
        let url = one_answer("404 Not Found", "not found");
        let err = fetch_challenge(&url, "v2", "", "d").unwrap_err();
        assert_eq!(
            err,
            HttpError::ApiNotServed {
                base: format!("{url}/v2"),
                version: "v2".into(),
            }
        );
        assert!(err.is_permanent());
        assert_eq!(
            err.to_string(),
            format!("the server does not serve API v2 at {url}/v2: check api_version")
        );

        let url = one_answer("404 Not Found", ERR_INVALID_PAIRING_CODE);
        let err = signed_json::<ChallengeRequest, ChallengeResponse>(
            "POST",
            &url,
            "v1",
            "/auth/pair/complete",
            "",
            None,
            Some(&ChallengeRequest {
                device_id: "d".into(),
            }),
        )
        .unwrap_err();
        assert!(
            matches!(&err, HttpError::Status { status: 404, error, .. } if error == ERR_INVALID_PAIRING_CODE),
            "{err:?}"
        );
        assert!(!err.is_permanent());
    }
}
