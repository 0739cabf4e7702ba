//! Unit tests of the signaling core: one test per timing rule, driven by a
//! scripted fake server and synthetic time (a harness that steps to the next
//! deadline, with a step cap so a livelock fails instead of hanging).

use std::time::{Duration, Instant};

use super::*;

const S: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);
const UNIX0: i64 = 1_700_000_000;
const STEP_CAP: usize = 10_000;

/// What the token endpoint answers.
#[derive(Clone, Copy, PartialEq)]
enum TokenMode {
    /// A token living this many seconds.
    Ok(i64),
    /// A token whose `exp` cannot be read.
    OkNoExp,
    Transient,
    Permanent,
}

/// How the fake server behaves; tests flip these mid-run.
struct World {
    server_up: bool,
    connect_permanent: bool,
    token: TokenMode,
    auth: AuthMode,
    /// How the server answers `auth` on an already authenticated link.
    reauth: ReauthMode,
    /// Answer each presence ping with a pong.
    pong: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum AuthMode {
    Ok,
    Rejected,
    Silent,
}

/// The server's answer to a second `auth` on an authenticated socket.
#[derive(Clone, Copy, PartialEq)]
enum ReauthMode {
    /// `auth` ok, as the bundled server does.
    Ok,
    /// `{"type":"error"}` and the socket stays open (an older server).
    Error,
    /// The server closes the socket.
    Closes,
    /// No answer at all.
    Silent,
}

type A = Action<String, String>;

struct Harness {
    core: Core<String, String>,
    world: World,
    t0: Instant,
    now: Instant,
    /// Wall clock offset from monotonic time (simulates a suspended host).
    wall_skew: i64,
    log: Vec<(Duration, A)>,
    tokens_issued: u32,
}

impl Harness {
    fn new(config: CoreConfig) -> Self {
        let t0 = Instant::now();
        Harness {
            core: Core::new(config),
            world: World {
                server_up: true,
                connect_permanent: false,
                token: TokenMode::Ok(3600),
                auth: AuthMode::Ok,
                reauth: ReauthMode::Ok,
                pong: true,
            },
            t0,
            now: t0,
            wall_skew: 0,
            log: Vec::new(),
            tokens_issued: 0,
        }
    }

