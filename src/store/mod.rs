//! The only door to the database: the public `Store`, opened from `--db` (a SQLite file or a
//! PostgreSQL URL), with the same operations and meaning on both.
//!
//! Each file has one job: `location` reads `--db`, `backend` is what every database does,
//! `sqlite/` and `postgres/` each hold one database's SQL, schema and error wording, `lease`
//! the claims that every write names, `rows` how stored rows become records, and
//! `network_fs` refuses SQLite on a network filesystem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod backend;
mod lease;
mod location;
mod network_fs;
mod postgres;
mod rows;
mod sqlite;

#[cfg(test)]
mod conformance;

use crate::trial::{EpochMetrics, StudyRecord, TrialOutcome, TrialRecord, TrialSpec};
use backend::Backend;
pub use lease::{Claimed, Lease, LeaseLost};
use location::Location;
pub use location::{local_folder, shown_location};
pub use network_fs::refuse_network_filesystem;

/// What recovering abandoned trials did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Back to pending, to run again.
    pub requeued: usize,
    /// Marked failed after too many attempts.
    pub failed: usize,
}

/// A handle on one gridsearch database: a SQLite file or a PostgreSQL database.
pub struct Store {
    backend: Box<dyn Backend>,
    /// `--db` as given, a URL without its password.
    location: PathBuf,
}

impl Store {
    /// Open (creating if needed) a database for reading and writing, migrated to the current
    /// schema. A database that is not ours is refused and left as it was.
    pub fn open(db: &Path) -> anyhow::Result<Store> {
        let backend: Box<dyn Backend> = match Location::parse(db)? {
            Location::Sqlite(path) => Box::new(sqlite::Sqlite::open(&path)?),
            Location::Postgres(target) => Box::new(postgres::Postgres::open(*target)?),
        };
        Ok(Store {
            backend,
            location: shown_location(db),
        })
    }

    /// Open an existing database for reading only (reports); it must already hold the current schema.
    pub fn open_read_only(db: &Path) -> anyhow::Result<Store> {
        let backend: Box<dyn Backend> = match Location::parse(db)? {
            Location::Sqlite(path) => Box::new(sqlite::Sqlite::open_read_only(&path)?),
            Location::Postgres(target) => Box::new(postgres::Postgres::open_read_only(*target)?),
        };
        Ok(Store {
            backend,
            location: shown_location(db),
        })
    }

    /// A PostgreSQL store whose claims hold for `lease` (tests: leases that expire at once).
    #[cfg(test)]
    fn open_with_lease(db: &Path, lease: Duration) -> anyhow::Result<Store> {
        let Location::Postgres(target) = Location::parse(db)? else {
            anyhow::bail!("{}: not a PostgreSQL URL", db.display());
        };
        Ok(Store {
            backend: Box::new(postgres::Postgres::open_with_lease(*target, lease)?),
            location: shown_location(db),
        })
    }

    /// The database as given (a URL without its password).
    pub fn path(&self) -> &Path {
        &self.location
    }

    /// Insert the study, or return the existing one with its grid text replaced by `grid_toml`.
    /// An existing study keeps its first fingerprint (see [`Store::study_fingerprint`]).
    pub fn ensure_study(
        &mut self,
        name: &str,
        grid_toml: &str,
        fingerprint: &str,
    ) -> anyhow::Result<StudyRecord> {
        self.backend.ensure_study(name, grid_toml, fingerprint)
    }

    /// The fingerprint the study was created with, if the study exists.
    pub fn study_fingerprint(&self, study_id: i64) -> anyhow::Result<Option<String>> {
        self.backend.study_fingerprint(study_id)
    }

    /// Add the trials not yet in the study as pending; returns how many were new.
    pub fn add_trials(&mut self, study_id: i64, trials: &[TrialSpec]) -> anyhow::Result<usize> {
        self.backend.add_trials(study_id, trials)
    }

    /// Of these keys, move those still pending to running for `worker`, each under a new
    /// attempt (its lease), its old epochs forgotten; returns them in key order.
    pub fn claim(
        &mut self,
        study_id: i64,
        keys: &[String],
        worker: &str,
    ) -> anyhow::Result<Vec<Claimed>> {
        self.backend.claim(study_id, keys, worker)
    }

