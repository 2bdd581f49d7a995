//! The one error type at the HTTP edge. Its response carries only a status and a short
//! message; the edge layer (edge.rs) turns it into a localized HTML page or JSON.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::render::RenderError;
use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{0}")]
    TooManyRequests(&'static str),
    /// A source this server depends on failed; the message is safe to show an admin.
    #[error("{0}")]
    BadGateway(String),
    #[error("temporarily unavailable")]
    Unavailable(String),
    /// Too much of one kind of work at once: 503 with `Retry-After`, logged at debug level
    /// only (a flood must not flood the log too).
    #[error("{0}")]
    Busy(&'static str),
    #[error("internal error")]
    Internal(String),
    /// A damaged record in the store: the store has logged it once already.
    #[error("internal error")]
    Damaged,
    /// The store is damaged where an admin operation reads it; the message says where and
    /// what to do (admin endpoints only: it names the store's file).
    #[error("{0}")]
    StoreDamaged(String),
}

/// Seconds a client is asked to wait after [`AppError::Busy`].
pub const BUSY_RETRY_AFTER: &str = "1";

/// Marks a response as an error for the middleware that dresses it.
#[derive(Debug, Clone)]
pub struct ErrorMarker {
    pub status: StatusCode,
    /// Safe to show a client.
    pub message: String,
}

/// Marks an error response that is already the page to show (a form answered with what is
/// wrong in it): the middleware leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct OwnErrorPage;

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            AppError::Unavailable(_) | AppError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) | AppError::Damaged | AppError::StoreDamaged(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        AppError::BadRequest(message.into())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked(_) | StoreError::Join(_) => AppError::Unavailable(e.to_string()),
            e if crate::store::Store::is_record_damage(&e) => AppError::Damaged,
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<crate::cache::Abandoned> for AppError {
    fn from(e: crate::cache::Abandoned) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<RenderError> for AppError {
    fn from(e: RenderError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<Arc<AppError>> for AppError {
    fn from(e: Arc<AppError>) -> Self {
        (*e).clone()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            AppError::Internal(detail)
            | AppError::Unavailable(detail)
            | AppError::StoreDamaged(detail) => {
                tracing::error!(%status, detail, "request failed");
            }
            _ => tracing::debug!(%status, error = %self, "request refused"),
        }
        let message = self.to_string();
        let mut response = (status, message.clone()).into_response();
        response
            .extensions_mut()
            .insert(ErrorMarker { status, message });
        if let AppError::Busy(_) = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(BUSY_RETRY_AFTER),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