    fn unix(&self) -> i64 {
        UNIX0 + self.elapsed().as_secs() as i64 + self.wall_skew
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn start(&mut self) {
        let (now, unix) = (self.now, self.unix());
        self.core.handle_start(now, unix);
        self.drain();
    }

    /// Performs every queued action against the fake server, feeding the
    /// results back at the same instant.
    fn drain(&mut self) {
        while let Some(action) = self.core.poll_action() {
            let (now, unix) = (self.now, self.unix());
            self.log.push((self.elapsed(), action.clone()));
            match action {
                Action::FetchToken => match self.world.token {
                    TokenMode::Ok(life) => {
                        self.tokens_issued += 1;
                        let t = format!("jwt-{}", self.tokens_issued);
                        self.core
                            .handle_token_obtained(now, unix, t, Some(unix + life));
                    }
                    TokenMode::OkNoExp => {
                        self.tokens_issued += 1;
                        let t = format!("jwt-{}", self.tokens_issued);
                        self.core.handle_token_obtained(now, unix, t, None);
                    }
                    TokenMode::Transient => self
                        .core
                        .handle_token_failed(now, Failure::Transient("503".into())),
                    TokenMode::Permanent => self
                        .core
                        .handle_token_failed(now, Failure::Permanent("unknown device".into())),
                },
                Action::Connect => {
                    if self.world.connect_permanent {
                        self.core.handle_connect_failed(
                            now,
                            Failure::Permanent("invalid client signature".into()),
                        );
                    } else if self.world.server_up {
                        self.core.handle_connected(now);
                    } else {
                        self.core
                            .handle_connect_failed(now, Failure::Transient("refused".into()));
                    }
                }
                Action::SendAuth { .. } if self.core.state() == ConnectionState::Connected => {
                    match self.world.reauth {
                        ReauthMode::Ok => self.core.handle_message(now, Inbound::AuthOk),
                        ReauthMode::Error => self
                            .core
                            .handle_message(now, Inbound::Error("Already authenticated".into())),
                        ReauthMode::Closes => self.core.handle_closed(now),
                        ReauthMode::Silent => {}
                    }
                }
                Action::SendAuth { .. } => match self.world.auth {
                    AuthMode::Ok => self.core.handle_message(now, Inbound::AuthOk),
                    AuthMode::Rejected => self
                        .core
                        .handle_message(now, Inbound::Error("Invalid token".into())),
                    AuthMode::Silent => {}
                },
                Action::SendPresence => {
                    if self.world.pong {
                        self.core.handle_pong(now);
                    }
                }
                Action::Close { .. }
                | Action::Send(_)
                | Action::Discard(_)
                | Action::Deliver(_)
                | Action::GoDormant
                | Action::Stop(_) => {}
            }
        }
    }

    /// Jumps to the next deadline and fires it. False when nothing is armed.
    fn step(&mut self) -> bool {
        let Some(next) = self.core.poll_timeout() else {
            return false;
        };
        assert!(next >= self.now, "deadline in the past");
        self.now = next;
        let unix = self.unix();
        self.core.handle_timeout(next, unix);
        self.drain();
        true
    }

    /// Fires every deadline up to `elapsed + d`, then sets the clock there.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..STEP_CAP {
            match self.core.poll_timeout() {
                Some(next) if next <= end => {
                    self.step();
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
        panic!("step cap reached: livelock");
    }

    /// Steps until an action matching `pred` is logged (by this call or the
    /// last input); returns its time.
    fn run_until(&mut self, pred: impl Fn(&A) -> bool) -> Duration {
        let mut from = self.log.len().saturating_sub(1);
        for _ in 0..STEP_CAP {
            if let Some((t, _)) = self.log[from..].iter().find(|(_, a)| pred(a)) {
                return *t;
            }
            from = self.log.len();
            assert!(self.step(), "no deadline left before the awaited action");
        }
        panic!("step cap reached: livelock");
    }

    fn activity(&mut self) {
        let (now, unix) = (self.now, self.unix());
        self.core.handle_activity(now, unix);
        self.drain();
    }

    fn message(&mut self, inbound: Inbound<String>) {
        let now = self.now;
        self.core.handle_message(now, inbound);
        self.drain();
    }

    fn closed(&mut self) {
        let now = self.now;
        self.core.handle_closed(now);
        self.drain();
    }

    /// Times of the logged actions matching `pred`.
    fn times(&self, pred: impl Fn(&A) -> bool) -> Vec<Duration> {
        self.log
            .iter()
            .filter(|(_, a)| pred(a))
            .map(|(t, _)| *t)
            .collect()
    }

    fn count(&self, pred: impl Fn(&A) -> bool) -> usize {
        self.times(pred).len()
    }

    fn clear_log(&mut self) {
        self.log.clear();
    }
}

fn is_connect(a: &A) -> bool {
    matches!(a, Action::Connect)
}
fn is_fetch(a: &A) -> bool {
    matches!(a, Action::FetchToken)
}
fn is_presence(a: &A) -> bool {
    matches!(a, Action::SendPresence)
}
fn is_auth(a: &A) -> bool {
    matches!(a, Action::SendAuth { .. })
}
fn closed_for(reason: CloseReason) -> impl Fn(&A) -> bool {
    move |a| matches!(a, Action::Close { reason: r } if *r == reason)
}

fn gaps(times: &[Duration]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

fn secs(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|s| Duration::from_secs(*s)).collect()
}

fn connected() -> Harness {
    let mut h = Harness::new(CoreConfig::default());
    h.start();
    assert_eq!(h.core.state(), ConnectionState::Connected);
    h
}

#[test]
fn defaults_match_the_spec() {
    let c = CoreConfig::default().normalized();
    assert_eq!(c.presence_interval, 30 * S);
    assert_eq!(c.read_deadline(), 70 * S);
    assert_eq!(c.initial_backoff, S);
    assert_eq!(c.max_backoff, 30 * S);
    assert_eq!(c.auth_timeout, 10 * S);
    assert_eq!(c.token_refresh_margin, 5 * MIN);
    assert_eq!(c.token_check_interval, 30 * S);
    assert_eq!(c.refresh_retry_initial, MIN);
    assert_eq!(c.refresh_retry_max, 15 * MIN);
    assert_eq!(c.dormancy_timeout, 5 * MIN);
}

#[test]
fn first_attempt_fetches_token_connects_and_authenticates() {
    let mut h = Harness::new(CoreConfig::default());
    assert_eq!(h.core.state(), ConnectionState::Idle);
    assert_eq!(h.core.poll_timeout(), None);
    h.start();
    let kinds: Vec<_> = h.log.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            Action::FetchToken,
            Action::Connect,
            Action::SendAuth {
                token: "jwt-1".into()
            }
        ]
    );
    assert_eq!(h.core.state(), ConnectionState::Connected);
    assert_eq!(h.core.token(), Some("jwt-1"));
}

#[test]
fn backoff_starts_at_initial_and_doubles_to_30s() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.server_up = false;
    h.start();
    h.run_for(3 * MIN);
    let connects = h.times(is_connect);
    assert_eq!(
        gaps(&connects)[..8],
        secs(&[1, 2, 4, 8, 16, 30, 30, 30])[..]
    );
    assert!(matches!(h.core.state(), ConnectionState::Backoff { wait } if wait == 30 * S));
}

