//! The epoch loop shared by both phases: shuffled mini-batches, validation, early stopping.

use super::metrics::{balanced_class_weights, Confusion, Scores};
use super::rows::Rows;
use super::Interrupted;
use crate::trial::{ClassWeights, EpochMetrics, Objective, Optimizer, Phase, Vocabulary};
use candle_core::{DType, Result, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer as _, ParamsAdamW, SGD};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Inputs and labels of both splits for one phase (inputs: rows of any shape).
pub struct PhaseData<'a> {
    pub train_inputs: &'a Rows,
    pub train_labels: &'a Tensor,
    pub val_inputs: &'a Rows,
    pub val_labels: &'a Tensor,
}

/// How one phase trains.
#[derive(Debug, Clone, Copy)]
pub struct FitSettings {
    pub phase: Phase,
    pub epochs: usize,
    pub batch_size: usize,
    pub patience: usize,
    pub learning_rate: f64,
    pub optimizer: Optimizer,
    pub weight_decay: f64,
    /// Number of classes the logits score.
    pub classes: usize,
    pub objective: Objective,
    pub class_weights: ClassWeights,
}

/// Logits of a batch of inputs; dropout and the like only when given the rng.
pub type Forward<'a> = dyn Fn(&Tensor, Option<&mut StdRng>) -> Result<Tensor> + 'a;

/// Early stopping on the objective: stop after `patience` epochs without a new best (0: never).
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: usize,
    higher_is_better: bool,
    best: f64,
    epochs_since_best: usize,
}

impl EarlyStopping {
    pub fn new(patience: usize, objective: Objective) -> Self {
        let higher_is_better = objective.higher_is_better();
        EarlyStopping {
            patience,
            higher_is_better,
            best: if higher_is_better {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            },
            epochs_since_best: 0,
        }
    }

    /// Record an epoch's value of the objective; true when training should stop.
    pub fn should_stop(&mut self, value: f64) -> bool {
        let better = if self.higher_is_better {
            value > self.best
        } else {
            value < self.best
        };
        if better {
            self.best = value;
            self.epochs_since_best = 0;
        } else {
            self.epochs_since_best += 1;
        }
        self.patience > 0 && self.epochs_since_best >= self.patience
    }
}

/// The optimiser, with PyTorch's meaning of `weight_decay`: decoupled for AdamW, an L2 term
/// added to the gradient for Adam and SGD.
struct Stepper {
    kind: StepperKind,
    vars: Vec<Var>,
    l2: f64,
}

enum StepperKind {
    Adam(AdamW),
    Sgd(SGD),
}

impl Stepper {
    fn new(vars: Vec<Var>, s: &FitSettings) -> Result<Stepper> {
        let adam = |weight_decay| {
            let params = ParamsAdamW {
                lr: s.learning_rate,
                weight_decay,
                ..Default::default()
            };
            AdamW::new(vars.clone(), params).map(StepperKind::Adam)
        };
        let (kind, l2) = match s.optimizer {
            Optimizer::AdamW => (adam(s.weight_decay)?, 0.0),
            Optimizer::Adam => (adam(0.0)?, s.weight_decay),
            Optimizer::Sgd => {
                let sgd = SGD::new(vars.clone(), s.learning_rate)?;
                (StepperKind::Sgd(sgd), s.weight_decay)
            }
        };
        Ok(Stepper { kind, vars, l2 })
    }

    /// One update from `loss` (plus `l2 / 2 * sum(w^2)`, whose gradient is `l2 * w`).
    fn step(&mut self, loss: &Tensor) -> Result<()> {
        let mut objective = loss.clone();
        if self.l2 > 0.0 {
            for var in &self.vars {
                objective = (objective + (var.sqr()?.sum_all()? * (self.l2 / 2.0))?)?;
            }
        }
        match &mut self.kind {
            StepperKind::Adam(o) => o.backward_step(&objective),
            StepperKind::Sgd(o) => o.backward_step(&objective),
        }
    }
}

