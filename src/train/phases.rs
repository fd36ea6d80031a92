//! The two phases of a trial: a new head on frozen features, then fine-tuning the last blocks.

use super::features::FeatureBank;
use super::fit::{fit, FitSettings, PhaseData};
use crate::model::{Backbone, Classifier, FineTunedBlocks, Head, HeadConfig};
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

/// A trained head (a classifier without fine-tuned blocks), the metrics of its epochs, and the
/// random stream where it stopped.
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

/// A fine-tuned classifier and the epochs it took.
pub struct FineTuned {
    pub model: Classifier,
    pub epochs: Vec<EpochMetrics>,
}

/// Phase 2: from the head phase's result, fine-tune the last `unfreeze_depth` blocks and the
/// head together, starting from the recorded input of the first unfrozen block.
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
    let (model, epochs, _) = train(ctx, settings, Phase::Finetune, model, rng, on_epoch)?;
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
    let data = PhaseData {
        train_inputs: ctx.bank.train.frozen.input_for(&model)?,
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
    }
}

/// A trial's outcome from all its epochs: the final epoch's validation scores and the bests.
pub fn summarize(epochs: &[EpochMetrics], objective: Objective, seconds: f64) -> TrialOutcome {
    let last = epochs.last();
    let values = epochs.iter().map(|e| objective.of_epoch(e));
    let best_objective = if objective.higher_is_better() {
        values.fold(f64::NAN, f64::max)
    } else {
        values.fold(f64::NAN, f64::min)
    };
    TrialOutcome {
        val_accuracy: last.map_or(0.0, |e| e.val_accuracy),
        best_val_accuracy: epochs.iter().map(|e| e.val_accuracy).fold(0.0, f64::max),
        val_loss: last.map_or(f64::NAN, |e| e.val_loss),
        balanced_accuracy: last.map_or(0.0, |e| e.val_balanced_accuracy),
        f1: last.map_or(0.0, |e| e.val_f1),
        best_objective,
        epochs: epochs.len(),
        seconds,
    }
}
