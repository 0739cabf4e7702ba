//! The muxlink signaling server as a library: HTTP auth/pairing/TURN endpoints
//! and the WebSocket relay of `spec/signaling.md` and `spec/pairing.md`, on
//! axum + tokio, with SQLite storage (or PostgreSQL, shared by several
//! instances). The `muxlink-signaling-server` binary,
//! `muxlink serve`, tests and the demo all start it through [`Server::start`].
//!
//! It relays only between paired devices and never sees terminal bytes; it is
//! not trusted with them either (pairing v2 and channel authentication v2 keep
//! a hostile server out), so it treats the phone's pairing confirmation as
//! opaque: checked for shape, relayed to the host, never stored. It answers
//! STUN Binding requests on UDP ([`ServerConfig::stun_bind`]) but is
//! not a TURN server. Devices and pairings outlive a restart; the short-lived
//! state (challenges, pairing codes, the request-signature replay cache, the
//! failed-pairing budget) is the store's too ([`Ephemeral`]): in memory with
//! SQLite (gone after a restart), in tables with PostgreSQL, so with several
//! instances behind a load balancer any of them honours what another issued.
//! Rate windows and socket caps stay in each instance's memory. It also
//! serves the static web client at `/` (phone browsers), which talks to the API
//! like any phone; the page never receives terminal bytes either.
//!
//! It speaks plain HTTP/WebSocket, or https/wss itself when
//! [`ServerConfig::tls`] names a PEM certificate chain and key (rustls with
//! the ring provider; files are checked at start-up, handshakes run in each
//! connection's task with a 10 s bound). Without it, put a TLS-terminating
//! reverse proxy in front: phone browsers need a secure origin for WebCrypto.
//!
//! It is meant to face the open internet: its own HTTP/1.1 accept loop (hyper)
//! caps open connections in total and per client address, closes a connection
//! whose request head does not arrive within [`ServerConfig::header_timeout`]
//! (which also ends idle keep-alive connections) and answers 408 to a body
//! slower than [`ServerConfig::body_timeout`]. A client is a [`ClientKey`]
//! (IPv4 address or IPv6 /64; behind [`ServerConfig::trusted_proxies`], the
//! forwarded address). Every table evicts its oldest entries when full
//! instead of refusing everyone (PostgreSQL's at each sweep, see [`Bounds`]).
//! Failed pairing attempts have a budget per /24 (/48) and server-wide
//! (deployment-wide on PostgreSQL); devices that never pair expire.
//!
//! Operations: `GET /healthz` (up) and `GET /readyz` (store and bus
//! reachable, not draining) on the main listener for a load balancer;
//! Prometheus metrics (`GET /metrics`, OpenMetrics text) only on the
//! separate listener of [`ServerConfig::metrics_bind`]
//! ([`RunningServer::metrics_addr`]), never on the public one: open sockets,
//! devices online, relays by type and their latency, auth failures by
//! reason, rate-limit hits, store and bus errors, HTTP requests by route and
//! status, with bounded label sets only (no device ids or addresses).
//! A drain ([`RunningServer::start_draining`], then
//! [`RunningServer::shutdown`]; the binary does both on SIGTERM, with
//! `--drain-secs` between them) turns `/readyz` to 503 at once, then stops
//! accepting, closes every WebSocket with 1001 so clients reconnect (through
//! the balancer, elsewhere), lets in-flight requests finish (5 s per
//! connection, 10 s in all) and stops.
//!
//! Layout:
//! - [`config`]: [`ServerConfig`] (library) and [`ConfigFile`] (TOML).
//! - [`server`]: [`Server::start`], [`RunningServer`], the accept loop.
//! - [`store`]: the async [`Store`] trait and its supertrait [`Ephemeral`]
//!   (the short-lived tables, with their [`Bounds`]), [`Device`], [`Pairing`]
//!   and [`Db`].
//! - [`sqlite`]: [`SqliteStore`], the rusqlite implementation (one process;
//!   its short-lived tables in memory).
//! - [`postgres`]: [`PgStore`], the PostgreSQL implementation (state shared
//!   by several instances; `--database postgres://…`).
//! - [`migrations`]: the versioned schemas of both.
//! - [`tls`]: certificate loading ([`TlsError`]) and the bounded handshake.
//! - [`client_key`]: [`ClientKey`], prefixes, [`TrustedProxies`] and forwarded headers.
//! - [`clock`]: shiftable wall clock for expiry tests.
//! - [`stun_responder`]: [`StunBind`] and the UDP STUN Binding responder
//!   (XOR-MAPPED-ADDRESS, per-client rate limit), so `stun:<host>:3478` works.
//! - `http_api`: routes, request-signing layer, body timeout, JSON errors; its
//!   handlers in `http_api::auth` (challenge, token, health), `http_api::pairing`
//!   (pair initiate/complete, unpair), `http_api::devices` (device deletion, TURN,
//!   the `/ws` upgrade) and their shared extractors in `http_api::extract`.
//! - `ws`: one WebSocket connection (auth, presence, relay, limits).
//! - `hub`: this process's online sockets per device, non-blocking fan-out.
//! - `bus`: the `Router` in front of the hub: in memory alone, or with
//!   `--bus nats://…` routing to devices on other instances through NATS
//!   (`bus::nats`: one subject per connected device, request/reply for
//!   "delivered?" and "online?"; `bus::presence`: the audit that tells
//!   phones `host_offline` when a host's instance died); its doc says what
//!   holds across instances and what stays per instance.
//! - `challenges`, `pairing_codes`, `replay`, `guess_budget`: the bounded
//!   in-memory tables behind [`SqliteStore`]'s [`Ephemeral`]; `rate_limit`:
//!   request rates per client (per instance); `lru`: the evicting map under
//!   them.
//! - `slots`: connection and socket counts per client; `token_bucket`: the
//!   per-socket message rate.
//! - `metrics`: the Prometheus registry (`Metrics` in the shared state) and
//!   the HTTP counting layer; the server serves it on the metrics listener.
//! - `api_error`: HTTP error responses; `sync`: the crate's one mutex `lock`.
//! - `cors`: CORS for the configured web-client origins and the `Origin` check of `/ws`.
//! - `web_assets`: the embedded web client served at `/` (built by `cargo xtask web`;
//!   `build.rs` embeds `web/dist` when present, pre-compressed, else a page
//!   saying how to build it).

#![warn(missing_docs)]

mod api_error;
mod bus;
mod challenges;
pub mod client_key;
pub mod clock;
pub mod config;
mod cors;
mod guess_budget;
mod http_api;
mod hub;
mod lru;
mod metrics;
pub mod migrations;
mod pairing_codes;
pub mod postgres;
mod rate_limit;
mod replay;
pub mod server;
mod slots;
pub mod sqlite;
mod state;
pub mod store;
pub mod stun_responder;
mod sync;
pub mod tls;
mod token_bucket;
mod web_assets;
mod ws;

pub use client_key::{ClientKey, TrustedProxies};
pub use clock::Clock;
pub use config::{
    ConfigFile, DatabaseLocation, Limits, MIN_JWT_SECRET, RateLimit, RateLimits, ServerConfig,
    TurnConfig,
};
pub use postgres::PgStore;
pub use server::{RunningServer, Server, StartError};
pub use sqlite::SqliteStore;
pub use store::{
    Bounds, Db, Device, DeviceType, Ephemeral, GuessLimits, Pairing, PendingPairing, Store,
    StoreError,
};
pub use stun_responder::{StunBind, StunBindError};
pub use tls::{TlsError, TlsFiles};
pub use web_assets::files as web_client_files;
