//! `muxlink-signaling-server`: parses flags / `MUXLINK_SERVER_*` env / an
//! optional TOML file, starts the library server, prints the bound address
//! and drains on SIGTERM or ctrl-c: `/readyz` answers 503 at once, then
//! (after `--drain-secs`, default 0, or a second signal) the listener stops
//! accepting, every WebSocket is closed with 1001 so its client reconnects
//! (through a load balancer, to another instance), in-flight HTTP requests
//! finish (bounded), and the process exits 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use signaling_server::{ConfigFile, Server, ServerConfig, StunBind};

/// The muxlink signaling server. Flags override env, env overrides the file.
#[derive(Debug, Parser)]
#[command(name = "muxlink-signaling-server", version)]
struct Args {
    /// TOML config file.
    #[arg(long, env = "MUXLINK_SERVER_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address.
    #[arg(long, env = "MUXLINK_SERVER_BIND")]
    bind: Option<SocketAddr>,
    /// SQLite database file, or a postgres:// URL for state shared by several
    /// instances (default: in-memory SQLite, lost on exit).
    #[arg(long, env = "MUXLINK_SERVER_DATABASE", value_name = "FILE|URL")]
    database: Option<PathBuf>,
    /// nats:// URL: route relays and presence between several instances
    /// over NATS (default: this process routes alone, in memory).
    #[arg(long, env = "MUXLINK_SERVER_BUS", value_name = "URL")]
    bus: Option<String>,
    /// Serve Prometheus metrics (GET /metrics, OpenMetrics text: sockets,
    /// devices online, relays, relay latency, auth failures, rate-limit
    /// hits, store and bus errors, HTTP requests) on this separate address
    /// (default: off). Keep it off the public interface.
    #[arg(long, env = "MUXLINK_SERVER_METRICS_BIND", value_name = "ADDR")]
    metrics_bind: Option<SocketAddr>,
    /// On SIGTERM, answer 503 on /readyz for this many seconds before
    /// closing the WebSockets (1001) and stopping, so a load balancer
    /// polling /readyz takes the instance out first; a second SIGTERM or
    /// ctrl-c skips the wait. 0 (default): close at once.
    #[arg(
        long,
        env = "MUXLINK_SERVER_DRAIN_SECS",
        value_name = "SECS",
        default_value_t = 0
    )]
    drain_secs: u64,
    /// JWT signing secret, at least 32 bytes (default: random per start, so
    /// tokens die with the process). A flag's value is visible to every user
    /// of this machine (`ps`): prefer --jwt-secret-file or the environment.
    #[arg(long, env = "MUXLINK_SERVER_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// File holding the JWT signing secret (trailing newline ignored); wins
    /// over --jwt-secret.
    #[arg(long, env = "MUXLINK_SERVER_JWT_SECRET_FILE", value_name = "FILE")]
    jwt_secret_file: Option<PathBuf>,
    /// Request-signing secret shared with clients (empty: not checked).
    #[arg(long, env = "MUXLINK_SERVER_HMAC_SECRET", hide_env_values = true)]
    hmac_secret: Option<String>,
    /// JWT lifetime in seconds.
    #[arg(long, env = "MUXLINK_SERVER_JWT_LIFETIME_SECS")]
    jwt_lifetime_secs: Option<u64>,
    /// API version prefix ("" for none).
    #[arg(long, env = "MUXLINK_SERVER_API_VERSION")]
    api_version: Option<String>,
    /// Pairing code lifetime in seconds.
    #[arg(long, env = "MUXLINK_SERVER_PAIRING_TTL_SECS")]
    pairing_ttl_secs: Option<u64>,
    /// Idle socket timeout in seconds.
    #[arg(long, env = "MUXLINK_SERVER_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<u64>,
    /// Enable (true) or disable (false) rate limits.
    #[arg(long, env = "MUXLINK_SERVER_RATE_LIMITS")]
    rate_limits: Option<bool>,
    /// Maximum open WebSockets in total.
    #[arg(long, env = "MUXLINK_SERVER_MAX_SOCKETS")]
    max_sockets: Option<usize>,
    /// TURN/STUN URLs handed to clients (comma-separated).
    #[arg(long, env = "MUXLINK_SERVER_TURN_URLS", value_delimiter = ',')]
    turn_urls: Option<Vec<String>>,
    /// TURN host: shorthand for stun:/turn: on 3478 and turns: on 5349.
    #[arg(long, env = "MUXLINK_SERVER_TURN_HOST")]
    turn_host: Option<String>,
    /// Static TURN username.
    #[arg(long, env = "MUXLINK_SERVER_TURN_USERNAME")]
    turn_username: Option<String>,
    /// Static TURN credential.
    #[arg(long, env = "MUXLINK_SERVER_TURN_CREDENTIAL", hide_env_values = true)]
    turn_credential: Option<String>,
    /// TURN REST shared secret (time-limited credentials per request).
    #[arg(long, env = "MUXLINK_SERVER_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// UDP address of the STUN responder (Binding requests only), or "off".
    /// Default: 0.0.0.0:3478 when --bind has a fixed port (best effort: a
    /// port already taken only logs a warning), off for port 0.
    #[arg(long, env = "MUXLINK_SERVER_STUN_BIND", value_name = "ADDR|off")]
    stun_bind: Option<StunBind>,
    /// Seconds between checks of the TLS files for a renewal (0: never).
    #[arg(long, env = "MUXLINK_SERVER_TLS_RELOAD_SECS")]
    tls_reload_secs: Option<u64>,
    /// PEM certificate chain: serve https/wss (needs --tls-key).
    #[arg(long, env = "MUXLINK_SERVER_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "MUXLINK_SERVER_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Browser origin (scheme, host, optional port) allowed to call the API
    /// cross-origin; repeat the flag (env: comma-separated). Default: none.
    #[arg(
        long = "cors-origin",
        env = "MUXLINK_SERVER_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    cors_origins: Option<Vec<String>>,
    /// Proxy address or CIDR whose Forwarded / X-Forwarded-For header names
    /// the client; repeat the flag (env: comma-separated). Default: none.
    #[arg(
        long = "trusted-proxy",
        env = "MUXLINK_SERVER_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    trusted_proxies: Option<Vec<String>>,
    /// Seconds a client has to send a request's headers (also the idle
    /// keep-alive limit).
    #[arg(long, env = "MUXLINK_SERVER_HEADER_TIMEOUT_SECS")]
    header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request's body.
    #[arg(long, env = "MUXLINK_SERVER_BODY_TIMEOUT_SECS")]
    body_timeout_secs: Option<u64>,
    /// Seconds a WebSocket has to send `auth`.
    #[arg(long, env = "MUXLINK_SERVER_AUTH_TIMEOUT_SECS")]
    auth_timeout_secs: Option<u64>,
    /// Seconds after which a device that never paired is deleted.
    #[arg(long, env = "MUXLINK_SERVER_UNPAIRED_DEVICE_TTL_SECS")]
    unpaired_device_ttl_secs: Option<u64>,
    /// Maximum open TCP connections in total.
    #[arg(long, env = "MUXLINK_SERVER_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Maximum open TCP connections per client address (IPv6: per /64).
    #[arg(long, env = "MUXLINK_SERVER_MAX_CONNECTIONS_PER_CLIENT")]
    max_connections_per_client: Option<usize>,
    /// Maximum open WebSockets per client address (IPv6: per /64).
    #[arg(long, env = "MUXLINK_SERVER_MAX_SOCKETS_PER_CLIENT")]
    max_sockets_per_client: Option<usize>,
    /// Messages per second one WebSocket may send (sustained).
    #[arg(long, env = "MUXLINK_SERVER_WS_MESSAGES_PER_SEC")]
    ws_messages_per_sec: Option<u32>,
    /// Burst of messages one WebSocket may send above the sustained rate.
    #[arg(long, env = "MUXLINK_SERVER_WS_MESSAGE_BURST")]
    ws_message_burst: Option<u32>,
    /// Failed pairing attempts per /24 (IPv6: /48) per window.
    #[arg(long, env = "MUXLINK_SERVER_PAIRING_FAILURES_PER_PREFIX")]
    pairing_failures_per_prefix: Option<u32>,
    /// Failed pairing attempts server-wide per window (with PostgreSQL:
    /// across every instance on the database).
    #[arg(long, env = "MUXLINK_SERVER_PAIRING_FAILURES_GLOBAL")]
    pairing_failures_global: Option<u32>,
    /// Window of the failed-pairing budgets, in seconds.
    #[arg(long, env = "MUXLINK_SERVER_PAIRING_FAILURE_WINDOW_SECS")]
    pairing_failure_window_secs: Option<u64>,
    /// New devices per /24 (IPv6: /48) per hour.
    #[arg(long, env = "MUXLINK_SERVER_REGISTRATIONS_PER_PREFIX_PER_HOUR")]
    registrations_per_prefix_per_hour: Option<u32>,
    /// Rate-limit windows tracked at once (least recently used forgotten).
    #[arg(long, env = "MUXLINK_SERVER_MAX_RATE_KEYS")]
    max_rate_keys: Option<usize>,
    /// Outstanding challenges at once (oldest dropped).
    #[arg(long, env = "MUXLINK_SERVER_MAX_CHALLENGES")]
    max_challenges: Option<usize>,
    /// Live pairing codes at once (closest to expiry dropped).
    #[arg(long, env = "MUXLINK_SERVER_MAX_PAIRING_CODES")]
    max_pairing_codes: Option<usize>,
}

