//! The report's data: every type of a built `Report`, whose JSON form is the `json` output format
//! (docs/report-json.md), and the constants that give some of its fields their meaning.

use crate::trial::{Objective, ParamValue, Phase};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything a report shows about one study. Its JSON form (`serde_json`) is the `json` output
/// format, so field names and meanings are a stable interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Version of this JSON schema (see docs/report-json.md); bumped when a field changes meaning.
    pub schema_version: u32,
    /// The study's name.
    pub study: String,
    /// How many of the study's trials are in each state.
    pub counts: StateCounts,
    /// The grid axes: every parameter name found in the trials, in order of first appearance
    /// over the trials sorted by id (names within one trial are alphabetical).
    pub axes: Vec<String>,
    /// What `ranked` is ordered by: the `[train] objective` all complete trials share
    /// ("accuracy" when they differ or none is complete).
    #[serde(default)]
    pub objective: Objective,
    /// Complete trials, best first (see `RankedRow`); only the first `top` rows when `top` was given.
    pub ranked: Vec<RankedRow>,
    /// How many complete trials were ranked before the `top` cut (`ranked.len()` without one).
    pub ranked_total: usize,
    /// Failed trials, by trial id.
    pub failed: Vec<FailedRow>,
    /// One entry per axis, in the order of `axes`; computed over all complete trials, never cut by `top`.
    pub effects: Vec<AxisEffect>,
    /// Share of the variance of val_accuracy explained by each axis and pair of axes, over the
    /// complete trials; null below two complete trials.
    pub importance: Option<Importance>,
    /// Mean val_accuracy over the pair of axes that together explain most; null below two factors.
    pub interaction: Option<TwoWayTable>,
    /// Trials that differ only by `seed`, grouped; null without a `seed` axis.
    pub seeds: Option<SeedReport>,
    /// Validation accuracy by epoch of each trial in `ranked` (same order).
    pub curves: Vec<Curve>,
    /// Cross-validated studies (`[data] folds`): the number of folds. Then every score of a
    /// ranked trial is the mean over its folds, and `effects`, `importance`, `interaction` and
    /// `seeds` take each fold of each trial as one observation (n counts trial x fold), so their
    /// noise is fold-to-fold (and seed-to-seed). Absent without folds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<usize>,
}

impl Report {
    /// What the statistics' within-configuration variation is: repeats by seed, and with
    /// cross-validation the folds.
    pub fn noise_name(&self) -> &'static str {
        if self.folds.is_some() {
            "fold-to-fold"
        } else {
            "seed-to-seed"
        }
    }

    /// The footnote of a cross-validated report's statistics; None without folds.
    pub fn cross_validation_note(&self) -> Option<String> {
        self.folds.map(|k| {
            format!(
                "Cross-validated over {k} folds: each fold of each trial is one observation \
                 (n counts trial x fold), so the noise is fold-to-fold variation."
            )
        })
    }
}

/// The version of the report's JSON schema.
pub const SCHEMA_VERSION: u32 = 2;

/// Number of trials per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    /// All trials of the study.
    pub total: usize,
    /// Trials not started yet.
    pub pending: usize,
    /// Trials started and not finished (or abandoned by a crashed run).
    pub running: usize,
    /// Trials finished with an outcome.
    pub complete: usize,
    /// Trials finished with an error.
    pub failed: usize,
}

/// One complete trial in the ranking. Order: the report's objective of the kept weights (higher
/// first; lower first for val_loss), then `val_loss` ascending, then the trial key
/// (`crate::ranking`). A trial keeps the weights of its best epoch by its objective (see `kept`),
/// and every score here is of those weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedRow {
    /// 1-based competition rank: trials with an equal objective share a rank (1, 1, 3, ...).
    pub rank: usize,
    /// The trial's id in the store.
    pub trial: i64,
    /// The trial's stable key (hash of its settings).
    pub key: String,
    /// Validation accuracy of the weights the trial kept (those of its `kept` epoch).
    pub val_accuracy: f64,
    /// Best validation accuracy over all of the trial's epochs.
    pub best_val_accuracy: f64,
    /// Validation balanced accuracy (mean per-class recall) of the kept weights.
    #[serde(default)]
    pub balanced_accuracy: f64,
    /// Validation F1 of the kept weights (class 1 when binary, macro otherwise).
    #[serde(default)]
    pub f1: f64,
    /// Validation loss of the kept weights.
    #[serde(default)]
    pub val_loss: f64,
    /// The trial's axis values, by axis name.
    pub params: BTreeMap<String, ParamValue>,
    /// The epoch whose weights the trial kept, from its stored epochs (`crate::ranking::kept`);
    /// null when they were not read (`status`) or none is stored.
    #[serde(default)]
    pub kept: Option<KeptEpoch>,
    /// Epochs trained over both phases (and every fold).
    pub epochs: usize,
    /// Training time in seconds.
    pub seconds: f64,
    /// Cross-validated: how many folds the scores are the mean of. Absent without folds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<usize>,
    /// Cross-validated: the sample standard deviation over the folds of the objective of each
    /// fold's kept epoch. Absent without folds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective_sd: Option<f64>,
    /// Cross-validated: the epoch each fold kept, in fold order (`kept` is then null). Absent
    /// without folds or where epochs were not read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_folds: Vec<KeptEpoch>,
}

/// One epoch of a trial, by phase and its 1-based number within the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptEpoch {
    pub phase: Phase,
    pub epoch: usize,
}

