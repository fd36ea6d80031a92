//! At most `--max-requests` requests handled at once; one more is answered 503 at once rather
//! than queued, so a burst of uploads cannot pile up decoding work and memory.

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// One permit per request that may be handled at the same time.
pub struct Slots {
    permits: Semaphore,
    max: usize,
}

impl Slots {
    pub fn new(max: usize) -> Slots {
        Slots {
            permits: Semaphore::new(max),
            max,
        }
    }
}

/// Run the request while a slot is free (holding it until the answer is made), else 503.
pub async fn limit(State(slots): State<Arc<Slots>>, request: Request, next: Next) -> Response {
    let Ok(_permit) = slots.permits.try_acquire() else {
        let busy = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the server is busy with {} requests (--max-requests): try again shortly",
                slots.max
            ),
        );
        return ([(RETRY_AFTER, "1")], busy).into_response();
    };
    next.run(request).await
}
