//! Small helpers: collision-free names and a bounded wait for a condition
//! (async and blocking), the one polling loop of the test suites.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;

/// A name unique across processes and calls, made of `[A-Za-z0-9_-]`, e.g. for
/// `tmux -L <name>` sockets: `<prefix>-<pid>-<counter>-<random>`. Characters
/// outside that set in `prefix` become `_`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let clean: String = prefix
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r: u32 = rand::thread_rng().r#gen();
    format!("{clean}-{}-{n}-{r:08x}", std::process::id())
}

/// The first pause between two checks of a condition; it doubles after each
/// check up to [`MAX_PAUSE`], so a quick condition is seen quickly and a slow
/// one (a process spawned per check) does not load the machine.
const FIRST_PAUSE: Duration = Duration::from_millis(10);

/// The longest pause between two checks.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// Re-checks `cond` (at once first, then after pauses growing from 10 ms to
/// 100 ms) until it yields true or `timeout` passes; returns whether it became
/// true. For conditions that have no event to wait on; prefer waiting on an
/// event when there is one. [`wait_until_blocking`] is the same for code
/// outside an async runtime.
pub async fn wait_until<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        if cond().await {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// [`wait_until`] on the calling thread: re-checks `cond` until it yields true
/// or `timeout` passes; returns whether it became true.
pub fn wait_until_blocking(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        if cond() {
            return true;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_safe() {
        let a = unique_name("muxlink test/1");
        let b = unique_name("muxlink test/1");
        assert_ne!(a, b);
        assert!(a.starts_with("muxlink_test_1-"));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[tokio::test]
    async fn wait_until_reports_success_and_timeout() {
        let mut n = 0;
        assert!(
            wait_until(Duration::from_secs(1), || {
                n += 1;
                let v = n;
                async move { v >= 3 }
            })
            .await
        );
        assert!(!wait_until(Duration::from_millis(50), || async { false }).await);
    }

    #[test]
    fn wait_until_blocking_reports_success_and_timeout() {
        let mut n = 0;
        assert!(wait_until_blocking(Duration::from_secs(1), || {
            n += 1;
            n >= 3
        }));
        assert_eq!(n, 3);
        assert!(!wait_until_blocking(Duration::from_millis(50), || false));
    }
}
