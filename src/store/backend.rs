//! What every database behind a `Store` does: the operations, each with the meaning the
//! conformance suite checks. One implementation per database (`sqlite`, `postgres`).

use super::lease::{Claimed, Lease};
use super::Recovered;
use crate::trial::{EpochMetrics, StudyRecord, TrialOutcome, TrialRecord, TrialSpec};
use std::collections::BTreeMap;
use std::time::Duration;

/// The operations of a store; `Store` documents each (the methods of the same names).
pub(super) trait Backend {
    fn ensure_study(
        &mut self,
        name: &str,
        grid_toml: &str,
        fingerprint: &str,
    ) -> anyhow::Result<StudyRecord>;
    fn study_fingerprint(&self, study_id: i64) -> anyhow::Result<Option<String>>;
    fn add_trials(&mut self, study_id: i64, trials: &[TrialSpec]) -> anyhow::Result<usize>;
    fn claim(
        &mut self,
        study_id: i64,
        keys: &[String],
        worker: &str,
    ) -> anyhow::Result<Vec<Claimed>>;
    fn heartbeat(&mut self, leases: &[Lease]) -> anyhow::Result<()>;
    fn recover_abandoned(
        &mut self,
        study_id: i64,
        stale_after: Duration,
        max_attempts: u32,
        is_dead: &dyn Fn(&str) -> bool,
    ) -> anyhow::Result<Recovered>;
    fn recover_expired_leases(&mut self, study_id: i64) -> anyhow::Result<Recovered>;
    fn lease_poll_interval(&self) -> Option<Duration>;
    fn record_epoch(&mut self, lease: &Lease, metrics: &EpochMetrics) -> anyhow::Result<()>;
    fn complete_trial(&mut self, lease: &Lease, outcome: &TrialOutcome) -> anyhow::Result<()>;
    fn fail_trial(&mut self, lease: &Lease, error: &str) -> anyhow::Result<()>;
    fn release(&mut self, leases: &[Lease]) -> anyhow::Result<()>;
    fn study(&self, name: &str) -> anyhow::Result<Option<StudyRecord>>;
    fn latest_study(&self) -> anyhow::Result<Option<StudyRecord>>;
    fn studies(&self) -> anyhow::Result<Vec<StudyRecord>>;
    fn trials(&self, study_id: i64) -> anyhow::Result<Vec<TrialRecord>>;
    fn epochs(&self, trial_id: i64) -> anyhow::Result<Vec<EpochMetrics>>;
    fn epochs_of_study(&self, study_id: i64) -> anyhow::Result<BTreeMap<i64, Vec<EpochMetrics>>>;
}