#[test]
fn backoff_grows_only_when_the_elapsed_wait_is_at_least_half_the_intended_one() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.server_up = false;
    h.start(); // fails: wait 1 s
    h.step(); // waited 1 s, fails: wait 2 s
    assert_eq!(h.core.state(), ConnectionState::Backoff { wait: 2 * S });

    // Woken after a quarter of the wait: reconnects at once, wait not inflated.
    h.run_for(S / 2);
    h.clear_log();
    h.activity();
    assert_eq!(h.count(is_connect), 1);
    assert_eq!(h.core.state(), ConnectionState::Backoff { wait: 2 * S });

    // Woken after more than half of it: the wait counted, so it doubles.
    h.run_for(S + S / 5);
    h.activity();
    assert_eq!(h.core.state(), ConnectionState::Backoff { wait: 4 * S });
}

#[test]
fn backoff_resets_after_an_authenticated_session() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.server_up = false;
    h.start();
    h.run_for(20 * S); // waits 1, 2, 4, 8 → next 16
    assert!(matches!(h.core.state(), ConnectionState::Backoff { wait } if wait >= 8 * S));
    h.world.server_up = true;
    h.run_until(is_auth);
    assert_eq!(h.core.state(), ConnectionState::Connected);
    h.closed();
    assert_eq!(h.core.state(), ConnectionState::Backoff { wait: S });
}

#[test]
fn read_deadline_is_two_presence_intervals_plus_grace_of_silence() {
    let mut h = connected();
    h.world.pong = false;
    let t = h.run_until(closed_for(CloseReason::ReadDeadline));
    assert_eq!(t, 70 * S);
    // Presence kept going until then; the link is then treated as dead.
    assert_eq!(h.times(is_presence), secs(&[30, 60]));
    assert_eq!(h.core.state(), ConnectionState::Backoff { wait: S });
}

#[test]
fn read_deadline_is_rearmed_on_every_read_and_pong() {
    // Pongs alone keep the link alive.
    let mut h = connected();
    h.run_for(30 * MIN);
    assert_eq!(h.count(closed_for(CloseReason::ReadDeadline)), 0);
    assert_eq!(h.core.state(), ConnectionState::Connected);

    // Without pongs, a read every 60 s keeps it alive too.
    let mut h = connected();
    h.world.pong = false;
    for _ in 0..20 {
        h.run_for(60 * S);
        h.message(Inbound::Ignored);
    }
    assert_eq!(h.count(closed_for(CloseReason::ReadDeadline)), 0);
    // And silence after the last read ends it 70 s later.
    let last_read = h.elapsed();
    let t = h.run_until(closed_for(CloseReason::ReadDeadline));
    assert_eq!(t - last_read, 70 * S);
}

#[test]
fn presence_is_sent_every_interval_while_connected() {
    let mut h = connected();
    h.run_for(150 * S);
    assert_eq!(h.times(is_presence), secs(&[30, 60, 90, 120, 150]));
}

#[test]
fn presence_interval_is_clamped_to_45s() {
    let mut h = Harness::new(CoreConfig {
        presence_interval: 10 * MIN,
        ..CoreConfig::default()
    });
    h.start();
    h.run_for(135 * S);
    assert_eq!(h.times(is_presence), secs(&[45, 90, 135]));
    assert_eq!(h.core.config().read_deadline(), 100 * S);
    let zero = CoreConfig {
        presence_interval: Duration::ZERO,
        ..CoreConfig::default()
    };
    assert_eq!(zero.normalized().presence_interval, 30 * S);
}

