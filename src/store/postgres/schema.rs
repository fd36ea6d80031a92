//! The PostgreSQL schema: its text, its version (the one row of `gridsearch_schema`), the
//! migrations, and the checks; created and migrated under an advisory lock, so that many
//! workers starting at once make it exactly once.

use super::errors::rights_error;
use crate::error::InputError;
use crate::store::location::PostgresTarget;
use postgres::Client;

/// The schema version this build writes and reads.
pub(super) const SCHEMA_VERSION: i32 = 2;

/// `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2];

/// The key of the transaction-scoped advisory lock that creating or migrating takes
/// ("gridsear" in ASCII).
const SCHEMA_LOCK: i64 = 0x6772_6964_7365_6172;

pub(super) const SCHEMA_V1: &str = "
CREATE TABLE studies (
    id BIGSERIAL PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    grid_toml TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at TEXT NOT NULL,
    max_attempts INTEGER NOT NULL DEFAULT 3
);
CREATE TABLE trials (
    id BIGSERIAL PRIMARY KEY,
    study_id BIGINT NOT NULL REFERENCES studies(id),
    trial_key TEXT NOT NULL,
    params_json TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'complete', 'failed')),
    val_accuracy DOUBLE PRECISION,
    best_val_accuracy DOUBLE PRECISION,
    val_loss DOUBLE PRECISION,
    epochs BIGINT,
    seconds DOUBLE PRECISION,
    error TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    worker TEXT,
    started_at TEXT,
    finished_at TEXT,
    lease_expires_at TIMESTAMPTZ,
    balanced_accuracy DOUBLE PRECISION,
    f1 DOUBLE PRECISION,
    best_objective DOUBLE PRECISION,
    UNIQUE (study_id, trial_key)
);
CREATE INDEX trials_by_state ON trials(study_id, state);
CREATE TABLE epochs (
    trial_id BIGINT NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    phase TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    train_loss DOUBLE PRECISION,
    train_accuracy DOUBLE PRECISION,
    val_loss DOUBLE PRECISION,
    val_accuracy DOUBLE PRECISION,
    seconds DOUBLE PRECISION,
    val_balanced_accuracy DOUBLE PRECISION,
    val_f1 DOUBLE PRECISION,
    PRIMARY KEY (trial_id, phase, epoch)
);
";

/// Version 2: cross-validation. Each epoch names its fold, part of the primary key (rows
/// stored before are fold 0); a trial stores how many folds its scores are the mean of and
/// the objective's sd over them.
const SCHEMA_V2: &str = "
ALTER TABLE trials ADD COLUMN folds BIGINT;
ALTER TABLE trials ADD COLUMN objective_sd DOUBLE PRECISION;
ALTER TABLE epochs ADD COLUMN fold BIGINT NOT NULL DEFAULT 0;
ALTER TABLE epochs DROP CONSTRAINT epochs_pkey;
ALTER TABLE epochs ADD PRIMARY KEY (trial_id, fold, phase, epoch);
";

/// The tables of every version, which another program's database must not already have.
const OUR_TABLES: &[&str] = &["studies", "trials", "epochs"];

/// Create the schema or migrate it to [`SCHEMA_VERSION`], in one transaction under the
/// advisory lock. Refused without writing: another program's tables, a newer schema.
pub(super) fn migrate(client: &mut Client, target: &PostgresTarget) -> anyhow::Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    let version = match stored_version(&mut tx)? {
        Some(version) => version,
        None => {
            refuse_foreign_tables(&mut tx, target)?;
            tx.batch_execute(
                "CREATE TABLE gridsearch_schema (version INTEGER NOT NULL);
                 INSERT INTO gridsearch_schema VALUES (0);",
            )
            .map_err(|e| rights_error(target, e))?;
            0
        }
    };
    check_not_newer(target, version)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let from =
        usize::try_from(version).map_err(|_| foreign(target, "a negative schema version"))?;
    for step in &MIGRATIONS[from..] {
        tx.batch_execute(step)
            .map_err(|e| rights_error(target, e))?;
    }
    tx.execute(
        "UPDATE gridsearch_schema SET version = $1",
        &[&SCHEMA_VERSION],
    )?;
    tx.commit()?;
    Ok(())
}

/// A read-only handle cannot migrate: it needs exactly the current schema.
pub(super) fn check_readable(client: &mut Client, target: &PostgresTarget) -> anyhow::Result<()> {
    let shown = &target.shown;
    let Some(version) = stored_version(client)? else {
        return Err(InputError::new(format!(
            "{shown}: not a gridsearch database (run `gridsearch run GRID` first)"
        ))
        .into());
    };
    check_not_newer(target, version)?;
    if version < SCHEMA_VERSION {
        return Err(InputError::new(format!(
            "{shown}: database schema version {version} is older than {SCHEMA_VERSION}; run \
             `gridsearch run GRID` once to upgrade it"
        ))
        .into());
    }
    Ok(())
}

/// The stored version, or `None` when the database has no gridsearch schema yet.
fn stored_version(client: &mut impl postgres::GenericClient) -> anyhow::Result<Option<i32>> {
    let present: bool = client
        .query_one("SELECT to_regclass('gridsearch_schema') IS NOT NULL", &[])?
        .get(0);
    if !present {
        return Ok(None);
    }
    let row = client.query_opt("SELECT version FROM gridsearch_schema", &[])?;
    Ok(Some(row.map_or(0, |r| r.get(0))))
}

fn refuse_foreign_tables(
    client: &mut impl postgres::GenericClient,
    target: &PostgresTarget,
) -> anyhow::Result<()> {
    for table in OUR_TABLES {
        let present: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[table])?
            .get(0);
        if present {
            return Err(foreign(
                target,
                &format!("it has a `{table}` table but no gridsearch schema"),
            ));
        }
    }
    Ok(())
}

fn foreign(target: &PostgresTarget, why: &str) -> anyhow::Error {
    InputError::new(format!(
        "{}: a database of another program ({why}); give another database",
        target.shown
    ))
    .into()
}

fn check_not_newer(target: &PostgresTarget, version: i32) -> anyhow::Result<()> {
    if version > SCHEMA_VERSION {
        return Err(InputError::new(format!(
            "{}: database schema version {version} is newer than this gridsearch supports \
             ({SCHEMA_VERSION}); use a newer gridsearch",
            target.shown
        ))
        .into());
    }
    Ok(())
}
