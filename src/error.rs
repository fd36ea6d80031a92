//! Errors caused by the user's input (grid, data, weights, database path): exit code 2.

/// A bad input, already phrased as one line that names the file (and line/column where known).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl InputError {
    pub fn new(message: impl Into<String>) -> InputError {
        InputError(message.into())
    }
}
