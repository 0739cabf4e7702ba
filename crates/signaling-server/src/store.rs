//! Server state behind one async trait, with two implementations: SQLite
//! (`sqlite`, the default: one process) and PostgreSQL (`postgres`: state
//! shared by several server instances). Both pass the same conformance suite
//! (tests/store_conformance.rs) and carry a versioned schema (`migrations`).
//!
//! [`Store`] holds what outlives a restart: devices and pairings. Its
//! supertrait [`Ephemeral`] holds the short-lived state that one instance
//! issues and another may have to honour: challenge nonces, pairing codes,
//! the request-signature replay cache and the failed-pairing guess budget.
//! SQLite keeps those in bounded in-memory tables (one process needs no
//! disk writes for them; they are gone after a restart, as before);
//! PostgreSQL keeps them in tables with expiry columns, so a challenge
//! issued by instance A is answered at B, a code made at A is redeemed at
//! B, a signed request is accepted once by the whole deployment and the
//! guess budget holds for the deployment, not per instance. Every operation
//! takes the server's [`crate::Clock`] time as `now` (Unix seconds).

use std::sync::Arc;

use signaling_proto::consts::{DEVICE_TYPE_HOST, DEVICE_TYPE_MOBILE};

use crate::client_key::PrefixKey;

/// `host` or `mobile`; fixed at first registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// A computer running the agent.
    Host,
    /// A phone.
    Mobile,
}

impl DeviceType {
    /// Wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Host => DEVICE_TYPE_HOST,
            DeviceType::Mobile => DEVICE_TYPE_MOBILE,
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<DeviceType> {
        match s {
            DEVICE_TYPE_HOST => Some(DeviceType::Host),
            DEVICE_TYPE_MOBILE => Some(DeviceType::Mobile),
            _ => None,
        }
    }
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// 32 lowercase hex chars derived from `public_key`.
    pub id: String,
    /// Host or mobile.
    pub device_type: DeviceType,
    /// Raw Ed25519 public key.
    pub public_key: [u8; 32],
    /// Display name ("" when unknown).
    pub name: String,
    /// Unix seconds of the first registration (kept by later upserts).
    pub created_at: i64,
    /// True once the device took part in a pairing (devices never paired are
    /// deleted after [`crate::ServerConfig::unpaired_device_ttl`]).
    pub ever_paired: bool,
}

/// A host ↔ mobile pairing (one mobile per host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    /// Host id.
    pub host_id: String,
    /// Mobile id.
    pub mobile_id: String,
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The device exists with the other device type.
    #[error("device type conflict")]
    TypeConflict,
    /// A referenced device does not exist.
    #[error("device not found")]
    NotFound,
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The blocking task running the call was lost.
    #[error("storage task failed")]
    Task,
    /// The database's schema is newer than this server knows: an older
    /// server must not write to a database a newer one migrated.
    #[error("database schema version {found} is newer than this server's {known}")]
    SchemaTooNew {
        /// The version the database is at.
        found: i64,
        /// The newest version this server has.
        known: i64,
    },
}

