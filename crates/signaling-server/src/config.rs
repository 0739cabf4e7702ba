//! Server configuration: the typed [`ServerConfig`] used by the library, and
//! [`ConfigFile`], the optional TOML file layered under CLI flags and env.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use signaling_proto::consts;

use crate::clock::Clock;
use crate::stun_responder::StunBind;
use crate::tls::{TlsError, TlsFiles};

/// A fixed-window rate limit: at most `max` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub max: u32,
    /// Window length.
    pub window: Duration,
}

impl RateLimit {
    const fn per(max: u32, secs: u64) -> RateLimit {
        RateLimit {
            max,
            window: Duration::from_secs(secs),
        }
    }
}

/// Per-endpoint limits of signaling.md §9 (key: client IP before auth, device
/// id for Bearer endpoints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// `false` turns every limit off (load tests), including the per-socket
    /// message rate of [`Limits::ws_messages_per_sec`].
    pub enabled: bool,
    /// `POST /auth/challenge`.
    pub challenge: RateLimit,
    /// `POST /auth/token`.
    pub token: RateLimit,
    /// `POST /auth/pair/initiate`.
    pub pair_initiate: RateLimit,
    /// `POST /auth/pair/complete`.
    pub pair_complete: RateLimit,
    /// `DELETE /auth/pairing`.
    pub pairing: RateLimit,
    /// `DELETE /auth/device`.
    pub device: RateLimit,
    /// `GET /turn/credentials`.
    pub turn: RateLimit,
    /// `GET /ws` upgrades.
    pub ws: RateLimit,
    /// New devices registered per address prefix (IPv4 /24, IPv6 /48).
    pub register: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            enabled: true,
            challenge: RateLimit::per(30, 60),
            token: RateLimit::per(30, 60),
            pair_initiate: RateLimit::per(10, 60),
            pair_complete: RateLimit::per(10, 60),
            pairing: RateLimit::per(10, 60),
            device: RateLimit::per(10, 60),
            turn: RateLimit::per(20, 60),
            ws: RateLimit::per(8, 10),
            register: RateLimit::per(30, 3600),
        }
    }
}

impl RateLimits {
    /// All limits off.
    pub fn disabled() -> RateLimits {
        RateLimits {
            enabled: false,
            ..RateLimits::default()
        }
    }
}

/// Size and count bounds that keep memory bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted WS text message in characters (larger → error + 1009).
    pub max_ws_message: usize,
    /// Frames above this many bytes are not even buffered (error + 1009).
    pub max_ws_frame: usize,
    /// Open sockets per device (the next one is closed with 1008).
    pub max_sockets_per_device: usize,
    /// Open sockets in total (further upgrades get 503).
    pub max_sockets_total: usize,
    /// Messages queued towards one socket before it is dropped as too slow.
    pub outbound_queue: usize,
    /// Nonces remembered by the request replay cache.
    pub replay_cache: usize,
    /// Outstanding challenges in total.
    pub max_challenges: usize,
    /// Outstanding challenges per device id (oldest dropped first).
    pub max_challenges_per_device: usize,
    /// Live pairing codes in total.
    pub max_pairing_codes: usize,
    /// Rate-limit windows tracked at once (least recently used forgotten first).
    pub max_rate_keys: usize,
    /// Open TCP connections in total (further ones are closed at accept).
    pub max_connections: usize,
    /// Open TCP connections per client address (IPv4, IPv6 /64); trusted
    /// proxies are exempt (their clients are counted per request instead).
    pub max_connections_per_client: usize,
    /// Open WebSockets per client address (further upgrades get 429).
    pub max_sockets_per_client: usize,
    /// Messages per second a WebSocket may send, sustained (1008 past it).
    pub ws_messages_per_sec: u32,
    /// Messages a WebSocket may send in a burst above the sustained rate.
    pub ws_message_burst: u32,
    /// Failed `pair/complete` attempts per address prefix (IPv4 /24, IPv6
    /// /48) per [`Limits::pairing_failure_window`].
    pub pairing_failures_per_prefix: u32,
    /// Failed `pair/complete` attempts server-wide per window (with
    /// PostgreSQL: deployment-wide, shared by every instance).
    pub pairing_failures_global: u32,
    /// Window of the failed-pairing budgets.
    pub pairing_failure_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ws_message: consts::MAX_WS_MESSAGE,
            max_ws_frame: 1 << 20,
            max_sockets_per_device: consts::MAX_SOCKETS_PER_DEVICE,
            max_sockets_total: 20_000,
            outbound_queue: 64,
            replay_cache: 100_000,
            max_challenges: 100_000,
            max_challenges_per_device: 8,
            max_pairing_codes: 10_000,
            max_rate_keys: 100_000,
            max_connections: 25_000,
            max_connections_per_client: 64,
            max_sockets_per_client: 16,
            ws_messages_per_sec: 20,
            ws_message_burst: 100,
            pairing_failures_per_prefix: 20,
            pairing_failures_global: 1000,
            pairing_failure_window: Duration::from_secs(600),
        }
    }
}

