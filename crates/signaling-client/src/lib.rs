//! The client side of the signaling protocol, written once: the host
//! agent's persistent signaling client (challenge → JWT over HTTP, a signed
//! WebSocket, `auth`, presence, reconnect with backoff, JWT refresh,
//! dormancy and permanent-error stop, exactly as spec signaling.md §3–§7
//! says), and the protocol layer every other client uses: [`http`] (one
//! ureq agent builder, one signed JSON call path, one challenge → token
//! flow) and [`ws`] (one signed WebSocket dial). `agent-bin`'s CLI calls,
//! `peer-manager`'s TURN fetch and the phone (`mobile-client`) all go
//! through them; the pure parts (wire types, signing, URLs, device ids,
//! constants) stay in `signaling-proto`.
//!
//! It is NOT the server, NOT the WebRTC side (it only carries SDP/ICE
//! messages for `peer-manager`), and NOT a general HTTP client: [`http`]
//! holds just the signed calls of the spec.
//!
//! Every call takes the API version (`v1` by default; the agent's
//! `api_version`). A 404 where every endpoint exists means the server serves
//! another version: [`HttpError::ApiNotServed`] /
//! [`SignalingError::ApiNotServed`], permanent like a rejected signature, so
//! `run` stops with "the server does not serve API v2 at …/v2: check
//! api_version" instead of retrying forever.
//!
//! The server URL may be `http://` or `https://` (the socket is then
//! `wss://`): TLS is rustls trusting the bundled Mozilla root certificates
//! and the operating system's store (so a private CA such as mkcert's works
//! once installed; see [`http::trusted_roots`]). A failed TLS handshake or
//! certificate check is a transient failure, retried like any other.
//! Proxies: HTTP calls and the WebSocket dial both honour `ALL_PROXY`,
//! `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (ureq's reading of them); the
//! socket goes through an `http://` proxy as an HTTP CONNECT tunnel, and a
//! SOCKS or `https://` proxy is refused with a message (permanent).
//!
//! Layout:
//! - [`core`]: the sans-IO state machine holding every timing rule and every
//!   decision (no I/O, no tokio, no clock reads): when to dial, authenticate,
//!   write, drop or deliver, and what a server message means
//!   ([`core::classify`]); unit-tested with synthetic time.
//! - `client`: [`SignalingClient`], the cheap `Clone` handle (public API),
//!   built from a [`ClientConfig`] given once at construction;
//!   `client::driver`, [`SignalingDriver`], the thin tokio loop that owns the
//!   socket, the token task, the queues and one
//!   `sleep_until(core.poll_timeout())`; `client::classify`, frame parsing.
//! - [`ws`]: [`ws::dial`], the signed WebSocket upgrade (proxy tunnel, TLS
//!   for `wss://`, 15 s handshake bound) used by the driver and the phone.
//! - `proxy`: the proxy of the environment and the HTTP CONNECT tunnel.
//! - [`http`]: blocking signed requests ([`http::signed_json`]),
//!   [`http::signed_challenge`], [`http::fetch_token`] (ureq; async callers
//!   run them in `spawn_blocking`).
//! - `identity`: [`Identity`], the Ed25519 device key.
//! - `error`: [`SignalingError`], [`HttpError`].
//!
//! The client is split like a connection and its driver:
//! [`SignalingClient::new`] returns the handle, the [`SignalingDriver`]
//! (spawn [`SignalingDriver::run`] once: that is the client's `run`) and a
//! bounded `mpsc::Receiver<Signal>` of every authenticated, non-error
//! message from the server, typed ([`Signal`]). When that receiver is full
//! the driver waits for room rather than drop a message (the SDP and ICE it
//! carries matter, and its readers only dispatch); a shutdown still ends the
//! wait. `send` takes a [`Signal`] too.
//!
//! Core call contract (see [`core::Core`]): feed one input (`handle_*` with
//! the monotonic `now`, plus wall-clock `unix` seconds where JWT expiry may
//! matter), drain `poll_action` until `None` performing each action in
//! order, then sleep until `poll_timeout`. A JWT refresh sends a second
//! `auth` with the new token on the open socket (no presence churn, no gap
//! for `send`); a server that refuses it gets the link reopened instead.
//! Host sleep: [`SignalingClient::suspend`] / [`SignalingClient::resume`]
//! when the caller knows; otherwise the core notices at the next wake-up
//! that the wall clock ran ahead of the monotonic one and replaces the link
//! at once.
//!
//! ```no_run
//! use signaling_client::{ClientConfig, Identity, Signal, SignalingClient};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn example() -> Result<(), signaling_client::SignalingError> {
//! let identity = Identity::generate(); // normally loaded from the key file
//! let config = ClientConfig {
//!     hmac_secret: "deployment-secret".into(),
//!     ..ClientConfig::new(identity, "http://127.0.0.1:5000", "my-host")
//! };
//! let (client, driver, mut incoming) = SignalingClient::new(config);
//! let cancel = CancellationToken::new();
//! let runner = tokio::spawn(driver.run(cancel.clone()));
//! // One task reads what the server sends, typed.
//! tokio::spawn(async move {
//!     while let Some(signal) = incoming.recv().await {
//!         match signal {
//!             Signal::ConnectRequest { target_device_id } => println!("{target_device_id} calls"),
//!             other => println!("got {}", other.kind()),
//!         }
//!     }
//! });
//! // From any task: send (fails at once when disconnected) and wake it up.
//! let _ = client.send(Signal::Presence);
//! client.signal_activity();
//! cancel.cancel(); // or client.close()
//! runner.await.expect("run task panicked")?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod client;
pub mod core;
mod error;
pub mod http;
mod identity;
mod proxy;
pub mod ws;

pub use client::{
    ClientConfig, HANDSHAKE_TIMEOUT, INCOMING_CAPACITY, SEND_QUEUE_CAPACITY,
    STATE_CHANGES_CAPACITY, SignalingClient, SignalingDriver,
};
pub use core::ConnectionState;
pub use error::{HttpError, SignalingError};
pub use identity::Identity;
pub use signaling_proto::{Signal, SignalingMessage};
