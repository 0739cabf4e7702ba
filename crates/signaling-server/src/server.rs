//! `Server::start`: opens storage, loads the TLS certificate when configured,
//! binds, serves HTTP + WebSocket (or https + wss) until
//! `RunningServer::shutdown`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use rand::RngCore as _;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::Router as DeviceRouter;
use crate::client_key::{ClientKey, TrustedProxies};
use crate::config::DatabaseLocation;
use crate::config::MIN_JWT_SECRET;
use crate::config::ServerConfig;
use crate::cors::CorsPolicy;
use crate::postgres::PgStore;
use crate::rate_limit::RateLimiter;
use crate::slots::{ConnSlot, Slot, Slots};
use crate::sqlite::SqliteStore;
use crate::state::AppState;
use crate::store::{Bounds, Store, StoreError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The database could not be opened or initialised.
    #[error("cannot open database: {0}")]
    Store(#[from] StoreError),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A configured CORS origin can never match a browser's `Origin`.
    #[error(
        "invalid CORS origin {origin:?}: {reason}; write it as scheme://host[:port], e.g. https://app.example.net"
    )]
    CorsOrigin {
        /// The value as configured.
        origin: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A trusted proxy entry is not an address or CIDR.
    #[error(transparent)]
    TrustedProxy(#[from] crate::client_key::CidrError),
    /// The JWT secret is too short to resist guessing.
    #[error(
        "the JWT secret is {len} bytes; use at least {MIN_JWT_SECRET} (e.g. `openssl rand -base64 48`)"
    )]
    WeakJwtSecret {
        /// Its length in bytes.
        len: usize,
    },
    /// The JWT secret file cannot be read.
    #[error("cannot read the JWT secret file {}: {source}", path.display())]
    JwtSecretFile {
        /// The file.
        path: std::path::PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The STUN responder's UDP address could not be bound.
    #[error(
        "cannot bind the STUN responder to UDP {addr}: {source}; choose another address with --stun-bind (MUXLINK_SERVER_STUN_BIND, stun_bind) or turn it off with \"off\""
    )]
    StunBind {
        /// Requested address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The bus URL (`--bus`) cannot be used.
    #[error("cannot use the bus (--bus, MUXLINK_SERVER_BUS, bus): {0}")]
    Bus(String),
    /// The metrics address (`--metrics-bind`) could not be bound.
    #[error(
        "cannot bind the metrics listener to {addr}: {source}; choose another address with --metrics-bind (MUXLINK_SERVER_METRICS_BIND, metrics_bind)"
    )]
    MetricsBind {
        /// Requested address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Requested address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
}

/// Entry point of the library.
pub struct Server;

