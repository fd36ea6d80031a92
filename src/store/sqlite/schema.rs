//! The SQLite schema: its text, its version (`PRAGMA user_version`), the migrations and the version checks.

use super::errors::open_error;
use super::Sqlite;
use crate::error::InputError;
use anyhow::Context;
use rusqlite::Connection;
use std::path::Path;

/// The schema version this build writes and reads (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 3;

/// Migration steps: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2, SCHEMA_V3];

pub(super) const SCHEMA_V1: &str = "
CREATE TABLE studies (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    grid_toml TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    trial_key TEXT NOT NULL,
    params_json TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'complete', 'failed')),
    val_accuracy REAL,
    best_val_accuracy REAL,
    val_loss REAL,
    epochs INTEGER,
    seconds REAL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    started_at TEXT,
    finished_at TEXT,
    heartbeat_at TEXT,
    UNIQUE (study_id, trial_key)
);
CREATE INDEX trials_by_state ON trials(study_id, state);
CREATE TABLE epochs (
    trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    phase TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    train_loss REAL,
    train_accuracy REAL,
    val_loss REAL,
    val_accuracy REAL,
    seconds REAL,
    PRIMARY KEY (trial_id, phase, epoch)
);
";

/// Version 2: balanced accuracy and F1 per epoch and per trial, and the best of the objective.
pub(super) const SCHEMA_V2: &str = "
ALTER TABLE trials ADD COLUMN balanced_accuracy REAL;
ALTER TABLE trials ADD COLUMN f1 REAL;
ALTER TABLE trials ADD COLUMN best_objective REAL;
ALTER TABLE epochs ADD COLUMN val_balanced_accuracy REAL;
ALTER TABLE epochs ADD COLUMN val_f1 REAL;
";

/// Version 3: cross-validation. Each epoch names its fold, part of the primary key (SQLite
/// cannot alter a primary key: the table is made again and the rows copied, fold 0); a trial
/// stores how many folds its scores are the mean of and the objective's sd over them.
const SCHEMA_V3: &str = "
ALTER TABLE trials ADD COLUMN folds INTEGER;
ALTER TABLE trials ADD COLUMN objective_sd REAL;
CREATE TABLE epochs_v3 (
    trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    fold INTEGER NOT NULL DEFAULT 0,
    phase TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    train_loss REAL,
    train_accuracy REAL,
    val_loss REAL,
    val_accuracy REAL,
    seconds REAL,
    val_balanced_accuracy REAL,
    val_f1 REAL,
    PRIMARY KEY (trial_id, fold, phase, epoch)
);
INSERT INTO epochs_v3 (trial_id, fold, phase, epoch, train_loss, train_accuracy, val_loss,
    val_accuracy, seconds, val_balanced_accuracy, val_f1)
    SELECT trial_id, 0, phase, epoch, train_loss, train_accuracy, val_loss, val_accuracy,
    seconds, val_balanced_accuracy, val_f1 FROM epochs;
DROP TABLE epochs;
ALTER TABLE epochs_v3 RENAME TO epochs;
";

/// The tables every schema version has.
const OUR_TABLES: &[&str] = &["studies", "trials", "epochs"];

impl Sqlite {
    /// Apply the migration steps from the stored version up to [`SCHEMA_VERSION`] in one transaction.
    pub(super) fn migrate(&mut self) -> anyhow::Result<()> {
        let path = self.path.clone();
        let tx = self.write_transaction()?;
        // Checked again under the write lock: another process may have made the file since.
        let version = check_ours(&tx, &path)?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let from = usize::try_from(version).expect("check_ours refuses negative versions");
        for (from, step) in MIGRATIONS.iter().enumerate().skip(from) {
            tx.execute_batch(step)
                .with_context(|| format!("{}: migrating schema version {from}", path.display()))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }
}

pub(super) fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// The schema version of one of our databases (0: an empty one, which we may initialise).
/// Anything else is refused without writing: another program's database (tables but no
/// version, an application id, a negative version, or a version without our tables) or one
/// made by a newer gridsearch. Reads only, so it runs on a read-only connection.
pub(super) fn check_ours(conn: &Connection, path: &Path) -> anyhow::Result<i64> {
    let read = |e| open_error(path, e);
    let version = schema_version(conn).map_err(read)?;
    let application_id: i64 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(read)?;
    let tables = table_names(conn).map_err(read)?;
    let foreign = |why: String| {
        InputError::new(format!(
            "{}: a SQLite database of another program ({why}); give another database path",
            path.display()
        ))
    };
    if application_id != 0 {
        return Err(foreign(format!("its application id is {application_id}")).into());
    }
    if version < 0 {
        return Err(foreign(format!("its user_version is {version}")).into());
    }
    check_not_newer(path, version)?;
    if version == 0 {
        if !tables.is_empty() {
            return Err(foreign("it has tables but no gridsearch schema".to_string()).into());
        }
        return Ok(0);
    }
    if let Some(missing) = OUR_TABLES.iter().find(|t| !tables.iter().any(|n| n == *t)) {
        return Err(foreign(format!("schema version {version} but no `{missing}` table")).into());
    }
    Ok(version)
}

fn check_not_newer(path: &Path, version: i64) -> anyhow::Result<()> {
    if version > SCHEMA_VERSION {
        return Err(InputError::new(format!(
            "{}: database schema version {version} is newer than this gridsearch supports \
             ({SCHEMA_VERSION}); use a newer gridsearch",
            path.display()
        ))
        .into());
    }
    Ok(())
}

/// A read-only handle cannot migrate, so it needs exactly the current schema.
pub(super) fn check_readable_version(path: &Path, version: i64) -> anyhow::Result<()> {
    if version == 0 {
        return Err(InputError::new(format!(
            "{}: not a gridsearch database (run `gridsearch run GRID` first)",
            path.display()
        ))
        .into());
    }
    if version < SCHEMA_VERSION {
        return Err(InputError::new(format!(
            "{}: database schema version {version} is older than {SCHEMA_VERSION}; \
             run `gridsearch run GRID` once to upgrade it",
            path.display()
        ))
        .into());
    }
    Ok(())
}

/// The names of the database's own tables (SQLite's internal ones left out).
fn table_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )?;
    let names = statement.query_map([], |row| row.get(0))?;
    names.collect()
}
