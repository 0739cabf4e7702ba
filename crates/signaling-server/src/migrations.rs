//! The versioned schemas of both store back ends. Each database records the
//! migrations it has applied in `schema_migrations(version, name,
//! applied_at)`; a server applies the ones after the database's version in
//! order, each in its own transaction, and refuses a database whose version
//! is newer than it knows (an older server must not write to it).
//!
//! A version once released is never edited: a change is a new entry.

use crate::store::StoreError;

/// One step of a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// 1, 2, 3, … without gaps.
    pub version: i64,
    /// What it does, as recorded in `schema_migrations`.
    pub name: &'static str,
    /// The statements, run as one batch inside the migration's transaction.
    pub sql: &'static str,
}

/// The SQLite schema. Version 1 is written with `IF NOT EXISTS` because
/// databases made before versioning already hold those tables (see
/// `sqlite::legacy_version`).
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "devices and pairings",
        sql: "
CREATE TABLE IF NOT EXISTS devices (
    id          TEXT PRIMARY KEY,
    device_type TEXT NOT NULL CHECK (device_type IN ('host', 'mobile')),
    public_key  BLOB NOT NULL,
    name        TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS pairings (
    host_id    TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    mobile_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pairings_by_mobile ON pairings(mobile_id);
",
    },
    Migration {
        version: 2,
        name: "registration time and ever_paired",
        // Devices that existed before count as registered now, and as paired
        // when they are.
        sql: "
ALTER TABLE devices ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN ever_paired INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET created_at = CAST(strftime('%s', 'now') AS INTEGER);
UPDATE devices SET ever_paired = 1 WHERE id IN
    (SELECT host_id FROM pairings UNION SELECT mobile_id FROM pairings);
",
    },
    Migration {
        version: 3,
        name: "index of never-paired devices by registration time",
        sql: "CREATE INDEX IF NOT EXISTS devices_unpaired ON devices(created_at) WHERE ever_paired = 0;",
    },
];

/// The PostgreSQL schema: version 1 has the same tables and rules as
/// SQLite's version 3, born versioned; version 2 adds the short-lived state
/// several instances share (SQLite keeps it in memory): challenges, pairing
/// codes, request-signing nonces and failed-pairing windows, each with the
/// column the sweep expires it by.
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "devices and pairings",
        sql: "
CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    device_type TEXT NOT NULL CHECK (device_type IN ('host', 'mobile')),
    public_key  BYTEA NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL DEFAULT 0,
    ever_paired BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE pairings (
    host_id    TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    mobile_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
CREATE INDEX pairings_by_mobile ON pairings(mobile_id);
CREATE INDEX devices_unpaired ON devices(created_at) WHERE NOT ever_paired;
",
    },
    Migration {
        version: 2,
        name: "challenges, pairing codes, request nonces and guess windows",
        sql: "
CREATE TABLE challenges (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    nonce      TEXT NOT NULL UNIQUE,
    device_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX challenges_by_device ON challenges(device_id, id);
CREATE INDEX challenges_by_expiry ON challenges(expires_at);
CREATE TABLE pairing_codes (
    code                   TEXT PRIMARY KEY,
    host_id                TEXT NOT NULL UNIQUE,
    host_x25519_public_key TEXT NOT NULL,
    host_name              TEXT NOT NULL,
    expires_at             BIGINT NOT NULL
);
CREATE INDEX pairing_codes_by_expiry ON pairing_codes(expires_at);
CREATE TABLE request_nonces (
    nonce   TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
CREATE INDEX request_nonces_by_time ON request_nonces(seen_at);
CREATE TABLE guess_windows (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures     INTEGER NOT NULL
);
CREATE INDEX guess_windows_by_start ON guess_windows(window_start);
",
    },
];

/// The migrations of `all` a database at `current` still needs, in order;
/// [`StoreError::SchemaTooNew`] when `current` is past the last one.
pub fn pending(
    all: &'static [Migration],
    current: i64,
) -> Result<&'static [Migration], StoreError> {
    let known = all.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    let done = all.iter().take_while(|m| m.version <= current).count();
    Ok(&all[done..])
}

/// The version a fully migrated database of `all` is at.
pub fn latest(all: &[Migration]) -> i64 {
    all.last().map_or(0, |m| m.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_without_gaps() {
        for all in [SQLITE, POSTGRES] {
            for (i, m) in all.iter().enumerate() {
                assert_eq!(m.version, i as i64 + 1, "{}", m.name);
            }
        }
    }

    #[test]
    fn pending_is_what_comes_after_the_current_version() {
        assert_eq!(pending(SQLITE, 0).unwrap().len(), 3);
        assert_eq!(pending(SQLITE, 2).unwrap()[0].version, 3);
        assert!(pending(SQLITE, 3).unwrap().is_empty());
        assert!(matches!(
            pending(SQLITE, 4),
            Err(StoreError::SchemaTooNew { found: 4, known: 3 })
        ));
        assert_eq!(latest(POSTGRES), 2);
    }
}
