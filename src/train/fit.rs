//! The epoch loop shared by both phases: shuffled mini-batches, validation, early stopping.

use super::Interrupted;
use crate::trial::{EpochMetrics, Optimizer, Phase};
use candle_core::{DType, Result, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer as _, ParamsAdamW, SGD};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Inputs and labels of both splits for one phase (inputs: any [N, ...] tensor).
pub struct PhaseData<'a> {
    pub train_inputs: &'a Tensor,
    pub train_labels: &'a Tensor,
    pub val_inputs: &'a Tensor,
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
}

/// Logits of a batch of inputs; dropout and the like only when given the rng.
pub type Forward<'a> = dyn Fn(&Tensor, Option<&mut StdRng>) -> Result<Tensor> + 'a;

/// Early stopping on validation loss: stop after `patience` epochs without a new best (0: never).
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: usize,
    best: f64,
    epochs_since_best: usize,
}

impl EarlyStopping {
    pub fn new(patience: usize) -> Self {
        EarlyStopping {
            patience,
            best: f64::INFINITY,
            epochs_since_best: 0,
        }
    }

    /// Record an epoch's validation loss; true when training should stop.
    pub fn should_stop(&mut self, val_loss: f64) -> bool {
        if val_loss < self.best {
            self.best = val_loss;
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
    let mut stopping = EarlyStopping::new(settings.patience);
    let mut history = Vec::with_capacity(settings.epochs);
    let n = data.train_inputs.dim(0)?;
    let mut order: Vec<u32> = (0..n as u32).collect();
    for epoch in 1..=settings.epochs {
        let started = Instant::now();
        order.shuffle(rng);
        let (mut loss_sum, mut correct) = (0.0, 0usize);
        for batch in order.chunks(settings.batch_size) {
            if cancel.load(Ordering::Relaxed) {
                return Err(Interrupted.into());
            }
            let index = Tensor::new(batch, data.train_inputs.device())?;
            let x = data.train_inputs.index_select(&index, 0)?;
            let y = data.train_labels.index_select(&index, 0)?;
            let logits = forward(&x, Some(rng))?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
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
        let (val_loss, val_accuracy) = evaluate(forward, data.val_inputs, data.val_labels)?;
        let metrics = EpochMetrics {
            phase: settings.phase,
            epoch,
            train_loss: loss_sum / n as f64,
            train_accuracy: correct as f64 / n as f64,
            val_loss,
            val_accuracy,
            seconds: started.elapsed().as_secs_f64(),
        };
        on_epoch(&metrics)?;
        history.push(metrics);
        if stopping.should_stop(val_loss) {
            break;
        }
    }
    Ok(history)
}

/// Rows per forward batch when evaluating.
const EVAL_BATCH: usize = 128;

/// Mean cross-entropy and accuracy of `forward` (no dropout) over a whole split.
pub fn evaluate(forward: &Forward, inputs: &Tensor, labels: &Tensor) -> Result<(f64, f64)> {
    let n = inputs.dim(0)?;
    let (mut loss_sum, mut correct) = (0.0, 0usize);
    for start in (0..n).step_by(EVAL_BATCH) {
        let len = EVAL_BATCH.min(n - start);
        let logits = forward(&inputs.narrow(0, start, len)?, None)?.detach();
        let y = labels.narrow(0, start, len)?;
        loss_sum += f64::from(candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?)
            * len as f64;
        correct += count_correct(&logits, &y)?;
    }
    Ok((loss_sum / n as f64, correct as f64 / n as f64))
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
        let mut policy = EarlyStopping::new(2);
        let decisions: Vec<bool> = [1.0, 0.8, 0.9, 0.85, 0.7]
            .iter()
            .map(|&l| policy.should_stop(l))
            .collect();
        assert_eq!(decisions, [false, false, false, true, false]);
        let mut never = EarlyStopping::new(0);
        assert!(![1.0, 2.0, 3.0, 4.0].iter().any(|&l| never.should_stop(l)));
    }
}
