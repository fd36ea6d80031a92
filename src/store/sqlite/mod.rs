//! The SQLite backend: opening a file (checked read-only first), its write transactions, and
//! the pid-based recovery of one host. `queries` holds the SQL of every operation, `schema` the
//! schema and its migrations, `columns` how result rows are read, `errors` SQLite's wording.

use crate::error::InputError;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod columns;
mod errors;
mod queries;
mod schema;

use errors::{open_error, read_only_error, write_transaction_error};
use schema::{check_ours, check_readable_version};

/// How long a statement waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to one gridsearch database file.
pub(super) struct Sqlite {
    conn: Connection,
    path: PathBuf,
}

impl Sqlite {
    /// Open (creating if needed) a database for reading and writing, migrated to the current
    /// schema. An existing file is first checked read-only: one that is not ours is refused
    /// and left byte-identical (nothing, not even the journal mode, is written to it).
    pub(super) fn open(path: &Path) -> anyhow::Result<Sqlite> {
        create_parent_folders(path)?;
        if holds_data(path)? {
            check_ours(&open_read_only_connection(path)?, path)?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(path, e))?;
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(read_only_error(path).into());
        }
        // Made (or swapped) by someone else since the check: check again before writing.
        check_ours(&conn, path)?;
        configure_for_writing(&conn).map_err(|e| open_error(path, e))?;
        let mut store = Sqlite {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Open an existing database for reading only (reports); it must already hold the current schema.
    pub(super) fn open_read_only(path: &Path) -> anyhow::Result<Sqlite> {
        if !path.exists() {
            return Err(InputError::new(format!(
                "{}: no such database (run `gridsearch run GRID` first)",
                path.display()
            ))
            .into());
        }
        holds_data(path)?;
        let conn = open_read_only_connection(path)?;
        let version = check_ours(&conn, path)?;
        check_readable_version(path, version)?;
        Ok(Sqlite {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// A transaction that takes the write lock at once, so it never fails half-way on a busy lock.
    fn write_transaction(&mut self) -> anyhow::Result<Transaction<'_>> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| write_transaction_error(&self.path, e))
    }
}

fn create_parent_folders(path: &Path) -> anyhow::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(|e| {
                InputError::new(format!("{}: cannot create its folder: {e}", path.display()))
            })?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A connection that cannot write, for looking at a file before trusting it.
fn open_read_only_connection(path: &Path) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// Whether `path` is an existing, non-empty file (false: missing or empty, a new database). A
/// folder, a FIFO or device is refused without opening it. Whether it is a SQLite database is
/// left to SQLite's read-only connection (a file of another kind fails with NotADatabase): the
/// file must never be opened and closed outside SQLite, because closing any descriptor of it
/// drops every POSIX lock this process holds on it, those of its other connections included.
fn holds_data(path: &Path) -> anyhow::Result<bool> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(InputError::new(format!("{}: cannot read: {e}", path.display())).into())
        }
    };
    if meta.is_dir() {
        return Err(InputError::new(format!(
            "{}: is a folder, not a database file",
            path.display()
        ))
        .into());
    }
    if !meta.is_file() {
        return Err(InputError::new(format!(
            "{}: not a regular file (a FIFO, socket or device), not a database file",
            path.display()
        ))
        .into());
    }
    Ok(meta.len() > 0)
}

/// WAL for concurrent readers and writers, foreign keys enforced, fsync only at checkpoints.
fn configure_for_writing(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        })?;
    }
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod lock_tests;
