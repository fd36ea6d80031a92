//! Computes a study's report from its stored trials and epochs: counts, ranking, failures, effects, curves.

use super::curves::{curves, Curve};
use super::effects::{self, Importance, Obs, SeedReport, TwoWayTable};
use crate::ranking::{self, Ranked};
use crate::trial::{
    EpochMetrics, Objective, ParamValue, StudyRecord, TrialOutcome, TrialRecord, TrialState,
};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
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

/// One complete trial in the ranking. Order: the report's objective of the final weights (higher
/// first; lower first for val_loss), then `best_val_accuracy` descending, then `seconds`
/// ascending, then trial id ascending (`crate::ranking`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedRow {
    /// 1-based competition rank: trials with an equal objective share a rank (1, 1, 3, ...).
    pub rank: usize,
    /// The trial's id in the store.
    pub trial: i64,
    /// The trial's stable key (hash of its settings).
    pub key: String,
    /// Validation accuracy of the weights the trial ended with.
    pub val_accuracy: f64,
    /// Best validation accuracy over all of the trial's epochs.
    pub best_val_accuracy: f64,
    /// Validation balanced accuracy (mean per-class recall) of the final weights.
    #[serde(default)]
    pub balanced_accuracy: f64,
    /// Validation F1 of the final weights (class 1 when binary, macro otherwise).
    #[serde(default)]
    pub f1: f64,
    /// Validation loss of the final weights.
    #[serde(default)]
    pub val_loss: f64,
    /// The trial's axis values, by axis name.
    pub params: BTreeMap<String, ParamValue>,
    /// Epochs trained over both phases.
    pub epochs: usize,
    /// Training time in seconds.
    pub seconds: f64,
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

/// Builds the report of `study` from its `trials` (any order), without learning curves.
pub fn build(study: &StudyRecord, trials: &[TrialRecord], top: Option<usize>) -> Report {
    build_with_epochs(study, trials, &BTreeMap::new(), top)
}

/// Builds the report of `study` from its `trials` (any order) and their `epochs` (by trial id).
/// `top` keeps only the first N ranked rows (and their curves); counts, failures, effects,
/// importance and seeds always use every trial. A complete trial without a stored outcome is
/// counted but cannot be ranked.
pub fn build_with_epochs(
    study: &StudyRecord,
    trials: &[TrialRecord],
    epochs: &BTreeMap<i64, Vec<EpochMetrics>>,
    top: Option<usize>,
) -> Report {
    let by_id = sorted_by_id(trials);
    let complete = ranking::scored(trials);
    let mut ranked: Vec<RankedRow> = ranking::rank(trials).iter().map(ranked_row).collect();
    let ranked_total = ranked.len();
    if let Some(n) = top {
        ranked.truncate(n);
    }
    let axes = axis_names(&by_id);
    let effects = axes
        .iter()
        .map(|axis| axis_effect(axis, &by_id, &complete))
        .collect();
    let obs: Vec<Obs> = complete
        .iter()
        .map(|(t, o)| Obs {
            params: &t.params,
            y: o.val_accuracy,
        })
        .collect();
    let importance = effects::importance(&effects::factors(&axes, &obs), &obs);
    let interaction = importance
        .as_ref()
        .and_then(effects::strongest_pair)
        .map(|(a, b)| effects::two_way(&a, &b, &obs));
    Report {
        schema_version: SCHEMA_VERSION,
        importance,
        interaction,
        seeds: effects::seed_groups(&obs),
        curves: curves(&ranked, epochs),
        study: study.name.clone(),
        counts: count_states(trials),
        axes,
        objective: ranking::objective(trials),
        ranked,
        ranked_total,
        failed: failed_rows(&by_id),
        effects,
    }
}

fn sorted_by_id(trials: &[TrialRecord]) -> Vec<&TrialRecord> {
    let mut sorted: Vec<&TrialRecord> = trials.iter().collect();
    sorted.sort_by_key(|t| t.id);
    sorted
}

