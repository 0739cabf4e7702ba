//! The muxlink signaling server as a library: HTTP auth/pairing/TURN endpoints
//! and the WebSocket relay of `spec/signaling.md` and `spec/pairing.md`, on
//! axum + tokio, with SQLite storage. The `muxlink-signaling-server` binary,
//! `muxlink serve`, tests and the demo all start it through [`Server::start`].
//!
//! It relays only between paired devices and never sees terminal bytes; it is
//! not trusted with them either (pairing v2 and channel authentication v2 keep
//! a hostile server out), so it treats the phone's pairing confirmation as
//! opaque: checked for shape, relayed to the host, never stored. It is
//! not a TURN server, and keeps no state beyond devices and pairings across
//! restarts (challenges, pairing codes, rate windows live in memory). It also
//! serves the static web client at `/` (phone browsers), which talks to the API
//! like any phone; the page never receives terminal bytes either.
//!
//! It speaks plain HTTP/WebSocket, or https/wss itself when
//! [`ServerConfig::tls`] names a PEM certificate chain and key (rustls with
//! the ring provider; files are checked at start-up, handshakes run beside the
//! accept loop with a 10 s bound). Without it, put a TLS-terminating reverse
//! proxy in front: phone browsers need a secure origin for WebCrypto.
//!
//! Layout:
//! - [`config`]: [`ServerConfig`] (library) and [`ConfigFile`] (TOML).
//! - [`server`]: [`Server::start`] and [`RunningServer`].
//! - [`store`]: the [`Store`] trait, [`Device`], and [`Db`] (blocking calls off the executor).
//! - [`sqlite`]: [`SqliteStore`], the rusqlite implementation.
//! - [`tls`]: certificate loading ([`TlsError`]) and the TLS listener for axum.
//! - [`clock`]: shiftable wall clock for expiry tests.
//! - `http_api`: routes, request-signing layer, JSON errors.
//! - `ws`: one WebSocket connection (auth, presence, relay, limits).
//! - `hub`: online sockets per device, non-blocking fan-out.
//! - `challenges`, `pairing_codes`, `replay`, `rate_limit`: bounded in-memory tables.
//! - `api_error`: HTTP error responses.
//! - `cors`: CORS for the configured web-client origins and the `Origin` check of `/ws`.
//! - `web_assets`: the embedded web client served at `/` (built by `cargo xtask web`;
//!   `build.rs` embeds `web/dist` when present, else a page saying how to build it).

#![warn(missing_docs)]

mod api_error;
mod challenges;
pub mod client_key;
pub mod clock;
pub mod config;
mod cors;
mod guess_budget;
mod http_api;
mod hub;
mod lru;
mod pairing_codes;
mod rate_limit;
mod replay;
pub mod server;
mod slots;
pub mod sqlite;
mod state;
pub mod store;
pub mod tls;
mod token_bucket;
mod web_assets;
mod ws;

pub use client_key::{ClientKey, TrustedProxies};
pub use clock::Clock;
pub use config::{
    ConfigFile, Limits, MIN_JWT_SECRET, RateLimit, RateLimits, ServerConfig, TlsFiles, TurnConfig,
};
pub use server::{RunningServer, Server, StartError};
pub use sqlite::SqliteStore;
pub use store::{Db, Device, DeviceType, Pairing, Store, StoreError};
pub use tls::TlsError;
pub use web_assets::files as web_client_files;