impl Server {
    /// Opens the configured database (SQLite file, PostgreSQL, or an
    /// in-memory SQLite), migrates its schema, binds and starts serving on
    /// the current tokio runtime.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
        let store: Arc<dyn Store> = match DatabaseLocation::of(config.database.as_deref()) {
            DatabaseLocation::Sqlite(path) => Arc::new(
                tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                    .await
                    .map_err(|_| StoreError::Task)??,
            ),
            DatabaseLocation::Postgres(url) => Arc::new(PgStore::connect(&url).await?),
            DatabaseLocation::Memory => Arc::new(SqliteStore::in_memory()?),
        };
        tracing::info!(
            backend = store.backend(),
            schema = store.schema_version().await?,
            "database ready"
        );
        Self::start_with_store(config, store).await
    }

    /// Like [`Server::start`] with a caller-provided store (another backend).
    pub async fn start_with_store(
        config: ServerConfig,
        store: Arc<dyn Store>,
    ) -> Result<RunningServer, StartError> {
        // Configuration problems are reported before anything listens.
        let cors = CorsPolicy::new(&config.cors_origins).map_err(|e| StartError::CorsOrigin {
            origin: e.origin,
            reason: e.reason,
        })?;
        let proxies = TrustedProxies::parse(&config.trusted_proxies)?;
        let mut jwt_secret = config.jwt_secret.clone();
        if let Some(path) = &config.jwt_secret_file {
            let text = std::fs::read(path).map_err(|source| StartError::JwtSecretFile {
                path: path.clone(),
                source,
            })?;
            let end = text
                .iter()
                .rposition(|b| !matches!(b, b'\n' | b'\r'))
                .map_or(0, |i| i + 1);
            jwt_secret = text[..end].to_vec();
            if jwt_secret.is_empty() {
                return Err(StartError::WeakJwtSecret { len: 0 });
            }
        }
        if !jwt_secret.is_empty() && jwt_secret.len() < MIN_JWT_SECRET {
            return Err(StartError::WeakJwtSecret {
                len: jwt_secret.len(),
            });
        }
        let (tls, reloader) = match &config.tls {
            Some(files) => {
                let (acceptor, reloader) = crate::tls::load_reloading(files)?;
                (Some(acceptor), Some(reloader))
            }
            None => (None, None),
        };
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let metrics_listener = match config.metrics_bind {
            Some(addr) => Some(bind_metrics(addr).await?),
            None => None,
        };
        let stun_socket = crate::stun_responder::bind(config.stun_bind, config.bind)
            .await
            .map_err(|(addr, source)| StartError::StunBind { addr, source })?;
        let stun_addr = stun_socket.as_ref().and_then(|s| s.local_addr().ok());
        if jwt_secret.is_empty() {
            jwt_secret = vec![0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut jwt_secret);
        }
        let limits = config.limits.clone();
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let hub = match &config.bus {
            // Connects in the background: a bus that is down now makes the
            // instance not ready, not absent.
            Some(url) => DeviceRouter::with_bus(url, Arc::clone(&metrics), shutdown.clone())
                .await
                .map_err(|e| StartError::Bus(e.to_string()))?,
            None => DeviceRouter::local(),
        };
        let state = Arc::new(AppState {
            jwt_secret,
            db: store,
            hub,
            bounds: Bounds::of(&config),
            limiter: Mutex::new(RateLimiter::new(
                config.rate_limits.clone(),
                limits.max_rate_keys,
            )),
            connections: Slots::new(limits.max_connections, limits.max_connections_per_client),
            client_sockets: Slots::new(usize::MAX, limits.max_sockets_per_client),
            conn_tasks: tokio_util::task::TaskTracker::new(),
            proxies,
            sockets: Arc::new(Semaphore::new(limits.max_sockets_total)),
            shutdown: shutdown.clone(),
            socket_tasks: tokio_util::task::TaskTracker::new(),
            cors: Arc::new(cors),
            metrics,
            draining: CancellationToken::new(),
            config,
        });
        let app = crate::http_api::router(Arc::clone(&state));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(accept_loop(listener, tls, app, Arc::clone(&state)));
        let sweeper = tokio::spawn(sweep_loop(Arc::clone(&state)));
        let mut helpers = Vec::new();
        let metrics_addr = metrics_listener.as_ref().map(|(_, addr)| *addr);
        if let Some((listener, addr)) = metrics_listener {
            tracing::info!(%addr, "metrics listening (GET /metrics)");
            helpers.push(tokio::spawn(serve_metrics(listener, Arc::clone(&state))));
        }
        if let Some(socket) = stun_socket {
            if let Some(addr) = stun_addr {
                tracing::info!(%addr, "STUN responder listening on UDP");
            }
            helpers.push(tokio::spawn(crate::stun_responder::run(
                socket,
                shutdown.clone(),
            )));
        }
        if let Some(reloader) = &reloader
            && !state.config.tls_reload_interval.is_zero()
        {
            helpers.push(tokio::spawn(
                Arc::clone(reloader).watch(state.config.tls_reload_interval, shutdown.clone()),
            ));
        }
        tracing::info!(%local_addr, scheme, version = %state.config.api_version, web_client = crate::web_assets::is_built(), cors_origins = ?state.cors.origins(), "signaling server listening");
        Ok(RunningServer {
            local_addr,
            stun_addr,
            metrics_addr,
            reloader,
            helpers,
            scheme,
            shutdown,
            task,
            sweeper,
            state,
        })
    }
}