/// TURN credentials handed out by `GET /turn/credentials`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnConfig {
    /// `stun:`/`turn:`/`turns:` URLs returned to clients.
    pub urls: Vec<String>,
    /// Static username (ignored when `secret` is set).
    pub username: String,
    /// Static credential (ignored when `secret` is set).
    pub credential: String,
    /// TURN REST shared secret; when set, credentials are computed per request:
    /// `username = "<expiry>:<deviceId>"`, `credential = base64(HMAC-SHA1)`.
    pub secret: String,
    /// Lifetime of computed credentials.
    pub ttl: Duration,
}

impl TurnConfig {
    /// The usual URL set for a TURN server at `host`: STUN and TURN on 3478,
    /// TURNS on 5349.
    pub fn rest_urls(host: &str) -> Vec<String> {
        vec![
            format!("stun:{host}:3478"),
            format!("turn:{host}:3478"),
            format!("turns:{host}:5349"),
        ]
    }
}

/// Shortest JWT secret accepted (bytes).
pub const MIN_JWT_SECRET: usize = 32;

/// Where the server keeps its devices and pairings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// In-memory SQLite: lost on exit (tests, the demo).
    Memory,
    /// A SQLite file: one server process.
    Sqlite(PathBuf),
    /// A PostgreSQL URL: state shared by every instance that uses it.
    Postgres(String),
}

impl DatabaseLocation {
    /// `database` as configured: a `postgres://` or `postgresql://` URL is
    /// PostgreSQL, anything else a SQLite file.
    pub fn of(database: Option<&std::path::Path>) -> DatabaseLocation {
        let Some(path) = database else {
            return DatabaseLocation::Memory;
        };
        match path.to_str() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                DatabaseLocation::Postgres(url.to_owned())
            }
            _ => DatabaseLocation::Sqlite(path.to_owned()),
        }
    }
}

