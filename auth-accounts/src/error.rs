//! The one error type of the API and its JSON body.
//!
//! Every error answers `{"status":"error","action":<last path segment>,"detail":<message>}` like the
//! old service. 4xx details say what was wrong; 5xx details are opaque ("Internal server error") and the
//! cause chain goes to the log only. The `action` is filled in by [`crate::http::errors::error_body`]
//! because it depends on the route, which a handler's error value does not know.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// Well-formed request whose content fails validation (bad email, short password).
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("Too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(&'static str),
    /// The database cannot be reached now: 503 with `Retry-After: 1`.
    #[error("Service temporarily unavailable")]
    DatabaseUnavailable,
    #[error("Internal server error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub(crate) fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if database_unavailable(&err) {
            // Logged once here (the 503 body is generic); the client may retry.
            tracing::warn!(error = %err, "database unavailable");
            return Self::DatabaseUnavailable;
        }
        Self::internal(err)
    }
}

/// Whether `err` means the database cannot be reached right now (down, restarting, pool
/// exhausted), as opposed to a query that failed: the first is a 503 the client may retry, the
/// second a bug.
pub(crate) fn database_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        // PostgreSQL: class 08 (connection exception), 57P01-57P03 (shutting down, cannot
        // connect now), 53300 (too many connections). SQLite: SQLITE_BUSY (5) after the busy
        // timeout.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "5")
        }),
        _ => false,
    }
}

impl From<crate::domain::Invalid> for ApiError {
    fn from(e: crate::domain::Invalid) -> Self {
        Self::Validation(e.0)
    }
}

impl From<crate::sessions::SessionError> for ApiError {
    fn from(err: crate::sessions::SessionError) -> Self {
        match err {
            crate::sessions::SessionError::InvalidRefresh => {
                Self::Unauthorized("Invalid or expired refresh token")
            }
            crate::sessions::SessionError::Database(err) => err.into(),
            other => Self::internal(other),
        }
    }
}

impl From<crate::crypto::CryptoError> for ApiError {
    fn from(err: crate::crypto::CryptoError) -> Self {
        Self::internal(err)
    }
}

/// The detail text of an error response, picked up by the error-body middleware.
#[derive(Clone, Debug)]
pub(crate) struct ErrorDetail(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(err) = &self {
            // Log the whole chain; the client sees only the opaque message.
            let mut chain = err.to_string();
            let mut source = std::error::Error::source(err.as_ref());
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            tracing::error!(error = %chain, "internal error");
        }
        let mut response = status.into_response();
        if let Self::TooManyRequests { retry_after_secs } = &self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if let Self::DatabaseUnavailable = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"auth\", error=\"invalid_token\""),
            );
        }
        response
            .extensions_mut()
            .insert(ErrorDetail(self.to_string()));
        response
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
