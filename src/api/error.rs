//! The one place where errors become HTTP statuses:
//! `{"error": "<code>", "message": "<human text>"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::store::StoreError;

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub error: String,
    /// What went wrong, for a human.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    /// 400: the request is malformed or invalid.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    /// 401: no valid token.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }
    /// 403: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }
    /// 409: the current state forbids it.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    /// 422: well-formed, but refers to something that cannot be used.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
    }
    /// 503: the store cannot be reached.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", message)
    }

    /// A store error on looking up an object the request refers to: only
    /// `NotFound` is the caller's mistake (answered with `missing()`, e.g. 422
    /// "unknown vendor"); any other error converts as usual (503 when the store
    /// cannot be reached), so an outage is never reported as a bad reference.
    pub fn unless_found(e: StoreError, missing: impl FnOnce() -> Self) -> Self {
        match e {
            StoreError::NotFound(_) => missing(),
            other => other.into(),
        }
    }

    /// 500 for a failure of our own (encoding a response): logged in full, shown
    /// to the client as a bare message — not the client's mistake.
    pub fn internal(what: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, what, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(what),
            StoreError::Conflict(m) => Self::conflict(m),
            StoreError::Invalid(what) => Self::bad_request(format!("invalid request: {what}")),
            StoreError::Unavailable(err) => {
                tracing::error!(error = %err, "store unavailable");
                Self::unavailable("the database cannot be reached; try again later")
            }
            StoreError::Down(why) => {
                tracing::warn!(error = %why, "store unavailable (breaker open)");
                Self::unavailable("the database cannot be reached; try again later")
            }
            other => {
                // Logged in full here, shown to the client as a bare message.
                tracing::error!(error = %other, "internal error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

impl From<crate::ops::OpsError> for ApiError {
    fn from(e: crate::ops::OpsError) -> Self {
        use crate::ops::OpsError;
        match e {
            OpsError::Invalid(m) => Self::bad_request(m),
            OpsError::Unauthenticated(m) => Self::unauthenticated(m),
            OpsError::Forbidden(m) => Self::forbidden(m),
            OpsError::NotFound(what) => Self::not_found(&what),
            OpsError::Conflict(m) => Self::conflict(m),
            OpsError::Unprocessable(m) => Self::unprocessable(m),
            OpsError::Unavailable(m) => Self::unavailable(m),
            OpsError::Store(e) => e.into(),
            OpsError::Internal(m) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        }
    }
}

impl From<crate::domain::BadText> for ApiError {
    fn from(e: crate::domain::BadText) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
