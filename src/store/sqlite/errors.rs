//! SQLite's error wording and classification: what the user reads when the file is at fault,
//! and which SQLite failures are the user's input or the machine's rather than the program's.

use crate::error::InputError;
use anyhow::anyhow;
use rusqlite::ErrorCode;
use std::path::Path;

pub(super) fn not_sqlite_error(path: &Path) -> InputError {
    InputError::new(format!(
        "{}: not a SQLite database (the file holds something else; give another database path)",
        path.display()
    ))
}

pub(super) fn read_only_error(path: &Path) -> InputError {
    InputError::new(format!(
        "{}: database is read-only (this command needs to write to it and its folder)",
        path.display()
    ))
}

// SQLite's failures, classified.

/// Phrase a SQLite failure while opening as an input error where the file is at fault.
pub(super) fn open_error(path: &Path, error: rusqlite::Error) -> anyhow::Error {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => not_sqlite_error(path).into(),
        Some(ErrorCode::ReadOnly) => read_only_error(path).into(),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            InputError::new(format!("{}: cannot open database: {error}", path.display())).into()
        }
        _ => anyhow!(error).context(format!("{}: opening database", path.display())),
    }
}

/// Phrase a failure to take the write lock: a read-only database is the user's input.
pub(super) fn write_transaction_error(path: &Path, error: rusqlite::Error) -> anyhow::Error {
    match error.sqlite_error_code() {
        Some(ErrorCode::ReadOnly) => InputError::new(format!(
            "{}: database is read-only (this command writes to it)",
            path.display()
        ))
        .into(),
        _ => anyhow!(error).context(format!("{}: starting a write transaction", path.display())),
    }
}
