//! One simulated device's signaling socket, through the real client protocol
//! layer: the token from `signaling_client::http::fetch_token` (challenge →
//! signature → JWT), the signed upgrade from `signaling_client::ws::dial`,
//! then the `auth` message and its reply (signaling.md §3, §6).

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use signaling_client::Identity;
use signaling_client::ws::{DialTarget, Socket, dial};
use signaling_proto::consts::DEFAULT_API_VERSION;
use signaling_proto::{SignalingMessage, kind};
use tokio_tungstenite::tungstenite::Message;

/// The API version every simulated device speaks.
pub const API: &str = DEFAULT_API_VERSION;

/// How long the server has to answer `auth` (the agent's bound, signaling.md §7).
const AUTH_REPLY: Duration = Duration::from_secs(10);

/// Messages the server may send before the `auth` reply that are kept (a
/// `host_online` snapshot, say); more are dropped.
const EARLY_KEPT: usize = 8;

/// Why a socket could not be opened: the agent drops its cached JWT only
/// when the server refused it.
#[derive(Debug)]
pub enum OpenError {
    /// TCP, upgrade or a lost socket: try again with the same token.
    Dial(anyhow::Error),
    /// The server answered `auth` with an error: fetch a new token.
    Refused(anyhow::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Dial(e) | OpenError::Refused(e) => write!(f, "{e:#}"),
        }
    }
}

/// Challenge → signed challenge → JWT from `url`, off the async threads
/// (the protocol layer's HTTP calls block).
pub async fn token(identity: &Identity, url: &str) -> Result<String> {
    let (identity, url) = (identity.clone(), url.to_owned());
    tokio::task::spawn_blocking(move || {
        signaling_client::http::fetch_token(&identity, &url, API, "")
    })
    .await
    .context("token task")?
    .context("fetching a token")
}

/// Dials `url`'s socket and authenticates with `token`. Returns the socket
/// and what the server sent before its `auth` reply.
pub async fn open(
    url: &str,
    device_id: &str,
    token: &str,
    name: &str,
) -> Result<(Socket, Vec<SignalingMessage>), OpenError> {
    let target = DialTarget::new(url, API, "", device_id);
    let mut ws = dial(&target)
        .await
        .map_err(|e| OpenError::Dial(anyhow!("dialing {url}: {e:?}")))?;
    let auth = SignalingMessage {
        token: token.to_owned(),
        name: name.to_owned(),
        ..SignalingMessage::new(kind::AUTH)
    };
    ws.send(Message::text(auth.to_json()))
        .await
        .map_err(|e| OpenError::Dial(anyhow!("sending auth: {e}")))?;
    let mut early = Vec::new();
    let reply = tokio::time::timeout(AUTH_REPLY, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let Ok(msg) = SignalingMessage::parse(&text) else {
                        continue;
                    };
                    if msg.kind == kind::AUTH && msg.status == "ok" {
                        return Ok(());
                    }
                    if msg.kind == kind::ERROR || msg.kind == kind::AUTH {
                        return Err(OpenError::Refused(anyhow!("auth refused: {}", msg.error)));
                    }
                    if early.len() < EARLY_KEPT {
                        early.push(msg);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(OpenError::Dial(anyhow!("reading: {e}"))),
                None => return Err(OpenError::Dial(anyhow!("closed before the auth reply"))),
            }
        }
    })
    .await
    .map_err(|_| OpenError::Dial(anyhow!("no auth reply within {AUTH_REPLY:?}")))?;
    reply?;
    Ok((ws, early))
}

/// Reads frames until a message of `wanted` kind arrives (within `within`).
pub async fn wait_for(ws: &mut Socket, wanted: &str, within: Duration) -> Result<SignalingMessage> {
    tokio::time::timeout(within, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(msg) = SignalingMessage::parse(&text)
                        && msg.kind == wanted
                    {
                        return Ok(msg);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("socket failed waiting for {wanted}: {e}"),
                None => bail!("socket closed waiting for {wanted}"),
            }
        }
    })
    .await
    .with_context(|| format!("no {wanted} within {within:?}"))?
}
