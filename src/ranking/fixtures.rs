//! Test data: one small study with trials in every state and ties in the ranking, and epochs,
//! shared by the unit tests of the ranking, of training's outcomes and of the report.

use crate::trial::{
    EpochMetrics, Objective, ParamValue, Phase, StudyRecord, TrainSettings, TrialOutcome,
    TrialRecord, TrialState,
};
use std::collections::BTreeMap;

pub(crate) fn study() -> StudyRecord {
    StudyRecord {
        id: 1,
        name: "flowers".to_string(),
        grid_toml: String::new(),
        created_at: "2024-01-01T00:00:00Z".to_string(),
    }
}

fn params(lr: f64, head: i64, opt: &str) -> BTreeMap<String, ParamValue> {
    BTreeMap::from([
        ("learning_rate".to_string(), ParamValue::Float(lr)),
        ("head_size".to_string(), ParamValue::Int(head)),
        ("optimizer".to_string(), ParamValue::Str(opt.to_string())),
    ])
}

fn trial(id: i64, p: BTreeMap<String, ParamValue>, state: TrialState) -> TrialRecord {
    TrialRecord {
        id,
        study_id: 1,
        key: format!("k{id}"),
        params: p,
        settings: TrainSettings::default(),
        state,
        outcome: None,
        error: None,
        started_at: None,
        finished_at: None,
    }
}

fn complete(
    id: i64,
    p: BTreeMap<String, ParamValue>,
    (val, loss): (f64, f64),
    best: f64,
    secs: f64,
) -> TrialRecord {
    TrialRecord {
        outcome: Some(TrialOutcome {
            val_accuracy: val,
            best_val_accuracy: best,
            val_loss: loss,
            balanced_accuracy: val - 0.05,
            f1: 1.0 - val,
            best_objective: best,
            epochs: 4,
            seconds: secs,
            ..TrialOutcome::default()
        }),
        ..trial(id, p, TrialState::Complete)
    }
}

/// Five complete trials (three tie on accuracy; their losses 0.3 < 0.4 < 0.5 break it), one failed, one pending, one running; given out of id order.
pub(crate) fn trials() -> Vec<TrialRecord> {
    let mut failed = trial(6, params(0.01, 128, "sgd"), TrialState::Failed);
    failed.error = Some("out of memory\nstack trace here".to_string());
    vec![
        complete(3, params(0.001, 0, "sgd"), (0.9, 0.5), 0.92, 10.0),
        complete(1, params(0.001, 0, "adam"), (0.8, 0.5), 0.85, 12.5),
        complete(2, params(0.01, 0, "adam"), (0.9, 0.3), 0.95, 20.0),
        complete(4, params(0.01, 128, "adam"), (0.9, 0.4), 0.92, 8.0),
        complete(5, params(0.001, 128, "adam"), (0.7, 0.5), 0.7, 5.0),
        failed,
        trial(7, params(0.1, 0, "adam"), TrialState::Pending),
        trial(8, params(0.1, 0, "adamw"), TrialState::Running),
    ]
}

/// `trials()`, every one trained for `objective`, with val_loss = 2 - val_accuracy.
pub(crate) fn with_objective(objective: Objective) -> Vec<TrialRecord> {
    let mut all = trials();
    for t in &mut all {
        t.settings.objective = objective;
        if let Some(o) = &mut t.outcome {
            o.val_loss = 2.0 - o.val_accuracy;
        }
    }
    all
}

/// One epoch whose validation scores (accuracy, balanced accuracy, F1) are all `accuracy`.
pub(crate) fn epoch(phase: Phase, epoch: usize, accuracy: f64, loss: f64) -> EpochMetrics {
    EpochMetrics {
        fold: 0,
        phase,
        epoch,
        train_loss: 1.0,
        train_accuracy: 0.5,
        val_loss: loss,
        val_accuracy: accuracy,
        val_balanced_accuracy: accuracy,
        val_f1: accuracy,
        seconds: 1.0,
    }
}

/// Stored epochs of trials 2 and 4 of `trials()`, out of training order as a store may give
/// them: trial 2 kept its second head epoch (a fine-tune epoch ties it later), trial 4 its
/// first fine-tune epoch.
pub(crate) fn epochs() -> BTreeMap<i64, Vec<EpochMetrics>> {
    BTreeMap::from([
        (
            2,
            vec![
                epoch(Phase::Finetune, 1, 0.9, 0.3),
                epoch(Phase::Head, 1, 0.8, 0.6),
                epoch(Phase::Head, 2, 0.9, 0.3),
                epoch(Phase::Finetune, 2, 0.85, 0.4),
            ],
        ),
        (
            4,
            vec![
                epoch(Phase::Head, 1, 0.8, 0.6),
                epoch(Phase::Finetune, 1, 0.9, 0.4),
                epoch(Phase::Finetune, 2, 0.7, 0.8),
            ],
        ),
    ])
}