/// Accepts TCP connections until shutdown: each takes a connection slot
/// (total and per client address, trusted proxies exempt; none left = the
/// connection is closed at once), then runs in its own task.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    st: Arc<AppState>,
) {
    loop {
        let accepted = tokio::select! {
            _ = st.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off a little
                // instead of spinning (per-connection errors just repeat).
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let key = (!st.proxies.contains(peer.ip())).then(|| ClientKey::of(peer.ip()));
        let Some(slot) = st.connections.acquire(key) else {
            tracing::debug!(%peer, "connection refused: connection cap reached");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let conn = serve_connection(tcp, peer, slot, tls.clone(), app.clone(), Arc::clone(&st));
        st.conn_tasks.spawn(conn);
    }
    st.conn_tasks.close();
}

/// One connection: the TLS handshake (bounded), then HTTP/1.1 with a
/// header-read timeout (which also ends idle keep-alive connections) and
/// upgrades; on shutdown it finishes the request in flight and closes.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    slot: Slot<ClientKey>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    st: Arc<AppState>,
) {
    match tls {
        None => serve_http(TokioIo::new(tcp), peer, slot, app, &st).await,
        Some(acceptor) => {
            match crate::tls::handshake(&acceptor, tcp, crate::tls::HANDSHAKE_TIMEOUT).await {
                Ok(stream) => serve_http(TokioIo::new(stream), peer, slot, app, &st).await,
                Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            }
        }
    }
}

async fn serve_http<I>(
    io: TokioIo<I>,
    peer: SocketAddr,
    slot: Slot<ClientKey>,
    app: Router,
    st: &AppState,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let slot = ConnSlot(Arc::new(slot));
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(slot.clone());
            let mut app = app.clone();
            // Router is always ready (`poll_ready` is `Ready(Ok)`).
            tower::Service::call(&mut app, req)
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(st.config.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let served = tokio::select! {
        served = conn.as_mut() => served,
        _ = st.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await {
                Ok(served) => served,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = served {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

async fn sweep_loop(state: Arc<AppState>) {
    // Expired table entries are also dropped on access; the sweep keeps
    // memory low and deletes devices nobody paired in time.
    let every = (state.config.unpaired_device_ttl / 4)
        .clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => state.sweep().await,
        }
    }
}

/// Binds the metrics listener: `(listener, its address)`.
async fn bind_metrics(
    addr: SocketAddr,
) -> Result<(tokio::net::TcpListener, SocketAddr), StartError> {
    let bound = async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        Ok((listener, local))
    };
    bound
        .await
        .map_err(|source| StartError::MetricsBind { addr, source })
}

/// `GET /metrics` and nothing else, on the metrics listener until shutdown
/// (it keeps answering while the server drains).
async fn serve_metrics(listener: tokio::net::TcpListener, st: Arc<AppState>) {
    async fn metrics(
        axum::extract::State(st): axum::extract::State<Arc<AppState>>,
    ) -> impl axum::response::IntoResponse {
        st.metrics.set_devices_online(st.hub.device_count());
        let content_type = [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )];
        (content_type, st.metrics.encode())
    }
    let app = Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(Arc::clone(&st));
    let stop = st.shutdown.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .into_future();
    // A scrape still open 5 s into shutdown is dropped, so a stuck client
    // cannot hold the process.
    let deadline = async {
        st.shutdown.cancelled().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    tokio::select! {
        served = served => {
            if let Err(e) = served {
                tracing::warn!(error = %e, "the metrics listener failed");
            }
        }
        () = deadline => tracing::debug!("metrics connections still open at shutdown were dropped"),
    }
}

/// A started server.
pub struct RunningServer {
    local_addr: SocketAddr,
    stun_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    reloader: Option<Arc<crate::tls::CertReloader>>,
    helpers: Vec<JoinHandle<()>>,
    scheme: &'static str,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    state: Arc<AppState>,
}

impl RunningServer {
    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The UDP address of the STUN responder (the real port when configured
    /// with port 0); `None` when it is off.
    pub fn stun_addr(&self) -> Option<SocketAddr> {
        self.stun_addr
    }

    /// The address of the metrics listener (`GET /metrics`; the real port
    /// when configured with port 0); `None` when it is off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The TLS certificate handle (to check for renewed files now, without
    /// waiting for the next [`ServerConfig::tls_reload_interval`]); `None`
    /// without TLS.
    pub fn tls_reloader(&self) -> Option<&Arc<crate::tls::CertReloader>> {
        self.reloader.as_ref()
    }

    /// Bare base URL, e.g. `http://127.0.0.1:PORT`, or `https://…` with TLS
    /// (no API version).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
    }

    /// Whether the server speaks TLS (https/wss).
    pub fn is_tls(&self) -> bool {
        self.scheme == "https"
    }

    /// Open TCP connections right now.
    pub fn connection_count(&self) -> usize {
        self.state.connections.in_use()
    }

    /// Authenticated WebSocket connections right now.
    pub fn socket_count(&self) -> usize {
        self.state.hub.socket_count()
    }

    /// Starts a drain: `/readyz` answers 503 from now on, so a load
    /// balancer stops sending new clients, while everything else is served
    /// as before until [`RunningServer::shutdown`].
    pub fn start_draining(&self) {
        if !self.state.draining.is_cancelled() {
            tracing::info!("draining: /readyz answers 503");
        }
        self.state.draining.cancel();
    }

    /// Whether [`RunningServer::start_draining`] (or shutdown) was called.
    pub fn is_draining(&self) -> bool {
        self.state.draining.is_cancelled()
    }

    /// Stops accepting connections, closes every WebSocket with 1001 (going
    /// away: clients reconnect, through a load balancer to another
    /// instance), lets in-flight HTTP requests finish (5 s per connection)
    /// and stops serving; waits at most 10 s in all.
    pub async fn shutdown(self) {
        self.state.draining.cancel();
        self.shutdown.cancel();
        let sockets = &self.state.socket_tasks;
        sockets.close();
        let conns = &self.state.conn_tasks;
        let stopped = async {
            let _ = self.task.await;
            conns.wait().await;
            sockets.wait().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), stopped).await;
        let _ = self.sweeper.await;
        for helper in self.helpers {
            let _ = helper.await;
        }
        tracing::info!("signaling server stopped");
    }
}
