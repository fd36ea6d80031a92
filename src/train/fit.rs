//! The epoch loop shared by both phases: shuffled mini-batches, validation, early stopping, and
//! the best epoch's weights put back at the end.

use super::metrics::{balanced_class_weights, Confusion, Scores};
use super::rows::Rows;
use super::Interrupted;
use crate::ranking::kept::improves;
use crate::trial::{
    ClassWeights, EpochMetrics, LrSchedule, Objective, Optimizer, Phase, Vocabulary,
};
use candle_core::{DType, Result, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer as _, ParamsAdamW, SGD};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What a phase trains on each epoch.
pub enum TrainInputs<'a> {
    /// The same rows every epoch.
    Fixed(&'a Rows),
    /// One augmented view of each image per epoch, drawn from the trial's random stream: row
    /// `rows[v][i]` of `all` holds view v of image i.
    Views { all: &'a Rows, rows: &'a [Vec<u32>] },
}

impl TrainInputs<'_> {
    fn len(&self) -> usize {
        match self {
            TrainInputs::Fixed(rows) => rows.len(),
            TrainInputs::Views { rows, .. } => rows.first().map_or(0, Vec::len),
        }
    }

    /// This epoch's rows (drawing nothing from `rng` without views, so that training without
    /// augmentation is as it always was).
    fn for_epoch(&self, rng: &mut StdRng) -> Rows {
        match self {
            TrainInputs::Fixed(rows) => (*rows).clone(),
            TrainInputs::Views { all, rows } => {
                let chosen: Vec<u32> = (0..self.len())
                    .map(|i| rows[rng.random_range(0..rows.len())][i])
                    .collect();
                all.pick(&chosen)
            }
        }
    }
}

/// Inputs and labels of both splits for one phase (inputs: rows of any shape).
pub struct PhaseData<'a> {
    pub train_inputs: TrainInputs<'a>,
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
    pub label_smoothing: f64,
    pub lr_schedule: LrSchedule,
}

