//! [`PgStore`]: the PostgreSQL implementation of [`Store`], for a deployment
//! of several server instances that must all see the same devices and
//! pairings. An async pool (deadpool-postgres over tokio-postgres); every
//! multi-step write is one transaction; concurrent writers of one pairing
//! are serialised by row locks, and instances starting together migrate
//! under an advisory lock. Connections are plain TCP or a Unix socket: run
//! the database on a trusted network or the same machine. The short-lived
//! [`crate::store::Ephemeral`] state lives in tables of its own
//! (`ephemeral`), so every instance honours what another issued.

mod ephemeral;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{NoTls, Row};

use crate::migrations::{self, Migration};
use crate::store::{Device, DeviceType, Pairing, Store, StoreError, check_pairing};

/// Connections the pool keeps at most.
const POOL_SIZE: usize = 16;
/// Key of the advisory lock held while migrating ("muxlink" in ASCII).
const MIGRATION_LOCK: i64 = 0x006d_7578_6c69_6e6b;

/// PostgreSQL-backed store.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`, or
    /// `postgres://user@%2Frun%2Fpostgresql/db` for a socket directory) and
    /// migrates the schema.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("bad PostgreSQL URL: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(db_err)?;
        let store = PgStore { pool };
        store.migrate(migrations::POSTGRES).await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(db_err)
    }

    /// Brings the schema to the newest version, one transaction per
    /// migration, with the advisory lock held so instances that start
    /// together migrate once.
    async fn migrate(&self, all: &'static [Migration]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db_err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    BIGINT PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at BIGINT NOT NULL
            );",
        )
        .await
        .map_err(db_err)?;
        let row = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(db_err)?;
        for m in migrations::pending(all, row.get::<_, i64>(0))? {
            tx.batch_execute(m.sql).await.map_err(db_err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at)
                 VALUES ($1, $2, EXTRACT(EPOCH FROM now())::BIGINT)",
                &[&m.version, &m.name],
            )
            .await
            .map_err(db_err)?;
            tracing::info!(version = m.version, name = m.name, "schema migrated");
        }
        tx.commit().await.map_err(db_err)
    }
}

/// `sql` prepared once per pooled connection and reused after: one round
/// trip per statement instead of two (a relay checks its pairing each time).
async fn prepared(
    c: &impl GenericClient,
    sql: &str,
) -> Result<tokio_postgres::Statement, StoreError> {
    c.prepare_cached(sql).await.map_err(db_err)
}

fn device_from(row: &Row) -> Result<Device, StoreError> {
    let kind: String = row.get("device_type");
    let key: Vec<u8> = row.get("public_key");
    Ok(Device {
        id: row.get("id"),
        device_type: DeviceType::parse(&kind)
            .ok_or_else(|| StoreError::Database(format!("bad device type {kind}")))?,
        public_key: <[u8; 32]>::try_from(key.as_slice())
            .map_err(|_| StoreError::Database("stored public key is not 32 bytes".to_owned()))?,
        name: row.get("name"),
        created_at: row.get("created_at"),
        ever_paired: row.get("ever_paired"),
    })
}

const SELECT_DEVICE: &str =
    "SELECT id, device_type, public_key, name, created_at, ever_paired FROM devices WHERE id = $1";
/// [`SELECT_DEVICE`] with the row locked until the transaction ends.
const SELECT_DEVICE_FOR_UPDATE: &str = "SELECT id, device_type, public_key, name, created_at, ever_paired FROM devices WHERE id = $1 FOR UPDATE";

/// Reads a device, locking its row when `for_update` (inside a transaction).
async fn read_device(
    c: &impl GenericClient,
    id: &str,
    for_update: bool,
) -> Result<Option<Device>, StoreError> {
    let sql = if for_update {
        SELECT_DEVICE_FOR_UPDATE
    } else {
        SELECT_DEVICE
    };
    c.query_opt(&prepared(c, sql).await?, &[&id])
        .await
        .map_err(db_err)?
        .map(|r| device_from(&r))
        .transpose()
}

