//! Small helpers: collision-free names and a bounded wait for a condition.

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

/// Re-checks `cond` (every 10 ms, and at once first) until it yields true or
/// `timeout` passes; returns whether it became true. For conditions that have
/// no event to wait on; prefer waiting on an event when there is one.
pub async fn wait_until<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
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
}
