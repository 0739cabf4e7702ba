//! Connection cleaner: a pure sweep rule (failed/closed, idle, never pinged) and
//! the small periodic task that applies it (peer-lifecycle.md §7).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::manager::PeerManager;

/// How often the cleaner sweeps.
pub const CLEANER_INTERVAL: Duration = Duration::from_secs(30);
/// A peer whose last ping is older than this is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the sweep knows about one peer.
#[derive(Debug, Clone)]
pub struct PeerSnapshot {
    /// Mobile device id.
    pub device_id: String,
    /// Peer-connection state string (`PeerState::as_str`, or "new").
    pub state: String,
    /// When key possession succeeded.
    pub authenticated_at: Option<Instant>,
    /// When the last `ping` arrived.
    pub last_ping: Option<Instant>,
}

/// Why the sweep closes a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepReason {
    /// State is `failed` or `closed` (safety net for a missed state callback).
    Dead,
    /// Last ping older than 60 s.
    Idle,
    /// Authenticated more than 60 s ago and never pinged.
    NeverPinged,
}

/// Which peers to close at `now`, each device at most once, in input order.
pub fn sweep(now: Instant, peers: &[PeerSnapshot]) -> Vec<(String, SweepReason)> {
    let mut out: Vec<(String, SweepReason)> = Vec::new();
    for p in peers {
        if out.iter().any(|(d, _)| d == &p.device_id) {
            continue;
        }
        let reason = if p.state == "failed" || p.state == "closed" {
            Some(SweepReason::Dead)
        } else if let Some(ping) = p.last_ping {
            (now.saturating_duration_since(ping) > IDLE_TIMEOUT).then_some(SweepReason::Idle)
        } else if let Some(auth) = p.authenticated_at {
            (now.saturating_duration_since(auth) > IDLE_TIMEOUT).then_some(SweepReason::NeverPinged)
        } else {
            None
        };
        if let Some(r) = reason {
            out.push((p.device_id.clone(), r));
        }
    }
    out
}

/// Periodic task applying [`sweep`] to a [`PeerManager`].
#[derive(Debug)]
pub struct ConnectionCleaner;

impl ConnectionCleaner {
    /// Spawn the sweep loop (first sweep after one `interval`); it stops when
    /// `cancel` fires. Not tracked by `close_all`, which must not wait for it.
    pub fn spawn(
        manager: Arc<PeerManager>,
        interval: Duration,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut next = tokio::time::Instant::now() + interval;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(next) => {}
                }
                next += interval;
                manager.sweep_once(Instant::now()).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, state: &str) -> PeerSnapshot {
        PeerSnapshot {
            device_id: id.to_owned(),
            state: state.to_owned(),
            authenticated_at: None,
            last_ping: None,
        }
    }

    #[test]
    fn failed_and_closed_peers_are_swept() {
        let now = Instant::now();
        let peers = [
            snap("a", "failed"),
            snap("b", "closed"),
            snap("c", "connected"),
            snap("d", "disconnected"),
        ];
        assert_eq!(
            sweep(now, &peers),
            vec![
                ("a".to_owned(), SweepReason::Dead),
                ("b".to_owned(), SweepReason::Dead)
            ]
        );
    }

    #[test]
    fn idle_peer_is_swept_after_60s_without_ping() {
        let t0 = Instant::now();
        let mut p = snap("a", "connected");
        p.authenticated_at = Some(t0);
        p.last_ping = Some(t0 + Duration::from_secs(10));
        assert!(sweep(t0 + Duration::from_secs(70), &[p.clone()]).is_empty());
        assert_eq!(
            sweep(t0 + Duration::from_secs(71), &[p]),
            vec![("a".to_owned(), SweepReason::Idle)]
        );
    }

    #[test]
    fn authenticated_peer_that_never_pings_is_swept() {
        let t0 = Instant::now();
        let mut p = snap("a", "connected");
        p.authenticated_at = Some(t0);
        assert!(sweep(t0 + Duration::from_secs(60), &[p.clone()]).is_empty());
        assert_eq!(
            sweep(t0 + Duration::from_secs(61), &[p]),
            vec![("a".to_owned(), SweepReason::NeverPinged)]
        );
    }

    #[test]
    fn unauthenticated_connecting_peer_is_left_to_the_auth_timer() {
        let t0 = Instant::now();
        let p = snap("a", "connecting");
        assert!(sweep(t0 + Duration::from_secs(3600), &[p]).is_empty());
    }

    #[test]
    fn each_device_closed_once_per_sweep() {
        let now = Instant::now();
        let peers = [snap("a", "failed"), snap("a", "closed")];
        assert_eq!(sweep(now, &peers).len(), 1);
    }
}
