//! [`SqliteStore`]: the rusqlite implementation of [`Store`] (a file or an
//! in-memory database, one connection behind a mutex).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::store::{Device, DeviceType, Pairing, Store, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (
    id          TEXT PRIMARY KEY,
    device_type TEXT NOT NULL CHECK (device_type IN ('host', 'mobile')),
    public_key  BLOB NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL DEFAULT 0,
    ever_paired INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pairings (
    host_id    TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    mobile_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pairings_by_mobile ON pairings(mobile_id);
";

/// SQLite-backed store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its schema.
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

    fn init(conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        migrate(&conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back on drop), so a poisoned lock is usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Databases made before devices had `created_at` / `ever_paired` get the
/// columns; their devices count as registered now, and as paired when they are.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let has_column = conn
        .prepare("SELECT 1 FROM pragma_table_info('devices') WHERE name = 'ever_paired'")
        .and_then(|mut s| s.exists([]))
        .map_err(db_err)?;
    if !has_column {
        add_columns(conn)?;
    }
    // The sweep's query: never-paired devices by registration time.
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS devices_unpaired ON devices(created_at) WHERE ever_paired = 0;",
    )
    .map_err(db_err)
}

fn add_columns(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "BEGIN;
         ALTER TABLE devices ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE devices ADD COLUMN ever_paired INTEGER NOT NULL DEFAULT 0;
         UPDATE devices SET created_at = CAST(strftime('%s', 'now') AS INTEGER);
         UPDATE devices SET ever_paired = 1 WHERE id IN
             (SELECT host_id FROM pairings UNION SELECT mobile_id FROM pairings);
         COMMIT;",
    )
    .map_err(db_err)
}

fn read_device(conn: &Connection, id: &str) -> Result<Option<Device>, StoreError> {
    let row = conn
        .query_row(
            "SELECT device_type, public_key, name, created_at, ever_paired FROM devices WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, bool>(4)?,
                ))
            },
        )
        .optional()
        .map_err(db_err)?;
    let Some((kind, key, name, created_at, ever_paired)) = row else {
        return Ok(None);
    };
    let device_type = DeviceType::parse(&kind)
        .ok_or_else(|| StoreError::Database(format!("bad device type {kind}")))?;
    let public_key = <[u8; 32]>::try_from(key.as_slice())
        .map_err(|_| StoreError::Database("stored public key is not 32 bytes".to_owned()))?;
    Ok(Some(Device {
        id: id.to_owned(),
        device_type,
        public_key,
        name,
        created_at,
        ever_paired,
    }))
}

fn upsert(conn: &Connection, device: &Device) -> Result<(), StoreError> {
    match read_device(conn, &device.id)? {
        Some(existing) if existing.device_type != device.device_type => {
            Err(StoreError::TypeConflict)
        }
        Some(_) => {
            if !device.name.is_empty() {
                conn.execute(
                    "UPDATE devices SET name = ?2 WHERE id = ?1",
                    params![device.id, device.name],
                )
                .map_err(db_err)?;
            }
            Ok(())
        }
        None => {
            conn.execute(
                "INSERT INTO devices (id, device_type, public_key, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    device.id,
                    device.device_type.as_str(),
                    &device.public_key[..],
                    device.name,
                    device.created_at
                ],
            )
            .map_err(db_err)?;
            Ok(())
        }
    }
}

