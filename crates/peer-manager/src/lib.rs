//! WebRTC peers of the host agent: admission, offer/answer, trickle ICE, channel
//! authentication, lifecycle timers and cleanup.
//!
//! The host is always the offerer. [`PeerManager`], built once from a
//! [`PeerManagerConfig`] (server, API version of the TURN fetch, limits, ICE
//! settings, timers, secret loader; only the allowed device changes later),
//! takes the typed signals ([`signaling_proto::Signal`]) of the host's
//! signaling connection, admits the paired phone (peer-lifecycle.md §1)
//! and spawns ONE task per peer. That task owns the peer connection (through
//! `rtc-transport`, with the ordered reliable DataChannel `terminal`, plus the
//! one unordered `terminal-fast` channel the phone may open once authenticated,
//! docs/stream-v2.md §4) and drives
//! the peer's [`PeerCore`](core::PeerCore): one sans-IO state machine from the
//! offer through trickle ICE, grace, ICE restart and watchdog, channel
//! authentication (terminal-protocol.md §12: the phone's proof over both nonces
//! and both DTLS fingerprints, then the host's own in `auth_ok`) and the idle
//! rules, to exactly one close. Authenticated requests reach the
//! [`ProtocolHandler`] in arrival order from a per-peer dispatcher task; `ping` is
//! answered by the peer task itself, never behind the handler. Numbered `input`
//! copies from the fast channel reach `handle_fast_message` through the same
//! dispatcher, in order with the rest (dropped when it has no room: they are
//! copies); everything else on that channel is dropped unanswered, and
//! [`Peer::send_fast`] sends copies the other way without waiting.
//!
//! Not for: tmux, the meaning of requests (the handler's job), the signaling
//! socket itself (`signaling-client`), or naming `webrtc` (only `rtc-transport`).
//!
//! Layout (imports go one way: manager → task → core; nothing imports back):
//! - `core` — [`PeerCore`](core::PeerCore), its timer table, and its parts
//!   `auth_gate` (channel authentication, direction gate, decode-error replies),
//!   `fast` (which phone-opened channel is the fast one, which of its
//!   messages go on) and `candidates` (≤ 64 remote candidates before the answer and ≤ 64 after,
//!   per ICE round).
//! - `admission` — pure `connect_request` rules: allowed device, secret, limit, reconnect.
//! - `map` — pure identity rules of the peer map: a peer leaves (and is
//!   reported) only while it is its device's current peer.
//! - `throttle` — pure per-phone `connect_request` rate (burst 6, then 1/s);
//!   requests over it are dropped with a log (the spec has no reason for them).
//! - `manager` — [`PeerManager`]: admission, routing to peer inboxes (by
//!   [`Signal`](signaling_proto::Signal) variant), the peer map, `close_all`;
//!   `manager/reports` applies the tasks' close reports.
//! - `task` — the per-peer tokio task: select over inbox, WebRTC events, channel,
//!   timeout and close; performs the core's actions; reports the close up.
//! - `dispatch` — the per-peer dispatcher task in front of the handler.
//! - `events`, `config` — what a task reports up; [`PeerManagerConfig`] and
//!   what a task is given.
//! - `peer` — [`Peer`]: the handler's handle (send with backpressure and size
//!   limit, non-waiting fast copies, close).
//! - `ice_servers` — TURN credential fetch on the configured API version,
//!   10 min process-wide cache, STUN fallback.
//! - `handler`, `error` — the [`MessageSender`] / [`ProtocolHandler`] seams, errors.
//!
//! Core call contract ([`PeerCore`](core::PeerCore)): feed every input with the
//! current `std::time::Instant` (the driver takes tokio's clock and converts it,
//! so `tokio::time::pause` applies), drain `poll_action()` performing each action
//! and feeding its result back, then sleep until `poll_timeout()` and call
//! `handle_timeout`; early calls are harmless. The core never reads a clock; its
//! close is reported exactly once, and a closed peer leaves the map before the
//! handler hears `peer_disconnected`.

#![warn(missing_docs)]

pub mod admission;
mod config;
pub mod core;
mod dispatch;
pub mod error;
mod events;
mod handler;
pub mod ice_servers;
mod manager;
pub mod map;
mod peer;
mod task;
pub mod throttle;

pub use config::{DisconnectHook, NonceSource, PeerManagerConfig, SecretLoader};
pub use error::{PeerError, SendError};
pub use handler::{MessageSender, ProtocolHandler};
pub use manager::{JwtFn, PeerManager};
pub use peer::Peer;
