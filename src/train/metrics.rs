//! Classification scores from a confusion matrix: accuracy, balanced accuracy and F1.

/// `matrix[true][predicted]` counts over one split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confusion {
    matrix: Vec<Vec<usize>>,
}

/// Scores of one split's predictions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub accuracy: f64,
    /// Mean recall over the classes that occur in the labels.
    pub balanced_accuracy: f64,
    /// Two classes: F1 of class 1 (the positive one). More: mean F1 over the classes that occur
    /// in the labels or the predictions.
    pub f1: f64,
}

impl Confusion {
    pub fn new(classes: usize) -> Confusion {
        Confusion {
            matrix: vec![vec![0; classes]; classes],
        }
    }

    /// Count pairs of (true label, predicted class); indexes outside the classes are ignored.
    pub fn add(&mut self, labels: &[u32], predictions: &[u32]) {
        for (&t, &p) in labels.iter().zip(predictions) {
            if let Some(cell) = self
                .matrix
                .get_mut(t as usize)
                .and_then(|row| row.get_mut(p as usize))
            {
                *cell += 1;
            }
        }
    }

    pub fn scores(&self) -> Scores {
        let k = self.matrix.len();
        let total: usize = self.matrix.iter().flatten().sum();
        let correct: usize = (0..k).map(|c| self.matrix[c][c]).sum();
        let support = |c: usize| -> usize { self.matrix[c].iter().sum() };
        let predicted = |c: usize| -> usize { self.matrix.iter().map(|row| row[c]).sum() };
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let f1_of = |c: usize| ratio(2 * self.matrix[c][c], support(c) + predicted(c));
        let recalls: Vec<f64> = (0..k)
            .filter(|&c| support(c) > 0)
            .map(|c| ratio(self.matrix[c][c], support(c)))
            .collect();
        let f1 = if k == 2 {
            f1_of(1)
        } else {
            mean(
                &(0..k)
                    .filter(|&c| support(c) + predicted(c) > 0)
                    .map(f1_of)
                    .collect::<Vec<_>>(),
            )
        };
        Scores {
            accuracy: ratio(correct, total),
            balanced_accuracy: mean(&recalls),
            f1,
        }
    }
}

/// Mean of the values; 0 for none.
fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Per-class weights n_samples / (n_classes * count_c) from the training labels
/// (a class without samples gets 0: it never weighs a loss term).
pub fn balanced_class_weights(labels: &[u32], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    for &y in labels {
        if let Some(c) = counts.get_mut(y as usize) {
            *c += 1;
        }
    }
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                (labels.len() as f64 / (classes * c) as f64) as f32
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(classes: usize, labels: &[u32], predictions: &[u32]) -> Scores {
        let mut m = Confusion::new(classes);
        m.add(labels, predictions);
        m.scores()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn binary_scores_by_hand() {
        // 8 negatives (6 right), 2 positives (1 right), 2 false positives.
        let labels = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
        let preds = [0, 0, 0, 0, 0, 0, 1, 1, 1, 0];
        let s = scores(2, &labels, &preds);
        close(s.accuracy, 7.0 / 10.0);
        close(s.balanced_accuracy, (6.0 / 8.0 + 1.0 / 2.0) / 2.0);
        // precision 1/3, recall 1/2: F1 = 2 * 1 / (2 + 3) = 0.4.
        close(s.f1, 0.4);
    }

    #[test]
    fn a_positive_class_never_predicted_scores_zero_f1() {
        let s = scores(2, &[0, 0, 0, 1], &[0, 0, 0, 0]);
        close(s.accuracy, 0.75);
        close(s.balanced_accuracy, 0.5);
        close(s.f1, 0.0);
    }

    #[test]
    fn three_classes_use_macro_f1_with_a_class_never_predicted() {
        // True 0: 0,0,1 | true 1: 1,1 | true 2: 0,1 (class 2 never predicted).
        let s = scores(3, &[0, 0, 0, 1, 1, 2, 2], &[0, 0, 1, 1, 1, 0, 1]);
        close(s.accuracy, 4.0 / 7.0);
        close(s.balanced_accuracy, (2.0 / 3.0 + 1.0 + 0.0) / 3.0);
        // F1: class 0 = 4/(3+3) = 2/3, class 1 = 4/(2+4) = 2/3, class 2 = 0.
        close(s.f1, (2.0 / 3.0 + 2.0 / 3.0 + 0.0) / 3.0);
    }

    #[test]
    fn balanced_weights_by_hand() {
        // 4 samples, 2 classes: 3 of class 0, 1 of class 1.
        let w = balanced_class_weights(&[0, 0, 0, 1], 2);
        assert!(
            (w[0] - 2.0 / 3.0).abs() < 1e-6 && (w[1] - 2.0).abs() < 1e-6,
            "{w:?}"
        );
        // 2 samples, 2 classes, all of class 0: 2 / (2 * 2) = 0.5; the absent class gets 0.
        assert_eq!(balanced_class_weights(&[0, 0], 2), [0.5, 0.0]);
    }
}