fn pairings_of(conn: &Connection, id: &str) -> Result<Vec<Pairing>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT host_id, mobile_id FROM pairings WHERE host_id = ?1 OR mobile_id = ?1",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([id], |r| {
            Ok(Pairing {
                host_id: r.get(0)?,
                mobile_id: r.get(1)?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
}

impl Store for SqliteStore {
    fn device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        read_device(&self.conn(), id)
    }

    fn upsert_device(&self, device: &Device) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_err)?;
        upsert(&tx, device)?;
        tx.commit().map_err(db_err)
    }

    fn set_name(&self, id: &str, name: &str) -> Result<(), StoreError> {
        let n = self
            .conn()
            .execute(
                "UPDATE devices SET name = ?2 WHERE id = ?1",
                params![id, name],
            )
            .map_err(db_err)?;
        if n == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    fn delete_device(&self, id: &str) -> Result<Option<Vec<Pairing>>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_err)?;
        let pairings = pairings_of(&tx, id)?;
        tx.execute(
            "DELETE FROM pairings WHERE host_id = ?1 OR mobile_id = ?1",
            [id],
        )
        .map_err(db_err)?;
        let n = tx
            .execute("DELETE FROM devices WHERE id = ?1", [id])
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok((n > 0).then_some(pairings))
    }

    fn complete_pairing(
        &self,
        host_id: &str,
        mobile: &Device,
        now_unix: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_err)?;
        match read_device(&tx, host_id)? {
            None => return Err(StoreError::NotFound),
            Some(host) if host.device_type != DeviceType::Host => {
                return Err(StoreError::TypeConflict);
            }
            Some(_) => {}
        }
        if mobile.device_type != DeviceType::Mobile {
            return Err(StoreError::TypeConflict);
        }
        upsert(&tx, mobile)?;
        let previous: Option<String> = tx
            .query_row(
                "SELECT mobile_id FROM pairings WHERE host_id = ?1",
                [host_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        tx.execute(
            "INSERT INTO pairings (host_id, mobile_id, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(host_id) DO UPDATE SET mobile_id = excluded.mobile_id, created_at = excluded.created_at",
            params![host_id, mobile.id, now_unix],
        )
        .map_err(db_err)?;
        tx.execute(
            "UPDATE devices SET ever_paired = 1 WHERE id IN (?1, ?2)",
            params![host_id, mobile.id],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(previous.filter(|p| *p != mobile.id))
    }

    fn remove_pairings(&self, device_id: &str) -> Result<Vec<Pairing>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_err)?;
        let pairings = pairings_of(&tx, device_id)?;
        tx.execute(
            "DELETE FROM pairings WHERE host_id = ?1 OR mobile_id = ?1",
            [device_id],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(pairings)
    }

    fn paired_mobile(&self, host_id: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT mobile_id FROM pairings WHERE host_id = ?1",
                [host_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)
    }

    fn paired_hosts(&self, mobile_id: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT host_id FROM pairings WHERE mobile_id = ?1")
            .map_err(db_err)?;
        let rows = stmt.query_map([mobile_id], |r| r.get(0)).map_err(db_err)?;
        rows.collect::<Result<Vec<String>, _>>().map_err(db_err)
    }

    fn is_paired(&self, a: &str, b: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT 1 FROM pairings WHERE (host_id = ?1 AND mobile_id = ?2) OR (host_id = ?2 AND mobile_id = ?1)",
            )
            .map_err(db_err)?;
        stmt.exists(params![a, b]).map_err(db_err)
    }

    fn delete_unpaired(&self, created_before: i64) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db_err)?;
        let ids = {
            let mut stmt = tx
                .prepare_cached(
                    "DELETE FROM devices WHERE ever_paired = 0 AND created_at < ?1 RETURNING id",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([created_before], |r| r.get(0))
                .map_err(db_err)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(db_err)?
        };
        tx.commit().map_err(db_err)?;
        Ok(ids)
    }

    fn delete_orphan_mobile(&self, id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM devices WHERE id = ?1 AND device_type = 'mobile'
                 AND NOT EXISTS (SELECT 1 FROM pairings WHERE mobile_id = ?1)",
                [id],
            )
            .map_err(db_err)?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str, t: DeviceType) -> Device {
        Device {
            id: id.to_owned(),
            device_type: t,
            public_key: [1; 32],
            name: String::new(),
            created_at: 100,
            ever_paired: false,
        }
    }

    #[test]
    fn never_paired_devices_expire_and_orphan_mobiles_go() {
        let s = SqliteStore::in_memory().unwrap();
        s.upsert_device(&dev("old", DeviceType::Host)).unwrap();
        s.upsert_device(&dev("h", DeviceType::Host)).unwrap();
        s.complete_pairing("h", &dev("m", DeviceType::Mobile), 1)
            .unwrap();
        assert!(s.device("h").unwrap().unwrap().ever_paired);
        assert_eq!(s.delete_unpaired(100).unwrap(), Vec::<String>::new());
        assert_eq!(s.delete_unpaired(101).unwrap(), ["old"]);
        // Paired devices stay, even after the pairing is removed.
        assert!(!s.delete_orphan_mobile("m").unwrap());
        s.remove_pairings("h").unwrap();
        assert_eq!(s.delete_unpaired(1000).unwrap(), Vec::<String>::new());
        assert!(!s.delete_orphan_mobile("h").unwrap());
        assert!(s.delete_orphan_mobile("m").unwrap());
        assert!(s.device("m").unwrap().is_none());
    }

    #[test]
    fn an_old_database_gains_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE devices (id TEXT PRIMARY KEY, device_type TEXT NOT NULL,
                    public_key BLOB NOT NULL, name TEXT NOT NULL DEFAULT '');
                 CREATE TABLE pairings (host_id TEXT PRIMARY KEY, mobile_id TEXT NOT NULL,
                    created_at INTEGER NOT NULL);
                 INSERT INTO devices VALUES ('h', 'host', zeroblob(32), ''),
                    ('m', 'mobile', zeroblob(32), ''), ('x', 'host', zeroblob(32), '');
                 INSERT INTO pairings VALUES ('h', 'm', 1);",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert!(s.device("h").unwrap().unwrap().ever_paired);
        assert!(!s.device("x").unwrap().unwrap().ever_paired);
        assert!(s.device("x").unwrap().unwrap().created_at > 1_700_000_000);
        drop(s);
        SqliteStore::open(&path).unwrap();
    }

    #[test]
    fn pairing_replaces_and_conflicts() {
        let s = SqliteStore::in_memory().unwrap();
        s.upsert_device(&dev("h", DeviceType::Host)).unwrap();
        assert!(matches!(
            s.upsert_device(&dev("h", DeviceType::Mobile)),
            Err(StoreError::TypeConflict)
        ));
        assert_eq!(
            s.complete_pairing("h", &dev("m1", DeviceType::Mobile), 1)
                .unwrap(),
            None
        );
        assert_eq!(
            s.complete_pairing("h", &dev("m1", DeviceType::Mobile), 2)
                .unwrap(),
            None
        );
        assert_eq!(
            s.complete_pairing("h", &dev("m2", DeviceType::Mobile), 3)
                .unwrap(),
            Some("m1".to_owned())
        );
        assert!(s.is_paired("m2", "h").unwrap());
        assert!(!s.is_paired("m1", "h").unwrap());
        assert_eq!(s.paired_hosts("m2").unwrap(), ["h"]);
        assert!(matches!(
            s.complete_pairing("m1", &dev("m2", DeviceType::Mobile), 4),
            Err(StoreError::TypeConflict)
        ));
        let removed = s.delete_device("h").unwrap().unwrap();
        assert_eq!(
            removed,
            [Pairing {
                host_id: "h".into(),
                mobile_id: "m2".into()
            }]
        );
        assert_eq!(s.paired_mobile("h").unwrap(), None);
        assert!(s.delete_device("h").unwrap().is_none());
    }
}
