//! The ranking as it stands: the objective first, then best_val_accuracy, seconds and id; NaN last.

use super::fixtures::{trials, with_objective};
use super::*;

fn ranks_and_ids(trials: &[TrialRecord]) -> Vec<(usize, i64)> {
    rank(trials).iter().map(|r| (r.rank, r.trial.id)).collect()
}

fn scored_trial(id: i64, val: f64, best: f64, seconds: f64) -> TrialRecord {
    let mut trial = trials().remove(0);
    trial.id = id;
    let outcome = trial.outcome.as_mut().expect("a complete fixture");
    outcome.val_accuracy = val;
    outcome.best_val_accuracy = best;
    outcome.seconds = seconds;
    trial
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
    // f1 = 1 - val_accuracy here, so the order turns round; ties keep their tie-breakers.
    assert_eq!(
        ranks_and_ids(&with_objective(Objective::F1)),
        vec![(1, 5), (2, 1), (3, 2), (3, 4), (3, 3)]
    );
    // Lower val_loss is better.
    assert_eq!(
        ranks_and_ids(&with_objective(Objective::ValLoss)),
        vec![(1, 2), (1, 4), (1, 3), (4, 1), (5, 5)]
    );
    // Mixed objectives fall back to accuracy; trials not scored do not count.
    let mut mixed = with_objective(Objective::F1);
    mixed[7].settings.objective = Objective::ValLoss; // trial 8 is running
    assert_eq!(objective(&mixed), Objective::F1);
    mixed[0].settings.objective = Objective::BalancedAccuracy;
    assert_eq!(objective(&mixed), Objective::Accuracy);
    assert_eq!(
        ranks_and_ids(&mixed),
        vec![(1, 2), (1, 4), (1, 3), (4, 1), (5, 5)]
    );
}

#[test]
fn each_tie_break_in_turn() {
    let by = |a: &TrialRecord, b: &TrialRecord| {
        let (oa, ob) = (a.outcome.as_ref().unwrap(), b.outcome.as_ref().unwrap());
        order((a, oa), (b, ob), Objective::Accuracy)
    };
    let base = scored_trial(1, 0.9, 0.9, 10.0);
    assert_eq!(by(&base, &scored_trial(2, 0.8, 0.99, 1.0)), Ordering::Less);
    assert_eq!(
        by(&base, &scored_trial(2, 0.9, 0.95, 20.0)),
        Ordering::Greater
    );
    assert_eq!(
        by(&base, &scored_trial(2, 0.9, 0.9, 5.0)),
        Ordering::Greater
    );
    assert_eq!(by(&base, &scored_trial(2, 0.9, 0.9, 10.0)), Ordering::Less);
    assert_eq!(
        by(&scored_trial(3, 0.9, 0.9, 10.0), &base),
        Ordering::Greater
    );
    assert_eq!(by(&base, &base), Ordering::Equal);
}

#[test]
fn nan_is_the_worst_value() {
    let all = vec![
        scored_trial(1, f64::NAN, 0.9, 1.0),
        scored_trial(2, 0.1, 0.1, 1.0),
        scored_trial(3, 0.5, f64::NAN, 1.0),
        scored_trial(4, 0.5, 0.2, f64::NAN),
        scored_trial(5, 0.5, 0.2, 30.0),
    ];
    assert_eq!(
        ranks_and_ids(&all),
        vec![(1, 5), (1, 4), (1, 3), (4, 2), (5, 1)]
    );
    let mut loss = all.clone();
    for t in &mut loss {
        t.settings.objective = Objective::ValLoss;
        let o = t.outcome.as_mut().unwrap();
        o.val_loss = 1.0 - o.val_accuracy;
    }
    assert_eq!(
        ranks_and_ids(&loss),
        vec![(1, 5), (1, 4), (1, 3), (4, 2), (5, 1)]
    );
}
