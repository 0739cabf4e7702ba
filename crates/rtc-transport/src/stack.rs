//! The transport's own thread: one current-thread tokio runtime per process
//! ("rtc-stack") on which every peer's driver task runs (the core, its UDP
//! sockets, STUN and TURN), whatever runtime the caller uses.
//!
//! It was introduced for `webrtc` 0.17.2, whose many library tasks per message
//! woke each other across a multi-thread runtime's workers (1-byte round trip
//! p50 173–202 µs on this thread against 236–292 µs on the callers' 2-worker
//! runtimes, `tests/bench.rs`). The sans-IO driver is one task per peer, so
//! what remains is that all drivers share one thread and the callers' tasks
//! hand messages to it through bounded queues. Every call that starts a driver
//! is made from this runtime ([`on_stack`]); a caller's future only waits for it.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Handle;

use crate::error::RtcError;

/// The stack runtime's handle, started on first use; `None` when its thread
/// could not be started (then the library runs on the caller's runtime).
fn handle() -> Option<&'static Handle> {
    static STACK: OnceLock<Option<Handle>> = OnceLock::new();
    STACK.get_or_init(start).as_ref()
}

fn start() -> Option<Handle> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(error = %e, "webrtc stack runtime not built; using the caller's");
            return None;
        }
    };
    let handle = rt.handle().clone();
    // The thread runs for the life of the process: peers come and go on it.
    let spawned = std::thread::Builder::new()
        .name("rtc-stack".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()));
    match spawned {
        Ok(_) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "webrtc stack thread not started; using the caller's runtime");
            None
        }
    }
}

/// Runs `fut` on the stack runtime (in place when there is none or this is
/// already its thread) and returns its output. If the caller stops waiting,
/// `fut` still runs to its end there. A panic in `fut` resumes here.
pub(crate) async fn on_stack<F, T>(fut: F) -> Result<T, RtcError>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let Some(stack) = handle() else {
        return Ok(fut.await);
    };
    if Handle::try_current().is_ok_and(|h| h.id() == stack.id()) {
        return Ok(fut.await);
    }
    match stack.spawn(fut).await {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels its tasks; this one never does.
        Err(_) => Err(RtcError::Closed),
    }
}

/// Spawns `fut` on the stack runtime, else on the caller's runtime (if any;
/// without one `fut` is dropped).
pub(crate) fn spawn<F>(fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Some(stack) = handle() {
        stack.spawn(fut);
    } else if let Ok(h) = Handle::try_current() {
        h.spawn(fut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_name() -> Option<String> {
        std::thread::current().name().map(str::to_owned)
    }

    #[tokio::test]
    async fn work_runs_on_the_stack_thread_and_nested_calls_stay_there() {
        let name = on_stack(async { thread_name() }).await.unwrap();
        assert_eq!(name.as_deref(), Some("rtc-stack"));
        let nested = on_stack(async { on_stack(async { thread_name() }).await })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(nested.as_deref(), Some("rtc-stack"));
    }

    #[test]
    fn spawn_works_without_a_runtime() {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        spawn(async move {
            let _ = tx.send(thread_name());
        });
        let name = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(name.as_deref(), Some("rtc-stack"));
    }
}
