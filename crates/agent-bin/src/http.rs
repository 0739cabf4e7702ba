//! Blocking signed HTTP calls the CLI makes to the signaling server
//! (signaling.md §1–§5): challenge → token, pair/initiate, DELETE /auth/pairing.
//! A call still waiting after a second says so on a terminal's stderr, and each
//! failure names its step: no answer in time, a refused request signature, or
//! the server's own error.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use signaling_proto::{
    ChallengeRequest, ChallengeResponse, ErrorBody, PairInitiateRequest, PairInitiateResponse,
    RemovedResponse, SignedHeaders, TokenRequest, TokenResponse,
};

use crate::error::CliError;
use crate::store::device_id;

/// Largest response body read (signaling.md §1).
const MAX_BODY: u64 = 65_536;
const API_VERSION: &str = "v1";
/// Bound on each whole HTTP call.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call runs before "contacting …" is shown on a terminal.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// A blocking client for one server, identity and signing secret.
pub struct Http {
    agent: ureq::Agent,
    server_url: String,
    hmac_secret: String,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Http {
    /// A client with the 10 s HTTP timeout, trusting the bundled and the
    /// system's root certificates for `https://`.
    pub fn new(server_url: &str, hmac_secret: &str) -> Self {
        let agent = signaling_client::http::agent(HTTP_TIMEOUT);
        Http {
            agent,
            server_url: server_url.to_string(),
            hmac_secret: hmac_secret.to_string(),
        }
    }

    fn url_and_path(&self, path: &str) -> (String, String) {
        let signed = signaling_proto::api_path(API_VERSION, path);
        (
            format!(
                "{}{}",
                signaling_proto::api_base(&self.server_url, API_VERSION),
                path
            ),
            signed,
        )
    }

    fn unreachable(&self, what: &'static str, e: &ureq::Error) -> CliError {
        match e {
            ureq::Error::Timeout(_) => CliError::NoAnswer {
                url: self.server_url.clone(),
                what,
                secs: HTTP_TIMEOUT.as_secs(),
            },
            _ => CliError::Unreachable {
                url: self.server_url.clone(),
                reason: e.to_string(),
            },
        }
    }

    fn finish<T: DeserializeOwned>(
        &self,
        what: &'static str,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, CliError> {
        let mut resp = resp.map_err(|e| self.unreachable(what, &e))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| self.unreachable(what, &e))?;
        if status != 200 {
            let error = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error)
                .unwrap_or_else(|_| "unexpected response".to_string());
            return Err(server_error(
                what,
                status,
                error,
                !self.hmac_secret.is_empty(),
            ));
        }
        serde_json::from_str(&text).map_err(|_| CliError::Server {
            what,
            status,
            error: "the response is not the expected JSON (is this a muxlink server?)".into(),
        })
    }

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
        body: &B,
    ) -> Result<T, CliError> {
        let (url, signed) = self.url_and_path(path);
        let mut req = self.agent.post(&url);
        if let Some(h) = SignedHeaders::new(&self.hmac_secret, &signed, now_unix()) {
            for (k, v) in h.pairs() {
                req = req.header(k, v);
            }
        }
        let _progress = Progress::start(&url, what);
        let resp = req.send_json(body);
        self.finish(what, resp)
    }

    /// `POST /auth/challenge` → nonce.
    pub fn challenge(&self, device_id: &str) -> Result<String, CliError> {
        let r: ChallengeResponse = self.post(
            "the challenge request",
            "/auth/challenge",
            &ChallengeRequest {
                device_id: device_id.to_string(),
            },
        )?;
        if r.nonce.is_empty() {
            return Err(CliError::Server {
                what: "the challenge request",
                status: 200,
                error: "empty nonce".into(),
            });
        }
        Ok(r.nonce)
    }

    /// Challenge → signed `POST /auth/token` → JWT.
    pub fn token(&self, key: &SigningKey) -> Result<String, CliError> {
        let id = device_id(&key.verifying_key().to_bytes());
        let nonce = self.challenge(&id)?;
        let signature = signaling_proto::sign_challenge(key, &id, &nonce);
        let r: TokenResponse = self.post(
            "the token request",
            "/auth/token",
            &TokenRequest {
                device_id: id,
                nonce,
                signature,
            },
        )?;
        if r.token.is_empty() {
            return Err(CliError::Server {
                what: "the token request",
                status: 200,
                error: "empty token".into(),
            });
        }
        Ok(r.token)
    }

    /// `POST /auth/pair/initiate` → pairing code.
    pub fn pair_initiate(
        &self,
        key: &SigningKey,
        x25519_public: &[u8; 32],
        name: &str,
    ) -> Result<String, CliError> {
        let public = key.verifying_key().to_bytes();
        let id = device_id(&public);
        let nonce = self.challenge(&id)?;
        let signature = signaling_proto::sign_challenge(key, &id, &nonce);
        let r: PairInitiateResponse = self.post(
            "the pairing request",
            "/auth/pair/initiate",
            &PairInitiateRequest {
                device_id: id,
                ed25519_public_key: B64.encode(public),
                x25519_public_key: B64.encode(x25519_public),
                name: Some(name.to_string()),
                nonce,
                signature,
            },
        )?;
        Ok(r.pairing_code)
    }

    /// Signed, authenticated `DELETE /auth/pairing` → whether a pairing was removed.
    pub fn delete_pairing(&self, key: &SigningKey) -> Result<bool, CliError> {
        let token = self.token(key)?;
        let (url, signed) = self.url_and_path("/auth/pairing");
        let mut req = self
            .agent
            .delete(&url)
            .header("Authorization", &format!("Bearer {token}"));
        if let Some(h) = SignedHeaders::new(&self.hmac_secret, &signed, now_unix()) {
            for (k, v) in h.pairs() {
                req = req.header(k, v);
            }
        }
        let what = "the unpair request";
        let _progress = Progress::start(&url, what);
        let r: RemovedResponse = self.finish(what, req.call())?;
        Ok(r.removed)
    }
}