/// Train `vars` through `forward` for up to `settings.epochs` epochs; `on_epoch` sees each one.
pub fn fit(
    settings: &FitSettings,
    data: &PhaseData,
    vars: Vec<Var>,
    forward: &Forward,
    rng: &mut StdRng,
    cancel: &AtomicBool,
    on_epoch: &mut dyn FnMut(&EpochMetrics) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<EpochMetrics>> {
    let mut stepper = Stepper::new(vars, settings)?;
    let mut stopping = EarlyStopping::new(settings.patience, settings.objective);
    let weights = match settings.class_weights {
        ClassWeights::None => None,
        ClassWeights::Balanced => {
            let labels = data.train_labels.to_vec1::<u32>()?;
            let w = balanced_class_weights(&labels, settings.classes);
            Some(Tensor::new(w, data.train_labels.device())?)
        }
    };
    let mut history = Vec::with_capacity(settings.epochs);
    let n = data.train_inputs.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    for epoch in 1..=settings.epochs {
        let started = Instant::now();
        order.shuffle(rng);
        let (mut loss_sum, mut correct) = (0.0, 0usize);
        for batch in order.chunks(settings.batch_size) {
            if cancel.load(Ordering::Relaxed) {
                return Err(Interrupted.into());
            }
            let index = Tensor::new(batch, data.train_labels.device())?;
            let x = data.train_inputs.gather(batch)?;
            let y = data.train_labels.index_select(&index, 0)?;
            let logits = forward(&x, Some(rng))?;
            let loss = match &weights {
                Some(w) => weighted_cross_entropy(&logits, &y, w)?,
                None => candle_nn::loss::cross_entropy(&logits, &y)?,
            };
            stepper.step(&loss)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * batch.len() as f64;
            correct += count_correct(&logits, &y)?;
        }
        if !loss_sum.is_finite() {
            anyhow::bail!(
                "training diverged: the {} phase's loss is not finite in epoch {epoch} \
                 (try a lower learning rate)",
                settings.phase.as_str()
            );
        }
        let (val_loss, scores) =
            evaluate(forward, data.val_inputs, data.val_labels, settings.classes)?;
        let metrics = EpochMetrics {
            phase: settings.phase,
            epoch,
            train_loss: loss_sum / n as f64,
            train_accuracy: correct as f64 / n as f64,
            val_loss,
            val_accuracy: scores.accuracy,
            val_balanced_accuracy: scores.balanced_accuracy,
            val_f1: scores.f1,
            seconds: started.elapsed().as_secs_f64(),
        };
        on_epoch(&metrics)?;
        let watched = settings.objective.of_epoch(&metrics);
        history.push(metrics);
        if stopping.should_stop(watched) {
            break;
        }
    }
    Ok(history)
}

/// Rows per forward batch when evaluating.
const EVAL_BATCH: usize = 128;

/// Mean (unweighted) cross-entropy and the scores of `forward` (no dropout) over a whole split.
pub fn evaluate(
    forward: &Forward,
    inputs: &Rows,
    labels: &Tensor,
    classes: usize,
) -> Result<(f64, Scores)> {
    let n = inputs.len();
    let mut loss_sum = 0.0;
    let mut confusion = Confusion::new(classes);
    for start in (0..n).step_by(EVAL_BATCH) {
        let len = EVAL_BATCH.min(n - start);
        let logits = forward(&inputs.narrow(start, len)?, None)?.detach();
        let y = labels.narrow(0, start, len)?;
        loss_sum += f64::from(candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?)
            * len as f64;
        let predicted = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
        confusion.add(&y.to_vec1::<u32>()?, &predicted);
    }
    Ok((loss_sum / n as f64, confusion.scores()))
}

/// Class-weighted cross-entropy as PyTorch's: sum of `w_y * nll` over sum of `w_y`.
pub fn weighted_cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    weights: &Tensor,
) -> Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let nll = log_p.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
    let w = weights.index_select(labels, 0)?;
    (nll * &w)?.sum_all()?.div(&w.sum_all()?)
}

fn count_correct(logits: &Tensor, labels: &Tensor) -> Result<usize> {
    let hits = logits.argmax(D::Minus1)?.eq(labels)?.to_dtype(DType::U32)?;
    Ok(hits.sum_all()?.to_scalar::<u32>()? as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_waits_patience_epochs_without_a_better_loss() {
        let mut policy = EarlyStopping::new(2, Objective::ValLoss);
        let decisions: Vec<bool> = [1.0, 0.8, 0.9, 0.85, 0.7]
            .iter()
            .map(|&l| policy.should_stop(l))
            .collect();
        assert_eq!(decisions, [false, false, false, true, false]);
        let mut never = EarlyStopping::new(0, Objective::ValLoss);
        assert!(![1.0, 2.0, 3.0, 4.0].iter().any(|&l| never.should_stop(l)));
    }

    #[test]
    fn early_stopping_on_a_score_waits_for_a_higher_value() {
        let mut policy = EarlyStopping::new(2, Objective::F1);
        let decisions: Vec<bool> = [0.2, 0.5, 0.4, 0.5, 0.6]
            .iter()
            .map(|&v| policy.should_stop(v))
            .collect();
        assert_eq!(decisions, [false, false, false, true, false]);
    }

    #[test]
    fn weighted_cross_entropy_by_hand() -> Result<()> {
        let device = candle_core::Device::Cpu;
        // Logits [0, ln 3] give p = [1/4, 3/4]; [0, 0] gives [1/2, 1/2].
        let logits = Tensor::new(&[[0f32, 3f32.ln()], [0.0, 0.0], [0.0, 3f32.ln()]], &device)?;
        let labels = Tensor::new(&[1u32, 0, 0], &device)?;
        let weights = Tensor::new(&[0.5f32, 2.0], &device)?;
        let loss = weighted_cross_entropy(&logits, &labels, &weights)?.to_scalar::<f32>()?;
        // nll = [ln 4/3, ln 2, ln 4]; w_y = [2, 0.5, 0.5].
        let expected = (2.0 * (4f32 / 3.0).ln() + 0.5 * 2f32.ln() + 0.5 * 4f32.ln()) / 3.0;
        assert!((loss - expected).abs() < 1e-6, "{loss} != {expected}");
        // Equal weights give the plain mean.
        let ones = Tensor::new(&[1f32, 1.0], &device)?;
        let plain = candle_nn::loss::cross_entropy(&logits, &labels)?.to_scalar::<f32>()?;
        let same = weighted_cross_entropy(&logits, &labels, &ones)?.to_scalar::<f32>()?;
        assert!((plain - same).abs() < 1e-6);
        Ok(())
    }
}
