//! The upload page and its JSON API: router, shared state, and the small handlers.

mod catalogue;
mod error;
mod predict;
mod upload;

use crate::inference::ModelSet;
use crate::model::Device;
use crate::similarity::{CatalogueIndex, Embedder};
use axum::extract::State;
use axum::http::StatusCode;
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

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/predict", post(predict::predict))
        .route("/api/models", get(models))
        .route("/catalogue/{row}", get(catalogue::photo))
        .fallback(not_found)
        .with_state(Arc::new(state))
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