/// The error for a non-200 answer: a refused request signature says which
/// setting to fix (`secret_set`: this host sent signing headers).
fn server_error(what: &'static str, status: u16, error: String, secret_set: bool) -> CliError {
    use signaling_proto::SigningError;
    let signing = (status == 401)
        .then(|| SigningError::from_error_text(&error))
        .flatten();
    match signing {
        Some(SigningError::Missing) | Some(SigningError::InvalidSignature) if !secret_set => {
            CliError::SigningSecretMissing { error }
        }
        Some(SigningError::InvalidSignature) => CliError::SigningSecretWrong { error },
        _ => CliError::Server {
            what,
            status,
            error,
        },
    }
}

/// "contacting <url> (<step>)…" on stderr once a call has run for a second,
/// only when stderr is a terminal; dropping it ends the wait.
struct Progress {
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(url: &str, what: &'static str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress {
                done: None,
                thread: None,
            };
        }
        Self::start_to(url, what, PROGRESS_AFTER, std::io::stderr)
    }

    fn start_to<W: Write + 'static>(
        url: &str,
        what: &'static str,
        after: Duration,
        out: impl FnOnce() -> W + Send + 'static,
    ) -> Progress {
        let (done, wait) = mpsc::channel::<()>();
        let line = progress_line(url, what);
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(after) {
                let _ = writeln!(out(), "{line}");
            }
        });
        Progress {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `contacting https://signal.example.net/v1/auth/challenge (the challenge request)…`
fn progress_line(url: &str, what: &str) -> String {
    format!("contacting {url} ({what})…")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn progress_is_shown_only_for_a_slow_call() {
        let out = Shared::default();
        let o = out.clone();
        let p = Progress::start_to(
            "https://s/v1/auth/challenge",
            "the challenge request",
            Duration::from_millis(20),
            move || o,
        );
        std::thread::sleep(Duration::from_millis(200));
        drop(p);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "contacting https://s/v1/auth/challenge (the challenge request)…\n"
        );

        let out = Shared::default();
        let o = out.clone();
        drop(Progress::start_to(
            "https://s",
            "the token request",
            Duration::from_secs(5),
            move || o,
        ));
        assert!(out.0.lock().unwrap().is_empty());
    }

    #[test]
    fn a_refused_signature_names_the_setting() {
        let e = server_error(
            "the challenge request",
            401,
            "missing client signature".into(),
            false,
        )
        .to_string();
        assert!(e.contains("requires a request-signing secret"), "{e}");
        assert!(
            e.contains("MUXLINK_HMAC_SECRET") && e.contains("hmac_secret in config.toml"),
            "{e}"
        );
        let e = server_error(
            "the challenge request",
            401,
            "invalid client signature".into(),
            true,
        )
        .to_string();
        assert!(
            e.contains("MUXLINK_HMAC_SECRET") && e.contains("invalid client signature"),
            "{e}"
        );
        let e = server_error("the token request", 401, "unknown device".into(), true).to_string();
        assert!(
            e.contains("refused the token request: 401 unknown device"),
            "{e}"
        );
    }
}