/// How many of `trials` are in each state.
pub(super) fn count_states(trials: &[TrialRecord]) -> StateCounts {
    let mut counts = StateCounts {
        total: trials.len(),
        ..StateCounts::default()
    };
    for trial in trials {
        match trial.state {
            TrialState::Pending => counts.pending += 1,
            TrialState::Running => counts.running += 1,
            TrialState::Complete => counts.complete += 1,
            TrialState::Failed => counts.failed += 1,
        }
    }
    counts
}

/// Parameter names in order of first appearance (trials already sorted by id).
fn axis_names(trials: &[&TrialRecord]) -> Vec<String> {
    let mut axes: Vec<String> = Vec::new();
    for name in trials.iter().flat_map(|t| t.params.keys()) {
        if !axes.contains(name) {
            axes.push(name.clone());
        }
    }
    axes
}

/// A ranked trial as the report shows it.
pub(super) fn ranked_row(ranked: &Ranked) -> RankedRow {
    let Ranked {
        rank,
        trial,
        outcome,
    } = *ranked;
    RankedRow {
        rank,
        trial: trial.id,
        key: trial.key.clone(),
        val_accuracy: outcome.val_accuracy,
        best_val_accuracy: outcome.best_val_accuracy,
        balanced_accuracy: outcome.balanced_accuracy,
        f1: outcome.f1,
        val_loss: outcome.val_loss,
        params: trial.params.clone(),
        epochs: outcome.epochs,
        seconds: outcome.seconds,
    }
}

fn failed_rows(trials: &[&TrialRecord]) -> Vec<FailedRow> {
    trials
        .iter()
        .filter(|t| t.state == TrialState::Failed)
        .map(|t| FailedRow {
            trial: t.id,
            key: t.key.clone(),
            params: t.params.clone(),
            error: first_line(t.error.as_deref().unwrap_or("")),
        })
        .collect()
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim_end().to_string()
}

fn axis_effect(
    axis: &str,
    trials: &[&TrialRecord],
    complete: &[(&TrialRecord, &TrialOutcome)],
) -> AxisEffect {
    let values = distinct_sorted_values(trials.iter().filter_map(|t| t.params.get(axis)));
    let values = values
        .into_iter()
        .map(|value| {
            let accuracies: Vec<f64> = complete
                .iter()
                .filter(|(t, _)| {
                    t.params
                        .get(axis)
                        .is_some_and(|v| compare_values(v, &value) == Ordering::Equal)
                })
                .map(|(_, o)| o.val_accuracy)
                .collect();
            value_effect(value, &accuracies)
        })
        .collect::<Vec<ValueEffect>>();
    let means: Vec<f64> = values.iter().filter_map(|v| v.mean_val_accuracy).collect();
    let spread = (means.len() >= 2).then(|| {
        let max = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        max - means.iter().copied().fold(f64::INFINITY, f64::min)
    });
    AxisEffect {
        axis: axis.to_string(),
        spread,
        values,
    }
}

fn value_effect(value: ParamValue, accuracies: &[f64]) -> ValueEffect {
    let s = effects::summarize(accuracies);
    ValueEffect {
        value,
        n: s.n,
        mean_val_accuracy: s.mean,
        sd_val_accuracy: s.sd,
        min_val_accuracy: s.min,
        best_val_accuracy: s.max,
    }
}

fn distinct_sorted_values<'a>(values: impl Iterator<Item = &'a ParamValue>) -> Vec<ParamValue> {
    let mut values: Vec<ParamValue> = values.cloned().collect();
    values.sort_by(compare_values);
    values.dedup_by(|a, b| compare_values(a, b) == Ordering::Equal);
    values
}

/// Order of axis values: booleans, then numbers ascending (an Int before an equal Float), then strings.
pub(crate) fn compare_values(a: &ParamValue, b: &ParamValue) -> Ordering {
    use ParamValue::*;
    match (a, b) {
        (Bool(x), Bool(y)) => x.cmp(y),
        (Str(x), Str(y)) => x.cmp(y),
        (Int(x), Int(y)) => x.cmp(y),
        (Int(_) | Float(_), Int(_) | Float(_)) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
                .then_with(|| kind_rank(a).cmp(&kind_rank(b)))
        }
        _ => kind_rank(a).cmp(&kind_rank(b)),
    }
}