/// Devices and pairings (and, through [`Ephemeral`], the short-lived
/// tables). Every multi-step write is one transaction.
#[async_trait::async_trait]
pub trait Store: Ephemeral + Send + Sync + 'static {
    /// `sqlite` or `postgres` (logs, `/readyz`).
    fn backend(&self) -> &'static str;
    /// Succeeds when the database answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
    /// The schema version the database is at.
    async fn schema_version(&self) -> Result<i64, StoreError>;
    /// Looks a device up.
    async fn device(&self, id: &str) -> Result<Option<Device>, StoreError>;
    /// Inserts the device (with its `created_at`; `ever_paired` is set by
    /// pairing only), or updates its name (when non-empty) if it exists with
    /// the same type; [`StoreError::TypeConflict`] otherwise.
    async fn upsert_device(&self, device: &Device) -> Result<(), StoreError>;
    /// Sets a device's name; [`StoreError::NotFound`] when there is none.
    async fn set_name(&self, id: &str, name: &str) -> Result<(), StoreError>;
    /// Deletes a device and its pairings; returns the removed pairings, or
    /// `None` when the device did not exist.
    async fn delete_device(&self, id: &str) -> Result<Option<Vec<Pairing>>, StoreError>;
    /// In one transaction: upserts `mobile`, drops the host's earlier pairing
    /// and pairs the host with `mobile`. Returns the replaced mobile id, if
    /// it differs from the new one.
    async fn complete_pairing(
        &self,
        host_id: &str,
        mobile: &Device,
        now_unix: i64,
    ) -> Result<Option<String>, StoreError>;
    /// Removes every pairing `device_id` takes part in; returns them.
    async fn remove_pairings(&self, device_id: &str) -> Result<Vec<Pairing>, StoreError>;
    /// The mobile paired with `host_id`.
    async fn paired_mobile(&self, host_id: &str) -> Result<Option<String>, StoreError>;
    /// The hosts paired with `mobile_id`.
    async fn paired_hosts(&self, mobile_id: &str) -> Result<Vec<String>, StoreError>;
    /// True when `a` and `b` are paired with each other (either order).
    async fn is_paired(&self, a: &str, b: &str) -> Result<bool, StoreError>;
    /// Deletes every device never paired that registered before
    /// `created_before` (Unix seconds); returns their ids.
    async fn delete_unpaired(&self, created_before: i64) -> Result<Vec<String>, StoreError>;
    /// Deletes `id` if it is a mobile without any pairing left; true if deleted.
    async fn delete_orphan_mobile(&self, id: &str) -> Result<bool, StoreError>;
}

/// The rule both stores apply before pairing: the host exists and is a
/// host, and the phone is a mobile.
pub fn check_pairing(host: Option<&Device>, mobile: &Device) -> Result<(), StoreError> {
    match host {
        None => Err(StoreError::NotFound),
        Some(h) if h.device_type != DeviceType::Host => Err(StoreError::TypeConflict),
        Some(_) if mobile.device_type != DeviceType::Mobile => Err(StoreError::TypeConflict),
        Some(_) => Ok(()),
    }
}

/// Lifetimes and bounds of the [`Ephemeral`] tables (the server fills it
/// from [`crate::Limits`] and its TTL settings).
///
/// Totals (`max_challenges`, `max_pairing_codes`, `replay_capacity`,
/// `max_guess_keys`): the in-memory tables never exceed them (the oldest
/// entry makes room); PostgreSQL trims its tables back to them at each
/// [`Ephemeral::purge_ephemeral`] (the server's sweep, at most every 30 s),
/// so in between they may run over by what clients add in that time, which
/// the per-client rate limits bound. The per-device challenge cap holds
/// exactly in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Seconds a challenge nonce stays valid.
    pub challenge_ttl: i64,
    /// Outstanding challenges in total.
    pub max_challenges: usize,
    /// Outstanding challenges per device id (its oldest is dropped).
    pub max_challenges_per_device: usize,
    /// Seconds a pairing code stays valid.
    pub pairing_ttl: i64,
    /// Live pairing codes in total (the one expiring first makes room).
    pub max_pairing_codes: usize,
    /// Seconds a request-signing nonce is remembered.
    pub replay_window: i64,
    /// Remembered request-signing nonces in total (the oldest goes).
    pub replay_capacity: usize,
    /// Failed `pair/complete` attempts allowed per window.
    pub guesses: GuessLimits,
    /// Address prefixes whose failures are counted at most.
    pub max_guess_keys: usize,
}

impl Bounds {
    /// The bounds a server with `config` applies: its TTLs and [`crate::Limits`]
    /// (the guess budget tracks as many prefixes as the rate limiter keys).
    pub fn of(config: &crate::config::ServerConfig) -> Bounds {
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let l = &config.limits;
        Bounds {
            challenge_ttl: secs(config.challenge_ttl),
            max_challenges: l.max_challenges,
            max_challenges_per_device: l.max_challenges_per_device,
            pairing_ttl: secs(config.pairing_ttl),
            max_pairing_codes: l.max_pairing_codes,
            replay_window: signaling_proto::consts::REPLAY_WINDOW_SECS,
            replay_capacity: l.replay_cache,
            guesses: GuessLimits {
                per_prefix: l.pairing_failures_per_prefix,
                global: l.pairing_failures_global,
                window_secs: secs(l.pairing_failure_window),
            },
            max_guess_keys: l.max_rate_keys,
        }
    }
}

