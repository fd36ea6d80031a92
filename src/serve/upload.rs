//! Reading an upload into memory under the `--max-upload-mb` limit, and answering an upload over
//! it so that the client hears the answer instead of a reset connection.

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::BodyExt;
use std::time::Duration;
use tokio::time::Instant;

/// How much of an upload over the limit is still read (and dropped) before answering.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;
/// How long that reading may take.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The upload's bytes, at most `limit_mb` MiB of them held.
///
/// A client still sending when the server answers and closes gets a reset connection, and the
/// reset throws away the answer it was sent: browsers then show "connection reset" instead of
/// the 413. So an upload over the limit is read on and dropped (at most [`DRAIN_BYTES`] more,
/// for at most [`DRAIN_TIME`]) before the 413, which also says `Connection: close`; one that
/// declares more than that is answered at once.
pub async fn read(headers: &HeaderMap, body: Body, limit_mb: u16) -> Result<Bytes, ApiError> {
    let limit = usize::from(limit_mb) * 1024 * 1024;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the photo is over the upload limit of {limit_mb} MiB (--max-upload-mb)"),
        )
        .closing_connection()
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > (limit + DRAIN_BYTES) as u64) {
        return Err(too_large());
    }
    let mut body = body;
    let mut held = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(ApiError::unreadable)?.into_data() else {
            continue; // trailers
        };
        if held.len() + data.len() > limit {
            drain(body).await;
            return Err(too_large());
        }
        held.extend_from_slice(&data);
    }
    Ok(Bytes::from(held))
}

/// Read and drop the rest of `body`, within [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn drain(mut body: Body) {
    let deadline = Instant::now() + DRAIN_TIME;
    let mut dropped = 0;
    while dropped < DRAIN_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => dropped += frame.data_ref().map_or(0, Bytes::len),
            _ => return,
        }
    }
}
