//! Which trial is best: a study's complete trials ordered by its objective, then by the tie-breaks.
//!
//! The one ranking the report, `status`, the checkpoint keeper and `export` share. Only complete
//! trials with a stored outcome take part. The order is `order`, a pure function of stored
//! scores: the objective of the final weights (higher first; lower first for `val_loss`), then
//! the validation loss (a continuous score, so exact ties are rare), then the trial key (a hash
//! of its settings: the same on every machine and every run). Never the trial's wall time or
//! its row id, which depend on the machine's load and on who claimed what. NaN counts as the
//! worst value throughout. Within one trial, `kept` says which epoch's weights it kept, by the
//! same order of values.

use crate::trial::{Objective, TrialOutcome, TrialRecord, TrialState};
use std::cmp::Ordering;

/// One complete trial in its place in the ranking.
#[derive(Debug, Clone, Copy)]
pub struct Ranked<'a> {
    /// 1-based competition rank: trials with an equal objective share a rank (1, 1, 3, ...).
    pub rank: usize,
    pub trial: &'a TrialRecord,
    pub outcome: &'a TrialOutcome,
}

/// Complete trials that have a stored outcome (the only ones a ranking can place), by id.
pub fn scored(trials: &[TrialRecord]) -> Vec<(&TrialRecord, &TrialOutcome)> {
    let mut scored: Vec<(&TrialRecord, &TrialOutcome)> = trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .filter_map(|t| t.outcome.as_ref().map(|o| (t, o)))
        .collect();
    scored.sort_by_key(|(t, _)| t.id);
    scored
}

/// What the ranking orders by: the `[train] objective` every scored trial was trained for;
/// accuracy when they differ or none is scored.
pub fn objective(trials: &[TrialRecord]) -> Objective {
    let scored = scored(trials);
    let mut objectives = scored.iter().map(|(t, _)| t.settings.objective);
    let first = objectives.next().unwrap_or_default();
    if objectives.all(|o| o == first) {
        first
    } else {
        Objective::Accuracy
    }
}

/// The scored trials of `trials` (any order), best first, with their ranks.
pub fn rank(trials: &[TrialRecord]) -> Vec<Ranked<'_>> {
    let objective = objective(trials);
    let mut ordered = scored(trials);
    ordered.sort_by(|a, b| order(*a, *b, objective));
    let mut ranked: Vec<Ranked> = Vec::with_capacity(ordered.len());
    for (position, (trial, outcome)) in ordered.into_iter().enumerate() {
        let rank = match ranked.last() {
            Some(prev) if same_objective(objective, prev.outcome, outcome) => prev.rank,
            _ => position + 1,
        };
        ranked.push(Ranked {
            rank,
            trial,
            outcome,
        });
    }
    ranked
}

/// The scored trials of `trials` (any order), best first.
pub fn best_first(trials: &[TrialRecord]) -> Vec<&TrialRecord> {
    rank(trials).into_iter().map(|r| r.trial).collect()
}

/// The ranking order of two scored trials under `objective`: `Less` when `a` is the better.
fn order(
    (ta, oa): (&TrialRecord, &TrialOutcome),
    (tb, ob): (&TrialRecord, &TrialOutcome),
    objective: Objective,
) -> Ordering {
    objective_key(objective, ob)
        .total_cmp(&objective_key(objective, oa))
        .then_with(|| loss_key(oa.val_loss).total_cmp(&loss_key(ob.val_loss)))
        .then_with(|| ta.key.cmp(&tb.key))
}

/// Whether two outcomes tie on `objective` (and so share a rank).
fn same_objective(objective: Objective, a: &TrialOutcome, b: &TrialOutcome) -> bool {
    objective_key(objective, a) == objective_key(objective, b)
}

/// The objective of an outcome as a higher-is-better sort key (NaN the worst possible).
fn objective_key(objective: Objective, outcome: &TrialOutcome) -> f64 {
    value_key(objective, objective.of_outcome(outcome))
}

/// A value of `objective` as a higher-is-better sort key (NaN the worst possible).
fn value_key(objective: Objective, value: f64) -> f64 {
    if objective.higher_is_better() {
        accuracy_key(value)
    } else {
        -loss_key(value)
    }
}

/// An accuracy for sorting: NaN counts as the worst possible.
fn accuracy_key(accuracy: f64) -> f64 {
    if accuracy.is_nan() {
        f64::NEG_INFINITY
    } else {
        accuracy
    }
}

/// A loss for sorting, lower first: NaN counts as the worst possible.
fn loss_key(loss: f64) -> f64 {
    if loss.is_nan() {
        f64::INFINITY
    } else {
        loss
    }
}

pub mod kept;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
