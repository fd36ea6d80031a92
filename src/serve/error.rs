//! What the API answers when a request cannot be served: a 4xx/5xx status with `{"error": "..."}`.

use axum::http::header::CONNECTION;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// A failed request: its status and a one-line message for the page to show.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Answer with `Connection: close`: the request was not read to its end.
    pub close: bool,
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
            close: false,
        }
    }

    /// The same answer, closing the connection after it.
    pub fn closing_connection(self) -> ApiError {
        ApiError {
            close: true,
            ..self
        }
    }

    /// A request whose body broke off while it was read.
    pub fn unreadable(error: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the upload broke off: {error}"),
        )
        .closing_connection()
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
        if self.close {
            (self.status, [(CONNECTION, "close")], body).into_response()
        } else {
            (self.status, body).into_response()
        }
    }
}
