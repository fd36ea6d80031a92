//! What the API answers when a request cannot be served: a 4xx/5xx status with `{"error": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// A failed request: its status and a one-line message for the page to show.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A failure of the server itself (not of the request); also logged to stderr.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        let message = format!("internal error: {error:#}");
        eprintln!("error: {message}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(Body {
            error: &self.message,
        });
        (self.status, body).into_response()
    }
}
