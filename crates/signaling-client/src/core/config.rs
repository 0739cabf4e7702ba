//! Timing knobs of the signaling core, defaulting to the values of spec
//! signaling.md §7, and the clamping rules applied to them.

use std::time::Duration;

/// Default presence interval (spec: 30 s).
pub const DEFAULT_PRESENCE_INTERVAL: Duration = Duration::from_secs(30);
/// Largest accepted presence interval: the server reaps a host silent for
/// 90 s, so presence must come at least twice in that window (spec: ≤ 45 s).
pub const MAX_PRESENCE_INTERVAL: Duration = Duration::from_secs(45);
/// Default grace added to `2 × presence` for the read deadline (spec: 10 s).
pub const DEFAULT_READ_DEADLINE_GRACE: Duration = Duration::from_secs(10);
/// Default first reconnect wait (spec: 1 s).
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest reconnect wait (spec: 30 s).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long the `auth` reply may take (spec: 10 s).
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// A cached JWT is reused while more than this remains before `exp` (spec: 5 min).
pub const DEFAULT_TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How often a connected client checks the JWT expiry (spec: 30 s).
pub const DEFAULT_TOKEN_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// First wait after a failed refresh while connected (spec: 1 min).
pub const DEFAULT_REFRESH_RETRY_INITIAL: Duration = Duration::from_secs(60);
/// Longest wait between refresh attempts while connected (spec: 15 min).
pub const DEFAULT_REFRESH_RETRY_MAX: Duration = Duration::from_secs(15 * 60);
/// Continuous failure after which the client goes dormant (spec: 5 min).
pub const DEFAULT_DORMANCY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Lifetime assumed for a JWT whose `exp` cannot be read (spec: 1 h).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// How far the wall clock may run ahead of the monotonic clock between two
/// inputs before the core concludes the host slept and replaces the link
/// (muxlink choice: one presence interval, so a host that slept long enough
/// to miss a presence reconnects at once instead of waiting out the read
/// deadline; a few seconds of NTP slew never reach it).
pub const DEFAULT_SLEEP_JUMP_THRESHOLD: Duration = Duration::from_secs(30);

/// Smallest interval any periodic knob is raised to, so a zero or tiny value
/// cannot turn the core into a busy loop.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// Smallest non-zero sleep threshold: the wall clock comes in whole seconds.
const MIN_SLEEP_JUMP: Duration = Duration::from_secs(2);

/// Timing knobs of [`Core`](super::Core). `Default` is the spec's values;
/// tests shrink them to keep suites fast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    /// Interval between `presence` messages (each followed by a WS ping).
    /// Zero means the default; larger than 45 s is clamped to 45 s.
    pub presence_interval: Duration,
    /// Grace added to `2 × presence_interval` for the rolling read deadline.
    pub read_deadline_grace: Duration,
    /// First reconnect wait. Zero means the default.
    pub initial_backoff: Duration,
    /// Longest reconnect wait.
    pub max_backoff: Duration,
    /// How long to wait for the `auth` reply.
    pub auth_timeout: Duration,
    /// Refresh the JWT this long before `exp` (capped at half the token's
    /// observed lifetime, so short-lived tokens do not refresh in a loop).
    pub token_refresh_margin: Duration,
    /// Interval of the wall-clock JWT expiry check while connected.
    pub token_check_interval: Duration,
    /// First wait after a failed refresh while connected.
    pub refresh_retry_initial: Duration,
    /// Longest wait between refresh attempts while connected.
    pub refresh_retry_max: Duration,
    /// Continuous failure after which the client stops retrying.
    pub dormancy_timeout: Duration,
    /// Lifetime assumed when a JWT's `exp` cannot be read.
    pub default_token_lifetime: Duration,
    /// Wall-clock lead over the monotonic clock that counts as host sleep
    /// (zero turns the detection off; otherwise at least 2 s, as the wall
    /// clock is read in whole seconds).
    pub sleep_jump_threshold: Duration,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            presence_interval: DEFAULT_PRESENCE_INTERVAL,
            read_deadline_grace: DEFAULT_READ_DEADLINE_GRACE,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            auth_timeout: DEFAULT_AUTH_TIMEOUT,
            token_refresh_margin: DEFAULT_TOKEN_REFRESH_MARGIN,
            token_check_interval: DEFAULT_TOKEN_CHECK_INTERVAL,
            refresh_retry_initial: DEFAULT_REFRESH_RETRY_INITIAL,
            refresh_retry_max: DEFAULT_REFRESH_RETRY_MAX,
            dormancy_timeout: DEFAULT_DORMANCY_TIMEOUT,
            default_token_lifetime: DEFAULT_TOKEN_LIFETIME,
            sleep_jump_threshold: DEFAULT_SLEEP_JUMP_THRESHOLD,
        }
    }
}

impl CoreConfig {
    /// The knobs with the spec's clamps applied: presence in `(0, 45 s]`
    /// (zero = default), initial backoff non-zero, max backoff ≥ initial,
    /// periodic checks at least 10 ms apart, a non-zero sleep threshold ≥ 2 s.
    pub fn normalized(&self) -> CoreConfig {
        let mut c = self.clone();
        if c.presence_interval.is_zero() {
            c.presence_interval = DEFAULT_PRESENCE_INTERVAL;
        }
        c.presence_interval = c.presence_interval.clamp(MIN_PERIOD, MAX_PRESENCE_INTERVAL);
        if c.initial_backoff.is_zero() {
            c.initial_backoff = DEFAULT_INITIAL_BACKOFF;
        }
        c.max_backoff = c.max_backoff.max(c.initial_backoff);
        c.token_check_interval = c.token_check_interval.max(MIN_PERIOD);
        c.refresh_retry_initial = c.refresh_retry_initial.max(MIN_PERIOD);
        c.refresh_retry_max = c.refresh_retry_max.max(c.refresh_retry_initial);
        c.auth_timeout = c.auth_timeout.max(MIN_PERIOD);
        if !c.sleep_jump_threshold.is_zero() {
            c.sleep_jump_threshold = c.sleep_jump_threshold.max(MIN_SLEEP_JUMP);
        }
        c
    }

    /// The rolling read deadline: `2 × presence + grace` (70 s by default).
    pub fn read_deadline(&self) -> Duration {
        self.presence_interval * 2 + self.read_deadline_grace
    }
}
