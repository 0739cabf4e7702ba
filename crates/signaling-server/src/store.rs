//! Persistent state behind one async trait (devices and pairings), with two
//! implementations: SQLite (`sqlite`, the default: one process) and
//! PostgreSQL (`postgres`: state shared by several server instances). Both
//! pass the same conformance suite (tests/store_conformance.rs) and carry a
//! versioned schema (`migrations`).

use std::sync::Arc;

use signaling_proto::consts::{DEVICE_TYPE_HOST, DEVICE_TYPE_MOBILE};

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

/// Devices and pairings. Every multi-step write is one transaction.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
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

/// The server's handle to its [`Store`]; cheap to clone.
pub type Db = Arc<dyn Store>;
