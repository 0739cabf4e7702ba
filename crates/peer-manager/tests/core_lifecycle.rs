//! Peer-lifecycle rules §4 and §7 on the pair harness (synthetic time, no
//! WebRTC): grace, ICE restart, answer watchdog, failed/closed, the idle,
//! never-pinged and never-opened timers, cleanup identity and exactly-once close.

#![allow(clippy::unwrap_used)]

mod pair;

use std::sync::Arc;
use std::time::Duration;

use pair::*;
use peer_manager::core::{
    ANSWER_WATCHDOG, CHANNEL_OPEN_TIMEOUT, CloseReason, DISCONNECT_GRACE, IDLE_TIMEOUT, LinkState,
    Timer,
};
use peer_manager::map::PeerMap;
use terminal_protocol::Request;

fn authenticated() -> Pair {
    let mut p = Pair::new(PhoneOpts::default());
    p.run_until_authenticated();
    p
}

/// Disconnected: a 10 s grace; then an ICE-restart offer (same message type)
/// and a 20 s watchdog; the phone answers, the path comes back, the watchdog
/// is cancelled and the peer stays authenticated.
#[test]
fn grace_then_ice_restart_and_recovery_keeps_the_peer() {
    let mut p = authenticated();
    p.net_up = false;
    p.link(LinkState::Disconnected);
    let t = p.now;
    assert_eq!(p.timer(Timer::Grace), Some(t + DISCONNECT_GRACE));
    p.run_for(DISCONNECT_GRACE - Duration::from_millis(1));
    assert_eq!(p.offers, vec![false], "no restart inside the grace");
    p.net_up = true;
    p.run_for(Duration::from_millis(1));
    assert_eq!(p.offers, vec![false, true]);
    assert_eq!(p.timer(Timer::Watchdog), Some(p.now + ANSWER_WATCHDOG));
    p.run_for(secs(1));
    assert_eq!(p.host.link_state(), LinkState::Connected);
    assert_eq!(p.timer(Timer::Watchdog), None);
    assert_eq!(p.answers_applied, 2);
    assert!(
        p.host.is_authenticated(),
        "authentication survives the restart"
    );
    p.run_for(secs(100));
    assert!(p.closes.is_empty());
    assert!(p.pongs > 5, "pings flow again");
}

/// Back to connected within the grace: no restart at all.
#[test]
fn reconnect_within_grace_cancels_it() {
    let mut p = authenticated();
    p.link(LinkState::Disconnected);
    p.run_for(secs(3));
    p.link(LinkState::Connected);
    assert_eq!(p.timer(Timer::Grace), None);
    p.run_for(secs(30));
    assert_eq!(p.offers, vec![false]);
    assert!(p.closes.is_empty());
}

/// A second `disconnected` does not restart the grace period.
#[test]
fn repeated_disconnected_keeps_the_first_grace_deadline() {
    let mut p = authenticated();
    p.link(LinkState::Disconnected);
    let first = p.timer(Timer::Grace);
    p.run_for(secs(4));
    p.link(LinkState::Disconnected);
    assert_eq!(p.timer(Timer::Grace), first);
}

/// The half-grace rule: the timer fired early by the wall clock (system
/// sleep) is re-armed once for the rest; the second firing restarts.
#[test]
fn grace_fired_early_by_the_wall_clock_is_rearmed_once() {
    let mut p = authenticated();
    p.net_up = false;
    p.link(LinkState::Disconnected);
    // Only 2 s of wall time pass while the monotonic clock reaches the deadline.
    p.run_for(DISCONNECT_GRACE - Duration::from_millis(1));
    p.wall -= DISCONNECT_GRACE - secs(2);
    p.run_for(Duration::from_millis(1));
    assert_eq!(p.offers, vec![false], "re-armed, not restarted");
    assert_eq!(p.timer(Timer::Grace), Some(p.now + secs(8)));
    p.wall -= secs(8);
    p.run_for(secs(8));
    assert_eq!(p.offers, vec![false, true], "once only");
}

/// No recovery after the restart: the watchdog closes the peer, once.
#[test]
fn watchdog_closes_a_peer_that_does_not_come_back() {
    let mut p = authenticated();
    p.net_up = false;
    p.link(LinkState::Disconnected);
    let t = p.now;
    assert_eq!(p.run_until_closed(secs(60)), CloseReason::Watchdog);
    assert_eq!(p.closes[0].0, t + DISCONNECT_GRACE + ANSWER_WATCHDOG);
    assert_eq!(p.offers, vec![false, true]);
    p.run_for(secs(600));
    p.closed_once();
}

/// The restart offer cannot be made: cleanup at once.
#[test]
fn restart_offer_failure_closes() {
    let mut p = authenticated();
    p.opts.offers_work = false;
    p.link(LinkState::Disconnected);
    assert_eq!(p.run_until_closed(secs(11)), CloseReason::RestartFailed);
}

/// `failed` or `closed` from the stack: cleanup at once, timers cancelled.
#[test]
fn failed_or_closed_link_closes_at_once() {
    for (state, why) in [
        (LinkState::Failed, CloseReason::TransportFailed),
        (LinkState::Closed, CloseReason::TransportClosed),
    ] {
        let mut p = authenticated();
        p.link(LinkState::Disconnected);
        p.link(state);
        assert_eq!(p.closed_once(), why);
        assert_eq!(p.host.poll_timeout(), None);
    }
}