#[test]
fn cached_jwt_is_reused_while_more_than_5min_before_expiry() {
    let mut h = connected();
    // Three reconnects within the token's life: one exchange in total.
    for _ in 0..3 {
        h.run_for(10 * MIN);
        h.closed();
        h.run_until(is_auth);
    }
    assert_eq!(h.count(is_fetch), 1);
    // Once inside the margin, a reconnect exchanges a new token first.
    let mut h = connected();
    h.core.handle_suspend(h.now); // keep the refresh check out of the way
    h.run_for(56 * MIN);
    h.activity();
    assert_eq!(h.count(is_fetch), 2);
    assert_eq!(h.core.token(), Some("jwt-2"));
}

/// The actions logged from the first `FetchToken` at or after `from` on.
fn actions_from_fetch(h: &Harness, from: Duration) -> Vec<A> {
    h.log
        .iter()
        .skip_while(|(t, a)| *t < from || !is_fetch(a))
        .map(|(_, a)| a.clone())
        .collect()
}

#[test]
fn jwt_refresh_is_checked_every_30s_and_reauthenticates_the_open_link() {
    let mut h = connected();
    h.clear_log();
    // Issued at 0 s, exp 3600 s: first check at or after 3300 s refreshes.
    let t = h.run_until(is_fetch);
    assert_eq!(t, 3300 * S);
    // The new token is sent as a second `auth` on the same socket: no close,
    // no dial, and the state never leaves Connected.
    assert_eq!(
        actions_from_fetch(&h, t),
        [
            Action::FetchToken,
            Action::SendAuth {
                token: "jwt-2".into()
            }
        ]
    );
    assert_eq!(h.core.state(), ConnectionState::Connected);
    assert_eq!(h.core.token(), Some("jwt-2"));
    assert_eq!(
        h.core.timers.get(Timer::AuthTimeout),
        None,
        "reply consumed"
    );
    // The session keeps its presence schedule; the next refresh follows the
    // new token's expiry (issued at 3300 s, refreshed at 6600 s).
    h.run_for(3400 * S);
    assert_eq!(h.times(is_fetch), secs(&[3300, 6600]));
    assert_eq!(h.count(is_connect), 0);
    assert_eq!(h.count(|a| matches!(a, Action::Close { .. })), 0);
    assert_eq!(h.core.next_backoff(), S);
}

#[test]
fn refused_in_place_auth_falls_back_to_reopening_the_link_with_the_new_token() {
    let mut h = connected();
    h.world.reauth = ReauthMode::Error;
    h.clear_log();
    let t = h.run_until(is_fetch);
    assert_eq!(
        actions_from_fetch(&h, t)[..5],
        [
            Action::FetchToken,
            Action::SendAuth {
                token: "jwt-2".into()
            },
            Action::Close {
                reason: CloseReason::ReauthRefused
            },
            Action::Connect,
            Action::SendAuth {
                token: "jwt-2".into()
            }
        ]
    );
    assert_eq!(h.core.state(), ConnectionState::Connected);
    // A planned reopen is no failure: no backoff wait was involved.
    assert_eq!(h.core.next_backoff(), S);
    // This server is known to refuse: the next refresh reopens straight away.
    h.clear_log();
    let t = h.run_until(is_fetch);
    assert_eq!(t, 6600 * S);
    assert_eq!(
        actions_from_fetch(&h, t)[..4],
        [
            Action::FetchToken,
            Action::Close {
                reason: CloseReason::TokenRefresh
            },
            Action::Connect,
            Action::SendAuth {
                token: "jwt-3".into()
            }
        ]
    );
    // Once a session ends for another reason, in place is tried again.
    h.closed();
    h.run_until(is_auth);
    h.clear_log();
    h.world.reauth = ReauthMode::Ok;
    let t = h.run_until(is_fetch);
    assert_eq!(
        actions_from_fetch(&h, t),
        [
            Action::FetchToken,
            Action::SendAuth {
                token: "jwt-4".into()
            }
        ]
    );
}

#[test]
fn unanswered_in_place_auth_falls_back_after_the_auth_timeout() {
    let mut h = connected();
    h.world.reauth = ReauthMode::Silent;
    h.clear_log();
    let t = h.run_until(is_fetch);
    let reopened = h.run_until(closed_for(CloseReason::ReauthRefused));
    assert_eq!(reopened - t, 10 * S);
    h.run_until(is_auth);
    assert_eq!(h.core.state(), ConnectionState::Connected);
    assert_eq!(h.core.token(), Some("jwt-2"));
}