impl Default for Bounds {
    /// The bounds of [`crate::ServerConfig::default`].
    fn default() -> Self {
        Bounds::of(&crate::config::ServerConfig::default())
    }
}

/// Failed `pair/complete` attempts allowed, each budget a fixed window that
/// starts at its first failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessLimits {
    /// Failed attempts per address prefix per window.
    pub per_prefix: u32,
    /// Failed attempts server-wide (deployment-wide on PostgreSQL) per window.
    pub global: u32,
    /// Window length in seconds.
    pub window_secs: i64,
}

impl GuessLimits {
    /// The window length, at least one second.
    pub fn window(&self) -> i64 {
        self.window_secs.max(1)
    }

    /// Seconds until a window that started at `start` ends (at least 1).
    pub fn retry_after(&self, start: i64, now: i64) -> u64 {
        let left = start.saturating_add(self.window()).saturating_sub(now);
        u64::try_from(left).unwrap_or(1).max(1)
    }
}

/// What a pairing code stands for until a mobile redeems it (pairing.md §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPairing {
    /// Host that initiated.
    pub host_id: String,
    /// Host X25519 key for this attempt (base64).
    pub host_x25519_public_key: String,
    /// Host name at initiate time.
    pub host_name: String,
}

/// A fresh challenge nonce: 32 random bytes, base64.
pub fn new_challenge_nonce() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Short-lived state every instance must see: challenges, pairing codes, the
/// replay cache and the guess budget. One-shot operations are atomic (a
/// nonce or code is consumed by exactly one caller, whichever instance it
/// reaches). See [`Bounds`] for how each table stays bounded.
#[async_trait::async_trait]
pub trait Ephemeral: Send + Sync {
    /// Issues a fresh nonce for `device_id`, valid until `now +
    /// challenge_ttl`; the device's oldest outstanding nonce is dropped past
    /// `max_challenges_per_device`.
    async fn issue_challenge(
        &self,
        device_id: &str,
        now: i64,
        bounds: &Bounds,
    ) -> Result<String, StoreError>;
    /// Consumes `nonce`: true if it was issued for `device_id` and has not
    /// expired. A nonce presented for another device is consumed too (burnt).
    async fn consume_challenge(
        &self,
        device_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Replaces any earlier code of the host with a fresh unique one, valid
    /// until `now + pairing_ttl`. `None` only if no unused code was drawn in
    /// 16 tries.
    async fn create_pairing_code(
        &self,
        pending: &PendingPairing,
        now: i64,
        bounds: &Bounds,
    ) -> Result<Option<String>, StoreError>;
    /// Removes the pending pairing of `code`; returns it if it was live.
    async fn redeem_pairing_code(
        &self,
        code: &str,
        now: i64,
    ) -> Result<Option<PendingPairing>, StoreError>;
    /// Drops the code of `host_id`, if any.
    async fn cancel_pairing_code(&self, host_id: &str) -> Result<(), StoreError>;
    /// Records a request-signing nonce at `now`: false when it was already
    /// seen within `replay_window` (a replay).
    async fn record_request_nonce(
        &self,
        nonce: &str,
        now: i64,
        bounds: &Bounds,
    ) -> Result<bool, StoreError>;
    /// `Some(retry_after_secs)` when `prefix` or the whole server has used
    /// its budget of failed pairing attempts.
    async fn guess_budget_spent(
        &self,
        prefix: PrefixKey,
        now: i64,
        bounds: &Bounds,
    ) -> Result<Option<u64>, StoreError>;
    /// Counts one failed pairing attempt from `prefix` (and server-wide).
    async fn record_failed_guess(
        &self,
        prefix: PrefixKey,
        now: i64,
        bounds: &Bounds,
    ) -> Result<(), StoreError>;
    /// Drops expired challenges, codes, nonces and ended guess windows, and
    /// trims each table to its total bound.
    async fn purge_ephemeral(&self, now: i64, bounds: &Bounds) -> Result<(), StoreError>;
}

/// The server's handle to its [`Store`]; cheap to clone.
pub type Db = Arc<dyn Store>;
