//! `AppState`: everything the HTTP handlers and socket tasks share.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api_error::ApiError;
use crate::challenges::Challenges;
use crate::config::ServerConfig;
use crate::cors::CorsPolicy;
use crate::hub::Hub;
use crate::pairing_codes::PairingCodes;
use crate::rate_limit::{Endpoint, RateLimiter};
use crate::replay::ReplayCache;
use crate::store::Db;

/// Shared server state.
pub(crate) struct AppState {
    pub config: ServerConfig,
    /// `config.cors_origins`, checked and normalised.
    pub cors: CorsPolicy,
    pub jwt_secret: Vec<u8>,
    pub db: Db,
    pub hub: Hub,
    pub challenges: Mutex<Challenges>,
    pub codes: Mutex<PairingCodes>,
    pub replay: Mutex<ReplayCache>,
    pub limiter: Mutex<RateLimiter>,
    /// One permit per open WebSocket.
    pub sockets: Arc<Semaphore>,
    pub shutdown: CancellationToken,
    /// Every upgraded socket task: axum's graceful shutdown does not wait
    /// for upgraded connections, so `shutdown` waits here for their close
    /// frames (1001) to be written.
    pub socket_tasks: TaskTracker,
}

/// Locks a std mutex; every critical section here is panic-free, so a
/// poisoned lock still guards consistent data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.config.clock.now_unix()
    }

    /// Counts a request against `ep`'s limit for `key`.
    pub fn rate(&self, ep: Endpoint, key: &str) -> Result<(), ApiError> {
        let now = self.now();
        lock(&self.limiter)
            .check(ep, key, now)
            .map_err(ApiError::rate_limited)
    }

    /// Drops expired challenges, codes and rate windows.
    pub fn sweep(&self) {
        let now = self.now();
        lock(&self.challenges).purge(now);
        lock(&self.codes).purge(now);
        lock(&self.limiter).purge(now);
    }
}
