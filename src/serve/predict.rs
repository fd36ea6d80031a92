//! `POST /api/predict`: the photo's bytes in, every attribute's probabilities and the most
//! similar catalogue photos out. The upload is decoded from memory and never written anywhere.

use super::error::ApiError;
use super::upload;
use super::{blocking, AppState};
use crate::data::decode::DecodeError;
use crate::inference::model_set::ImageSource;
use crate::inference::Prediction;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Serialize)]
pub struct Answer {
    attributes: Vec<Prediction>,
    similar: Vec<Similar>,
}

/// A catalogue photo like the upload; `url` serves it.
#[derive(Serialize)]
struct Similar {
    rank: usize,
    path: PathBuf,
    similarity: f32,
    url: String,
}

pub async fn predict(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Answer>, ApiError> {
    let body = upload::read(&headers, body, state.max_upload_mb).await?;
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty upload: send the photo's bytes as the request body",
        ));
    }
    blocking(move || answer(&state, &body)).await.map(Json)
}

fn answer(state: &AppState, bytes: &[u8]) -> Result<Answer, ApiError> {
    let image = ImageSource::Bytes(bytes);
    let attributes = state
        .models
        .predict(&[image], &state.device)
        .map_err(ApiError::internal)?
        .remove(0)
        .map_err(|reason| {
            let status = match reason {
                DecodeError::TooBig(_) => StatusCode::PAYLOAD_TOO_LARGE,
                DecodeError::Unreadable(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            };
            ApiError::new(status, format!("not a readable image ({reason})"))
        })?;
    let Some(catalogue) = &state.catalogue else {
        return Ok(Answer {
            attributes,
            similar: Vec::new(),
        });
    };
    let neighbours = catalogue
        .index
        .query(&catalogue.embedder, image, catalogue.k, &state.device)
        .map_err(ApiError::internal)?;
    let similar = neighbours
        .into_iter()
        .enumerate()
        .map(|(i, n)| Similar {
            rank: i + 1,
            path: n.path,
            similarity: n.similarity,
            url: format!("/catalogue/{}", n.row),
        })
        .collect();
    Ok(Answer {
        attributes,
        similar,
    })
}