/// The learning rate of step `step` (from 0) of a phase of `steps` steps.
pub fn scheduled_rate(base: f64, schedule: LrSchedule, step: usize, steps: usize) -> f64 {
    match schedule {
        LrSchedule::Constant => base,
        LrSchedule::Cosine => {
            let progress = step as f64 / steps.max(1) as f64;
            base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

/// Logits of a batch of inputs; dropout and the like only when given the rng.
pub type Forward<'a> = dyn Fn(&Tensor, Option<&mut StdRng>) -> Result<Tensor> + 'a;

/// Early stopping on the objective: stop after `patience` epochs without a new best (0: never).
/// A new best is an epoch strictly better than every one before it (`ranking::kept`), so the
/// first epoch always is one and a tie keeps the earlier.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: usize,
    objective: Objective,
    best: Option<f64>,
    epochs_since_best: usize,
}

/// What early stopping makes of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The epoch is the best so far: its weights are the ones to keep.
    pub new_best: bool,
    /// Training should stop after it.
    pub stop: bool,
}

impl EarlyStopping {
    pub fn new(patience: usize, objective: Objective) -> Self {
        EarlyStopping {
            patience,
            objective,
            best: None,
            epochs_since_best: 0,
        }
    }

    /// Record an epoch's value of the objective.
    pub fn judge(&mut self, value: f64) -> Verdict {
        let new_best = self
            .best
            .is_none_or(|best| improves(self.objective, value, best));
        if new_best {
            self.best = Some(value);
            self.epochs_since_best = 0;
        } else {
            self.epochs_since_best += 1;
        }
        Verdict {
            new_best,
            stop: self.patience > 0 && self.epochs_since_best >= self.patience,
        }
    }
}

/// Restore-best: a copy of the variables as they were after the best epoch so far, put back
/// when the phase ends (as Keras' `EarlyStopping(restore_best_weights=True)`).
struct BestWeights {
    vars: Vec<Var>,
    copy: Option<Vec<Tensor>>,
}

impl BestWeights {
    fn new(vars: Vec<Var>) -> BestWeights {
        BestWeights { vars, copy: None }
    }

    /// Copy the variables as they are now.
    fn keep(&mut self) -> Result<()> {
        let copy = self.vars.iter().map(|v| v.as_tensor().copy());
        self.copy = Some(copy.collect::<Result<_>>()?);
        Ok(())
    }

    /// Put the kept copy back into the variables (nothing to do when none was kept).
    fn restore(&self) -> Result<()> {
        for (var, kept) in self.vars.iter().zip(self.copy.iter().flatten()) {
            var.set(kept)?;
        }
        Ok(())
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

    fn set_learning_rate(&mut self, rate: f64) {
        match &mut self.kind {
            StepperKind::Adam(o) => o.set_learning_rate(rate),
            StepperKind::Sgd(o) => o.set_learning_rate(rate),
        }
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
/// When it returns, early-stopped or not, `vars` hold the weights of the best epoch by the
/// objective (the earlier of equals): the epoch `ranking::kept::kept_epoch` names.
pub fn fit(
    settings: &FitSettings,
    data: &PhaseData,
    vars: Vec<Var>,
    forward: &Forward,
    rng: &mut StdRng,
    cancel: &AtomicBool,
    on_epoch: &mut dyn FnMut(&EpochMetrics) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<EpochMetrics>> {
    let mut best_weights = BestWeights::new(vars.clone());
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
    let steps = settings.epochs * n.div_ceil(settings.batch_size.max(1));
    let mut step = 0;
    for epoch in 1..=settings.epochs {
        let started = Instant::now();
        let train_inputs = data.train_inputs.for_epoch(rng);
        order.shuffle(rng);
        let (mut loss_sum, mut correct) = (0.0, 0usize);
        for batch in order.chunks(settings.batch_size) {
            if cancel.load(Ordering::Relaxed) {
                return Err(Interrupted.into());
            }
            let index = Tensor::new(batch, data.train_labels.device())?;
            let x = train_inputs.gather(batch)?;
            let y = data.train_labels.index_select(&index, 0)?;
            let logits = forward(&x, Some(rng))?;
            let loss = training_loss(&logits, &y, weights.as_ref(), settings.label_smoothing)?;
            let rate = scheduled_rate(settings.learning_rate, settings.lr_schedule, step, steps);
            stepper.set_learning_rate(rate);
            stepper.step(&loss)?;
            step += 1;
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
            fold: 0,
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
        let verdict = stopping.judge(watched);
        if verdict.new_best {
            best_weights.keep()?;
        }
        if verdict.stop {
            break;
        }
    }
    best_weights.restore()?;
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

/// The training loss: cross-entropy against targets smoothed by `smoothing` (`1 - smoothing` on
/// the label, `smoothing / n_classes` on every class), each sample weighed by its label's class
/// weight when `weights` are given (sum of `w_y * loss` over sum of `w_y`, as PyTorch's weighted
/// mean); with neither, exactly candle's plain cross-entropy.
pub fn training_loss(
    logits: &Tensor,
    labels: &Tensor,
    weights: Option<&Tensor>,
    smoothing: f64,
) -> Result<Tensor> {
    if weights.is_none() && smoothing == 0.0 {
        return candle_nn::loss::cross_entropy(logits, labels);
    }
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let mut per_sample = log_p.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
    if smoothing > 0.0 {
        let uniform = log_p.mean(D::Minus1)?.neg()?;
        per_sample = ((per_sample * (1.0 - smoothing))? + (uniform * smoothing)?)?;
    }
    match weights {
        Some(weights) => {
            let w = weights.index_select(labels, 0)?;
            (per_sample * &w)?.sum_all()?.div(&w.sum_all()?)
        }
        None => per_sample.mean_all(),
    }
}

fn count_correct(logits: &Tensor, labels: &Tensor) -> Result<usize> {
    let hits = logits.argmax(D::Minus1)?.eq(labels)?.to_dtype(DType::U32)?;
    Ok(hits.sum_all()?.to_scalar::<u32>()? as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value's verdict as (new best, stop).
    fn verdicts(policy: &mut EarlyStopping, values: &[f64]) -> Vec<(bool, bool)> {
        values
            .iter()
            .map(|&v| policy.judge(v))
            .map(|v| (v.new_best, v.stop))
            .collect()
    }

    #[test]
    fn early_stopping_waits_patience_epochs_without_a_better_loss() {
        let mut policy = EarlyStopping::new(2, Objective::ValLoss);
        let got = verdicts(&mut policy, &[1.0, 0.8, 0.9, 0.85, 0.7]);
        let expected = [
            (true, false),
            (true, false),
            (false, false),
            (false, true),
            (true, false),
        ];
        assert_eq!(got, expected);
        let mut never = EarlyStopping::new(0, Objective::ValLoss);
        let got = verdicts(&mut never, &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(
            got,
            [
                (true, false),
                (false, false),
                (false, false),
                (false, false)
            ]
        );
    }

    #[test]
    fn early_stopping_on_a_score_waits_for_a_higher_value_and_a_tie_is_no_new_best() {
        let mut policy = EarlyStopping::new(2, Objective::F1);
        let got = verdicts(&mut policy, &[0.2, 0.5, 0.4, 0.5, 0.6]);
        let expected = [
            (true, false),
            (true, false),
            (false, false),
            (false, true),
            (true, false),
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn the_first_epoch_is_a_new_best_even_when_its_value_is_nan() {
        let mut policy = EarlyStopping::new(0, Objective::Accuracy);
        let got = verdicts(&mut policy, &[f64::NAN, f64::NAN, 0.1]);
        assert_eq!(got, [(true, false), (false, false), (true, false)]);
    }

    #[test]
    fn best_weights_put_back_the_kept_copy_and_nothing_without_one() -> Result<()> {
        let device = candle_core::Device::Cpu;
        let var = Var::from_tensor(&Tensor::new(&[1f32, 2.0], &device)?)?;
        let mut best = BestWeights::new(vec![var.clone()]);
        best.restore()?;
        assert_eq!(var.as_tensor().to_vec1::<f32>()?, [1.0, 2.0], "no copy yet");
        best.keep()?;
        var.set(&Tensor::new(&[5f32, 6.0], &device)?)?;
        assert_eq!(
            var.as_tensor().to_vec1::<f32>()?,
            [5.0, 6.0],
            "the copy is not shared"
        );
        best.restore()?;
        assert_eq!(var.as_tensor().to_vec1::<f32>()?, [1.0, 2.0]);
        Ok(())
    }

    #[test]
    fn weighted_cross_entropy_by_hand() -> Result<()> {
        let device = candle_core::Device::Cpu;
        // Logits [0, ln 3] give p = [1/4, 3/4]; [0, 0] gives [1/2, 1/2].
        let logits = Tensor::new(&[[0f32, 3f32.ln()], [0.0, 0.0], [0.0, 3f32.ln()]], &device)?;
        let labels = Tensor::new(&[1u32, 0, 0], &device)?;
        let weights = Tensor::new(&[0.5f32, 2.0], &device)?;
        let loss = training_loss(&logits, &labels, Some(&weights), 0.0)?.to_scalar::<f32>()?;
        // nll = [ln 4/3, ln 2, ln 4]; w_y = [2, 0.5, 0.5].
        let expected = (2.0 * (4f32 / 3.0).ln() + 0.5 * 2f32.ln() + 0.5 * 4f32.ln()) / 3.0;
        assert!((loss - expected).abs() < 1e-6, "{loss} != {expected}");
        // Equal weights give the plain mean.
        let ones = Tensor::new(&[1f32, 1.0], &device)?;
        let plain = candle_nn::loss::cross_entropy(&logits, &labels)?.to_scalar::<f32>()?;
        let same = training_loss(&logits, &labels, Some(&ones), 0.0)?.to_scalar::<f32>()?;
        assert!((plain - same).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn smoothed_cross_entropy_by_hand() -> Result<()> {
        let device = candle_core::Device::Cpu;
        // p = [1/4, 3/4] and [1/2, 1/2]; labels 1 and 0; smoothing 0.2 over 2 classes gives
        // targets [0.1, 0.9] and [0.9, 0.1].
        let logits = Tensor::new(&[[0f32, 3f32.ln()], [0.0, 0.0]], &device)?;
        let labels = Tensor::new(&[1u32, 0], &device)?;
        let loss = training_loss(&logits, &labels, None, 0.2)?.to_scalar::<f32>()?;
        let first = 0.1 * 4f32.ln() + 0.9 * (4f32 / 3.0).ln();
        let expected = (first + 2f32.ln()) / 2.0;
        assert!((loss - expected).abs() < 1e-6, "{loss} != {expected}");
        let weights = Tensor::new(&[3f32, 1.0], &device)?;
        let weighted = training_loss(&logits, &labels, Some(&weights), 0.2)?;
        let expected = (1.0 * first + 3.0 * 2f32.ln()) / 4.0;
        let weighted = weighted.to_scalar::<f32>()?;
        assert!(
            (weighted - expected).abs() < 1e-6,
            "{weighted} != {expected}"
        );
        Ok(())
    }

    #[test]
    fn the_cosine_schedule_falls_from_the_rate_to_zero_and_constant_stays() {
        let at = |step| scheduled_rate(0.4, LrSchedule::Cosine, step, 8);
        assert_eq!(at(0), 0.4);
        assert!((at(4) - 0.2).abs() < 1e-12, "half way: half the rate");
        assert!((at(8)).abs() < 1e-12, "the end: 0");
        assert!((1..8).all(|s| at(s) < at(s - 1)), "falls at every step");
        assert!(at(7) > 0.0, "the last step still learns");
        assert_eq!(scheduled_rate(0.4, LrSchedule::Constant, 5, 8), 0.4);
    }
}
