//! [`Ephemeral`] for [`PgStore`]: challenges, pairing codes, request-signing
//! nonces and failed-pairing windows in tables every instance shares
//! (migration 2). Each one-shot operation is one atomic statement
//! (`DELETE … RETURNING`, `INSERT … ON CONFLICT`), so a nonce or a code is
//! consumed once whichever instance it reaches. The per-device challenge cap
//! holds exactly (a per-device advisory lock serialises issuers); the totals
//! are restored by [`Ephemeral::purge_ephemeral`], which the server's sweep
//! runs (see [`Bounds`]).

use tokio_postgres::error::SqlState;

use super::{PgStore, db_err};
use crate::client_key::PrefixKey;
use crate::store::{
    Bounds, Ephemeral, GuessLimits, PendingPairing, StoreError, new_challenge_nonce,
};

/// First key of the per-device advisory lock taken while issuing a
/// challenge (the second is the device id's hash); the two-key space does
/// not overlap the migration lock's single key.
const CHALLENGE_LOCK: i32 = 0x6368_616c; // "chal"
/// The key of the server-wide guess window.
const GLOBAL_KEY: &str = "*";
/// Tries at drawing a pairing code no live one uses.
const CODE_TRIES: usize = 16;

/// `usize` bounds as SQL `BIGINT`s.
fn big(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The key of an address prefix in `guess_windows`.
fn prefix_key(prefix: PrefixKey) -> String {
    match prefix {
        PrefixKey::V4(p) => format!("v4:{p:06x}"),
        PrefixKey::V6(p) => format!("v6:{p:012x}"),
    }
}

/// `Some(retry_after)` when a `(start, failures)` window is live and spent.
fn spent(row: Option<(i64, i32)>, limit: u32, now: i64, g: &GuessLimits) -> Option<u64> {
    let (start, n) = row?;
    let live = now.saturating_sub(start) < g.window();
    (live && u32::try_from(n).unwrap_or(0) >= limit).then(|| g.retry_after(start, now))
}

#[async_trait::async_trait]
impl Ephemeral for PgStore {
    async fn issue_challenge(
        &self,
        device_id: &str,
        now: i64,
        bounds: &Bounds,
    ) -> Result<String, StoreError> {
        let nonce = new_challenge_nonce();
        let expires = now.saturating_add(bounds.challenge_ttl);
        let keep = big(bounds.max_challenges_per_device.max(1));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_err)?;
        let lock = tx
            .prepare_cached("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .await
            .map_err(db_err)?;
        tx.execute(&lock, &[&CHALLENGE_LOCK, &device_id])
            .await
            .map_err(db_err)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO challenges (nonce, device_id, expires_at) VALUES ($1, $2, $3)",
            )
            .await
            .map_err(db_err)?;
        tx.execute(&insert, &[&nonce, &device_id, &expires])
            .await
            .map_err(db_err)?;
        // The device's oldest nonces beyond its cap go in the same transaction.
        let trim = tx
            .prepare_cached(
                "DELETE FROM challenges WHERE device_id = $1 AND id <= (
                    SELECT id FROM challenges WHERE device_id = $1
                    ORDER BY id DESC OFFSET $2 LIMIT 1)",
            )
            .await
            .map_err(db_err)?;
        tx.execute(&trim, &[&device_id, &keep])
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(nonce)
    }

    async fn consume_challenge(
        &self,
        device_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "DELETE FROM challenges WHERE nonce = $1 RETURNING device_id, expires_at",
            )
            .await
            .map_err(db_err)?;
        let row = c.query_opt(&stmt, &[&nonce]).await.map_err(db_err)?;
        Ok(row.is_some_and(|r| r.get::<_, String>(0) == device_id && r.get::<_, i64>(1) > now))
    }

    async fn create_pairing_code(
        &self,
        pending: &PendingPairing,
        now: i64,
        bounds: &Bounds,
    ) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let expires = now.saturating_add(bounds.pairing_ttl);
        // One row per host: a new initiation replaces the host's code.
        let upsert = client
            .prepare_cached(
                "INSERT INTO pairing_codes
                    (code, host_id, host_x25519_public_key, host_name, expires_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (host_id) DO UPDATE SET code = EXCLUDED.code,
                    host_x25519_public_key = EXCLUDED.host_x25519_public_key,
                    host_name = EXCLUDED.host_name, expires_at = EXCLUDED.expires_at",
            )
            .await
            .map_err(db_err)?;
        for _ in 0..CODE_TRIES {
            let code = signaling_proto::new_pairing_code();
            let done = client
                .execute(
                    &upsert,
                    &[
                        &code,
                        &pending.host_id,
                        &pending.host_x25519_public_key,
                        &pending.host_name,
                        &expires,
                    ],
                )
                .await;
            match done {
                Ok(_) => return Ok(Some(code)),
                // Another host holds this code: draw again.
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => continue,
                Err(e) => return Err(db_err(e)),
            }
        }
        Ok(None)
    }

    async fn redeem_pairing_code(
        &self,
        code: &str,
        now: i64,
    ) -> Result<Option<PendingPairing>, StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "DELETE FROM pairing_codes WHERE code = $1
                 RETURNING host_id, host_x25519_public_key, host_name, expires_at",
            )
            .await
            .map_err(db_err)?;
        let row = c.query_opt(&stmt, &[&code]).await.map_err(db_err)?;
        Ok(row
            .filter(|r| r.get::<_, i64>(3) > now)
            .map(|r| PendingPairing {
                host_id: r.get(0),
                host_x25519_public_key: r.get(1),
                host_name: r.get(2),
            }))
    }

    async fn cancel_pairing_code(&self, host_id: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("DELETE FROM pairing_codes WHERE host_id = $1")
            .await
            .map_err(db_err)?;
        c.execute(&stmt, &[&host_id])
            .await
            .map(drop)
            .map_err(db_err)
    }

    async fn record_request_nonce(
        &self,
        nonce: &str,
        now: i64,
        bounds: &Bounds,
    ) -> Result<bool, StoreError> {
        // A row older than the window (not swept yet) no longer counts.
        let before = now.saturating_sub(bounds.replay_window);
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO request_nonces (nonce, seen_at) VALUES ($1, $2)
                 ON CONFLICT (nonce) DO UPDATE SET seen_at = EXCLUDED.seen_at
                 WHERE request_nonces.seen_at < $3",
            )
            .await
            .map_err(db_err)?;
        let n = c
            .execute(&stmt, &[&nonce, &now, &before])
            .await
            .map_err(db_err)?;
        Ok(n == 1)
    }

    async fn guess_budget_spent(
        &self,
        prefix: PrefixKey,
        now: i64,
        bounds: &Bounds,
    ) -> Result<Option<u64>, StoreError> {
        let key = prefix_key(prefix);
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT key, window_start, failures FROM guess_windows
                 WHERE key = $1 OR key = $2",
            )
            .await
            .map_err(db_err)?;
        let rows = c.query(&stmt, &[&GLOBAL_KEY, &key]).await.map_err(db_err)?;
        let row = |k: &str| {
            rows.iter()
                .find(|r| r.get::<_, &str>(0) == k)
                .map(|r| (r.get::<_, i64>(1), r.get::<_, i32>(2)))
        };
        let g = &bounds.guesses;
        Ok(spent(row(GLOBAL_KEY), g.global, now, g)
            .or_else(|| spent(row(&key), g.per_prefix, now, g)))
    }

    async fn record_failed_guess(
        &self,
        prefix: PrefixKey,
        now: i64,
        bounds: &Bounds,
    ) -> Result<(), StoreError> {
        // Both rows in one statement, the global one first (every writer
        // locks them in the same order); a window that has ended restarts.
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO guess_windows (key, window_start, failures)
                 VALUES ($1, $3, 1), ($2, $3, 1)
                 ON CONFLICT (key) DO UPDATE SET
                 window_start = CASE WHEN $3 - guess_windows.window_start >= $4
                     THEN $3 ELSE guess_windows.window_start END,
                 failures = CASE WHEN $3 - guess_windows.window_start >= $4
                     THEN 1 ELSE LEAST(guess_windows.failures, 2147483646) + 1 END",
            )
            .await
            .map_err(db_err)?;
        c.execute(
            &stmt,
            &[
                &GLOBAL_KEY,
                &prefix_key(prefix),
                &now,
                &bounds.guesses.window(),
            ],
        )
        .await
        .map(drop)
        .map_err(db_err)
    }

    async fn purge_ephemeral(&self, now: i64, bounds: &Bounds) -> Result<(), StoreError> {
        let client = self.client().await?;
        let replay_before = now.saturating_sub(bounds.replay_window);
        let guess_before = now.saturating_sub(bounds.guesses.window());
        let steps: [(&str, &[&(dyn tokio_postgres::types::ToSql + Sync)]); 8] = [
            ("DELETE FROM challenges WHERE expires_at <= $1", &[&now]),
            (
                "DELETE FROM challenges WHERE id <= (
                    SELECT id FROM challenges ORDER BY id DESC OFFSET $1 LIMIT 1)",
                &[&big(bounds.max_challenges.max(1))],
            ),
            ("DELETE FROM pairing_codes WHERE expires_at <= $1", &[&now]),
            (
                "DELETE FROM pairing_codes WHERE code IN (
                    SELECT code FROM pairing_codes ORDER BY expires_at DESC, code OFFSET $1)",
                &[&big(bounds.max_pairing_codes.max(1))],
            ),
            (
                "DELETE FROM request_nonces WHERE seen_at < $1",
                &[&replay_before],
            ),
            (
                "DELETE FROM request_nonces WHERE nonce IN (
                    SELECT nonce FROM request_nonces ORDER BY seen_at DESC, nonce OFFSET $1)",
                &[&big(bounds.replay_capacity.max(1))],
            ),
            (
                "DELETE FROM guess_windows WHERE window_start <= $1",
                &[&guess_before],
            ),
            (
                "DELETE FROM guess_windows WHERE key IN (
                    SELECT key FROM guess_windows WHERE key <> $1
                    ORDER BY window_start DESC, key OFFSET $2)",
                &[&GLOBAL_KEY, &big(bounds.max_guess_keys.max(1))],
            ),
        ];
        for (sql, params) in steps {
            client.execute(sql, params).await.map_err(db_err)?;
        }
        Ok(())
    }
}