fn build_config(args: Args) -> anyhow::Result<ServerConfig> {
    let mut config = ServerConfig::default();
    let (mut tls_cert, mut tls_key) = (args.tls_cert, args.tls_key);
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut file =
            ConfigFile::from_toml(&text).with_context(|| format!("parsing {}", path.display()))?;
        // The TLS pair is checked once, after flags/env are layered over the file.
        tls_cert = tls_cert.or(file.tls_cert.take());
        tls_key = tls_key.or(file.tls_key.take());
        file.apply(&mut config)?;
    }
    let overrides = ConfigFile {
        bind: args.bind,
        database: args.database,
        jwt_secret: args.jwt_secret,
        hmac_secret: args.hmac_secret,
        jwt_lifetime_secs: args.jwt_lifetime_secs,
        api_version: args.api_version,
        pairing_ttl_secs: args.pairing_ttl_secs,
        challenge_ttl_secs: None,
        idle_timeout_secs: args.idle_timeout_secs,
        rate_limits: args.rate_limits,
        max_sockets_total: args.max_sockets,
        turn_urls: args.turn_urls,
        turn_host: args.turn_host,
        turn_username: args.turn_username,
        turn_credential: args.turn_credential,
        turn_secret: args.turn_secret,
        turn_ttl_secs: None,
        tls_cert,
        tls_key,
        cors_origins: args.cors_origins,
        jwt_secret_file: args.jwt_secret_file,
        trusted_proxies: args.trusted_proxies,
        header_timeout_secs: args.header_timeout_secs,
        body_timeout_secs: args.body_timeout_secs,
        auth_timeout_secs: args.auth_timeout_secs,
        unpaired_device_ttl_secs: args.unpaired_device_ttl_secs,
        max_connections: args.max_connections,
        max_connections_per_client: args.max_connections_per_client,
        max_sockets_per_client: args.max_sockets_per_client,
        ws_messages_per_sec: args.ws_messages_per_sec,
        ws_message_burst: args.ws_message_burst,
        pairing_failures_per_prefix: args.pairing_failures_per_prefix,
        pairing_failures_global: args.pairing_failures_global,
        pairing_failure_window_secs: args.pairing_failure_window_secs,
        registrations_per_prefix_per_hour: args.registrations_per_prefix_per_hour,
        max_rate_keys: args.max_rate_keys,
        max_challenges: args.max_challenges,
        max_pairing_codes: args.max_pairing_codes,
        stun_bind: args.stun_bind,
        tls_reload_secs: args.tls_reload_secs,
        bus: args.bus,
        metrics_bind: args.metrics_bind,
    };
    overrides.apply(&mut config)?;
    Ok(config)
}

