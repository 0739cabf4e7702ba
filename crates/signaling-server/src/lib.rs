//! The muxlink signaling server as a library: HTTP auth/pairing/TURN endpoints
//! and the WebSocket relay of `spec/signaling.md` and `spec/pairing.md`, on
//! axum + tokio, with SQLite storage. The `muxlink-signaling-server` binary,
//! `muxlink serve`, tests and the demo all start it through [`Server::start`].
//!
//! It relays only between paired devices and never sees terminal bytes. It is
//! not a TURN server, and keeps no state beyond devices and pairings across
//! restarts (challenges, pairing codes, rate windows live in memory). It also
//! serves the static web client at `/` (phone browsers), which talks to the API
//! like any phone; the page never receives terminal bytes either.
//!
//! Layout:
//! - [`config`]: [`ServerConfig`] (library) and [`ConfigFile`] (TOML).
//! - [`server`]: [`Server::start`] and [`RunningServer`].
//! - [`store`]: the [`Store`] trait, [`Device`], and [`Db`] (blocking calls off the executor).
//! - [`sqlite`]: [`SqliteStore`], the rusqlite implementation.
//! - [`clock`]: shiftable wall clock for expiry tests.
//! - `http_api`: routes, request-signing layer, JSON errors.
//! - `ws`: one WebSocket connection (auth, presence, relay, limits).
//! - `hub`: online sockets per device, non-blocking fan-out.
//! - `challenges`, `pairing_codes`, `replay`, `rate_limit`: bounded in-memory tables.
//! - `api_error`: HTTP error responses.
//! - `web_assets`: the embedded web client served at `/` (built by `cargo xtask web`;
//!   `build.rs` embeds `web/dist` when present, else a page saying how to build it).

#![warn(missing_docs)]

mod api_error;
mod challenges;
pub mod clock;
pub mod config;
mod http_api;
mod hub;
mod pairing_codes;
mod rate_limit;
mod replay;
pub mod server;
pub mod sqlite;
mod state;
pub mod store;
mod web_assets;
mod ws;

pub use clock::Clock;
pub use config::{ConfigFile, Limits, RateLimit, RateLimits, ServerConfig, TurnConfig};
pub use server::{RunningServer, Server, StartError};
pub use sqlite::SqliteStore;
pub use store::{Db, Device, DeviceType, Pairing, Store, StoreError};