    /// Mark these claims as alive now (PostgreSQL: renew their leases). [`LeaseLost`] when
    /// one of them is no longer held.
    pub fn heartbeat(&mut self, leases: &[Lease]) -> anyhow::Result<()> {
        self.backend.heartbeat(leases)
    }

    /// Recover the study's running trials whose worker is gone. SQLite: those whose heartbeat
    /// is older than `stale_after` or whose worker `is_dead` says so (one host: process ids
    /// mean something). PostgreSQL: those whose lease expired by the server's clock. Each goes
    /// back to pending (its epochs deleted), unless it has already been started `max_attempts`
    /// times: then it kept taking its worker down, and is marked failed.
    pub fn recover_abandoned(
        &mut self,
        study_id: i64,
        stale_after: Duration,
        max_attempts: u32,
        is_dead: &dyn Fn(&str) -> bool,
    ) -> anyhow::Result<Recovered> {
        self.backend
            .recover_abandoned(study_id, stale_after, max_attempts, is_dead)
    }

    /// PostgreSQL: recover the study's trials whose lease expired, with the `max_attempts` of
    /// the last `recover_abandoned`. SQLite: nothing (recovery is at the start of a run).
    pub fn recover_expired_leases(&mut self, study_id: i64) -> anyhow::Result<Recovered> {
        self.backend.recover_expired_leases(study_id)
    }

    /// How often a worker with nothing to claim looks again while other workers hold
    /// leases that may expire (PostgreSQL); `None`: it does not wait (SQLite).
    pub fn lease_poll_interval(&self) -> Option<Duration> {
        self.backend.lease_poll_interval()
    }

    /// Store one epoch's metrics under `lease`, replacing any earlier row for the same phase
    /// and epoch; [`LeaseLost`] (nothing written) when the lease is no longer held.
    pub fn record_epoch(&mut self, lease: &Lease, metrics: &EpochMetrics) -> anyhow::Result<()> {
        self.backend.record_epoch(lease, metrics)
    }

    /// Mark the trial complete with its outcome; [`LeaseLost`] (nothing written) when the
    /// lease is no longer held.
    pub fn complete_trial(&mut self, lease: &Lease, outcome: &TrialOutcome) -> anyhow::Result<()> {
        self.backend.complete_trial(lease, outcome)
    }

    /// Mark the trial failed with its error message; [`LeaseLost`] when the lease is no
    /// longer held.
    pub fn fail_trial(&mut self, lease: &Lease, error: &str) -> anyhow::Result<()> {
        self.backend.fail_trial(lease, error)
    }

    /// Put interrupted running trials back to pending and forget their epochs; trials whose
    /// lease went to another worker, and finished ones, are untouched.
    pub fn release(&mut self, leases: &[Lease]) -> anyhow::Result<()> {
        self.backend.release(leases)
    }

    pub fn study(&self, name: &str) -> anyhow::Result<Option<StudyRecord>> {
        self.backend.study(name)
    }

    /// The most recently created study.
    pub fn latest_study(&self) -> anyhow::Result<Option<StudyRecord>> {
        self.backend.latest_study()
    }

    /// Every study, oldest first.
    pub fn studies(&self) -> anyhow::Result<Vec<StudyRecord>> {
        self.backend.studies()
    }

    /// Every trial of the study, by id.
    pub fn trials(&self, study_id: i64) -> anyhow::Result<Vec<TrialRecord>> {
        self.backend.trials(study_id)
    }

    /// The trial's epochs: head phase first, then fine-tune, each by epoch.
    pub fn epochs(&self, trial_id: i64) -> anyhow::Result<Vec<EpochMetrics>> {
        self.backend.epochs(trial_id)
    }

    /// The epochs of every trial of the study that has any, by trial id.
    pub fn epochs_of_study(
        &self,
        study_id: i64,
    ) -> anyhow::Result<BTreeMap<i64, Vec<EpochMetrics>>> {
        self.backend.epochs_of_study(study_id)
    }
}
