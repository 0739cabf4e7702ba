//! `AppState`: everything the HTTP handlers and socket tasks share.

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api_error::ApiError;
use crate::bus::Router;
use crate::client_key::{ClientKey, TrustedProxies};
use crate::config::ServerConfig;
use crate::cors::CorsPolicy;
use crate::metrics::Metrics;
use crate::rate_limit::{Endpoint, RateKey, RateLimiter};
use crate::slots::Slots;
use crate::store::{Bounds, Db};

/// Shared server state.
pub(crate) struct AppState {
    pub config: ServerConfig,
    /// `config.cors_origins`, checked and normalised.
    pub cors: Arc<CorsPolicy>,
    pub jwt_secret: Vec<u8>,
    pub db: Db,
    /// Where a device's sockets are: here, and with `--bus` on other instances.
    pub hub: Router,
    /// Lifetimes and bounds of the store's short-lived tables (challenges,
    /// pairing codes, replay cache, guess budget), from `config`.
    pub bounds: Bounds,
    /// Request rates per client: per instance, even with a shared store.
    pub limiter: Mutex<RateLimiter>,
    /// Open TCP connections, per client address (trusted proxies exempt).
    pub connections: Slots<ClientKey>,
    /// Open WebSockets per client address.
    pub client_sockets: Slots<ClientKey>,
    /// Every connection task (the accept loop's children).
    pub conn_tasks: TaskTracker,
    /// Whose forwarding headers are believed.
    pub proxies: TrustedProxies,
    /// One permit per open WebSocket.
    pub sockets: Arc<Semaphore>,
    pub shutdown: CancellationToken,
    /// Every upgraded socket task: axum's graceful shutdown does not wait
    /// for upgraded connections, so `shutdown` waits here for their close
    /// frames (1001) to be written.
    pub socket_tasks: TaskTracker,
    /// Prometheus counters and gauges (`GET /metrics` on `config.metrics_bind`).
    pub metrics: Arc<Metrics>,
    /// Cancelled when a drain starts (`/readyz` answers 503), before
    /// `shutdown` closes the sockets.
    pub draining: CancellationToken,
}

pub(crate) use crate::sync::lock;

impl AppState {
    pub fn now(&self) -> i64 {
        self.config.clock.now_unix()
    }

    /// Counts a request against `ep`'s limit for `key`.
    pub fn rate(&self, ep: Endpoint, key: RateKey) -> Result<(), ApiError> {
        let now = self.now();
        lock(&self.limiter)
            .check(ep, &key, now)
            .map_err(ApiError::rate_limited)
    }

    /// True when `device` never paired and outlived its unpaired lifetime.
    pub fn is_expired(&self, device: &crate::store::Device) -> bool {
        !device.ever_paired && device.created_at < self.unpaired_cutoff()
    }

    /// The device `id`, unless it does not exist or has expired unpaired.
    pub async fn live_device(
        &self,
        id: &str,
    ) -> Result<Option<crate::store::Device>, crate::store::StoreError> {
        let device = self.db.device(id).await?;
        Ok(device.filter(|d| !self.is_expired(d)))
    }

    /// Registration time before which a never-paired device is expired.
    pub fn unpaired_cutoff(&self) -> i64 {
        let ttl = i64::try_from(self.config.unpaired_device_ttl.as_secs()).unwrap_or(i64::MAX);
        self.now().saturating_sub(ttl)
    }

    /// Drops expired challenges, codes, nonces, rate windows and guess
    /// budgets (trimming the store's tables to their bounds), and deletes
    /// devices that were never paired within their lifetime.
    pub async fn sweep(&self) {
        let now = self.now();
        lock(&self.limiter).purge(now);
        if let Err(e) = self.db.purge_ephemeral(now, &self.bounds).await {
            tracing::warn!(error = %e, "purging expired challenges and codes failed");
            self.metrics.store_error();
        }
        let cutoff = self.unpaired_cutoff();
        match self.db.delete_unpaired(cutoff).await {
            Ok(gone) => {
                for id in gone {
                    tracing::info!(device = %id, "deleted a device that never paired");
                    let code = signaling_proto::consts::CLOSE_DEVICE_NOT_FOUND;
                    self.hub.kill_device(&id, code, "device expired").await;
                    if let Err(e) = self.db.cancel_pairing_code(&id).await {
                        tracing::warn!(error = %e, "dropping an expired host's pairing code failed");
                        self.metrics.store_error();
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "deleting unpaired devices failed");
                self.metrics.store_error();
            }
        }
    }
}
