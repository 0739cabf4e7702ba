//! The SQL of [`super::SqliteStore`]: one plain function per store
//! operation on a borrowed connection, run on a blocking thread by the async
//! wrapper. Multi-step writes are one transaction each.

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::store::{Device, DeviceType, Pairing, StoreError, check_pairing};

use super::db_err;

pub(super) fn read_device(conn: &Connection, id: &str) -> Result<Option<Device>, StoreError> {
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

pub(super) fn upsert(conn: &Connection, device: &Device) -> Result<(), StoreError> {
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

pub(super) fn pairings_of(conn: &Connection, id: &str) -> Result<Vec<Pairing>, StoreError> {
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

pub(super) fn upsert_device(conn: &mut Connection, device: &Device) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db_err)?;
    upsert(&tx, device)?;
    tx.commit().map_err(db_err)
}

pub(super) fn set_name(conn: &mut Connection, id: &str, name: &str) -> Result<(), StoreError> {
    let n = conn
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

pub(super) fn delete_device(
    conn: &mut Connection,
    id: &str,
) -> Result<Option<Vec<Pairing>>, StoreError> {
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

pub(super) fn complete_pairing(
    conn: &mut Connection,
    host_id: &str,
    mobile: &Device,
    now_unix: i64,
) -> Result<Option<String>, StoreError> {
    let tx = conn.transaction().map_err(db_err)?;
    check_pairing(read_device(&tx, host_id)?.as_ref(), mobile)?;
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

pub(super) fn remove_pairings(
    conn: &mut Connection,
    device_id: &str,
) -> Result<Vec<Pairing>, StoreError> {
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

pub(super) fn paired_mobile(
    conn: &mut Connection,
    host_id: &str,
) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT mobile_id FROM pairings WHERE host_id = ?1",
        [host_id],
        |r| r.get(0),
    )
    .optional()
    .map_err(db_err)
}

pub(super) fn paired_hosts(
    conn: &mut Connection,
    mobile_id: &str,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT host_id FROM pairings WHERE mobile_id = ?1")
        .map_err(db_err)?;
    let rows = stmt.query_map([mobile_id], |r| r.get(0)).map_err(db_err)?;
    rows.collect::<Result<Vec<String>, _>>().map_err(db_err)
}

pub(super) fn is_paired(conn: &mut Connection, a: &str, b: &str) -> Result<bool, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT 1 FROM pairings WHERE (host_id = ?1 AND mobile_id = ?2) OR (host_id = ?2 AND mobile_id = ?1)",
        )
        .map_err(db_err)?;
    stmt.exists(params![a, b]).map_err(db_err)
}

pub(super) fn delete_unpaired(
    conn: &mut Connection,
    created_before: i64,
) -> Result<Vec<String>, StoreError> {
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

pub(super) fn delete_orphan_mobile(conn: &mut Connection, id: &str) -> Result<bool, StoreError> {
    let n = conn
        .execute(
            "DELETE FROM devices WHERE id = ?1 AND device_type = 'mobile'
             AND NOT EXISTS (SELECT 1 FROM pairings WHERE mobile_id = ?1)",
            [id],
        )
        .map_err(db_err)?;
    Ok(n > 0)
}
