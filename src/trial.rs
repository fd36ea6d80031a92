//! Trial vocabulary shared by every layer: settings, identity, states and metrics (imports nothing).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One value of a grid axis or a fixed setting, as written in the grid file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl ParamValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            _ => None,
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Str(s) => write!(f, "{s}"),
        }
    }
}

/// The optimiser used by both phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    Adam,
    AdamW,
    Sgd,
}

impl Optimizer {
    pub fn parse(name: &str) -> Option<Optimizer> {
        match name {
            "adam" => Some(Optimizer::Adam),
            "adamw" => Some(Optimizer::AdamW),
            "sgd" => Some(Optimizer::Sgd),
            _ => None,
        }
    }
}

/// What early stopping watches and what a report ranks by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    #[default]
    Accuracy,
    BalancedAccuracy,
    F1,
    ValLoss,
}

impl Objective {
    pub fn parse(name: &str) -> Option<Objective> {
        match name {
            "accuracy" => Some(Objective::Accuracy),
            "balanced_accuracy" => Some(Objective::BalancedAccuracy),
            "f1" => Some(Objective::F1),
            "val_loss" => Some(Objective::ValLoss),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Accuracy => "accuracy",
            Objective::BalancedAccuracy => "balanced_accuracy",
            Objective::F1 => "f1",
            Objective::ValLoss => "val_loss",
        }
    }

    /// False only for `val_loss`, where lower is better.
    pub fn higher_is_better(self) -> bool {
        self != Objective::ValLoss
    }

    /// This objective's value in one epoch's validation metrics.
    pub fn of_epoch(self, m: &EpochMetrics) -> f64 {
        match self {
            Objective::Accuracy => m.val_accuracy,
            Objective::BalancedAccuracy => m.val_balanced_accuracy,
            Objective::F1 => m.val_f1,
            Objective::ValLoss => m.val_loss,
        }
    }

    /// This objective's value of a trial's final weights.
    pub fn of_outcome(self, o: &TrialOutcome) -> f64 {
        match self {
            Objective::Accuracy => o.val_accuracy,
            Objective::BalancedAccuracy => o.balanced_accuracy,
            Objective::F1 => o.f1,
            Objective::ValLoss => o.val_loss,
        }
    }
}

/// How the training loss weighs each class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeights {
    /// Every sample counts the same.
    #[default]
    None,
    /// Class c weighs n_samples / (n_classes * count_c), from the training labels.
    Balanced,
}

impl ClassWeights {
    pub fn parse(name: &str) -> Option<ClassWeights> {
        match name {
            "none" => Some(ClassWeights::None),
            "balanced" => Some(ClassWeights::Balanced),
            _ => None,
        }
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Every setting that one trial trains with: the `[train]` table with the grid's axes applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub learning_rate: f64,
    pub dropout: f64,
    /// Hidden units of the head; 0 means a single linear layer.
    pub head_size: usize,
    /// Final backbone blocks fine-tuned after the head phase; 0 means head only.
    pub unfreeze_depth: usize,
    pub batch_size: usize,
    pub head_epochs: usize,
    pub finetune_epochs: usize,
    /// Epochs without a better validation loss before a phase stops early.
    pub patience: usize,
    /// Fine-tune learning rate = learning_rate x finetune_lr_factor.
    pub finetune_lr_factor: f64,
    pub optimizer: Optimizer,
    pub weight_decay: f64,
    pub seed: u64,
    /// Left out of the JSON when default, so trial keys made before it existed stay the same.
    #[serde(default, skip_serializing_if = "is_default")]
    pub objective: Objective,
    /// Left out of the JSON when default, so trial keys made before it existed stay the same.
    #[serde(default, skip_serializing_if = "is_default")]
    pub class_weights: ClassWeights,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            learning_rate: 1e-3,
            dropout: 0.0,
            head_size: 0,
            unfreeze_depth: 0,
            batch_size: 32,
            head_epochs: 5,
            finetune_epochs: 3,
            patience: 2,
            finetune_lr_factor: 0.1,
            optimizer: Optimizer::Adam,
            weight_decay: 0.0,
            seed: 0,
            objective: Objective::Accuracy,
            class_weights: ClassWeights::None,
        }
    }
}

impl TrainSettings {
    /// The settings that decide the head phase; trials with equal values share one head phase.
    pub fn head_phase_key(&self) -> String {
        format!(
            "lr={:e};dropout={};head={};batch={};epochs={};patience={};opt={:?};wd={:e};seed={};\
             objective={:?};weights={:?}",
            self.learning_rate,
            self.dropout,
            self.head_size,
            self.batch_size,
            self.head_epochs,
            self.patience,
            self.optimizer,
            self.weight_decay,
            self.seed,
            self.objective,
            self.class_weights
        )
    }
}

/// One point of the grid: its stable identity, the axis values that define it, its full settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialSpec {
    /// Stable hash of the canonical settings (hex); unique within a study.
    pub key: String,
    /// The grid axes' values for this trial, by axis name (what a report shows).
    pub params: BTreeMap<String, ParamValue>,
    pub settings: TrainSettings,
}

/// Life cycle of a trial in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialState {
    Pending,
    Running,
    Complete,
    Failed,
}

impl TrialState {
    pub fn is_finished(self) -> bool {
        matches!(self, TrialState::Complete | TrialState::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Pending => "pending",
            TrialState::Running => "running",
            TrialState::Complete => "complete",
            TrialState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<TrialState> {
        match s {
            "pending" => Some(TrialState::Pending),
            "running" => Some(TrialState::Running),
            "complete" => Some(TrialState::Complete),
            "failed" => Some(TrialState::Failed),
            _ => None,
        }
    }
}

/// Which phase of training an epoch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Head trained on the frozen backbone.
    Head,
    /// Last blocks unfrozen and fine-tuned with the head.
    Finetune,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Head => "head",
            Phase::Finetune => "finetune",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        match s {
            "head" => Some(Phase::Head),
            "finetune" => Some(Phase::Finetune),
            _ => None,
        }
    }
}

/// Metrics of one epoch of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub phase: Phase,
    /// 1-based within its phase.
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Mean per-class recall on the validation split.
    pub val_balanced_accuracy: f64,
    /// Validation F1: of class 1 with two classes, macro F1 with more.
    pub val_f1: f64,
    pub seconds: f64,
}

/// What a finished trial reports to the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialOutcome {
    /// Validation accuracy after the trial's last epoch (what its final weights score).
    pub val_accuracy: f64,
    /// Best validation accuracy over all epochs of both phases.
    pub best_val_accuracy: f64,
    pub val_loss: f64,
    /// Validation balanced accuracy after the last epoch.
    pub balanced_accuracy: f64,
    /// Validation F1 after the last epoch.
    pub f1: f64,
    /// Best value of the trial's objective over all epochs (lowest for `val_loss`).
    pub best_objective: f64,
    /// Total epochs trained over both phases.
    pub epochs: usize,
    pub seconds: f64,
}

/// A study as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRecord {
    pub id: i64,
    pub name: String,
    /// The grid file's text as it was when the study was created or last extended.
    pub grid_toml: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// A trial as the store keeps it (what reports are built from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub id: i64,
    pub study_id: i64,
    pub key: String,
    /// Axis values of this trial, by axis name.
    pub params: BTreeMap<String, ParamValue>,
    pub settings: TrainSettings,
    pub state: TrialState,
    /// Set when complete.
    pub outcome: Option<TrialOutcome>,
    /// Set when failed.
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}
