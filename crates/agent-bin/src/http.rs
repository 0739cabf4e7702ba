//! Blocking signed HTTP calls the CLI makes to the signaling server
//! (signaling.md §1–§5): challenge → token, pair/initiate, DELETE /auth/pairing.

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
    /// A client with the 10 s HTTP timeout.
    pub fn new(server_url: &str, hmac_secret: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
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

    fn unreachable(&self, e: &ureq::Error) -> CliError {
        CliError::Unreachable {
            url: self.server_url.clone(),
            reason: e.to_string(),
        }
    }

    fn finish<T: DeserializeOwned>(
        &self,
        what: &'static str,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, CliError> {
        let mut resp = resp.map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| self.unreachable(&e))?;
        if status != 200 {
            let error = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error)
                .unwrap_or_else(|_| "unexpected response".to_string());
            return Err(CliError::Server {
                what,
                status,
                error,
            });
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
        let r: RemovedResponse = self.finish("the unpair request", req.call())?;
        Ok(r.removed)
    }
}
