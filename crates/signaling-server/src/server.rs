//! `Server::start`: opens storage, loads the TLS certificate when configured,
//! binds, serves HTTP + WebSocket (or https + wss) until
//! `RunningServer::shutdown`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::serve::ListenerExt as _;
use rand::RngCore as _;
use signaling_proto::consts::REPLAY_WINDOW_SECS;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::challenges::Challenges;
use crate::config::ServerConfig;
use crate::cors::CorsPolicy;
use crate::hub::Hub;
use crate::pairing_codes::PairingCodes;
use crate::rate_limit::RateLimiter;
use crate::replay::ReplayCache;
use crate::sqlite::SqliteStore;
use crate::state::AppState;
use crate::store::{Db, Store, StoreError};

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
    /// Opens the configured SQLite database (or an in-memory one), binds and
    /// starts serving on the current tokio runtime.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
        let store: Arc<dyn Store> = match config.database.clone() {
            Some(path) => Arc::new(
                tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                    .await
                    .map_err(|_| StoreError::Task)??,
            ),
            None => Arc::new(SqliteStore::in_memory()?),
        };
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
        let tls = match &config.tls {
            Some(files) => Some(crate::tls::load_acceptor(files)?),
            None => None,
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
        let mut jwt_secret = config.jwt_secret.clone();
        if jwt_secret.is_empty() {
            jwt_secret = vec![0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut jwt_secret);
        }
        let limits = config.limits.clone();
        let shutdown = CancellationToken::new();
        let state = Arc::new(AppState {
            jwt_secret,
            db: Db::new(store),
            hub: Hub::default(),
            challenges: Mutex::new(Challenges::new(
                limits.max_challenges,
                limits.max_challenges_per_device,
            )),
            codes: Mutex::new(PairingCodes::new(limits.max_pairing_codes)),
            replay: Mutex::new(ReplayCache::new(REPLAY_WINDOW_SECS, limits.replay_cache)),
            limiter: Mutex::new(RateLimiter::new(
                config.rate_limits.clone(),
                limits.max_rate_keys,
            )),
            sockets: Arc::new(Semaphore::new(limits.max_sockets_total)),
            shutdown: shutdown.clone(),
            socket_tasks: tokio_util::task::TaskTracker::new(),
            cors,
            config,
        });
        let app = crate::http_api::router(Arc::clone(&state));
        let serve_shutdown = shutdown.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(async move {
            let make_service = app.into_make_service_with_connect_info::<SocketAddr>();
            let stop = serve_shutdown.cancelled_owned();
            let served = match tls {
                None => {
                    axum::serve(listener, make_service)
                        .with_graceful_shutdown(stop)
                        .await
                }
                Some(acceptor) => {
                    // `tap_io` gives the TLS listener axum's `ConnectInfo<SocketAddr>`.
                    let tls_listener =
                        crate::tls::TlsListener::new(listener, acceptor).tap_io(|tls| {
                            let _ = tls.get_ref().0.set_nodelay(true);
                        });
                    axum::serve(tls_listener, make_service)
                        .with_graceful_shutdown(stop)
                        .await
                }
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "server stopped with an error");
            }
        });
        let sweeper = tokio::spawn(sweep_loop(Arc::clone(&state)));
        tracing::info!(%local_addr, scheme, version = %state.config.api_version, web_client = crate::web_assets::is_built(), cors_origins = ?state.cors.origins(), "signaling server listening");
        Ok(RunningServer {
            local_addr,
            scheme,
            shutdown,
            task,
            sweeper,
            state,
        })
    }
}

async fn sweep_loop(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => state.sweep(),
        }
    }
}

/// A started server.
pub struct RunningServer {
    local_addr: SocketAddr,
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

    /// Bare base URL, e.g. `http://127.0.0.1:PORT`, or `https://…` with TLS
    /// (no API version).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
    }

    /// Whether the server speaks TLS (https/wss).
    pub fn is_tls(&self) -> bool {
        self.scheme == "https"
    }

    /// Authenticated WebSocket connections right now.
    pub fn socket_count(&self) -> usize {
        self.state.hub.socket_count()
    }

    /// Closes every socket (1001) and stops serving; waits at most 10 s.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let sockets = &self.state.socket_tasks;
        sockets.close();
        let stopped = async {
            let _ = self.task.await;
            sockets.wait().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), stopped).await;
        let _ = self.sweeper.await;
        tracing::info!("signaling server stopped");
    }
}