#[test]
fn server_closing_on_in_place_auth_reconnects_at_once_with_the_new_token() {
    let mut h = connected();
    h.world.reauth = ReauthMode::Closes;
    h.clear_log();
    let t = h.run_until(is_fetch);
    assert_eq!(
        actions_from_fetch(&h, t)[..3],
        [
            Action::FetchToken,
            Action::SendAuth {
                token: "jwt-2".into()
            },
            Action::Connect,
        ]
    );
    assert_eq!(h.times(is_connect), [t]);
    assert_eq!(h.core.state(), ConnectionState::Connected);
    assert_eq!(h.core.next_backoff(), S);
}

#[test]
fn jwt_refresh_check_uses_the_wall_clock() {
    let mut h = connected();
    h.run_for(5 * MIN);
    assert_eq!(h.count(is_fetch), 1);
    // The wall clock jumped an hour, the monotonic one did not (the host
    // slept): the token is judged by the wall clock, so it is refreshed.
    h.wall_skew = 3600;
    h.run_for(30 * S);
    assert_eq!(h.count(is_fetch), 2);
}

#[test]
fn jwt_refresh_failure_backs_off_1min_doubling_to_15min_keeping_the_session() {
    let mut h = connected();
    h.world.token = TokenMode::Transient;
    h.run_for(2 * 3600 * S);
    let fetches = h.times(is_fetch);
    assert_eq!(fetches[1], 3300 * S);
    assert_eq!(
        gaps(&fetches[1..])[..6],
        secs(&[60, 120, 240, 480, 900, 900])[..]
    );
    assert_eq!(h.count(closed_for(CloseReason::TokenRefresh)), 0);
    assert_eq!(h.count(is_auth), 1);
    assert_eq!(h.core.state(), ConnectionState::Connected);
    // A later success resets the retry wait.
    h.world.token = TokenMode::Ok(3600);
    h.run_until(is_auth);
    assert_eq!(h.core.refresh_retry, MIN);
}

#[test]
fn short_lived_jwt_refreshes_at_half_life() {
    let mut h = Harness::new(CoreConfig {
        token_check_interval: S,
        ..CoreConfig::default()
    });
    h.world.token = TokenMode::Ok(60);
    h.start();
    let fetches: Vec<_> = {
        h.run_for(100 * S);
        h.times(is_fetch)
    };
    // Tokens live 60 s: refreshed every 30 s, never after expiry.
    assert_eq!(gaps(&fetches)[..3], secs(&[30, 30, 30])[..]);
}

#[test]
fn unreadable_jwt_expiry_assumes_one_hour() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.token = TokenMode::OkNoExp;
    h.start();
    assert_eq!(h.times(is_fetch), vec![Duration::ZERO]);
    h.clear_log();
    let t = h.run_until(is_fetch);
    assert_eq!(t, 3300 * S);
}

#[test]
fn dormant_after_5min_of_continuous_failure() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.server_up = false;
    h.start();
    let t = h.run_until(|a| matches!(a, Action::GoDormant));
    // The first failure was at 0 s; the first failure ≥ 300 s later goes dormant.
    assert!(t >= 5 * MIN && t < 5 * MIN + 30 * S, "{t:?}");
    assert_eq!(h.core.state(), ConnectionState::Dormant);
    assert_eq!(h.core.poll_timeout(), None);
    let n = h.log.len();
    h.run_for(3600 * S);
    assert_eq!(h.log.len(), n, "a dormant client makes no attempts");
}

#[test]
fn failure_time_is_cleared_by_an_authenticated_session() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.server_up = false;
    h.start();
    h.run_for(4 * MIN);
    h.world.server_up = true;
    h.run_until(is_auth);
    h.world.server_up = false;
    h.closed();
    h.run_for(4 * MIN);
    assert_eq!(h.count(|a| matches!(a, Action::GoDormant)), 0);
    assert!(matches!(h.core.state(), ConnectionState::Backoff { .. }));
}