/// Sort position of a value's kind (Int and Float differ only to break exact ties).
fn kind_rank(value: &ParamValue) -> u8 {
    match value {
        ParamValue::Bool(_) => 0,
        ParamValue::Int(_) => 1,
        ParamValue::Float(_) => 2,
        ParamValue::Str(_) => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::fixtures::{study, trials, with_objective};

    fn ranks_and_ids(report: &Report) -> Vec<(usize, i64)> {
        report.ranked.iter().map(|r| (r.rank, r.trial)).collect()
    }

    #[test]
    fn counts_every_state() {
        let report = build(&study(), &trials(), None);
        assert_eq!(
            report.counts,
            StateCounts {
                total: 8,
                pending: 1,
                running: 1,
                complete: 5,
                failed: 1
            }
        );
        assert_eq!(report.study, "flowers");
    }

    #[test]
    fn ranks_by_the_shared_objective() {
        let report = build(&study(), &with_objective(Objective::F1), None);
        assert_eq!(report.objective, Objective::F1);
        // f1 = 1 - val_accuracy here, so the order turns round; ties keep their tie-breakers.
        assert_eq!(
            ranks_and_ids(&report),
            vec![(1, 5), (2, 1), (3, 2), (3, 4), (3, 3)]
        );
        assert!((report.ranked[0].f1 - 0.3).abs() < 1e-12);
        assert!((report.ranked[0].balanced_accuracy - 0.65).abs() < 1e-12);
        // Lower val_loss is better.
        let report = build(&study(), &with_objective(Objective::ValLoss), None);
        assert_eq!(
            ranks_and_ids(&report),
            vec![(1, 2), (1, 4), (1, 3), (4, 1), (5, 5)]
        );
        // Mixed objectives fall back to accuracy.
        let mut mixed = with_objective(Objective::F1);
        mixed[0].settings.objective = Objective::BalancedAccuracy;
        let report = build(&study(), &mixed, None);
        assert_eq!(report.objective, Objective::Accuracy);
        assert_eq!(
            ranks_and_ids(&report),
            vec![(1, 2), (1, 4), (1, 3), (4, 1), (5, 5)]
        );
    }

    #[test]
    fn ranks_with_ties_and_tie_breakers() {
        let report = build(&study(), &trials(), None);
        // 0.9 ties: trial 2 (best .95) first, then 4 and 3 (best .92) by seconds 8 < 10.
        assert_eq!(
            ranks_and_ids(&report),
            vec![(1, 2), (1, 4), (1, 3), (4, 1), (5, 5)]
        );
        assert_eq!(report.ranked_total, 5);
        let first = &report.ranked[0];
        assert_eq!(first.key, "k2");
        assert_eq!(first.best_val_accuracy, 0.95);
        assert_eq!(first.epochs, 4);
        assert_eq!(first.seconds, 20.0);
        assert_eq!(first.params["optimizer"], ParamValue::Str("adam".into()));
    }

    #[test]
    fn top_cuts_ranking_only() {
        let report = build(&study(), &trials(), Some(2));
        assert_eq!(ranks_and_ids(&report), vec![(1, 2), (1, 4)]);
        assert_eq!(report.ranked_total, 5);
        assert_eq!(
            report.effects[0].values.iter().map(|v| v.n).sum::<usize>(),
            5
        );
        assert_eq!(build(&study(), &trials(), Some(0)).ranked.len(), 0);
        assert_eq!(build(&study(), &trials(), Some(99)).ranked.len(), 5);
    }

    #[test]
    fn axes_in_first_appearance_order() {
        let report = build(&study(), &trials(), None);
        assert_eq!(report.axes, vec!["head_size", "learning_rate", "optimizer"]);
        let mut extra = trials();
        extra[0]
            .params
            .insert("augment".into(), ParamValue::Bool(true)); // trial 3
        let report = build(&study(), &extra, None);
        assert_eq!(
            report.axes,
            vec!["head_size", "learning_rate", "optimizer", "augment"]
        );
    }

    #[test]
    fn failed_rows_keep_first_error_line() {
        let report = build(&study(), &trials(), None);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].trial, 6);
        assert_eq!(report.failed[0].error, "out of memory");
        assert_eq!(report.failed[0].params["head_size"], ParamValue::Int(128));
    }

    fn effect<'a>(report: &'a Report, axis: &str) -> &'a AxisEffect {
        report
            .effects
            .iter()
            .find(|e| e.axis == axis)
            .expect("axis present")
    }

    fn assert_close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("a value");
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    #[test]
    fn per_axis_statistics() {
        let report = build(&study(), &trials(), None);
        let lr = effect(&report, "learning_rate");
        let lr_values: Vec<String> = lr.values.iter().map(|v| v.value.to_string()).collect();
        assert_eq!(lr_values, vec!["0.001", "0.01", "0.1"]);
        // 0.001: trials 3 (.9), 1 (.8), 5 (.7)
        assert_eq!(lr.values[0].n, 3);
        assert_close(lr.values[0].mean_val_accuracy, 0.8);
        assert_close(lr.values[0].best_val_accuracy, 0.9);
        assert_close(lr.values[0].sd_val_accuracy, 0.1); // sqrt((.01 + 0 + .01) / 2)
        assert_close(lr.values[0].min_val_accuracy, 0.7);
        assert_close(lr.spread, 0.1); // .9 - .8; the value without trials is left out
                                      // 0.01: trials 2 (.9), 4 (.9); failed 6 excluded
        assert_eq!(lr.values[1].n, 2);
        assert_close(lr.values[1].mean_val_accuracy, 0.9);
        // 0.1: only pending/running trials
        assert_eq!(lr.values[2].n, 0);
        assert_eq!(lr.values[2].mean_val_accuracy, None);
        assert_eq!(lr.values[2].best_val_accuracy, None);

        let head = effect(&report, "head_size");
        assert_eq!(head.values[0].value, ParamValue::Int(0));
        assert_eq!(head.values[0].n, 3); // 3, 1, 2
        assert_close(head.values[0].mean_val_accuracy, (0.9 + 0.8 + 0.9) / 3.0);
        assert_eq!(head.values[1].value, ParamValue::Int(128));
        assert_eq!(head.values[1].n, 2); // 4, 5
        assert_close(head.values[1].mean_val_accuracy, 0.8);
        assert_close(head.values[1].best_val_accuracy, 0.9);

        let opt = effect(&report, "optimizer");
        let names: Vec<String> = opt.values.iter().map(|v| v.value.to_string()).collect();
        assert_eq!(names, vec!["adam", "adamw", "sgd"]);
        assert_eq!(opt.values[0].n, 4);
        assert_close(
            opt.values[0].mean_val_accuracy,
            (0.8 + 0.9 + 0.9 + 0.7) / 4.0,
        );
        assert_eq!(opt.values[2].n, 1);
        assert_close(opt.values[2].best_val_accuracy, 0.9);
    }

    #[test]
    fn values_sort_by_kind_then_value() {
        let mut values = [
            ParamValue::Str("b".into()),
            ParamValue::Float(10.0),
            ParamValue::Int(2),
            ParamValue::Bool(true),
            ParamValue::Float(0.5),
            ParamValue::Str("a".into()),
            ParamValue::Bool(false),
        ];
        values.sort_by(compare_values);
        let shown: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        assert_eq!(shown, vec!["false", "true", "0.5", "2", "10", "a", "b"]);
    }

    #[test]
    fn empty_study_builds_empty_report() {
        let report = build(&study(), &[], Some(3));
        assert_eq!(report.counts.total, 0);
        assert!(report.ranked.is_empty() && report.axes.is_empty() && report.effects.is_empty());
    }
}