/// Everything [`crate::Server::start`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address (default `127.0.0.1:0`).
    pub bind: SocketAddr,
    /// SQLite file, or a `postgres://` / `postgresql://` URL for state shared
    /// by several instances (see [`DatabaseLocation::of`]);
    /// `None` = in-memory SQLite (lost on exit).
    pub database: Option<PathBuf>,
    /// HS256 key for JWTs, at least [`MIN_JWT_SECRET`] bytes; empty = 32
    /// random bytes at start.
    pub jwt_secret: Vec<u8>,
    /// Request-signing secret; empty = signatures not checked.
    pub hmac_secret: String,
    /// JWT lifetime.
    pub jwt_lifetime: Duration,
    /// API version prefix (`v1`; empty = no prefix).
    pub api_version: String,
    /// Pairing code lifetime.
    pub pairing_ttl: Duration,
    /// Challenge nonce lifetime.
    pub challenge_ttl: Duration,
    /// Sockets silent this long are closed (1000).
    pub idle_timeout: Duration,
    /// Sockets not authenticated within this time are closed (4001).
    pub auth_timeout: Duration,
    /// A request's headers must arrive within this time, counted from when the
    /// server starts waiting for them (so it also bounds an idle keep-alive
    /// connection and one that sends nothing); then the connection is closed.
    pub header_timeout: Duration,
    /// A request's body must arrive within this time (408 and close otherwise).
    pub body_timeout: Duration,
    /// Devices never paired are deleted this long after registering.
    pub unpaired_device_ttl: Duration,
    /// Proxies (`10.0.0.0/8`, `::1`) whose `Forwarded` / `X-Forwarded-For`
    /// name the client; nobody else's are believed. Checked at start.
    pub trusted_proxies: Vec<String>,
    /// Read the JWT secret from this file (trailing newline ignored); wins
    /// over `jwt_secret`. Read at start.
    pub jwt_secret_file: Option<PathBuf>,
    /// Write deadline per outbound WS frame.
    pub write_timeout: Duration,
    /// TURN credentials.
    pub turn: TurnConfig,
    /// Rate limits.
    pub rate_limits: RateLimits,
    /// Memory bounds.
    pub limits: Limits,
    /// Time source (tests shift it).
    pub clock: Clock,
    /// Serve https/wss with these files; `None` = plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Browser origins (`https://app.example.net`) that may call the API
    /// cross-origin; when any are set, a `/ws` upgrade whose `Origin` is
    /// neither listed nor the server's own is refused (403). Empty = no CORS
    /// headers at all and no `Origin` check. [`crate::Server::start`] checks
    /// and normalises them (lowercase, no trailing `/` or default port).
    pub cors_origins: Vec<String>,
    /// The UDP STUN responder ([`crate::stun_responder`]). The default,
    /// [`StunBind::Auto`], answers on port 3478 of every address when
    /// [`ServerConfig::bind`] has a fixed port and stays off for port 0
    /// (tests, the demo), so parallel servers never fight over 3478.
    pub stun_bind: StunBind,
    /// How often the TLS certificate and key files are checked for a change
    /// (a renewal); a changed, valid pair is used for new connections, a bad
    /// one is logged and the old pair kept. Zero = never reload.
    pub tls_reload_interval: Duration,
    /// A `nats://` URL: route relays and presence between several instances
    /// over NATS (`crate::bus`). `None` = one process routes in memory.
    pub bus: Option<String>,
    /// Serve Prometheus metrics (`GET /metrics`) on this separate address;
    /// `None` = no metrics listener.
    pub metrics_bind: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: None,
            jwt_secret: Vec::new(),
            hmac_secret: String::new(),
            jwt_lifetime: consts::JWT_LIFETIME,
            api_version: consts::DEFAULT_API_VERSION.to_owned(),
            pairing_ttl: consts::PAIRING_TIMEOUT,
            challenge_ttl: consts::CHALLENGE_TTL,
            idle_timeout: consts::SERVER_IDLE_TIMEOUT,
            auth_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            unpaired_device_ttl: Duration::from_secs(24 * 3600),
            trusted_proxies: Vec::new(),
            jwt_secret_file: None,
            write_timeout: Duration::from_secs(10),
            turn: TurnConfig {
                ttl: consts::TURN_CREDENTIAL_TTL,
                ..TurnConfig::default()
            },
            rate_limits: RateLimits::default(),
            limits: Limits::default(),
            clock: Clock::system(),
            tls: None,
            cors_origins: Vec::new(),
            stun_bind: StunBind::Auto,
            tls_reload_interval: Duration::from_secs(30),
            bus: None,
            metrics_bind: None,
        }
    }
}