#[test]
fn activity_wakes_a_dormant_client_at_once_and_resets_backoff_and_failure_time() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.server_up = false;
    h.start();
    h.run_until(|a| matches!(a, Action::GoDormant));
    h.run_for(3600 * S);
    h.clear_log();
    h.activity();
    assert_eq!(h.times(is_connect), vec![h.elapsed()]);
    assert_eq!(h.core.state(), ConnectionState::Backoff { wait: S });
    // Failure time restarted: another full 5 minutes before dormancy.
    let woke = h.elapsed();
    let t = h.run_until(|a| matches!(a, Action::GoDormant));
    assert!(t - woke >= 5 * MIN);
    // And when the server is back, activity connects.
    h.world.server_up = true;
    h.activity();
    assert_eq!(h.core.state(), ConnectionState::Connected);
}

#[test]
fn activity_during_a_backoff_wait_reconnects_at_once() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.server_up = false;
    h.start();
    h.run_for(10 * S); // in a wait of 8 s
    h.world.server_up = true;
    h.clear_log();
    h.activity();
    assert_eq!(h.times(is_connect), vec![h.elapsed()]);
    assert_eq!(h.core.state(), ConnectionState::Connected);
}

#[test]
fn activity_while_connected_does_nothing() {
    let mut h = connected();
    h.clear_log();
    h.activity();
    assert!(h.log.is_empty());
}

#[test]
fn permanent_connect_error_stops_retrying() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.connect_permanent = true;
    h.start();
    let stops: Vec<_> = h
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Stop(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(stops, vec!["invalid client signature".to_string()]);
    assert_eq!(h.core.state(), ConnectionState::Stopped);
    assert_eq!(h.core.poll_timeout(), None);
    h.activity();
    h.run_for(3600 * S);
    assert_eq!(
        h.count(|a| matches!(a, Action::Stop(_))),
        1,
        "reported once"
    );
}

#[test]
fn permanent_token_error_stops_retrying() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.token = TokenMode::Permanent;
    h.start();
    assert_eq!(h.core.state(), ConnectionState::Stopped);
    assert_eq!(h.count(|a| matches!(a, Action::Stop(_))), 1);
    // Also during a refresh of a healthy session.
    let mut h = connected();
    h.world.token = TokenMode::Permanent;
    h.run_until(|a| matches!(a, Action::Stop(_)));
    assert_eq!(h.count(closed_for(CloseReason::Stopped)), 1);
    assert_eq!(h.core.state(), ConnectionState::Stopped);
}

#[test]
fn transient_token_error_is_an_ordinary_failed_attempt() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.token = TokenMode::Transient;
    h.start();
    assert_eq!(h.core.state(), ConnectionState::Backoff { wait: S });
    h.world.token = TokenMode::Ok(3600);
    h.step();
    assert_eq!(h.core.state(), ConnectionState::Connected);
}

#[test]
fn auth_error_drops_the_cached_jwt() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.auth = AuthMode::Rejected;
    h.start();
    assert_eq!(h.count(closed_for(CloseReason::AuthRejected)), 1);
    assert_eq!(h.core.token(), None);
    h.world.auth = AuthMode::Ok;
    h.step();
    assert_eq!(
        h.count(is_fetch),
        2,
        "the next attempt exchanges a new token"
    );
    assert_eq!(h.core.token(), Some("jwt-2"));
}

#[test]
fn auth_reply_is_awaited_at_most_10s() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.auth = AuthMode::Silent;
    h.start();
    assert_eq!(h.core.state(), ConnectionState::Authenticating);
    let t = h.run_until(closed_for(CloseReason::AuthTimeout));
    assert_eq!(t, 10 * S);
    assert_eq!(h.core.token(), None);
    assert_eq!(h.core.state(), ConnectionState::Backoff { wait: S });
}

#[test]
fn handler_gets_only_authenticated_non_error_messages() {
    let mut h = Harness::new(CoreConfig::default());
    h.world.auth = AuthMode::Silent;
    h.start();
    h.message(Inbound::Message("early".into()));
    h.message(Inbound::AuthOk);
    h.message(Inbound::Error("Unknown message type: x".into()));
    h.message(Inbound::Ignored);
    h.message(Inbound::Message("connect_request".into()));
    let delivered: Vec<_> = h
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Deliver(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, vec!["connect_request".to_string()]);
    assert_eq!(h.core.state(), ConnectionState::Connected);
}

