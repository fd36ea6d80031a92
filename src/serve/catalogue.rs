//! `GET /catalogue/{row}`: a catalogue photo by its index row (never by a path from the request).

use super::error::ApiError;
use super::{blocking, AppState};
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use std::sync::Arc;

pub async fn photo(
    State(state): State<Arc<AppState>>,
    Path(row): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let missing = || ApiError::new(StatusCode::NOT_FOUND, format!("no catalogue photo {row}"));
    let catalogue = state.catalogue.as_ref().ok_or_else(missing)?;
    let entry = row
        .parse::<usize>()
        .ok()
        .and_then(|r| catalogue.index.entries.get(r))
        .ok_or_else(missing)?;
    let path = catalogue.index.root.join(&entry.path);
    let kind = content_type(&path);
    let bytes = blocking(move || {
        std::fs::read(&path).map_err(|e| {
            eprintln!(
                "error: {}: cannot read catalogue photo {row} ({e})",
                path.display()
            );
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("catalogue photo {row} cannot be read"),
            )
        })
    })
    .await?;
    Ok((
        [(CONTENT_TYPE, kind), (CACHE_CONTROL, "max-age=3600")],
        bytes,
    ))
}

/// The media type of an image file, from its extension.
fn content_type(path: &std::path::Path) -> &'static str {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::content_type;
    use std::path::Path;

    #[test]
    fn content_type_follows_the_extension_in_any_case() {
        assert_eq!(content_type(Path::new("boot/a.JPG")), "image/jpeg");
        assert_eq!(content_type(Path::new("a.webp")), "image/webp");
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }
}
