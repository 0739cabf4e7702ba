//! A DataChannel's lifecycle as the channel handle tracks it
//! (connecting, open, closed, in a `watch` so every waiter sees a close at
//! once), and the waits built on it: for the open, for the close, and for
//! room below the high-water mark before a send (spec peer-lifecycle §6).

use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep_until};

use crate::HIGH_WATER_MARK;
use crate::error::RtcError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChanState {
    Connecting,
    Open,
    Closed,
}

/// Waits until the channel is open; `Err(Closed)` if it closed first.
pub(crate) async fn wait_open(mut st: watch::Receiver<ChanState>) -> Result<(), RtcError> {
    match st.wait_for(|s| *s != ChanState::Connecting).await {
        Ok(s) if *s == ChanState::Open => Ok(()),
        _ => Err(RtcError::Closed),
    }
}

/// Resolves once the state is Closed (or its sender is gone); holds no borrow
/// across the await point so the futures stay `Send`.
pub(crate) async fn wait_closed(st: &mut watch::Receiver<ChanState>) {
    let _ = st.wait_for(|s| *s == ChanState::Closed).await.map(|_| ());
}

/// Waits while `buffered()` is above [`HIGH_WATER_MARK`], woken by `low`;
/// `Err(Closed)` when the channel closes first, `Err(SendTimeout)` once a
/// whole `window` passes in which the buffered amount did not go down.
///
/// Spec peer-lifecycle §6 bounds the wait at 5 s, to find a peer that stopped
/// reading. A peer that reads slowly is not one: a phone that takes 60 KB a
/// second needs 8 s to drain 512 KiB to the low mark, and a 5 s bound on the
/// whole wait ended its attachment although it was reading all along. So the
/// bound applies to the time without progress: each window in which the
/// peer acknowledged bytes starts another.
pub(crate) async fn wait_for_room(
    low: &Notify,
    buffered: impl Fn() -> usize,
    st: &mut watch::Receiver<ChanState>,
    window: Duration,
) -> Result<(), RtcError> {
    let mut deadline = Instant::now() + window;
    let mut at_window_start = buffered();
    loop {
        // Register for the "low" wake-up before reading the amount, so a
        // wake-up between the check and the wait is not lost; notify_waiters
        // stores no permit, so no stale signal from an earlier send remains.
        let notified = low.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if buffered() <= HIGH_WATER_MARK {
            return Ok(());
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = wait_closed(st) => return Err(RtcError::Closed),
            _ = sleep_until(deadline) => {
                let now = buffered();
                if now >= at_window_start {
                    return Err(RtcError::SendTimeout);
                }
                at_window_start = now;
                deadline = Instant::now() + window;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const WINDOW: Duration = Duration::from_secs(5);

    fn open() -> (watch::Sender<ChanState>, watch::Receiver<ChanState>) {
        watch::channel(ChanState::Open)
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_acknowledges_nothing_times_out_after_one_window() {
        let low = Notify::new();
        let (_tx, mut st) = open();
        let started = Instant::now();
        let r = wait_for_room(&low, || HIGH_WATER_MARK + 1, &mut st, WINDOW).await;
        assert!(matches!(r, Err(RtcError::SendTimeout)), "{r:?}");
        assert_eq!(started.elapsed(), WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_taking_bytes_is_waited_for() {
        // 12 s to drain from 512 KiB + 60 KB to the high mark, 5 KB a second.
        let buffered = Arc::new(AtomicUsize::new(HIGH_WATER_MARK + 60_000));
        let low = Notify::new();
        let (_tx, mut st) = open();
        let drain = Arc::clone(&buffered);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                drain.fetch_sub(5_000, Ordering::SeqCst);
            }
        });
        let started = Instant::now();
        let b = Arc::clone(&buffered);
        let r = wait_for_room(&low, || b.load(Ordering::SeqCst), &mut st, WINDOW).await;
        assert!(r.is_ok(), "{r:?}");
        assert!(
            started.elapsed() >= Duration::from_secs(12),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_times_out_one_window_after_its_last_progress() {
        let buffered = Arc::new(AtomicUsize::new(HIGH_WATER_MARK + 60_000));
        let low = Notify::new();
        let (_tx, mut st) = open();
        let drain = Arc::clone(&buffered);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            drain.fetch_sub(5_000, Ordering::SeqCst);
        });
        let started = Instant::now();
        let b = Arc::clone(&buffered);
        let r = wait_for_room(&low, || b.load(Ordering::SeqCst), &mut st, WINDOW).await;
        assert!(matches!(r, Err(RtcError::SendTimeout)), "{r:?}");
        assert_eq!(started.elapsed(), 2 * WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_close_ends_the_wait_at_once() {
        let low = Notify::new();
        let (tx, mut st) = open();
        let closer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = tx.send(ChanState::Closed);
            tx
        });
        let r = wait_for_room(&low, || HIGH_WATER_MARK + 1, &mut st, WINDOW).await;
        assert!(matches!(r, Err(RtcError::Closed)), "{r:?}");
        let _ = closer.await;
    }
}
