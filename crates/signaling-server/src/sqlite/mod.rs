//! [`SqliteStore`]: the rusqlite implementation of [`Store`] (a file or an
//! in-memory database, one connection behind a mutex), for a server that
//! runs as one process. Each call runs its SQL (`ops`) on tokio's blocking
//! pool; the schema is versioned (`crate::migrations::SQLITE`). The
//! short-lived [`crate::store::Ephemeral`] tables stay in memory (`memory`).

mod memory;
mod ops;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::migrations::{self, Migration};
use crate::store::{Device, Pairing, Store, StoreError};

/// SQLite-backed store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    tables: Arc<memory::Tables>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and migrates its schema.
    /// Blocking: call it where blocking is fine (start-up).
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(db_err)?;
        // WAL keeps readers and the single writer from blocking each other on disk.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        Self::init(conn)
    }

    /// A fresh in-memory database (tests, demo).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(Connection::open_in_memory().map_err(db_err)?)
    }

    fn init(mut conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        migrate(&mut conn, migrations::SQLITE)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            tables: Arc::new(memory::Tables::new()),
        })
    }

    /// Runs `f` with the connection on a blocking thread.
    async fn blocking<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&mut lock(&conn)))
            .await
            .map_err(|_| StoreError::Task)?
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave SQLite inconsistent
    // (transactions roll back on drop), so a poisoned lock is usable.
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

/// Brings the database to the newest version of `all`, one transaction per
/// migration.
fn migrate(conn: &mut Connection, all: &'static [Migration]) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        );",
    )
    .map_err(db_err)?;
    let mut current = version(conn)?;
    if current == 0 {
        current = legacy_version(conn)?;
        if current > 0 {
            tracing::info!(
                version = current,
                "recording the schema of an unversioned database"
            );
            let tx = conn.transaction().map_err(db_err)?;
            for m in all.iter().take_while(|m| m.version <= current) {
                record(&tx, m)?;
            }
            tx.commit().map_err(db_err)?;
        }
    }
    for m in migrations::pending(all, current)? {
        let tx = conn.transaction().map_err(db_err)?;
        tx.execute_batch(m.sql).map_err(db_err)?;
        record(&tx, m)?;
        tx.commit().map_err(db_err)?;
        tracing::debug!(version = m.version, name = m.name, "schema migrated");
    }
    Ok(())
}

fn version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
    .map_err(db_err)
}

fn record(conn: &Connection, m: &Migration) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at)
         VALUES (?1, ?2, CAST(strftime('%s', 'now') AS INTEGER))",
        rusqlite::params![m.version, m.name],
    )
    .map(drop)
    .map_err(db_err)
}