/// §7: a peer whose last ping is older than 60 s is closed, 60 s after it.
#[test]
fn idle_peer_is_closed_60s_after_its_last_ping() {
    let mut p = authenticated();
    p.run_for(secs(120));
    assert!(p.closes.is_empty(), "pinging every 15 s keeps it");
    p.opts.ping_every = None;
    // The ping already scheduled still goes out, then no more.
    assert_eq!(p.run_until_closed(secs(200)), CloseReason::Idle);
    let last_ping = *p.pings_sent.last().unwrap() + LATENCY;
    assert_eq!(p.closes[0].0, last_ping + IDLE_TIMEOUT);
}

/// §7: an authenticated peer that never pings is closed 60 s after authenticating.
#[test]
fn authenticated_peer_that_never_pings_is_closed_after_60s() {
    let mut p = Pair::new(PhoneOpts {
        ping_every: None,
        ..PhoneOpts::default()
    });
    p.run_until_authenticated();
    let auth = p.authenticated_at.unwrap();
    assert_eq!(p.run_until_closed(secs(120)), CloseReason::NeverPinged);
    assert_eq!(p.closes[0].0, auth + IDLE_TIMEOUT);
}

/// A phone that never answers leaves no peer behind: the channel never
/// opened, so the peer is closed 30 s after it was made.
#[test]
fn channel_that_never_opens_is_closed() {
    let mut p = Pair::new(PhoneOpts {
        answers: false,
        ..PhoneOpts::default()
    });
    let t0 = p.now;
    assert_eq!(
        p.run_until_closed(secs(60)),
        CloseReason::ChannelNeverOpened
    );
    assert_eq!(p.closes[0].0, t0 + CHANNEL_OPEN_TIMEOUT);
    // Connected but the channel never opens: the same rule.
    let mut p = Pair::new(PhoneOpts {
        channel_opens: false,
        ..PhoneOpts::default()
    });
    assert_eq!(
        p.run_until_closed(secs(60)),
        CloseReason::ChannelNeverOpened
    );
}

/// The channel closing closes the peer.
#[test]
fn channel_closed_closes_the_peer() {
    let mut p = authenticated();
    p.host.handle_channel_closed(p.now);
    p.run_for(secs(1));
    assert_eq!(p.closed_once(), CloseReason::ChannelClosed);
}

/// Exactly once: after the close every input is ignored, no timer is left and
/// no second close comes, whatever arrives.
#[test]
fn close_is_reported_exactly_once_and_nothing_follows() {
    let mut p = authenticated();
    p.host.handle_close(p.now);
    p.host.handle_close(p.now);
    let now = p.now;
    p.host.handle_state(now, p.wall, LinkState::Failed);
    p.host.handle_state(now, p.wall, LinkState::Disconnected);
    p.host.handle_channel_closed(now);
    p.host.handle_send_failed(now);
    p.host.handle_setup_failed(now);
    p.host.handle_offer_sent(now, false);
    p.host.handle_received(now, &Request::ListSessions.encode());
    p.host.handle_signal(now, answer("v=0\r\n"));
    p.host.handle_timeout(now + secs(3600), p.wall);
    assert_eq!(p.host.poll_timeout(), None);
    p.run_for(secs(600));
    assert_eq!(p.closed_once(), CloseReason::Local);
    assert!(p.delivered.is_empty());
}

/// Cleanup identity (§1 step 4, §4): a replaced peer's late close neither
/// evicts its successor nor is reported; the current peer's close is, once;
/// `close_peer` removes it first, so its close is not reported either.
#[test]
fn only_the_current_peer_is_removed_and_reported() {
    let mut map: PeerMap<&str> = PeerMap::default();
    let old = Arc::new("old");
    let new = Arc::new("new");
    map.insert(PHONE, old.clone());
    assert!(Arc::ptr_eq(&map.insert(PHONE, new.clone()).unwrap(), &old));
    assert!(
        !map.remove_if_current(PHONE, &old),
        "the replaced one is silent"
    );
    assert!(Arc::ptr_eq(map.get(PHONE).unwrap(), &new));
    assert!(
        map.remove_if_current(PHONE, &new),
        "the current one is reported"
    );
    assert!(!map.remove_if_current(PHONE, &new), "once");
    map.insert(PHONE, old.clone());
    map.remove(PHONE);
    assert!(
        !map.remove_if_current(PHONE, &old),
        "close_peer: not reported"
    );
    assert!(map.is_empty());
}

/// The pure modules never read a clock or name tokio: time is an input. (A
/// grep, the weaker stand-in for clippy's `disallowed-methods`, which is
/// workspace-wide.)
#[test]
fn pure_modules_read_no_clock() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<_> = std::fs::read_dir(src.join("core"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.extend(["admission.rs", "map.rs", "throttle.rs"].map(|f| src.join(f)));
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for banned in ["Instant::now", "SystemTime::now", "tokio::"] {
            assert!(!code.contains(banned), "{} uses {banned}", f.display());
        }
    }
}
