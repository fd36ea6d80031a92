//! The report's numbers over the shared test study: counts, ranking, top cut, axes, failures, effects.

use super::*;
use crate::ranking::fixtures::{epoch, epochs, study, trials, with_objective};
use crate::report::schema::AxisEffect;
use crate::trial::{Objective, ParamValue, Phase};

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
    // f1 = 1 - val_accuracy here, so the order turns round; the tied trials have equal
    // losses here, so their trial keys (k2 < k3 < k4) decide.
    assert_eq!(
        ranks_and_ids(&report),
        vec![(1, 5), (2, 1), (3, 2), (3, 3), (3, 4)]
    );
    assert!((report.ranked[0].f1 - 0.3).abs() < 1e-12);
    assert!((report.ranked[0].balanced_accuracy - 0.65).abs() < 1e-12);
    // Lower val_loss is better; equal losses share a rank, in trial-key order.
    let report = build(&study(), &with_objective(Objective::ValLoss), None);
    assert_eq!(
        ranks_and_ids(&report),
        vec![(1, 2), (1, 3), (1, 4), (4, 1), (5, 5)]
    );
    // Mixed objectives fall back to accuracy.
    let mut mixed = with_objective(Objective::F1);
    mixed[0].settings.objective = Objective::BalancedAccuracy;
    let report = build(&study(), &mixed, None);
    assert_eq!(report.objective, Objective::Accuracy);
    assert_eq!(
        ranks_and_ids(&report),
        vec![(1, 2), (1, 3), (1, 4), (4, 1), (5, 5)]
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
fn empty_study_builds_empty_report() {
    let report = build(&study(), &[], Some(3));
    assert_eq!(report.counts.total, 0);
    assert!(report.ranked.is_empty() && report.axes.is_empty() && report.effects.is_empty());
}

#[test]
fn each_ranked_trial_names_the_epoch_its_objective_kept() {
    let kept = |report: &Report| -> Vec<(i64, Option<(Phase, usize)>)> {
        report
            .ranked
            .iter()
            .map(|r| (r.trial, r.kept.map(|k| (k.phase, k.epoch))))
            .collect()
    };
    let mut stored = epochs();
    stored
        .get_mut(&4)
        .unwrap()
        .push(epoch(Phase::Head, 2, 0.7, 0.2));
    let by_accuracy = build_with_epochs(&study(), &trials(), &stored, None);
    assert_eq!(
        kept(&by_accuracy),
        [
            (2, Some((Phase::Head, 2))),
            (4, Some((Phase::Finetune, 1))),
            (3, None),
            (1, None),
            (5, None)
        ]
    );
    let by_loss = build_with_epochs(&study(), &with_objective(Objective::ValLoss), &stored, None);
    let named: BTreeMap<i64, Option<(Phase, usize)>> = kept(&by_loss).into_iter().collect();
    assert_eq!(named[&2], Some((Phase::Head, 2)), "a tie keeps the earlier");
    assert_eq!(named[&4], Some((Phase::Head, 2)), "the lowest loss");
    assert_eq!(build(&study(), &trials(), None).ranked[0].kept, None);
}
