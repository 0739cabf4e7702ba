//! Prometheus metrics of one server instance ([`Metrics`], held in
//! `AppState`), encoded by [`Metrics::encode`] for `GET /metrics` on the
//! separate listener of `ServerConfig::metrics_bind` (the server starts it;
//! the public listener has no `/metrics`).
//!
//! Every label has a bounded set of values fixed by the code (message types,
//! failure reasons, endpoints, route patterns, HTTP statuses): never a device
//! id, a token or an address, so a hostile client cannot grow the series.
//! Names (OpenMetrics text; counters end in `_total`):
//! - `muxlink_websockets_open` (gauge): upgraded WebSockets, authenticated or not.
//! - `muxlink_devices_online` (gauge): devices with an authenticated socket on
//!   this instance (set when scraped).
//! - `muxlink_relayed_messages_total{type}`: relay messages handed on to
//!   their target (counted once, on the sender's instance); relays/s is
//!   `rate()` of it.
//! - `muxlink_relay_latency_seconds` (histogram): from a relay message read off
//!   the sender's socket to its queueing for the target's socket, measured
//!   on the sender's instance; with `--bus` and the target elsewhere, to its
//!   publication on the bus (a `connect_request`: to the holding instance's
//!   answer, a round trip), so the other instance's queueing is not in it.
//! - `muxlink_auth_failures_total{reason}`, see [`AuthFailure`].
//! - `muxlink_rate_limited_total{endpoint}`: 429s by route pattern (every
//!   HTTP limit: request rates, the failed-pairing budget, sockets per
//!   client), and `ws_messages`: sockets closed with 1008 for their message
//!   rate.
//! - `muxlink_store_errors_total`, `muxlink_bus_errors_total`.
//! - `muxlink_http_requests_total{route,status}`: routed HTTP requests by
//!   route pattern (`/v1/ws`, not the URL) and status.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api_error::StoreFailure;

/// The `endpoint` label of a socket closed (1008) for its message rate.
const WS_MESSAGES: &str = "ws_messages";

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the relay latency buckets: 100 µs to 2.5 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Why an authentication failed (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// A WebSocket `auth` without a token.
    MissingToken,
    /// A JWT that does not verify (signature, expiry, device type).
    InvalidToken,
    /// A second `auth` on a socket with another device's token.
    WrongDevice,
    /// A valid token for a device that no longer exists.
    DeviceNotFound,
    /// No `auth` within the auth timeout.
    Timeout,
    /// A bad, stale or replayed request signature (HMAC headers).
    RequestSignature,
    /// A Bearer token refused by an HTTP endpoint.
    Bearer,
    /// A challenge response whose signature or challenge is wrong.
    Challenge,
}

impl AuthFailure {
    fn label(self) -> &'static str {
        match self {
            AuthFailure::MissingToken => "missing_token",
            AuthFailure::InvalidToken => "invalid_token",
            AuthFailure::WrongDevice => "wrong_device",
            AuthFailure::DeviceNotFound => "device_not_found",
            AuthFailure::Timeout => "timeout",
            AuthFailure::RequestSignature => "request_signature",
            AuthFailure::Bearer => "bearer",
            AuthFailure::Challenge => "challenge",
        }
    }
}

