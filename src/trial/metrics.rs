//! What training measures: one epoch's metrics, a finished trial's outcome, and the objective's
//! value in each.

use super::vocabulary::{Objective, Phase};
use serde::{Deserialize, Serialize};

/// Metrics of one epoch of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// The cross-validation fold it trained on (0-based); 0 in a study without folds.
    #[serde(default)]
    pub fold: usize,
    pub phase: Phase,
    /// 1-based within its phase.
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Mean per-class recall on the validation split.
    pub val_balanced_accuracy: f64,
    /// Validation F1: of class 1 with two classes, macro F1 with more.
    pub val_f1: f64,
    pub seconds: f64,
}

/// What a finished trial reports to the store. With cross-validation (`[data] folds`) every
/// score is the mean over the folds of each fold's kept-epoch score (`best_objective` too, so
/// ranking by it ranks by the mean), `epochs` and `seconds` are totals over the folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialOutcome {
    /// Validation accuracy of the kept epoch: the trial's best by its objective over both phases
    /// (`ranking::kept`), whose weights the trial ends with.
    pub val_accuracy: f64,
    /// Best validation accuracy over all epochs of both phases.
    pub best_val_accuracy: f64,
    /// Validation loss of the kept epoch.
    pub val_loss: f64,
    /// Validation balanced accuracy of the kept epoch.
    pub balanced_accuracy: f64,
    /// Validation F1 of the kept epoch.
    pub f1: f64,
    /// The objective of the kept epoch: its best over all epochs (lowest for `val_loss`).
    pub best_objective: f64,
    /// Total epochs trained over both phases (and every fold).
    pub epochs: usize,
    pub seconds: f64,
    /// How many validation folds the scores are the mean of: 1 without cross-validation.
    #[serde(default = "one_fold", skip_serializing_if = "is_one_fold")]
    pub folds: usize,
    /// Sample standard deviation over the folds of each fold's `best_objective`; None without
    /// cross-validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective_sd: Option<f64>,
}

fn one_fold() -> usize {
    1
}

/// An outcome of one split is written as it was before cross-validation existed.
fn is_one_fold(folds: &usize) -> bool {
    *folds == 1
}

impl Default for TrialOutcome {
    /// No scores yet, over one split.
    fn default() -> TrialOutcome {
        TrialOutcome {
            val_accuracy: 0.0,
            best_val_accuracy: 0.0,
            val_loss: 0.0,
            balanced_accuracy: 0.0,
            f1: 0.0,
            best_objective: 0.0,
            epochs: 0,
            seconds: 0.0,
            folds: one_fold(),
            objective_sd: None,
        }
    }
}

impl Objective {
    /// This objective's value in one epoch's validation metrics.
    pub fn of_epoch(self, m: &EpochMetrics) -> f64 {
        match self {
            Objective::Accuracy => m.val_accuracy,
            Objective::BalancedAccuracy => m.val_balanced_accuracy,
            Objective::F1 => m.val_f1,
            Objective::ValLoss => m.val_loss,
        }
    }

    /// This objective's value of a trial's final weights.
    pub fn of_outcome(self, o: &TrialOutcome) -> f64 {
        match self {
            Objective::Accuracy => o.val_accuracy,
            Objective::BalancedAccuracy => o.balanced_accuracy,
            Objective::F1 => o.f1,
            Objective::ValLoss => o.val_loss,
        }
    }
}
