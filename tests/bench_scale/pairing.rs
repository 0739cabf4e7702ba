//! Pairing one simulated host with one simulated phone exactly as `muxlink
//! pair` and the phone do it (pairing.md §2, §9), through their library
//! code: the host's `PairingAttempt` and signed `pair/initiate` (agent-bin),
//! its socket waiting for `pair_complete` and checking the confirmation; the
//! phone's `mobile_client::pair` from the QR payload. Both ends then hold a
//! JWT for their own instance (all instances share one JWT secret).

use std::time::Duration;

use agent_bin::http::Http;
use agent_bin::pairing::PairingAttempt;
use anyhow::{Context as _, Result, anyhow};
use mobile_client::ServerAccess;
use signaling_client::Identity;
use signaling_proto::kind;

use crate::link::{self, API};

/// How long the host waits for the phone's `pair_complete` to be relayed.
const PAIR_COMPLETE_WAIT: Duration = Duration::from_secs(20);

/// A paired host and phone, each with its token.
pub struct Pair {
    /// The host's identity.
    pub host: Identity,
    /// The host's JWT.
    pub host_token: String,
    /// The phone's identity.
    pub phone: Identity,
    /// The phone's JWT.
    pub phone_token: String,
}

/// Pairs host number `n` through `host_url` (the host's own instance, which
/// the QR names) and fetches the phone's token from `phone_url`.
pub async fn pair(n: usize, host_url: &str, phone_url: &str) -> Result<Pair> {
    let host = Identity::generate();
    let host_id = host.device_id().to_owned();
    let attempt = PairingAttempt::generate();
    let code = {
        let (key, public, url) = (
            host.signing_key().clone(),
            attempt.public,
            host_url.to_owned(),
        );
        let name = format!("host-{n}");
        tokio::task::spawn_blocking(move || {
            Http::new(&url, API, "").pair_initiate(&key, &public, &name)
        })
        .await
        .context("pair/initiate task")?
        .map_err(|e| anyhow!("pair/initiate: {e}"))?
    };
    // The host's socket is open before the QR is shown, as `muxlink pair` does.
    let host_token = link::token(&host, host_url).await?;
    let (mut socket, _) = link::open(host_url, &host_id, &host_token, &format!("host-{n}"))
        .await
        .map_err(|e| anyhow!("host socket: {e}"))?;

    let payload = attempt.payload(&code, &host_id, host_url);
    let phone = Identity::generate();
    let access = ServerAccess {
        api_version: API.to_owned(),
        hmac_secret: String::new(),
    };
    mobile_client::pair(&phone, &payload, Some(&format!("phone-{n}")), &access)
        .await
        .map_err(|e| anyhow!("phone pairing: {e}"))?;

    let complete = link::wait_for(&mut socket, kind::PAIR_COMPLETE, PAIR_COMPLETE_WAIT).await?;
    attempt
        .accept(&complete, &host_id)
        .map_err(|e| anyhow!("host refused pair_complete: {e}"))?;
    drop(socket);
    let phone_token = link::token(&phone, phone_url).await?;
    Ok(Pair {
        host,
        host_token,
        phone,
        phone_token,
    })
}
