//! Test helpers shared by the integration suites: fault proxies for TCP and UDP,
//! a tmux server on a private socket, unique names, and a bounded wait for a
//! condition.
//!
//! For tests only: nothing here is used by the shipped binaries. Everything binds
//! to 127.0.0.1, every queue is bounded, and every proxy stops on `stop()` or drop.
//!
//! Layout:
//! - `tcp`: [`TcpFaultProxy`], a TCP relay with pass / delay / black-hole / cut / refuse.
//! - `udp`: [`UdpFaultProxy`], a NAT-like UDP relay with drop rate, delay and black-hole.
//! - `tmux`: [`PrivateTmux`] (`tmux -L <unique>`, killed on drop), the one tmux
//!   wrapper of the tests, e2e suite and demo.
//! - `util`: [`unique_name`], [`wait_until`] and [`wait_until_blocking`].
//! - `postgres`: [`PrivatePostgres`], a PostgreSQL cluster of the test's own
//!   (`initdb` in a temporary directory, a free loopback port).
//! - `nats`: [`PrivateNats`], a `nats-server` of the test's own on a free
//!   loopback port (the bus between several signaling instances).

#![warn(missing_docs)]

mod nats;
mod postgres;
mod tcp;
pub mod tmux;
mod udp;
mod util;

pub use nats::PrivateNats;
pub use postgres::PrivatePostgres;
pub use tcp::{TcpFaultProxy, TcpMode};
pub use tmux::PrivateTmux;
pub use udp::{UdpFaultProxy, UdpStats};
pub use util::{unique_name, wait_until, wait_until_blocking};
