//! A cross-validated trial: its outcome from its folds' outcomes, which fold's model it keeps, and
//! what the folds cost.

use crate::ranking::kept::improves;
use crate::trial::{Objective, TrialOutcome};

/// The outcome of a trial trained on every fold: each score the mean over the folds of that
/// fold's kept-epoch score, `epochs` and `seconds` the totals, `folds` their number and
/// `objective_sd` the sample standard deviation of the folds' objective. One fold's outcome
/// is returned as it is (no sd).
pub fn mean_over_folds(per_fold: &[TrialOutcome]) -> TrialOutcome {
    if let [only] = per_fold {
        return only.clone();
    }
    let mean = |score: fn(&TrialOutcome) -> f64| {
        per_fold.iter().map(score).sum::<f64>() / per_fold.len() as f64
    };
    TrialOutcome {
        val_accuracy: mean(|o| o.val_accuracy),
        best_val_accuracy: mean(|o| o.best_val_accuracy),
        val_loss: mean(|o| o.val_loss),
        balanced_accuracy: mean(|o| o.balanced_accuracy),
        f1: mean(|o| o.f1),
        best_objective: mean(|o| o.best_objective),
        epochs: per_fold.iter().map(|o| o.epochs).sum(),
        seconds: per_fold.iter().map(|o| o.seconds).sum(),
        folds: per_fold.len(),
        objective_sd: sample_sd(per_fold.iter().map(|o| o.best_objective)),
    }
}

/// What cross-validation over `folds` folds costs, in one line (`plan` and `run` print it).
pub fn cost_line(folds: usize) -> String {
    format!(
        "cross-validated over {folds} folds: every head and fine-tune phase above runs once per \
         fold ({folds}x the training), all from the one backbone pass"
    )
}

/// The sample standard deviation (n - 1); None below two values.
fn sample_sd(values: impl Iterator<Item = f64> + Clone) -> Option<f64> {
    let n = values.clone().count();
    if n < 2 {
        return None;
    }
    let mean = values.clone().sum::<f64>() / n as f64;
    let squares: f64 = values.map(|v| (v - mean) * (v - mean)).sum();
    Some((squares / (n - 1) as f64).sqrt())
}

/// The fold whose model a cross-validated trial keeps: the best by its objective, the first
/// on a tie (the rule of `ranking::kept` between epochs); None without folds.
pub fn best_fold(per_fold: &[TrialOutcome], objective: Objective) -> Option<usize> {
    (0..per_fold.len()).reduce(|best, f| {
        let (value, kept) = (per_fold[f].best_objective, per_fold[best].best_objective);
        if improves(objective, value, kept) {
            f
        } else {
            best
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(objective: f64, loss: f64) -> TrialOutcome {
        TrialOutcome {
            val_accuracy: objective,
            best_val_accuracy: objective + 0.1,
            val_loss: loss,
            balanced_accuracy: objective - 0.1,
            f1: objective - 0.2,
            best_objective: objective,
            epochs: 3,
            seconds: 2.0,
            ..TrialOutcome::default()
        }
    }

    #[test]
    fn the_outcome_is_the_mean_of_the_folds_with_the_sample_sd_of_the_objective() {
        let folds = [fold(0.5, 0.9), fold(0.75, 0.6), fold(1.0, 0.3)];
        let mean = mean_over_folds(&folds);
        assert!((mean.val_accuracy - 0.75).abs() < 1e-12);
        assert!((mean.best_val_accuracy - 0.85).abs() < 1e-12);
        assert!((mean.val_loss - 0.6).abs() < 1e-12);
        assert!((mean.f1 - 0.55).abs() < 1e-12);
        assert_eq!((mean.epochs, mean.seconds, mean.folds), (9, 6.0, 3));
        assert!((mean.objective_sd.unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(
            mean_over_folds(&folds[..1]),
            folds[0],
            "one split: as it is"
        );
    }

    #[test]
    fn the_best_fold_follows_the_objective_and_the_first_wins_a_tie() {
        let folds = [fold(0.5, 0.3), fold(0.75, 0.6), fold(0.75, 0.9)];
        assert_eq!(best_fold(&folds, Objective::Accuracy), Some(1));
        let by_loss = [fold(0.5, 0.6), fold(0.4, 0.3), fold(0.2, 0.3)];
        let losses: Vec<TrialOutcome> = by_loss
            .iter()
            .map(|o| TrialOutcome {
                best_objective: o.val_loss,
                ..o.clone()
            })
            .collect();
        assert_eq!(best_fold(&losses, Objective::ValLoss), Some(1));
        assert_eq!(best_fold(&[], Objective::Accuracy), None);
    }
}
