//! The load balancer's two questions, unsigned and outside the API prefix:
//! `GET /healthz` — is the process up (always 200 while it serves) — and
//! `GET /readyz` — should it get traffic: 200 when its store answers within
//! [`READY_TIMEOUT`] and its bus (with `--bus`) is connected, 503 when not
//! or when the server is shutting down, so a balancer drains an instance
//! before it goes. An instance without its bus still serves its own
//! sockets, but cannot reach devices on the others.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::St;

/// How long `/readyz` waits for the store's answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(super) async fn readyz(State(st): St) -> (StatusCode, Json<Value>) {
    let store = st.db.backend();
    if st.draining.is_cancelled() || st.shutdown.is_cancelled() {
        let body = json!({ "status": "draining", "store": store });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    if st.hub.bus_up() == Some(false) {
        let body = json!({ "status": "not ready", "store": store, "error": "bus not connected" });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    match tokio::time::timeout(READY_TIMEOUT, st.db.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": store })),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store failed");
            st.metrics.store_error();
            let body = json!({ "status": "not ready", "store": store, "error": e.to_string() });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
        Err(_) => {
            let body = json!({ "status": "not ready", "store": store, "error": "store timed out" });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
    }
}