/// The `type` label of a relayed message: the relay kinds of signaling.md §6,
/// anything else `other`.
fn kind_label(kind: &str) -> &'static str {
    use signaling_proto::signal::kind;
    match kind {
        kind::CONNECT_REQUEST => "connect_request",
        kind::SDP_OFFER => "sdp_offer",
        kind::SDP_ANSWER => "sdp_answer",
        kind::ICE_CANDIDATE => "ice_candidate",
        kind::CONNECTION_REJECTED => "connection_rejected",
        _ => "other",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TypeLabel {
    r#type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

/// The instance's metrics; cheap to update from any task (atomics).
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    websockets: Gauge,
    devices_online: Gauge,
    relayed: Family<TypeLabel, Counter>,
    relay_latency: Histogram,
    auth_failures: Family<ReasonLabel, Counter>,
    rate_limited: Family<EndpointLabel, Counter>,
    store_errors: Counter,
    bus_errors: Counter,
    http_requests: Family<HttpLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric under the `muxlink` prefix.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("muxlink");
        let m = Metrics {
            websockets: Gauge::default(),
            devices_online: Gauge::default(),
            relayed: Family::default(),
            relay_latency: Histogram::new(LATENCY_BUCKETS),
            auth_failures: Family::default(),
            rate_limited: Family::default(),
            store_errors: Counter::default(),
            bus_errors: Counter::default(),
            http_requests: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "websockets_open",
            "Upgraded WebSockets, authenticated or not",
            m.websockets.clone(),
        );
        r.register(
            "devices_online",
            "Devices with an authenticated socket on this instance",
            m.devices_online.clone(),
        );
        r.register(
            "relayed_messages",
            "Relay messages queued for their target socket, by message type",
            m.relayed.clone(),
        );
        r.register(
            "relay_latency_seconds",
            "From a relay message read off the sender's socket to its queueing for the target socket (or its publication on the bus)",
            m.relay_latency.clone(),
        );
        r.register(
            "auth_failures",
            "Failed authentications, by reason",
            m.auth_failures.clone(),
        );
        r.register(
            "rate_limited",
            "Requests refused by a rate limit (and sockets closed with 1008 for their message rate), by endpoint",
            m.rate_limited.clone(),
        );
        r.register(
            "store_errors",
            "Failed database operations",
            m.store_errors.clone(),
        );
        r.register(
            "bus_errors",
            "Failed message bus operations",
            m.bus_errors.clone(),
        );
        r.register(
            "http_requests",
            "Routed HTTP requests, by route pattern and status",
            m.http_requests.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text of every metric ([`CONTENT_TYPE`]).
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; an encoder error would only
        // truncate the page.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Counts one upgraded WebSocket until the returned guard is dropped.
    pub(crate) fn socket_opened(&self) -> OpenSocket {
        self.websockets.inc();
        OpenSocket(self.websockets.clone())
    }

    /// Sets the number of devices online on this instance.
    pub(crate) fn set_devices_online(&self, devices: usize) {
        self.devices_online
            .set(i64::try_from(devices).unwrap_or(i64::MAX));
    }

    /// One relay message of type `kind` handed on to its target (queued for
    /// a socket here, or published on the bus), `latency` after it was read
    /// off the sender's socket.
    pub(crate) fn relayed(&self, kind: &str, latency: Duration) {
        self.relayed
            .get_or_create(&TypeLabel {
                r#type: kind_label(kind),
            })
            .inc();
        self.relay_latency.observe(latency.as_secs_f64());
    }

    /// One failed authentication.
    pub(crate) fn auth_failure(&self, reason: AuthFailure) {
        self.auth_failures
            .get_or_create(&ReasonLabel {
                reason: reason.label(),
            })
            .inc();
    }

    /// One WebSocket closed (1008) for exceeding its message rate.
    pub(crate) fn ws_message_rate_limited(&self) {
        self.rate_limit_hit(WS_MESSAGES);
    }

    fn rate_limit_hit(&self, endpoint: &str) {
        self.rate_limited
            .get_or_create(&EndpointLabel {
                endpoint: endpoint.to_owned(),
            })
            .inc();
    }

    /// One failed database operation (counted where it is logged).
    pub(crate) fn store_error(&self) {
        self.store_errors.inc();
    }

    /// One failed message bus operation (publish, subscribe, connection).
    pub(crate) fn bus_error(&self) {
        self.bus_errors.inc();
    }

    fn http_request(&self, route: &str, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
    }
}

/// Decrements `muxlink_websockets_open` when dropped.
pub(crate) struct OpenSocket(Gauge);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `route_layer` middleware counting routed requests by route pattern and
/// status (only matched routes, so the label set is the router's routes),
/// their 429s as rate-limit hits of that route, and their store failures.
pub(crate) async fn count_http(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    let status = resp.status();
    metrics.http_request(&route, status.as_u16());
    if status == axum::http::StatusCode::TOO_MANY_REQUESTS {
        metrics.rate_limit_hit(&route);
    }
    if resp.extensions().get::<StoreFailure>().is_some() {
        metrics.store_error();
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_text_with_bounded_labels() {
        let m = Metrics::new();
        m.relayed(
            signaling_proto::signal::kind::SDP_OFFER,
            Duration::from_millis(3),
        );
        m.relayed("made-up", Duration::from_millis(1));
        m.auth_failure(AuthFailure::InvalidToken);
        m.rate_limit_hit("/v1/auth/token");
        m.ws_message_rate_limited();
        m.bus_error();
        let open = m.socket_opened();
        m.set_devices_online(2);
        let text = m.encode();
        assert!(
            text.contains("muxlink_relayed_messages_total{type=\"sdp_offer\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("muxlink_relayed_messages_total{type=\"other\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("muxlink_relay_latency_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains("muxlink_auth_failures_total{reason=\"invalid_token\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("muxlink_rate_limited_total{endpoint=\"/v1/auth/token\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("muxlink_rate_limited_total{endpoint=\"ws_messages\"} 1"),
            "{text}"
        );
        assert!(text.contains("muxlink_bus_errors_total 1"), "{text}");
        assert!(text.contains("muxlink_websockets_open 1"), "{text}");
        assert!(text.contains("muxlink_devices_online 2"), "{text}");
        drop(open);
        assert!(m.encode().contains("muxlink_websockets_open 0"));
    }
}