async fn upsert(c: &impl GenericClient, device: &Device) -> Result<(), StoreError> {
    // Insert-or-nothing first, so two instances registering the same new
    // device race on the primary key, not on a read.
    let insert = prepared(
        c,
        "INSERT INTO devices (id, device_type, public_key, name, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .await?;
    let inserted = c
        .execute(
            &insert,
            &[
                &device.id,
                &device.device_type.as_str(),
                &&device.public_key[..],
                &device.name,
                &device.created_at,
            ],
        )
        .await
        .map_err(db_err)?;
    if inserted == 1 {
        return Ok(());
    }
    match read_device(c, &device.id, true).await? {
        Some(existing) if existing.device_type != device.device_type => {
            Err(StoreError::TypeConflict)
        }
        Some(_) if !device.name.is_empty() => c
            .execute(
                &prepared(c, "UPDATE devices SET name = $2 WHERE id = $1").await?,
                &[&device.id, &device.name],
            )
            .await
            .map(drop)
            .map_err(db_err),
        Some(_) => Ok(()),
        // Deleted between the two statements: the caller may retry.
        None => Err(StoreError::NotFound),
    }
}

async fn pairings_of(c: &impl GenericClient, id: &str) -> Result<Vec<Pairing>, StoreError> {
    let sql = "SELECT host_id, mobile_id FROM pairings WHERE host_id = $1 OR mobile_id = $1
               ORDER BY host_id";
    let rows = c
        .query(&prepared(c, sql).await?, &[&id])
        .await
        .map_err(db_err)?;
    Ok(rows
        .iter()
        .map(|r| Pairing {
            host_id: r.get(0),
            mobile_id: r.get(1),
        })
        .collect())
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client()
            .await?
            .simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(db_err)
    }

    async fn schema_version(&self) -> Result<i64, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                &prepared(
                    &c,
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                )
                .await?,
                &[],
            )
            .await
            .map_err(db_err)?;
        Ok(row.get(0))
    }

    async fn device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        read_device(&self.client().await?, id, false).await
    }

    async fn upsert_device(&self, device: &Device) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        upsert(&tx, device).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn set_name(&self, id: &str, name: &str) -> Result<(), StoreError> {
        let n = self
            .client()
            .await?
            .execute("UPDATE devices SET name = $2 WHERE id = $1", &[&id, &name])
            .await
            .map_err(db_err)?;
        if n == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn delete_device(&self, id: &str) -> Result<Option<Vec<Pairing>>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let pairings = pairings_of(&tx, id).await?;
        tx.execute(
            "DELETE FROM pairings WHERE host_id = $1 OR mobile_id = $1",
            &[&id],
        )
        .await
        .map_err(db_err)?;
        let n = tx
            .execute("DELETE FROM devices WHERE id = $1", &[&id])
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok((n > 0).then_some(pairings))
    }

    async fn complete_pairing(
        &self,
        host_id: &str,
        mobile: &Device,
        now_unix: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        // The host's row lock serialises two pair/complete of one host that
        // land on different instances.
        check_pairing(read_device(&tx, host_id, true).await?.as_ref(), mobile)?;
        upsert(&tx, mobile).await?;
        let previous: Option<String> = tx
            .query_opt(
                "SELECT mobile_id FROM pairings WHERE host_id = $1",
                &[&host_id],
            )
            .await
            .map_err(db_err)?
            .map(|r| r.get(0));
        tx.execute(
            "INSERT INTO pairings (host_id, mobile_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (host_id) DO UPDATE
             SET mobile_id = EXCLUDED.mobile_id, created_at = EXCLUDED.created_at",
            &[&host_id, &mobile.id, &now_unix],
        )
        .await
        .map_err(db_err)?;
        tx.execute(
            "UPDATE devices SET ever_paired = TRUE WHERE id = $1 OR id = $2",
            &[&host_id, &mobile.id],
        )
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(previous.filter(|p| *p != mobile.id))
    }

    async fn remove_pairings(&self, device_id: &str) -> Result<Vec<Pairing>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &prepared(
                    &c,
                    "DELETE FROM pairings WHERE host_id = $1 OR mobile_id = $1
                 RETURNING host_id, mobile_id",
                )
                .await?,
                &[&device_id],
            )
            .await
            .map_err(db_err)?;
        let mut removed: Vec<Pairing> = rows
            .iter()
            .map(|r| Pairing {
                host_id: r.get(0),
                mobile_id: r.get(1),
            })
            .collect();
        removed.sort_by(|a, b| a.host_id.cmp(&b.host_id));
        Ok(removed)
    }

    async fn paired_mobile(&self, host_id: &str) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        Ok(c.query_opt(
            &prepared(&c, "SELECT mobile_id FROM pairings WHERE host_id = $1").await?,
            &[&host_id],
        )
        .await
        .map_err(db_err)?
        .map(|r| r.get(0)))
    }

    async fn paired_hosts(&self, mobile_id: &str) -> Result<Vec<String>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &prepared(
                    &c,
                    "SELECT host_id FROM pairings WHERE mobile_id = $1 ORDER BY host_id",
                )
                .await?,
                &[&mobile_id],
            )
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn is_paired(&self, a: &str, b: &str) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &prepared(
                    &c,
                    "SELECT 1 FROM pairings WHERE (host_id = $1 AND mobile_id = $2)
                 OR (host_id = $2 AND mobile_id = $1)",
                )
                .await?,
                &[&a, &b],
            )
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
    }

    async fn delete_unpaired(&self, created_before: i64) -> Result<Vec<String>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &prepared(
                    &c,
                    "DELETE FROM devices WHERE NOT ever_paired AND created_at < $1 RETURNING id",
                )
                .await?,
                &[&created_before],
            )
            .await
            .map_err(db_err)?;
        let mut ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        ids.sort();
        Ok(ids)
    }

    async fn delete_orphan_mobile(&self, id: &str) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let n = c
            .execute(
                &prepared(
                    &c,
                    "DELETE FROM devices WHERE id = $1 AND device_type = 'mobile'
                 AND NOT EXISTS (SELECT 1 FROM pairings WHERE mobile_id = $1)",
                )
                .await?,
                &[&id],
            )
            .await
            .map_err(db_err)?;
        Ok(n > 0)
    }
}
