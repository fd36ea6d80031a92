//! What the API answers when a request cannot be served: a 4xx/5xx status with `{"error": "..."}`.
//! Messages name what the request sent, never a file of the server or an internal error's text
//! (those go to stderr).

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

    /// A failure of the server itself (not of the request): logged to stderr with its detail,
    /// answered without it (it may name files or carry a panic's text).
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        eprintln!("error: internal error: {error:#}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: the server's log has the details",
        )
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

#[cfg(test)]
mod tests {
    use super::ApiError;
    use axum::http::StatusCode;

    #[test]
    fn an_internal_error_answers_without_its_detail() {
        let cause = anyhow::anyhow!("task 7 panicked with message \"attempt to divide by zero\"")
            .context("/home/shop/models/heel/model.json: cannot load");
        let error = ApiError::internal(cause);
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.message.contains('/'), "{}", error.message);
        assert!(!error.message.contains("panicked"), "{}", error.message);
    }
}