/// Installs the SIGTERM handler now (a signal that arrives from here on stops
/// the server gracefully) and returns the future that waits for it or ctrl-c.
fn stop_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("muxlink-signaling-server: cannot start the tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line a person can act on, e.g. which certificate file is wrong.
            eprintln!("muxlink-signaling-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let drain = Duration::from_secs(args.drain_secs);
    let config = build_config(args)?;
    let server = Server::start(config)
        .await
        // The error's own text already names its cause (and the file to fix).
        .map_err(|e| anyhow::anyhow!("cannot start the signaling server: {e}"))?;
    // Before the line below: whoever reads it may send SIGTERM at once.
    let stop = stop_signal();
    // Scripts and tests read this line (and only this one) to find the port;
    // the STUN responder's address is logged by the library.
    println!("listening on {}", server.url());
    stop.await;
    server.start_draining();
    if !drain.is_zero() {
        tracing::info!(
            secs = drain.as_secs(),
            "draining: closing the sockets after the drain delay (a second signal closes them now)"
        );
        let again = stop_signal();
        tokio::select! {
            _ = tokio::time::sleep(drain) => {}
            _ = again => {}
        }
    }
    tracing::info!("shutting down: closing sockets (1001), finishing requests in flight");
    server.shutdown().await;
    Ok(())
}