/// The optional TOML file (every key optional; durations in seconds).
///
/// ```toml
/// bind = "0.0.0.0:5000"
/// database = "/var/lib/muxlink/signaling.db"
/// jwt_secret = "..."
/// hmac_secret = "..."
/// jwt_lifetime_secs = 3600
/// api_version = "v1"
/// pairing_ttl_secs = 300
/// idle_timeout_secs = 90
/// rate_limits = true
/// turn_urls = ["turn:turn.example.net:3478"]
/// turn_host = "turn.example.net"
/// turn_secret = "..."
/// tls_cert = "/etc/muxlink/fullchain.pem"   # both or neither
/// tls_key = "/etc/muxlink/privkey.pem"
/// cors_origins = ["https://app.example.net"]
/// stun_bind = "0.0.0.0:3478"                # or "off"; default: see ServerConfig::stun_bind
/// tls_reload_secs = 30                      # 0 = never re-read the certificate files
/// jwt_secret_file = "/etc/muxlink/jwt-secret"
/// trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
/// header_timeout_secs = 10
/// body_timeout_secs = 10
/// auth_timeout_secs = 10
/// unpaired_device_ttl_secs = 86400
/// max_connections = 25000
/// max_connections_per_client = 64
/// max_sockets_per_client = 16
/// ws_messages_per_sec = 20
/// ws_message_burst = 100
/// pairing_failures_per_prefix = 20
/// pairing_failures_global = 1000
/// pairing_failure_window_secs = 600
/// registrations_per_prefix_per_hour = 30
/// max_rate_keys = 100000
/// max_challenges = 100000
/// max_pairing_codes = 10000
/// bus = "nats://127.0.0.1:4222"            # several instances; default: in memory
/// metrics_bind = "127.0.0.1:9464"           # Prometheus /metrics; default: off
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ConfigFile {
    pub bind: Option<SocketAddr>,
    pub database: Option<PathBuf>,
    pub jwt_secret: Option<String>,
    pub hmac_secret: Option<String>,
    pub jwt_lifetime_secs: Option<u64>,
    pub api_version: Option<String>,
    pub pairing_ttl_secs: Option<u64>,
    pub challenge_ttl_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub rate_limits: Option<bool>,
    pub max_sockets_total: Option<usize>,
    pub turn_urls: Option<Vec<String>>,
    pub turn_host: Option<String>,
    pub turn_username: Option<String>,
    pub turn_credential: Option<String>,
    pub turn_secret: Option<String>,
    pub turn_ttl_secs: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub cors_origins: Option<Vec<String>>,
    pub jwt_secret_file: Option<PathBuf>,
    pub trusted_proxies: Option<Vec<String>>,
    pub header_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub auth_timeout_secs: Option<u64>,
    pub unpaired_device_ttl_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_connections_per_client: Option<usize>,
    pub max_sockets_per_client: Option<usize>,
    pub ws_messages_per_sec: Option<u32>,
    pub ws_message_burst: Option<u32>,
    pub pairing_failures_per_prefix: Option<u32>,
    pub pairing_failures_global: Option<u32>,
    pub pairing_failure_window_secs: Option<u64>,
    pub registrations_per_prefix_per_hour: Option<u32>,
    pub max_rate_keys: Option<usize>,
    pub max_challenges: Option<usize>,
    pub max_pairing_codes: Option<usize>,
    pub stun_bind: Option<StunBind>,
    pub tls_reload_secs: Option<u64>,
    pub bus: Option<String>,
    pub metrics_bind: Option<SocketAddr>,
}

impl ConfigFile {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<ConfigFile, toml::de::Error> {
        toml::from_str(text)
    }