/// One failed trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedRow {
    /// The trial's id in the store.
    pub trial: i64,
    /// The trial's stable key (hash of its settings).
    pub key: String,
    /// The trial's axis values, by axis name.
    pub params: BTreeMap<String, ParamValue>,
    /// First line of the stored error message (empty when none was stored).
    pub error: String,
}

/// How one axis's values fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AxisEffect {
    /// The axis (parameter) name.
    pub axis: String,
    /// Highest minus lowest mean val_accuracy over the axis's values; null below two values with trials.
    pub spread: Option<f64>,
    /// Every value the axis takes in any trial, sorted: booleans (false first), then numbers
    /// ascending, then strings lexicographically.
    pub values: Vec<ValueEffect>,
}

/// Statistics of the complete trials that have one value on one axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueEffect {
    /// The axis value.
    pub value: ParamValue,
    /// Number of complete trials with this value (0 when none finished yet).
    pub n: usize,
    /// Mean `val_accuracy` of those trials; null when `n` is 0.
    pub mean_val_accuracy: Option<f64>,
    /// Sample standard deviation of their `val_accuracy`; null when `n` < 2.
    pub sd_val_accuracy: Option<f64>,
    /// Lowest `val_accuracy` of those trials; null when `n` is 0.
    pub min_val_accuracy: Option<f64>,
    /// Highest `val_accuracy` of those trials; null when `n` is 0.
    pub best_val_accuracy: Option<f64>,
}

/// One trial's epochs in training order (head phase, then fine-tune).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub trial: i64,
    /// The trial's rank in the ranked table.
    pub rank: usize,
    pub points: Vec<CurvePoint>,
}

/// One epoch of one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// 1-based position over both phases (and every fold, in fold order).
    pub step: usize,
    /// The cross-validation fold (0-based); absent (0) without folds.
    #[serde(default, skip_serializing_if = "is_first_fold")]
    pub fold: usize,
    pub phase: Phase,
    /// 1-based within its phase.
    pub epoch: usize,
    pub train_accuracy: f64,
    pub val_accuracy: f64,
    pub val_loss: f64,
}

fn is_first_fold(fold: &usize) -> bool {
    *fold == 0
}

/// The grid axis whose values are treated as repetitions, not as a hyperparameter.
pub const SEED_AXIS: &str = "seed";

/// An effect is called larger than the seed noise when its F ratio is at least this
/// (for a one-degree-of-freedom effect: its difference is at least two standard errors).
pub const NOISE_F: f64 = 4.0;

/// How much of the variance of validation accuracy each axis and each pair of axes explains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    /// Complete trials analysed (those that have a value on every factor).
    pub trials: usize,
    /// The axes analysed: every axis with at least two values, except `seed`.
    pub factors: Vec<String>,
    /// Whether the trials cover every combination of the factors' values equally often; only
    /// then do the shares add up exactly (otherwise see `higher_order_share`).
    pub full_factorial: bool,
    /// Distinct combinations of factor values among the trials.
    pub configurations: usize,
    /// Combinations the full grid of these factors has (product of their value counts).
    pub grid_cells: usize,
    /// Sum of squared deviations of val_accuracy from its mean over the trials.
    pub total_sum_of_squares: f64,
    /// Main effects (one axis) and two-way interactions (two axes), largest first.
    pub terms: Vec<Term>,
    /// Share between configurations not explained by the terms: interactions of three or more
    /// axes on a full factorial; on a partial grid also the terms' overlap (then it may be negative).
    pub higher_order_share: f64,
    /// Share within configurations: trials that differ only by `seed` (0 without a seed axis).
    pub seed_noise_share: f64,
    /// Pooled seed-to-seed variance of val_accuracy (within-configuration mean square);
    /// null without repetitions.
    pub noise_variance: Option<f64>,
}

/// One main effect or two-way interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// One axis for a main effect, two for an interaction.
    pub axes: Vec<String>,
    pub sum_of_squares: f64,
    /// `sum_of_squares / total_sum_of_squares` (0 when the total is 0).
    pub share: f64,
    /// Degrees of freedom: values - 1, or (values_a - 1)(values_b - 1).
    pub df: usize,
    /// (sum_of_squares / df) / noise_variance; null without a noise estimate.
    pub f_ratio: Option<f64>,
    /// Whether `f_ratio` >= 4 (see `NOISE_F`); null without a noise estimate.
    pub exceeds_seed_noise: Option<bool>,
}

/// Mean val_accuracy for every pair of values of two axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoWayTable {
    pub row_axis: String,
    pub column_axis: String,
    pub row_values: Vec<ParamValue>,
    pub column_values: Vec<ParamValue>,
    /// `means[r][c]`: mean over the trials with both values; null when there are none.
    pub means: Vec<Vec<Option<f64>>>,
    pub counts: Vec<Vec<usize>>,
}

/// Trials that differ only by `seed`, grouped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedReport {
    pub axis: String,
    /// Distinct seeds among the complete trials.
    pub seeds: usize,
    /// Pooled within-configuration standard deviation; null without repetitions.
    pub noise_sd: Option<f64>,
    /// Its degrees of freedom: trials - configurations.
    pub noise_df: usize,
    /// One group per configuration, best mean first.
    pub configurations: Vec<SeedGroup>,
}

/// One configuration (every axis but `seed`) over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedGroup {
    pub params: BTreeMap<String, ParamValue>,
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation over the seeds; null for a single seed.
    pub sd: Option<f64>,
    pub min: f64,
    pub max: f64,
}
