//! Which epoch's weights a trial keeps (restore-best): the epoch with the best value of the
//! trial's objective over both phases, the earlier in training order on a tie, NaN the worst.
//!
//! The one rule that training (which weights to copy and put back), the trial's outcome (which
//! epoch's scores it reports) and the report (which epoch it names) share.

use super::value_key;
use crate::trial::{EpochMetrics, Objective, Phase};

/// Whether `value` of `objective` is strictly better than `best` (NaN is never better, and
/// anything but NaN is better than NaN): what makes an epoch the new best.
pub fn improves(objective: Objective, value: f64, best: f64) -> bool {
    value_key(objective, value) > value_key(objective, best)
}

/// Where an epoch comes in training order: the head phase's epochs, then the fine-tune phase's.
pub fn training_order(epoch: &EpochMetrics) -> (Phase, usize) {
    (epoch.phase, epoch.epoch)
}

/// The epoch whose weights a trial with these `epochs` (any order) keeps under `objective`;
/// None without epochs.
pub fn kept_epoch(epochs: &[EpochMetrics], objective: Objective) -> Option<&EpochMetrics> {
    kept_among(epochs.iter(), objective)
}

fn kept_among<'a>(
    epochs: impl Iterator<Item = &'a EpochMetrics>,
    objective: Objective,
) -> Option<&'a EpochMetrics> {
    epochs.reduce(|kept, epoch| {
        let (value, best) = (objective.of_epoch(epoch), objective.of_epoch(kept));
        let tie = value_key(objective, value) == value_key(objective, best);
        if improves(objective, value, best) || (tie && training_order(epoch) < training_order(kept))
        {
            epoch
        } else {
            kept
        }
    })
}

/// The epoch each fold of a cross-validated trial keeps (`kept_epoch` over that fold's
/// `epochs`), in fold order; one entry, the trial's kept epoch, without folds.
pub fn kept_epoch_of_each_fold(
    epochs: &[EpochMetrics],
    objective: Objective,
) -> Vec<&EpochMetrics> {
    let mut folds: Vec<usize> = epochs.iter().map(|e| e.fold).collect();
    folds.sort_unstable();
    folds.dedup();
    folds
        .into_iter()
        .filter_map(|fold| kept_among(epochs.iter().filter(|e| e.fold == fold), objective))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::fixtures::epoch;

    fn kept(epochs: &[EpochMetrics], objective: Objective) -> Option<(Phase, usize)> {
        kept_epoch(epochs, objective).map(training_order)
    }

    #[test]
    fn the_best_epoch_is_kept_not_the_last() {
        let epochs = [
            epoch(Phase::Head, 1, 0.6, 0.9),
            epoch(Phase::Head, 2, 0.8, 0.5),
            epoch(Phase::Head, 3, 0.7, 0.4),
            epoch(Phase::Finetune, 1, 0.75, 0.6),
        ];
        assert_eq!(kept(&epochs, Objective::Accuracy), Some((Phase::Head, 2)));
        assert_eq!(kept(&epochs, Objective::ValLoss), Some((Phase::Head, 3)));
        assert_eq!(kept(&[], Objective::Accuracy), None);
    }

    #[test]
    fn a_tie_keeps_the_earlier_epoch_in_training_order_whatever_the_order_given() {
        let mut epochs = vec![
            epoch(Phase::Finetune, 1, 0.8, 0.5),
            epoch(Phase::Head, 3, 0.8, 0.5),
            epoch(Phase::Head, 2, 0.8, 0.5),
            epoch(Phase::Head, 1, 0.6, 0.9),
        ];
        assert_eq!(kept(&epochs, Objective::F1), Some((Phase::Head, 2)));
        epochs.reverse();
        assert_eq!(kept(&epochs, Objective::F1), Some((Phase::Head, 2)));
        assert_eq!(kept(&epochs, Objective::ValLoss), Some((Phase::Head, 2)));
    }

    #[test]
    fn a_fine_tune_epoch_is_kept_only_when_strictly_better_than_the_head_phase() {
        let head = epoch(Phase::Head, 1, 0.8, 0.5);
        let better = epoch(Phase::Finetune, 2, 0.85, 0.6);
        let epochs = [head.clone(), epoch(Phase::Finetune, 1, 0.8, 0.5), better];
        assert_eq!(
            kept(&epochs, Objective::Accuracy),
            Some((Phase::Finetune, 2))
        );
        assert_eq!(kept(&epochs, Objective::ValLoss), Some((Phase::Head, 1)));
    }

    #[test]
    fn each_fold_keeps_its_own_best_epoch() {
        let in_fold = |fold, phase, number, accuracy| EpochMetrics {
            fold,
            ..epoch(phase, number, accuracy, 0.5)
        };
        let epochs = [
            in_fold(1, Phase::Head, 1, 0.9),
            in_fold(0, Phase::Head, 1, 0.6),
            in_fold(0, Phase::Finetune, 1, 0.7),
            in_fold(1, Phase::Finetune, 1, 0.8),
            in_fold(2, Phase::Head, 1, 0.5),
        ];
        let kept: Vec<(usize, Phase)> = kept_epoch_of_each_fold(&epochs, Objective::Accuracy)
            .iter()
            .map(|e| (e.fold, e.phase))
            .collect();
        assert_eq!(
            kept,
            [(0, Phase::Finetune), (1, Phase::Head), (2, Phase::Head)]
        );
        let one = kept_epoch_of_each_fold(&epochs[1..3], Objective::Accuracy);
        assert_eq!(one, [&epochs[2]], "one split: its kept epoch");
    }

    #[test]
    fn nan_is_the_worst_value() {
        let epochs = [
            epoch(Phase::Head, 1, f64::NAN, f64::NAN),
            epoch(Phase::Head, 2, 0.1, 5.0),
        ];
        assert_eq!(kept(&epochs, Objective::Accuracy), Some((Phase::Head, 2)));
        assert_eq!(kept(&epochs, Objective::ValLoss), Some((Phase::Head, 2)));
        assert!(improves(Objective::ValLoss, 5.0, f64::NAN));
        assert!(!improves(Objective::ValLoss, f64::NAN, 5.0));
        assert!(!improves(Objective::Accuracy, f64::NAN, f64::NAN));
        assert!(improves(Objective::ValLoss, 0.4, 0.5));
        assert!(!improves(Objective::Accuracy, 0.5, 0.5));
        let all_nan = [
            epoch(Phase::Head, 1, f64::NAN, f64::NAN),
            epoch(Phase::Head, 2, f64::NAN, f64::NAN),
        ];
        assert_eq!(kept(&all_nan, Objective::Accuracy), Some((Phase::Head, 1)));
    }
}