#[test]
fn suspend_closes_the_link_and_resume_reconnects() {
    let mut h = connected();
    h.clear_log();
    h.core.handle_suspend(h.now);
    h.drain();
    assert_eq!(h.count(closed_for(CloseReason::Suspend)), 1);
    assert_eq!(h.core.state(), ConnectionState::Suspended);
    assert_eq!(h.core.poll_timeout(), None);
    h.run_for(2 * 3600 * S);
    let (now, unix) = (h.now, h.unix());
    h.core.handle_resume(now, unix);
    h.drain();
    assert_eq!(h.core.state(), ConnectionState::Connected);
}

#[test]
fn shutdown_closes_the_link_and_stops_all_timers() {
    let mut h = connected();
    h.clear_log();
    h.core.handle_shutdown();
    h.drain();
    assert_eq!(h.count(closed_for(CloseReason::Shutdown)), 1);
    assert_eq!(h.core.state(), ConnectionState::Closed);
    assert_eq!(h.core.poll_timeout(), None);
    h.activity();
    assert_eq!(h.log.len(), 1);
}

#[test]
fn early_handle_timeout_is_harmless() {
    let mut h = connected();
    let before = h.core.poll_timeout();
    h.clear_log();
    for _ in 0..5 {
        let (now, unix) = (h.now, h.unix());
        h.core.handle_timeout(now, unix);
        h.drain();
    }
    assert!(h.log.is_empty());
    assert_eq!(h.core.poll_timeout(), before);
}

#[test]
fn a_refresh_running_when_the_link_drops_carries_the_next_attempt() {
    // Driven by hand so the token exchange stays outstanding.
    let mut core: Core<String, String> = Core::new(CoreConfig::default());
    let t0 = Instant::now();
    core.handle_start(t0, UNIX0);
    assert_eq!(core.poll_action(), Some(Action::FetchToken));
    core.handle_token_obtained(t0, UNIX0, "a".into(), Some(UNIX0 + 3600));
    assert_eq!(core.poll_action(), Some(Action::Connect));
    core.handle_connected(t0);
    assert!(matches!(core.poll_action(), Some(Action::SendAuth { .. })));
    core.handle_message(t0, Inbound::AuthOk);
    let t1 = t0 + 3300 * S;
    core.handle_pong(t1 - S);
    core.handle_timeout(t1, UNIX0 + 3300);
    let mut saw_fetch = false;
    while let Some(a) = core.poll_action() {
        saw_fetch |= a == Action::FetchToken;
    }
    assert!(saw_fetch);
    core.handle_closed(t1);
    let wait_end = core.poll_timeout().unwrap();
    core.handle_timeout(wait_end, UNIX0 + 3301);
    assert_eq!(core.state(), ConnectionState::FetchingToken);
    assert_eq!(
        core.poll_action(),
        None,
        "no second exchange while one runs"
    );
    core.handle_token_obtained(wait_end, UNIX0 + 3301, "b".into(), Some(UNIX0 + 7200));
    assert_eq!(core.poll_action(), Some(Action::Connect));
}

/// The host sleeps `slept`: the wall clock jumps, the monotonic one does not.
fn sleep_host(h: &mut Harness, slept: Duration) {
    h.wall_skew += slept.as_secs() as i64;
}

#[test]
fn host_sleep_replaces_the_link_at_the_first_wake_up_not_the_read_deadline() {
    let mut h = connected();
    h.run_for(10 * S);
    h.clear_log();
    sleep_host(&mut h, 2 * 3600 * S);
    // The first wake-up after resume is the presence tick at 30 s; the read
    // deadline would only fire at 70 s.
    let t = h.run_until(closed_for(CloseReason::HostSlept));
    assert_eq!(t, 30 * S);
    let at_wake: Vec<_> = h.log.iter().filter(|(at, _)| *at == t).collect();
    assert_eq!(
        at_wake.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>(),
        [
            Action::Close {
                reason: CloseReason::HostSlept
            },
            // The token expired while asleep: a new one first.
            Action::FetchToken,
            Action::Connect,
            Action::SendAuth {
                token: "jwt-2".into()
            },
        ],
        "no presence on the dead link, no backoff wait"
    );
    assert_eq!(h.core.state(), ConnectionState::Connected);
    assert_eq!(h.core.next_backoff(), S);
}

#[test]
fn a_wall_clock_lead_within_the_threshold_is_no_sleep() {
    let mut h = connected();
    h.run_for(10 * S);
    h.clear_log();
    sleep_host(&mut h, 30 * S); // exactly the default threshold
    h.run_for(5 * MIN);
    assert_eq!(h.count(closed_for(CloseReason::HostSlept)), 0);
    assert_eq!(h.count(is_connect), 0);
    // Zero turns the detection off.
    let mut h = Harness::new(CoreConfig {
        sleep_jump_threshold: Duration::ZERO,
        ..CoreConfig::default()
    });
    h.start();
    sleep_host(&mut h, 10 * MIN);
    h.run_for(MIN);
    assert_eq!(h.count(closed_for(CloseReason::HostSlept)), 0);
}

