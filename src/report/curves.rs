//! Learning curves: each ranked trial's stored epochs as validation accuracy by step and phase
//! (fold after fold when cross-validated).

use super::schema::{Curve, CurvePoint, RankedRow};
use crate::ranking::kept::training_order;
use crate::trial::EpochMetrics;
use std::collections::BTreeMap;

/// The curves of `ranked` trials, in ranked order; trials without stored epochs get no points.
pub(super) fn curves(
    ranked: &[RankedRow],
    epochs: &BTreeMap<i64, Vec<EpochMetrics>>,
) -> Vec<Curve> {
    ranked
        .iter()
        .map(|row| Curve {
            trial: row.trial,
            rank: row.rank,
            points: epochs.get(&row.trial).map_or_else(Vec::new, |e| points(e)),
        })
        .collect()
}

fn points(epochs: &[EpochMetrics]) -> Vec<CurvePoint> {
    let mut sorted: Vec<&EpochMetrics> = epochs.iter().collect();
    sorted.sort_by_key(|e| (e.fold, training_order(e)));
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, e)| CurvePoint {
            step: i + 1,
            fold: e.fold,
            phase: e.phase,
            epoch: e.epoch,
            train_accuracy: e.train_accuracy,
            val_accuracy: e.val_accuracy,
            val_loss: e.val_loss,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::fixtures::epoch;
    use crate::trial::Phase;

    #[test]
    fn head_epochs_come_first_and_steps_count_across_phases() {
        let row = RankedRow {
            rank: 1,
            trial: 7,
            key: "k".into(),
            val_accuracy: 0.9,
            best_val_accuracy: 0.9,
            balanced_accuracy: 0.9,
            f1: 0.9,
            val_loss: 0.3,
            params: BTreeMap::new(),
            kept: None,
            epochs: 3,
            seconds: 1.0,
            folds: None,
            objective_sd: None,
            kept_folds: Vec::new(),
        };
        let stored = vec![
            epoch(Phase::Finetune, 1, 0.9, 0.7),
            epoch(Phase::Head, 2, 0.8, 0.7),
            epoch(Phase::Head, 1, 0.6, 0.7),
        ];
        let epochs = BTreeMap::from([(7, stored)]);
        let curves = curves(std::slice::from_ref(&row), &epochs);
        let shown: Vec<(usize, Phase, usize, f64)> = curves[0]
            .points
            .iter()
            .map(|p| (p.step, p.phase, p.epoch, p.val_accuracy))
            .collect();
        assert_eq!(
            shown,
            [
                (1, Phase::Head, 1, 0.6),
                (2, Phase::Head, 2, 0.8),
                (3, Phase::Finetune, 1, 0.9)
            ]
        );
        let none = super::curves(&[row], &BTreeMap::new());
        assert!(none[0].points.is_empty());
    }
}
