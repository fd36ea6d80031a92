//! What went wrong, classified in one place: the error types every layer raises, the process
//! exit codes, and the one line `main` prints for each error.

use std::path::Path;

/// Process exit codes (the README's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// An unexpected error (a bug, or the machine).
    Failure = 1,
    /// Bad input: grid, data, weights, model folder or database path.
    BadInput = 2,
    /// The sweep finished but some trials failed (recorded with their error).
    TrialsFailed = 3,
    /// The disk is full (or failed) while writing: everything stored before is kept.
    CannotWrite = 4,
    /// Interrupted by Ctrl-C / SIGTERM; running trials were put back to pending.
    Interrupted = 130,
}

/// A bad input, already phrased as one line that names the file (and line/column where known).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl InputError {
    pub fn new(message: impl Into<String>) -> InputError {
        InputError(message.into())
    }
}

/// Raised from inside training when the user interrupts (Ctrl-C): nothing is recorded as failed.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Standard output was closed by its reader (`gridsearch plan grid.toml | head`): not an error.
#[derive(Debug, thiserror::Error)]
#[error("standard output closed")]
pub struct StdoutClosed;

/// Writes `text` to standard output; a closed pipe becomes [`StdoutClosed`].
pub fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => Ok(other?),
    }
}

/// `print!` for commands: a closed standard output returns [`StdoutClosed`] through `?`.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::error::print(&format!($($arg)*))? };
}

/// `println!` for commands: a closed standard output returns [`StdoutClosed`] through `?`.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => { $crate::error::print(&format!("{}\n", format_args!($($arg)*)))? };
}

/// The exit code of a command that failed with `error`, and the line to print (None: quiet).
/// `db` is the database the command used, named when writing to it failed.
pub fn classify(error: &anyhow::Error, db: &Path) -> (Exit, Option<String>) {
    if error.is::<StdoutClosed>() {
        return (Exit::Ok, None);
    }
    if let Some(failure) = write_failure(error) {
        let line = format!(
            "{}: cannot write ({failure}): is the disk full? Everything stored before is kept: \
             free space, then run the same command again",
            db.display()
        );
        return (Exit::CannotWrite, Some(line));
    }
    if let Some(input) = error.downcast_ref::<InputError>() {
        return (Exit::BadInput, Some(input.to_string()));
    }
    if error.is::<Interrupted>() {
        return (Exit::Interrupted, Some("interrupted".to_string()));
    }
    (Exit::Failure, Some(format!("{error:#}")))
}

/// When `error` comes from the disk failing a write (full, over quota, over the file size
/// limit, or an I/O error beneath SQLite), its one-line description.
fn write_failure(error: &anyhow::Error) -> Option<String> {
    use rusqlite::ErrorCode;
    error.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<rusqlite::Error>() {
            let full = matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure)
            );
            return full.then(|| e.to_string().lines().next().unwrap_or_default().to_string());
        }
        let io = cause.downcast_ref::<std::io::Error>()?;
        let full = matches!(
            io.kind(),
            std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::QuotaExceeded
                | std::io::ErrorKind::FileTooLarge
        );
        full.then(|| io.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classified(error: anyhow::Error) -> (Exit, Option<String>) {
        classify(&error, Path::new("runs/gs.db"))
    }

    #[test]
    fn each_kind_of_error_has_its_exit_code() {
        let input = anyhow::Error::from(InputError::new("g.toml:3:1: bad"));
        assert_eq!(
            classified(input),
            (Exit::BadInput, Some("g.toml:3:1: bad".into()))
        );
        assert_eq!(classified(StdoutClosed.into()), (Exit::Ok, None));
        let wrapped = anyhow::Error::from(StdoutClosed).context("printing the plan");
        assert_eq!(classified(wrapped).0, Exit::Ok);
        assert_eq!(classified(anyhow::anyhow!("bug")).0, Exit::Failure);
        assert_eq!(classified(Interrupted.into()).0, Exit::Interrupted);
    }

    #[test]
    fn a_full_disk_is_not_a_bad_input() {
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let (exit, line) = classified(anyhow::Error::from(full).context("writing a checkpoint"));
        assert_eq!(exit, Exit::CannotWrite);
        let line = line.expect("a line");
        assert!(line.starts_with("runs/gs.db: cannot write") && line.contains("disk full"));
        let sqlite = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert_eq!(classified(sqlite.into()).0, Exit::CannotWrite);
    }
}