#[test]
fn handle_clock_notices_sleep_at_any_wake_up() {
    let mut h = connected();
    h.run_for(10 * S);
    h.clear_log();
    // A frame arrives one monotonic second after resume, before any timer.
    h.now += S;
    sleep_host(&mut h, 10 * MIN);
    let (now, unix) = (h.now, h.unix());
    assert!(h.core.handle_clock(now, unix));
    h.drain();
    assert_eq!(h.count(closed_for(CloseReason::HostSlept)), 1);
    assert_eq!(h.times(is_auth), [11 * S]);
    // The same readings again are no second jump.
    assert!(!h.core.handle_clock(now, unix));
    h.drain();
    assert_eq!(h.count(closed_for(CloseReason::HostSlept)), 1);
}

#[test]
fn host_sleep_ends_a_backoff_wait_and_dormancy_but_not_suspend() {
    // Backoff: the next attempt starts at once, with the backoff reset.
    let mut h = Harness::new(CoreConfig::default());
    h.world.server_up = false;
    h.start();
    h.run_for(20 * S);
    assert!(matches!(h.core.state(), ConnectionState::Backoff { .. }));
    assert!(h.core.next_backoff() > S);
    h.world.server_up = true;
    h.now += S;
    sleep_host(&mut h, 10 * MIN);
    let (now, unix) = (h.now, h.unix());
    h.core.handle_clock(now, unix);
    h.drain();
    assert_eq!(h.core.state(), ConnectionState::Connected);
    assert_eq!(h.core.next_backoff(), S);

    // Dormant: a resume from sleep counts as activity.
    let mut h = Harness::new(CoreConfig::default());
    h.world.server_up = false;
    h.start();
    h.run_for(10 * MIN);
    assert_eq!(h.core.state(), ConnectionState::Dormant);
    h.world.server_up = true;
    h.now += S;
    sleep_host(&mut h, 3600 * S);
    let (now, unix) = (h.now, h.unix());
    h.core.handle_clock(now, unix);
    h.drain();
    assert_eq!(h.core.state(), ConnectionState::Connected);

    // Suspended: only an explicit resume ends it.
    let mut h = connected();
    h.core.handle_suspend(h.now);
    h.drain();
    h.now += S;
    sleep_host(&mut h, 3600 * S);
    let (now, unix) = (h.now, h.unix());
    h.core.handle_clock(now, unix);
    h.drain();
    assert_eq!(h.core.state(), ConnectionState::Suspended);
}

#[test]
fn only_a_wall_clock_lead_past_the_threshold_counts() {
    let t0 = Instant::now();
    let mut w = clock::ClockWatch::default();
    assert!(
        !w.observe(t0, 1000, 30 * S),
        "the first reading has no reference"
    );
    // Both clocks advance together (rounding to whole seconds is no jump).
    assert!(!w.observe(t0 + 29 * S, 1030, 30 * S));
    // The wall clock leads by exactly the threshold: not yet.
    assert!(!w.observe(t0 + 30 * S, 1061, 30 * S));
    // Slept ten minutes between two readings one monotonic second apart.
    assert!(w.observe(t0 + 31 * S, 1662, 30 * S));
    // A wall clock stepped back is no sleep, and the next delta starts there.
    assert!(!w.observe(t0 + 32 * S, 900, 30 * S));
    assert!(!w.observe(t0 + 40 * S, 908, 30 * S));
    // Zero turns detection off.
    assert!(!w.observe(t0 + 41 * S, 99_999, Duration::ZERO));
}

#[test]
fn the_core_never_reads_the_clock() {
    for src in [
        include_str!("mod.rs"),
        include_str!("timer.rs"),
        include_str!("config.rs"),
        include_str!("clock.rs"),
        include_str!("backoff.rs"),
        include_str!("refresh.rs"),
        include_str!("types.rs"),
    ] {
        for banned in ["Instant::now", "SystemTime", "tokio", "std::net"] {
            assert!(!src.contains(banned), "core uses {banned}");
        }
    }
}