    /// Overwrites the fields of `config` that this file sets. A TLS
    /// certificate or key alone is completed from `config.tls`, else it is
    /// [`TlsError::Incomplete`] (and `config` keeps its other new values).
    pub fn apply(self, config: &mut ServerConfig) -> Result<(), TlsError> {
        let secs = Duration::from_secs;
        if let Some(v) = self.bind {
            config.bind = v;
        }
        if let Some(v) = self.database {
            config.database = Some(v);
        }
        if let Some(v) = self.jwt_secret {
            config.jwt_secret = v.into_bytes();
        }
        if let Some(v) = self.hmac_secret {
            config.hmac_secret = v;
        }
        if let Some(v) = self.jwt_lifetime_secs {
            config.jwt_lifetime = secs(v);
        }
        if let Some(v) = self.api_version {
            config.api_version = v;
        }
        if let Some(v) = self.pairing_ttl_secs {
            config.pairing_ttl = secs(v);
        }
        if let Some(v) = self.challenge_ttl_secs {
            config.challenge_ttl = secs(v);
        }
        if let Some(v) = self.idle_timeout_secs {
            config.idle_timeout = secs(v);
        }
        if let Some(v) = self.rate_limits {
            config.rate_limits.enabled = v;
        }
        if let Some(v) = self.max_sockets_total {
            config.limits.max_sockets_total = v;
        }
        if let Some(host) = self.turn_host {
            config.turn.urls = TurnConfig::rest_urls(&host);
        }
        if let Some(v) = self.turn_urls {
            config.turn.urls = v;
        }
        if let Some(v) = self.turn_username {
            config.turn.username = v;
        }
        if let Some(v) = self.turn_credential {
            config.turn.credential = v;
        }
        if let Some(v) = self.turn_secret {
            config.turn.secret = v;
        }
        if let Some(v) = self.turn_ttl_secs {
            config.turn.ttl = secs(v);
        }
        if let Some(v) = self.cors_origins {
            config.cors_origins = v;
        }
        if let Some(v) = self.jwt_secret_file {
            config.jwt_secret_file = Some(v);
        }
        if let Some(v) = self.trusted_proxies {
            config.trusted_proxies = v;
        }
        if let Some(v) = self.header_timeout_secs {
            config.header_timeout = secs(v);
        }
        if let Some(v) = self.body_timeout_secs {
            config.body_timeout = secs(v);
        }
        if let Some(v) = self.auth_timeout_secs {
            config.auth_timeout = secs(v);
        }
        if let Some(v) = self.unpaired_device_ttl_secs {
            config.unpaired_device_ttl = secs(v);
        }
        let l = &mut config.limits;
        if let Some(v) = self.max_connections {
            l.max_connections = v;
        }
        if let Some(v) = self.max_connections_per_client {
            l.max_connections_per_client = v;
        }
        if let Some(v) = self.max_sockets_per_client {
            l.max_sockets_per_client = v;
        }
        if let Some(v) = self.ws_messages_per_sec {
            l.ws_messages_per_sec = v;
        }
        if let Some(v) = self.ws_message_burst {
            l.ws_message_burst = v;
        }
        if let Some(v) = self.pairing_failures_per_prefix {
            l.pairing_failures_per_prefix = v;
        }
        if let Some(v) = self.pairing_failures_global {
            l.pairing_failures_global = v;
        }
        if let Some(v) = self.pairing_failure_window_secs {
            l.pairing_failure_window = secs(v);
        }
        if let Some(v) = self.max_rate_keys {
            l.max_rate_keys = v;
        }
        if let Some(v) = self.max_challenges {
            l.max_challenges = v;
        }
        if let Some(v) = self.max_pairing_codes {
            l.max_pairing_codes = v;
        }
        if let Some(v) = self.stun_bind {
            config.stun_bind = v;
        }
        if let Some(v) = self.tls_reload_secs {
            config.tls_reload_interval = secs(v);
        }
        if let Some(v) = self.bus {
            config.bus = Some(v);
        }
        if let Some(v) = self.metrics_bind {
            config.metrics_bind = Some(v);
        }
        if let Some(v) = self.registrations_per_prefix_per_hour {
            config.rate_limits.register = RateLimit::per(v, 3600);
        }
        if self.tls_cert.is_some() || self.tls_key.is_some() {
            let old = config.tls.take();
            let cert = self.tls_cert.or(old.as_ref().map(|t| t.cert.clone()));
            let key = self.tls_key.or(old.map(|t| t.key));
            config.tls = TlsFiles::from_pair(cert, key)?;
        }
        Ok(())
    }
}
