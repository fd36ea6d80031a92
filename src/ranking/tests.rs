//! The ranking: the objective first, then the validation loss, then the trial key; never the
//! time a trial took or its row id; NaN last.

use super::fixtures::{trials, with_objective};
use super::*;

fn ranks_and_ids(trials: &[TrialRecord]) -> Vec<(usize, i64)> {
    rank(trials).iter().map(|r| (r.rank, r.trial.id)).collect()
}

/// A complete trial `k{key}` with row id `id` (the reverse of the key order, so that the id can
/// be seen not to count), accuracy `val`, loss `loss` and wall time `seconds`.
fn scored_trial(key: i64, val: f64, loss: f64, seconds: f64) -> TrialRecord {
    let mut trial = trials().remove(0);
    trial.id = 100 - key;
    trial.key = format!("k{key}");
    let outcome = trial.outcome.as_mut().expect("a complete fixture");
    outcome.val_accuracy = val;
    outcome.val_loss = loss;
    outcome.seconds = seconds;
    trial
}

fn keys(ranked: &[Ranked]) -> Vec<(usize, String)> {
    ranked
        .iter()
        .map(|r| (r.rank, r.trial.key.clone()))
        .collect()
}

#[test]
fn only_complete_trials_with_an_outcome_by_id() {
    let mut all = trials();
    all[0].outcome = None; // trial 3
    let ids: Vec<i64> = scored(&all).iter().map(|(t, _)| t.id).collect();
    assert_eq!(ids, vec![1, 2, 4, 5]);
    assert!(rank(&[]).is_empty());
    assert_eq!(objective(&[]), Objective::Accuracy);
}

#[test]
fn ties_share_a_rank_and_keep_their_tie_breaks() {
    // 0.9 ties: trial 2 (best .95) first, then 4 and 3 (best .92) by seconds 8 < 10.
    assert_eq!(
        ranks_and_ids(&trials()),
        vec![(1, 2), (1, 4), (1, 3), (4, 1), (5, 5)]
    );
    let ids: Vec<i64> = best_first(&trials()).iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![2, 4, 3, 1, 5]);
}

#[test]
fn orders_by_the_shared_objective() {
    assert_eq!(objective(&with_objective(Objective::F1)), Objective::F1);
    // f1 = 1 - val_accuracy here, so the order turns round; the tied trials have equal
    // losses here, so their trial keys (k2 < k3 < k4) decide.
    assert_eq!(
        ranks_and_ids(&with_objective(Objective::F1)),
        vec![(1, 5), (2, 1), (3, 2), (3, 3), (3, 4)]
    );
    // Lower val_loss is better; equal losses share a rank, in trial-key order.
    assert_eq!(
        ranks_and_ids(&with_objective(Objective::ValLoss)),
        vec![(1, 2), (1, 3), (1, 4), (4, 1), (5, 5)]
    );
    // Mixed objectives fall back to accuracy; trials not scored do not count.
    let mut mixed = with_objective(Objective::F1);
    mixed[7].settings.objective = Objective::ValLoss; // trial 8 is running
    assert_eq!(objective(&mixed), Objective::F1);
    mixed[0].settings.objective = Objective::BalancedAccuracy;
    assert_eq!(objective(&mixed), Objective::Accuracy);
    assert_eq!(
        ranks_and_ids(&mixed),
        vec![(1, 2), (1, 3), (1, 4), (4, 1), (5, 5)]
    );
}

#[test]
fn each_tie_break_in_turn() {
    let by = |a: &TrialRecord, b: &TrialRecord| {
        let (oa, ob) = (a.outcome.as_ref().unwrap(), b.outcome.as_ref().unwrap());
        order((a, oa), (b, ob), Objective::Accuracy)
    };
    let base = scored_trial(1, 0.9, 0.3, 10.0);
    // The objective first, whatever the loss.
    assert_eq!(by(&base, &scored_trial(2, 0.8, 0.01, 1.0)), Ordering::Less);
    // Then the lower loss.
    assert_eq!(
        by(&base, &scored_trial(2, 0.9, 0.2, 20.0)),
        Ordering::Greater
    );
    assert_eq!(by(&base, &scored_trial(2, 0.9, 0.4, 1.0)), Ordering::Less);
    // Then the trial key: never the seconds, never the row id.
    assert_eq!(by(&base, &scored_trial(2, 0.9, 0.3, 1.0)), Ordering::Less);
    assert_eq!(
        by(&scored_trial(3, 0.9, 0.3, 1.0), &base),
        Ordering::Greater
    );
    assert_eq!(by(&base, &base), Ordering::Equal);
}

#[test]
fn the_order_is_the_same_whatever_the_seconds_and_ids() {
    let all: Vec<TrialRecord> = (1..=6)
        .map(|k| scored_trial(k, 0.9, 0.3, k as f64))
        .collect();
    let mut other = all.clone();
    for (i, t) in other.iter_mut().enumerate() {
        t.outcome.as_mut().unwrap().seconds = 100.0 - i as f64;
        t.id = i as i64;
    }
    other.reverse();
    assert_eq!(keys(&rank(&all)), keys(&rank(&other)));
    assert_eq!(rank(&all)[0].trial.key, "k1");
}

#[test]
fn nan_is_the_worst_value() {
    let all = vec![
        scored_trial(1, f64::NAN, 0.1, 1.0),
        scored_trial(2, 0.1, 0.1, 1.0),
        scored_trial(3, 0.5, f64::NAN, 1.0),
        scored_trial(4, 0.5, 0.2, f64::NAN),
        scored_trial(5, 0.5, 0.2, 30.0),
    ];
    let expected: Vec<(usize, String)> = [(1, 4), (1, 5), (1, 3), (4, 2), (5, 1)]
        .iter()
        .map(|&(r, k)| (r, format!("k{k}")))
        .collect();
    assert_eq!(keys(&rank(&all)), expected);
    let mut loss = all.clone();
    for t in &mut loss {
        t.settings.objective = Objective::ValLoss;
        let o = t.outcome.as_mut().unwrap();
        o.val_loss = if o.val_accuracy.is_nan() {
            f64::NAN
        } else {
            1.0 - o.val_accuracy
        };
    }
    // Losses 0.5 (k3, k4, k5, by key), 0.9 (k2), NaN (k1, last).
    let expected: Vec<(usize, String)> = [(1, 3), (1, 4), (1, 5), (4, 2), (5, 1)]
        .iter()
        .map(|&(r, k)| (r, format!("k{k}")))
        .collect();
    assert_eq!(keys(&rank(&loss)), expected);
}
