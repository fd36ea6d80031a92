//! Stored rows into records, whatever the database: parses a trial's or an epoch's text columns
//! and reads its NULL metrics back as NaN; and record counts into stored integers.

use crate::trial::{EpochMetrics, Phase, TrialOutcome, TrialRecord, TrialState, Vocabulary};
use anyhow::{anyhow, Context};

/// The trial columns every trial query selects, in the order every backend reads them.
pub(super) const TRIAL_COLUMNS: &str =
    "id, study_id, trial_key, params_json, settings_json, state, \
     val_accuracy, best_val_accuracy, val_loss, epochs, seconds, error, started_at, finished_at, \
     balanced_accuracy, f1, best_objective, folds, objective_sd";

pub(super) const EPOCH_COLUMNS: &str =
    "phase, epoch, train_loss, train_accuracy, val_loss, val_accuracy, seconds, \
     val_balanced_accuracy, val_f1, fold";

/// How every backend orders a trial's epochs: by fold (cross-validation), then head epochs
/// first, then fine-tune epochs, each by epoch number.
pub(super) const EPOCH_ORDER: &str = "fold, CASE phase WHEN 'head' THEN 0 ELSE 1 END, epoch";

/// Stored integers are i64; counts of epochs always fit.
pub(super) fn count_to_sql(count: usize) -> anyhow::Result<i64> {
    i64::try_from(count).with_context(|| format!("count {count} does not fit in the database"))
}

/// NaN is stored as NULL (SQLite cannot store it; PostgreSQL does likewise), so a missing
/// metric reads back as NaN.
fn metric(value: Option<f64>) -> f64 {
    value.unwrap_or(f64::NAN)
}

/// A trials row as stored, before its text columns are parsed.
pub(super) struct TrialRow {
    pub(super) id: i64,
    pub(super) study_id: i64,
    pub(super) key: String,
    pub(super) params_json: String,
    pub(super) settings_json: String,
    pub(super) state: String,
    pub(super) val_accuracy: Option<f64>,
    pub(super) best_val_accuracy: Option<f64>,
    pub(super) val_loss: Option<f64>,
    pub(super) epochs: Option<i64>,
    pub(super) seconds: Option<f64>,
    pub(super) error: Option<String>,
    pub(super) started_at: Option<String>,
    pub(super) finished_at: Option<String>,
    pub(super) balanced_accuracy: Option<f64>,
    pub(super) f1: Option<f64>,
    pub(super) best_objective: Option<f64>,
    /// NULL before a trial completes (and in rows stored before schema version 3): one fold.
    pub(super) folds: Option<i64>,
    pub(super) objective_sd: Option<f64>,
}

impl TrialRow {
    pub(super) fn into_record(self) -> anyhow::Result<TrialRecord> {
        let id = self.id;
        let state = TrialState::parse(&self.state)
            .ok_or_else(|| anyhow!("trial {id}: unknown state {:?}", self.state))?;
        let outcome = match state {
            TrialState::Complete => Some(self.outcome()?),
            _ => None,
        };
        Ok(TrialRecord {
            id,
            study_id: self.study_id,
            params: serde_json::from_str(&self.params_json)
                .with_context(|| format!("trial {id}: reading its params"))?,
            settings: serde_json::from_str(&self.settings_json)
                .with_context(|| format!("trial {id}: reading its settings"))?,
            key: self.key,
            state,
            outcome,
            error: self.error,
            started_at: self.started_at,
            finished_at: self.finished_at,
        })
    }

    fn outcome(&self) -> anyhow::Result<TrialOutcome> {
        let epochs = self
            .epochs
            .ok_or_else(|| anyhow!("trial {}: complete but without an epoch count", self.id))?;
        Ok(TrialOutcome {
            val_accuracy: metric(self.val_accuracy),
            best_val_accuracy: metric(self.best_val_accuracy),
            val_loss: metric(self.val_loss),
            balanced_accuracy: metric(self.balanced_accuracy),
            f1: metric(self.f1),
            best_objective: metric(self.best_objective),
            epochs: usize::try_from(epochs)
                .with_context(|| format!("trial {}: bad epoch count {epochs}", self.id))?,
            seconds: metric(self.seconds),
            folds: match self.folds {
                None => 1,
                Some(folds) => usize::try_from(folds)
                    .with_context(|| format!("trial {}: bad fold count {folds}", self.id))?,
            },
            objective_sd: self.objective_sd,
        })
    }
}

/// An epochs row as stored, before its phase is parsed.
pub(super) struct EpochRow {
    pub(super) phase: String,
    pub(super) epoch: i64,
    pub(super) train_loss: Option<f64>,
    pub(super) train_accuracy: Option<f64>,
    pub(super) val_loss: Option<f64>,
    pub(super) val_accuracy: Option<f64>,
    pub(super) seconds: Option<f64>,
    pub(super) val_balanced_accuracy: Option<f64>,
    pub(super) val_f1: Option<f64>,
    pub(super) fold: i64,
}

impl EpochRow {
    pub(super) fn into_metrics(self, trial_id: i64) -> anyhow::Result<EpochMetrics> {
        let phase = Phase::parse(&self.phase)
            .ok_or_else(|| anyhow!("trial {trial_id}: unknown phase {:?}", self.phase))?;
        Ok(EpochMetrics {
            fold: usize::try_from(self.fold)
                .with_context(|| format!("trial {trial_id}: bad fold {}", self.fold))?,
            phase,
            epoch: usize::try_from(self.epoch)
                .with_context(|| format!("trial {trial_id}: bad epoch number {}", self.epoch))?,
            train_loss: metric(self.train_loss),
            train_accuracy: metric(self.train_accuracy),
            val_loss: metric(self.val_loss),
            val_accuracy: metric(self.val_accuracy),
            val_balanced_accuracy: metric(self.val_balanced_accuracy),
            val_f1: metric(self.val_f1),
            seconds: metric(self.seconds),
        })
    }
}
