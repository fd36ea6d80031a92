//! The two phases of a trial: a new head on frozen features, then fine-tuning the last blocks.

use super::features::FeatureBank;
use super::fit::{fit, FitSettings, PhaseData, TrainInputs};
use crate::model::{Backbone, Classifier, FineTunedBlocks, Head, HeadConfig};
use crate::ranking::kept::kept_epoch;
use crate::trial::{EpochMetrics, Objective, Phase, TrainSettings, TrialOutcome};
use candle_core::Device;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::atomic::AtomicBool;

/// What every phase of a study reads.
pub struct PhaseContext<'a> {
    pub bank: &'a FeatureBank,
    pub backbone: &'a dyn Backbone,
    pub classes: usize,
    pub device: &'a Device,
    pub cancel: &'a AtomicBool,
}

/// A trained head (a classifier without fine-tuned blocks) with the weights of its best epoch,
/// the metrics of all its epochs, and the random stream where it stopped.
pub struct HeadPhase {
    pub model: Classifier,
    pub epochs: Vec<EpochMetrics>,
    rng: StdRng,
}

/// Phase 1: train a new head on the recorded pooled features (the backbone never runs).
pub fn head_phase(
    ctx: &PhaseContext,
    settings: &TrainSettings,
    on_epoch: &mut dyn FnMut(&EpochMetrics) -> anyhow::Result<()>,
) -> anyhow::Result<HeadPhase> {
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let config = HeadConfig {
        feature_dim: ctx.backbone.info().feature_dim,
        hidden: settings.head_size,
        classes: ctx.classes,
        dropout: settings.dropout,
    };
    let model = Classifier {
        head: Head::new(config, &mut rng, ctx.device)?,
        tail: None,
    };
    let (model, epochs, rng) = train(ctx, settings, Phase::Head, model, rng, on_epoch)?;
    Ok(HeadPhase { model, epochs, rng })
}

/// What a trial keeps after its fine-tune phase, and the epochs that phase took.
pub struct FineTuned {
    /// The weights of the trial's best epoch over both phases (`ranking::kept`): the fine-tuned
    /// classifier at its best epoch, or, when no fine-tune epoch beat the head phase's best, a
    /// copy of the head phase's classifier (no fine-tuned blocks).
    pub model: Classifier,
    /// Every epoch the fine-tune phase trained, kept or not.
    pub epochs: Vec<EpochMetrics>,
}

/// Phase 2: from the head phase's best weights, fine-tune the last `unfreeze_depth` blocks and
/// the head together, starting from the recorded input of the first unfrozen block.
pub fn finetune_phase(
    ctx: &PhaseContext,
    start: &HeadPhase,
    settings: &TrainSettings,
    on_epoch: &mut dyn FnMut(&EpochMetrics) -> anyhow::Result<()>,
) -> anyhow::Result<FineTuned> {
    let depth = settings.unfreeze_depth;
    let model = Classifier {
        head: start.model.head.fork()?,
        tail: Some(FineTunedBlocks {
            boundary: ctx.backbone.info().boundary_of(depth),
            blocks: ctx.backbone.trainable_tail(depth)?,
        }),
    };
    let rng = start.rng.clone();
    let (tuned, epochs, _) = train(ctx, settings, Phase::Finetune, model, rng, on_epoch)?;
    let both: Vec<EpochMetrics> = start.epochs.iter().chain(&epochs).cloned().collect();
    let kept = kept_epoch(&both, settings.objective);
    let model = if kept.is_some_and(|e| e.phase == Phase::Finetune) {
        tuned
    } else {
        Classifier {
            head: start.model.head.fork()?,
            tail: None,
        }
    };
    Ok(FineTuned { model, epochs })
}

