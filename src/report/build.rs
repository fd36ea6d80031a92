//! Computes a study's report from its stored trials and epochs: counts, ranking, failures, and
//! (by calling `effects` and `curves`) effects, importance, seeds and curves.

use super::curves::curves;
use super::effects::{self, Obs};
use super::schema::{FailedRow, KeptEpoch, RankedRow, Report, StateCounts, SCHEMA_VERSION};
use crate::ranking::kept::{kept_epoch, kept_epoch_of_each_fold};
use crate::ranking::{self, Ranked};
use crate::trial::{EpochMetrics, StudyRecord, TrialOutcome, TrialRecord, TrialState};
use std::collections::BTreeMap;

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
    let mut ranked: Vec<RankedRow> = ranking::rank(trials)
        .iter()
        .map(|r| ranked_row(r, epochs.get(&r.trial.id).map(Vec::as_slice)))
        .collect();
    let ranked_total = ranked.len();
    if let Some(n) = top {
        ranked.truncate(n);
    }
    let axes = axis_names(&by_id);
    let obs: Vec<Obs> = ranking::scored(trials)
        .into_iter()
        .flat_map(|(t, o)| observations(t, o, epochs.get(&t.id)))
        .collect();
    let folds = ranking::scored(trials)
        .iter()
        .map(|(_, o)| o.folds)
        .max()
        .filter(|&k| k > 1);
    let effects = axes
        .iter()
        .map(|axis| {
            effects::axis_effect(axis, by_id.iter().filter_map(|t| t.params.get(axis)), &obs)
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
        folds,
    }
}

/// What the statistics see of one complete trial: its validation accuracy, or with
/// cross-validation that of each fold's kept epoch (from its stored `epochs`; the trial's mean
/// when they were not read).
fn observations<'a>(
    trial: &'a TrialRecord,
    outcome: &TrialOutcome,
    epochs: Option<&Vec<EpochMetrics>>,
) -> Vec<Obs<'a>> {
    let obs = |y| Obs {
        params: &trial.params,
        y,
    };
    let per_fold = epochs
        .map(|e| kept_epoch_of_each_fold(e, trial.settings.objective))
        .filter(|kept| outcome.folds > 1 && kept.len() == outcome.folds);
    match per_fold {
        Some(kept) => kept.iter().map(|e| obs(e.val_accuracy)).collect(),
        None => vec![obs(outcome.val_accuracy)],
    }
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

/// A ranked trial as the report shows it, with the epoch it kept when its `epochs` are given.
pub(super) fn ranked_row(ranked: &Ranked, epochs: Option<&[EpochMetrics]>) -> RankedRow {
    let Ranked {
        rank,
        trial,
        outcome,
    } = *ranked;
    let cross_validated = outcome.folds > 1;
    let objective = trial.settings.objective;
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
        kept: epochs
            .filter(|_| !cross_validated)
            .and_then(|e| kept_epoch(e, objective))
            .map(kept_as_shown),
        epochs: outcome.epochs,
        seconds: outcome.seconds,
        folds: cross_validated.then_some(outcome.folds),
        objective_sd: outcome.objective_sd,
        kept_folds: epochs
            .filter(|_| cross_validated)
            .map(|e| kept_epoch_of_each_fold(e, objective))
            .unwrap_or_default()
            .into_iter()
            .map(kept_as_shown)
            .collect(),
    }
}

fn kept_as_shown(epoch: &EpochMetrics) -> KeptEpoch {
    KeptEpoch {
        phase: epoch.phase,
        epoch: epoch.epoch,
    }
}

fn sorted_by_id(trials: &[TrialRecord]) -> Vec<&TrialRecord> {
    let mut sorted: Vec<&TrialRecord> = trials.iter().collect();
    sorted.sort_by_key(|t| t.id);
    sorted
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

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
