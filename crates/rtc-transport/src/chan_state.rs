//! A DataChannel's lifecycle as the channel handle tracks it
//! (connecting, open, closed, in a `watch` so every waiter sees a close at
//! once), and the waits built on it: for the open, for the close, and for
//! room below the high-water mark before a send (spec peer-lifecycle §6).

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
/// `Err(Closed)` when the channel closes first, `Err(SendTimeout)` at `deadline`.
pub(crate) async fn wait_for_room(
    low: &Notify,
    buffered: impl Fn() -> usize,
    st: &mut watch::Receiver<ChanState>,
    deadline: Instant,
) -> Result<(), RtcError> {
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
            _ = sleep_until(deadline) => return Err(RtcError::SendTimeout),
        }
    }
}
