//! [`Ephemeral`] for [`SqliteStore`]: the bounded in-memory tables
//! (`challenges`, `pairing_codes`, `replay`, `guess_budget`), each behind its
//! own mutex. One process is the whole deployment, so nothing short-lived
//! touches the disk; a restart forgets it (clients ask for a new challenge
//! or code).

use std::sync::Mutex;

use crate::challenges::Challenges;
use crate::client_key::PrefixKey;
use crate::guess_budget::GuessBudget;
use crate::pairing_codes::PairingCodes;
use crate::replay::ReplayCache;
use crate::store::{Bounds, Ephemeral, PendingPairing, StoreError};
use crate::sync::lock;

use super::SqliteStore;

/// The four tables of one store.
pub(super) struct Tables {
    challenges: Mutex<Challenges>,
    codes: Mutex<PairingCodes>,
    replay: Mutex<ReplayCache>,
    guesses: Mutex<GuessBudget>,
}

impl Tables {
    pub(super) fn new() -> Tables {
        Tables {
            challenges: Mutex::new(Challenges::new()),
            codes: Mutex::new(PairingCodes::new()),
            replay: Mutex::new(ReplayCache::new()),
            guesses: Mutex::new(GuessBudget::new()),
        }
    }
}

#[async_trait::async_trait]
impl Ephemeral for SqliteStore {
    async fn issue_challenge(
        &self,
        device_id: &str,
        now: i64,
        bounds: &Bounds,
    ) -> Result<String, StoreError> {
        Ok(lock(&self.tables.challenges).issue(device_id, now, bounds))
    }

    async fn consume_challenge(
        &self,
        device_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(lock(&self.tables.challenges).consume(device_id, nonce, now))
    }

    async fn create_pairing_code(
        &self,
        pending: &PendingPairing,
        now: i64,
        bounds: &Bounds,
    ) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.tables.codes).create(
            pending,
            now,
            bounds.pairing_ttl,
            bounds.max_pairing_codes,
        ))
    }

    async fn redeem_pairing_code(
        &self,
        code: &str,
        now: i64,
    ) -> Result<Option<PendingPairing>, StoreError> {
        Ok(lock(&self.tables.codes).redeem(code, now))
    }

    async fn cancel_pairing_code(&self, host_id: &str) -> Result<(), StoreError> {
        lock(&self.tables.codes).cancel_host(host_id);
        Ok(())
    }

    async fn record_request_nonce(
        &self,
        nonce: &str,
        now: i64,
        bounds: &Bounds,
    ) -> Result<bool, StoreError> {
        Ok(lock(&self.tables.replay).check_and_insert(
            nonce,
            now,
            bounds.replay_window,
            bounds.replay_capacity,
        ))
    }

    async fn guess_budget_spent(
        &self,
        prefix: PrefixKey,
        now: i64,
        bounds: &Bounds,
    ) -> Result<Option<u64>, StoreError> {
        Ok(lock(&self.tables.guesses)
            .check(prefix, now, &bounds.guesses)
            .err())
    }

    async fn record_failed_guess(
        &self,
        prefix: PrefixKey,
        now: i64,
        bounds: &Bounds,
    ) -> Result<(), StoreError> {
        lock(&self.tables.guesses).record_failure(
            prefix,
            now,
            &bounds.guesses,
            bounds.max_guess_keys,
        );
        Ok(())
    }

    async fn purge_ephemeral(&self, now: i64, bounds: &Bounds) -> Result<(), StoreError> {
        lock(&self.tables.challenges).purge(now);
        lock(&self.tables.codes).purge(now);
        lock(&self.tables.replay).purge(now, bounds.replay_window);
        lock(&self.tables.guesses).purge(now, &bounds.guesses);
        Ok(())
    }
}
