//! Wall clock of the server (Unix seconds) with a shiftable offset, so tests
//! can step past expiries (pairing codes, challenges, JWTs) without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// System time plus an offset shared by every clone.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock (offset 0).
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Current time in Unix seconds, offset applied.
    pub fn now_unix(&self) -> i64 {
        let sys = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        i64::try_from(sys)
            .unwrap_or(i64::MAX)
            .saturating_add(self.offset.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone) forward by `secs` (tests).
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}