/// One phase: fit every variable of `model` on its inputs of the recorded rows; returns the
/// model, its epochs and the random stream where it stopped.
fn train(
    ctx: &PhaseContext,
    settings: &TrainSettings,
    phase: Phase,
    model: Classifier,
    mut rng: StdRng,
    on_epoch: &mut dyn FnMut(&EpochMetrics) -> anyhow::Result<()>,
) -> anyhow::Result<(Classifier, Vec<EpochMetrics>, StdRng)> {
    let train_inputs = match settings.augment() {
        None => TrainInputs::Fixed(ctx.bank.train.frozen.input_for(&model)?),
        Some(augment) => {
            let views = ctx.bank.train_views.get(&augment.set);
            let made = views.and_then(|v| Some((v, v.rows.get(..augment.views)?)));
            let (views, rows) = made.ok_or_else(|| {
                anyhow::anyhow!("the backbone pass did not make the trial's augmented views")
            })?;
            TrainInputs::Views {
                all: views.all.input_for(&model)?,
                rows,
            }
        }
    };
    let data = PhaseData {
        train_inputs,
        train_labels: &ctx.bank.train.labels,
        val_inputs: ctx.bank.val.frozen.input_for(&model)?,
        val_labels: &ctx.bank.val.labels,
    };
    let forward = |x: &_, rng: Option<&mut StdRng>| model.logits(x, rng);
    let epochs = fit(
        &fit_settings(settings, phase, ctx.classes),
        &data,
        model.vars(),
        &forward,
        &mut rng,
        ctx.cancel,
        on_epoch,
    )?;
    Ok((model, epochs, rng))
}

fn fit_settings(settings: &TrainSettings, phase: Phase, classes: usize) -> FitSettings {
    let (epochs, learning_rate) = match phase {
        Phase::Head => (settings.head_epochs, settings.learning_rate),
        Phase::Finetune => (
            settings.finetune_epochs,
            settings.learning_rate * settings.finetune_lr_factor,
        ),
    };
    FitSettings {
        phase,
        epochs,
        batch_size: settings.batch_size,
        patience: settings.patience,
        learning_rate,
        optimizer: settings.optimizer,
        weight_decay: settings.weight_decay,
        classes,
        objective: settings.objective,
        class_weights: settings.class_weights,
        label_smoothing: settings.label_smoothing,
        lr_schedule: settings.lr_schedule,
    }
}

/// A trial's outcome from all its epochs (both phases): the validation scores of the epoch whose
/// weights it kept (`ranking::kept`), the best accuracy over all of them, and how long it took.
pub fn summarize(epochs: &[EpochMetrics], objective: Objective, seconds: f64) -> TrialOutcome {
    let kept = kept_epoch(epochs, objective);
    TrialOutcome {
        val_accuracy: kept.map_or(0.0, |e| e.val_accuracy),
        best_val_accuracy: epochs.iter().map(|e| e.val_accuracy).fold(0.0, f64::max),
        val_loss: kept.map_or(f64::NAN, |e| e.val_loss),
        balanced_accuracy: kept.map_or(0.0, |e| e.val_balanced_accuracy),
        f1: kept.map_or(0.0, |e| e.val_f1),
        best_objective: kept.map_or(f64::NAN, |e| objective.of_epoch(e)),
        epochs: epochs.len(),
        seconds,
        folds: 1,
        objective_sd: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::fixtures;

    /// An epoch whose balanced accuracy and F1 differ from its accuracy.
    fn epoch(phase: Phase, number: usize, accuracy: f64, loss: f64) -> EpochMetrics {
        EpochMetrics {
            val_balanced_accuracy: accuracy - 0.1,
            val_f1: accuracy - 0.2,
            ..fixtures::epoch(phase, number, accuracy, loss)
        }
    }

    #[test]
    fn the_outcome_describes_the_kept_epoch_not_the_last() {
        let epochs = [
            epoch(Phase::Head, 1, 0.6, 0.9),
            epoch(Phase::Head, 2, 0.8, 0.7),
            epoch(Phase::Finetune, 1, 0.8, 0.4),
            epoch(Phase::Finetune, 2, 0.7, 0.5),
        ];
        let by_accuracy = summarize(&epochs, Objective::Accuracy, 3.0);
        assert_eq!(
            by_accuracy,
            TrialOutcome {
                val_accuracy: 0.8,
                best_val_accuracy: 0.8,
                val_loss: 0.7,
                balanced_accuracy: 0.8 - 0.1,
                f1: 0.8 - 0.2,
                best_objective: 0.8,
                epochs: 4,
                seconds: 3.0,
                folds: 1,
                objective_sd: None,
            },
            "head 2 ties finetune 1 and comes first"
        );
        let by_loss = summarize(&epochs, Objective::ValLoss, 3.0);
        assert_eq!(
            (
                by_loss.val_accuracy,
                by_loss.val_loss,
                by_loss.best_objective
            ),
            (0.8, 0.4, 0.4),
            "finetune 1"
        );
        let none = summarize(&[], Objective::Accuracy, 0.0);
        assert_eq!((none.val_accuracy, none.epochs), (0.0, 0));
        assert!(none.val_loss.is_nan() && none.best_objective.is_nan());
    }
}