/// The version of a database made before the schema was versioned: 0 when
/// it has no tables yet, 1 when its devices lack `ever_paired`, else 2 (the
/// index of version 3 may be missing; version 3 creates it if so).
fn legacy_version(conn: &Connection) -> Result<i64, StoreError> {
    let column = |table: &str, name: &str| {
        conn.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")
            .and_then(|mut s| s.exists([table, name]))
            .map_err(db_err)
    };
    if !column("devices", "id")? {
        return Ok(0);
    }
    Ok(if column("devices", "ever_paired")? {
        2
    } else {
        1
    })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|c| c.execute_batch("SELECT 1").map_err(db_err))
            .await
    }

    async fn schema_version(&self) -> Result<i64, StoreError> {
        self.blocking(|c| version(c)).await
    }

    async fn device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        let id = id.to_owned();
        self.blocking(move |c| ops::read_device(c, &id)).await
    }

    async fn upsert_device(&self, device: &Device) -> Result<(), StoreError> {
        let device = device.clone();
        self.blocking(move |c| ops::upsert_device(c, &device)).await
    }

    async fn set_name(&self, id: &str, name: &str) -> Result<(), StoreError> {
        let (id, name) = (id.to_owned(), name.to_owned());
        self.blocking(move |c| ops::set_name(c, &id, &name)).await
    }

    async fn delete_device(&self, id: &str) -> Result<Option<Vec<Pairing>>, StoreError> {
        let id = id.to_owned();
        self.blocking(move |c| ops::delete_device(c, &id)).await
    }

    async fn complete_pairing(
        &self,
        host_id: &str,
        mobile: &Device,
        now_unix: i64,
    ) -> Result<Option<String>, StoreError> {
        let (host_id, mobile) = (host_id.to_owned(), mobile.clone());
        self.blocking(move |c| ops::complete_pairing(c, &host_id, &mobile, now_unix))
            .await
    }

    async fn remove_pairings(&self, device_id: &str) -> Result<Vec<Pairing>, StoreError> {
        let id = device_id.to_owned();
        self.blocking(move |c| ops::remove_pairings(c, &id)).await
    }

    async fn paired_mobile(&self, host_id: &str) -> Result<Option<String>, StoreError> {
        let id = host_id.to_owned();
        self.blocking(move |c| ops::paired_mobile(c, &id)).await
    }

    async fn paired_hosts(&self, mobile_id: &str) -> Result<Vec<String>, StoreError> {
        let id = mobile_id.to_owned();
        self.blocking(move |c| ops::paired_hosts(c, &id)).await
    }

    async fn is_paired(&self, a: &str, b: &str) -> Result<bool, StoreError> {
        let (a, b) = (a.to_owned(), b.to_owned());
        self.blocking(move |c| ops::is_paired(c, &a, &b)).await
    }

    async fn delete_unpaired(&self, created_before: i64) -> Result<Vec<String>, StoreError> {
        self.blocking(move |c| ops::delete_unpaired(c, created_before))
            .await
    }

    async fn delete_orphan_mobile(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.blocking(move |c| ops::delete_orphan_mobile(c, &id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNVERSIONED_V1: &str = "
        CREATE TABLE devices (id TEXT PRIMARY KEY, device_type TEXT NOT NULL,
            public_key BLOB NOT NULL, name TEXT NOT NULL DEFAULT '');
        CREATE TABLE pairings (host_id TEXT PRIMARY KEY, mobile_id TEXT NOT NULL,
            created_at INTEGER NOT NULL);
        INSERT INTO devices VALUES ('h', 'host', zeroblob(32), ''),
            ('m', 'mobile', zeroblob(32), ''), ('x', 'host', zeroblob(32), '');
        INSERT INTO pairings VALUES ('h', 'm', 1);";

    #[tokio::test]
    async fn an_unversioned_database_gains_the_new_columns_and_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(UNVERSIONED_V1)
            .unwrap();
        let s = SqliteStore::open(&path).unwrap();
        assert!(s.device("h").await.unwrap().unwrap().ever_paired);
        assert!(!s.device("x").await.unwrap().unwrap().ever_paired);
        assert!(s.device("x").await.unwrap().unwrap().created_at > 1_700_000_000);
        assert_eq!(s.schema_version().await.unwrap(), 3);
        drop(s);
        let again = SqliteStore::open(&path).unwrap();
        assert_eq!(again.schema_version().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_database_of_the_last_unversioned_release_is_recorded_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE devices (id TEXT PRIMARY KEY, device_type TEXT NOT NULL,
                    public_key BLOB NOT NULL, name TEXT NOT NULL DEFAULT '',
                    created_at INTEGER NOT NULL DEFAULT 0,
                    ever_paired INTEGER NOT NULL DEFAULT 0);
                 CREATE TABLE pairings (host_id TEXT PRIMARY KEY, mobile_id TEXT NOT NULL,
                    created_at INTEGER NOT NULL);
                 INSERT INTO devices VALUES ('h', 'host', zeroblob(32), 'Desk', 5, 1);",
            )
            .unwrap();
        let s = SqliteStore::open(&path).unwrap();
        let h = s.device("h").await.unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.created_at, h.ever_paired),
            ("Desk", 5, true)
        );
        assert_eq!(s.schema_version().await.unwrap(), 3);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute_batch("INSERT INTO schema_migrations VALUES (99, 'from the future', 0);")
            .unwrap();
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StoreError::SchemaTooNew {
                found: 99,
                known: 3
            })
        ));
    }
}
