//! `ApiError`: an HTTP status with the spec's JSON `{error}` body (and
//! `Retry-After` for 429).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use signaling_proto::ErrorBody;

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `error` field.
    pub message: String,
    /// `Retry-After` seconds (429 only).
    pub retry_after: Option<u64>,
    /// A store operation failed: the response carries [`StoreFailure`], so
    /// the metrics layer counts a store error.
    pub store_failure: bool,
}

/// Response extension of a 500 caused by the store (counted by
/// `metrics::count_http`).
#[derive(Debug, Clone, Copy)]
pub struct StoreFailure;

impl ApiError {
    /// Any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            store_failure: false,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded")
        }
    }

    /// 500 (details go to the log, not the client).
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.store_failure {
            resp.extensions_mut().insert(StoreFailure);
        }
        resp
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        match e {
            crate::store::StoreError::TypeConflict => {
                ApiError::new(StatusCode::CONFLICT, "device type conflict")
            }
            crate::store::StoreError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "device not found")
            }
            other => ApiError {
                store_failure: true,
                ..ApiError::internal(other)
            },
        }
    }
}
