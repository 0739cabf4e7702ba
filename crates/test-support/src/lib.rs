//! Test helpers shared by the integration suites: fault proxies for TCP and UDP,
//! unique names for private tmux sockets, and a bounded wait for a condition.
//!
//! For tests only: nothing here is used by the shipped binaries. Everything binds
//! to 127.0.0.1, every queue is bounded, and every proxy stops on `stop()` or drop.
//!
//! Layout:
//! - `tcp`: [`TcpFaultProxy`], a TCP relay with pass / delay / black-hole / cut / refuse.
//! - `udp`: [`UdpFaultProxy`], a NAT-like UDP relay with drop rate, delay and black-hole.
//! - `util`: [`unique_name`] and [`wait_until`].

#![warn(missing_docs)]

mod tcp;
mod udp;
mod util;

pub use tcp::{TcpFaultProxy, TcpMode};
pub use udp::{UdpFaultProxy, UdpStats};
pub use util::{unique_name, wait_until};
