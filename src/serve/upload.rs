//! Reading an upload into memory under the `--max-upload-mb` limit and within a time limit, and
//! answering an upload over the size limit so that the client hears the answer instead of a
//! reset connection.

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
/// The whole upload must arrive within this time of its headers...
pub const BODY_TIME: Duration = Duration::from_secs(60);
/// ...and never pause longer than this; else it is answered 408 and the connection closed.
pub const BODY_STALL: Duration = Duration::from_secs(10);

/// The upload's bytes, at most `limit_mb` MiB of them held.
///
/// A client still sending when the server answers and closes gets a reset connection, and the
/// reset throws away the answer it was sent: browsers then show "connection reset" instead of
/// the 413. So an upload over the limit is read on and dropped (at most [`DRAIN_BYTES`] more,
/// for at most [`DRAIN_TIME`]) before the 413, which also says `Connection: close`; one that
/// declares more than that is answered at once. An upload slower than [`BODY_TIME`] or
/// pausing longer than [`BODY_STALL`] is answered 408.
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
    let deadline = Instant::now() + BODY_TIME;
    loop {
        let stall = (Instant::now() + BODY_STALL).min(deadline);
        let Ok(frame) = tokio::time::timeout_at(stall, body.frame()).await else {
            return Err(too_slow());
        };
        let Some(frame) = frame else { break };
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

fn too_slow() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the upload was too slow: it must arrive within {} s, with no pause over {} s",
            BODY_TIME.as_secs(),
            BODY_STALL.as_secs()
        ),
    )
    .closing_connection()
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
