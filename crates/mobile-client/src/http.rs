//! Runs the blocking signed HTTP calls of `signaling_client::http` (the same
//! signed-request and challenge → token flow as the host, signaling.md §3–§5)
//! off the async runtime, their errors turned into [`ClientError`].

use crate::error::ClientError;

/// Runs a blocking HTTP call off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ClientError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ClientError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ClientError::Transport {
            url: String::new(),
            detail: format!("http task failed: {e}"),
        })?
}
