//! The CLI's signed calls to the signaling server (signaling.md §1–§5):
//! challenge → token, pair/initiate, DELETE /auth/pairing, all through
//! `signaling_client::http` (one signed call path, one challenge step) on the
//! configured API version. A call still waiting after a second says so on a
//! terminal's stderr, and each failure names its step: no answer in time, a
//! refused request signature, an API version the server does not serve, or
//! the server's own error.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use signaling_client::http::{self as sig_http, SignedChallenge};
use signaling_client::{HttpError, Identity};
use signaling_proto::{PairInitiateRequest, PairInitiateResponse, RemovedResponse};

use crate::error::CliError;

/// How long a call runs before "contacting …" is shown on a terminal.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// A blocking client for one server, API version and signing secret.
pub struct Http {
    server_url: String,
    api_version: String,
    hmac_secret: String,
}

impl Http {
    /// A client for `server_url` (bare) under `api_version` ("" = no prefix).
    pub fn new(server_url: &str, api_version: &str, hmac_secret: &str) -> Self {
        Http {
            server_url: server_url.to_string(),
            api_version: api_version.to_string(),
            hmac_secret: hmac_secret.to_string(),
        }
    }

    fn url(&self, endpoint: &str) -> String {
        format!(
            "{}{endpoint}",
            signaling_proto::api_base(&self.server_url, &self.api_version)
        )
    }

    /// The user's error for a failed call of step `what`.
    fn error(&self, what: &'static str, e: HttpError) -> CliError {
        match e {
            HttpError::Timeout { secs, .. } => CliError::NoAnswer {
                url: self.server_url.clone(),
                what,
                secs,
            },
            HttpError::Transport { detail, .. } => CliError::Unreachable {
                url: self.server_url.clone(),
                reason: detail,
            },
            HttpError::Status { status, error, .. } => {
                server_error(what, status, error, !self.hmac_secret.is_empty())
            }
            HttpError::InvalidResponse { detail, .. } => CliError::Server {
                what,
                status: 200,
                error: if detail.starts_with("empty ") {
                    detail
                } else {
                    "the response is not the expected JSON (is this a muxlink server?)".into()
                },
            },
            other => CliError::Other(other.to_string()),
        }
    }

    /// `POST /auth/challenge` and its signature by `key`.
    fn challenge(&self, key: &SigningKey) -> Result<SignedChallenge, CliError> {
        let what = "the challenge request";
        let _progress = Progress::start(&self.url("/auth/challenge"), what);
        let identity = Identity::from_signing_key(key.clone());
        sig_http::signed_challenge(
            &identity,
            &self.server_url,
            &self.api_version,
            &self.hmac_secret,
        )
        .map_err(|e| self.error(what, e))
    }

    /// One signed JSON call of step `what`.
    fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &'static str,
        method: &str,
        endpoint: &str,
        bearer: Option<&str>,
        body: Option<&B>,
    ) -> Result<T, CliError> {
        let _progress = Progress::start(&self.url(endpoint), what);
        sig_http::signed_json(
            method,
            &self.server_url,
            &self.api_version,
            endpoint,
            &self.hmac_secret,
            bearer,
            body,
        )
        .map_err(|e| self.error(what, e))
    }

    /// Challenge → signed `POST /auth/token` → JWT.
    pub fn token(&self, key: &SigningKey) -> Result<String, CliError> {
        let proof = self.challenge(key)?;
        let what = "the token request";
        let _progress = Progress::start(&self.url("/auth/token"), what);
        sig_http::exchange_token(
            &self.server_url,
            &self.api_version,
            &self.hmac_secret,
            proof,
        )
        .map_err(|e| self.error(what, e))
    }

    /// `POST /auth/pair/initiate` → pairing code.
    pub fn pair_initiate(
        &self,
        key: &SigningKey,
        x25519_public: &[u8; 32],
        name: &str,
    ) -> Result<String, CliError> {
        let proof = self.challenge(key)?;
        let r: PairInitiateResponse = self.call(
            "the pairing request",
            "POST",
            "/auth/pair/initiate",
            None,
            Some(&PairInitiateRequest {
                device_id: proof.device_id,
                ed25519_public_key: B64.encode(key.verifying_key().to_bytes()),
                x25519_public_key: B64.encode(x25519_public),
                name: Some(name.to_string()),
                nonce: proof.nonce,
                signature: proof.signature,
            }),
        )?;
        Ok(r.pairing_code)
    }

    /// Signed, authenticated `DELETE /auth/pairing` → whether a pairing was removed.
    pub fn delete_pairing(&self, key: &SigningKey) -> Result<bool, CliError> {
        let token = self.token(key)?;
        let r: RemovedResponse = self.call::<(), _>(
            "the unpair request",
            "DELETE",
            "/auth/pairing",
            Some(&token),
            None,
        )?;
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
