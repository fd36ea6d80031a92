//! The upload page and its JSON API: router, shared state, and the small handlers; every
//! request passes the guards (Host, origin, concurrency) and every answer says `nosniff`.

mod busy;
mod catalogue;
mod error;
mod hosts;
mod listen;
mod origin;
mod predict;
mod upload;

pub use hosts::AllowedHosts;
pub use listen::{serve, HEADER_TIMEOUT, SHUTDOWN_GRACE};
pub use upload::{BODY_STALL, BODY_TIME};

use crate::inference::ModelSet;
use crate::model::Device;
use crate::similarity::{CatalogueIndex, Embedder};
use axum::extract::State;
use axum::http::header::X_CONTENT_TYPE_OPTIONS;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use error::ApiError;
use std::sync::Arc;

/// The page: HTML, CSS and script in one file, nothing fetched from elsewhere.
const PAGE: &str = include_str!("page.html");

/// A searchable catalogue: its index, the embedder its rows were made with, and how many
/// neighbours to show.
pub struct Catalogue {
    pub index: CatalogueIndex,
    pub embedder: Embedder,
    pub k: usize,
}

/// What every request reads; never written after start.
pub struct AppState {
    pub models: ModelSet,
    pub catalogue: Option<Catalogue>,
    pub device: Device,
    pub max_upload_mb: u16,
}

/// Who may use the server and how much at once.
pub struct Guards {
    pub hosts: AllowedHosts,
    /// Requests handled at the same time; more are answered 503.
    pub max_requests: usize,
}

/// The page and API behind the guards. The outermost layer runs first: a request for another
/// Host or from another origin is refused before it can take one of the request slots.
pub fn router(state: AppState, guards: Guards) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/predict", post(predict::predict))
        .route("/api/models", get(models))
        .route("/catalogue/{row}", get(catalogue::photo))
        .fallback(not_found)
        .with_state(Arc::new(state))
        .layer(from_fn_with_state(
            Arc::new(busy::Slots::new(guards.max_requests)),
            busy::limit,
        ))
        .layer(from_fn(origin::check))
        .layer(from_fn_with_state(Arc::new(guards.hosts), hosts::check))
        .layer(map_response(no_sniffing))
}

/// The limits `serve --help` states, from the constants that enforce them.
pub fn limits_help() -> String {
    format!(
        "Limits: a request's headers must arrive within {} s (an idle connection is closed \
         after as long); an upload within {} s, never pausing over {} s (else 408). POSTs from \
         another origin's page are refused (403). After Ctrl-C or SIGTERM, answers under way \
         get {} s, then the server exits.",
        HEADER_TIMEOUT.as_secs(),
        BODY_TIME.as_secs(),
        BODY_STALL.as_secs(),
        SHUTDOWN_GRACE.as_secs(),
    )
}

/// Browsers take every answer as the type it says it is (a photo never runs as a script).
async fn no_sniffing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// Every model's card, in the order predictions come.
async fn models(State(state): State<Arc<AppState>>) -> Response {
    Json(state.models.cards()).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such page")
}

/// Run CPU-heavy or blocking work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}
