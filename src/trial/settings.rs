//! Training settings, defined once: the table every grid key, check, fingerprint and head-phase
//! key is made from, and the `TrainSettings` a trial trains with.

use super::augment::{Augment, ViewSet};
use super::vocabulary::{ClassWeights, LrSchedule, Objective, Optimizer, Vocabulary};
use serde::{Deserialize, Serialize};
use std::fmt;
use strum::VariantNames;

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

    fn as_count(&self) -> Option<u64> {
        match self {
            ParamValue::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    fn as_flag(&self) -> Option<bool> {
        match self {
            ParamValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn as_name<T: Vocabulary>(&self) -> Option<T> {
        match self {
            ParamValue::Str(s) => T::parse(s),
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

/// Every setting that one trial trains with: the `[train]` table with the grid's axes applied.
/// Each field is a row of [`SETTINGS`] (a test keeps the two in step).
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
    /// Epochs without a better objective before a phase stops early.
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
    /// Share of each training label spread evenly over all classes. Like the schedule, left out
    /// of the JSON when default, so trial keys made before it existed stay the same.
    #[serde(default, skip_serializing_if = "is_default")]
    pub label_smoothing: f64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub lr_schedule: LrSchedule,
    /// Augmented views of each training image; 0 = no augmentation. Like the three below, left
    /// out of the JSON when default, so trial keys made before augmentation stay the same.
    #[serde(rename = "augment.views", default, skip_serializing_if = "is_default")]
    pub augment_views: usize,
    #[serde(rename = "augment.hflip", default, skip_serializing_if = "is_default")]
    pub augment_hflip: bool,
    #[serde(
        rename = "augment.crop",
        default = "no_crop",
        skip_serializing_if = "is_no_crop"
    )]
    pub augment_crop: f64,
    #[serde(rename = "augment.colour", default, skip_serializing_if = "is_default")]
    pub augment_colour: f64,
}

fn no_crop() -> f64 {
    1.0
}

fn is_no_crop(crop: &f64) -> bool {
    *crop == no_crop()
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
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
            label_smoothing: 0.0,
            lr_schedule: LrSchedule::Constant,
            augment_views: 0,
            augment_hflip: false,
            augment_crop: no_crop(),
            augment_colour: 0.0,
        }
    }
}

/// The values a setting accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// A finite number > 0.
    Positive,
    /// A finite number >= 0.
    NonNegative,
    /// A number in [0, 1).
    Fraction,
    /// A number in (0, 1].
    Share,
    /// true or false.
    Flag,
    /// A whole number from `min` to `max`.
    Count { min: u64, max: u64 },
    /// A whole number from 0 to the backbone's block count.
    Blocks,
    /// One of these names.
    Choice(&'static [&'static str]),
}

/// Which training a setting changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affects {
    /// The head phase, and so everything after it: trials differing here share no head phase.
    HeadPhase,
    /// Only the fine-tune phase: trials differing only here share one head phase.
    FinetuneOnly,
}

/// One training setting: its name in grid files, what it accepts, which phase it changes,
/// how it is read from and written to `TrainSettings`, and what it means.
pub struct Setting {
    pub name: &'static str,
    pub range: Range,
    pub affects: Affects,
    /// False for the seed only: it belongs in `[study]` or as a `[grid]` axis.
    pub in_train_table: bool,
    /// Left out of trial keys and fingerprints at its default (settings added after studies
    /// existed, so that theirs stay the same).
    pub omitted_at_default: bool,
    pub doc: &'static str,
    pub get: fn(&TrainSettings) -> ParamValue,
    /// Sets the field from a value [`Range`] accepted (a value of another shape leaves it).
    pub set: fn(&mut TrainSettings, &ParamValue),
}

/// Whole numbers from 0, or from 1, up to what the store's integers hold.
const AT_LEAST_0: Range = Range::Count {
    min: 0,
    max: MAX_COUNT,
};
const AT_LEAST_1: Range = Range::Count {
    min: 1,
    max: MAX_COUNT,
};

/// Most augmented views of one image (each costs a backbone pass over the training images).
const MAX_VIEWS: u64 = 64;
/// Largest hidden layer a head may have.
const MAX_HEAD_SIZE: u64 = 65536;
/// Largest count otherwise.
const MAX_COUNT: u64 = i64::MAX as u64;

fn put<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

fn size(value: &ParamValue) -> Option<usize> {
    value.as_count().and_then(|c| usize::try_from(c).ok())
}

fn int(count: usize) -> ParamValue {
    ParamValue::Int(i64::try_from(count).unwrap_or(i64::MAX))
}

fn name<T: Vocabulary>(value: T) -> ParamValue {
    ParamValue::Str(value.as_str().to_string())
}

use Affects::{FinetuneOnly, HeadPhase};

/// Every training setting, in `TrainSettings` order.
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    Setting::new("learning_rate", Range::Positive, HeadPhase,
        "step size of the head phase (the fine-tune phase multiplies it by finetune_lr_factor)",
        |s| ParamValue::Float(s.learning_rate), |s, v| put(&mut s.learning_rate, v.as_f64())),
    Setting::new("dropout", Range::Fraction, HeadPhase,
        "dropout before each linear layer of the head",
        |s| ParamValue::Float(s.dropout), |s, v| put(&mut s.dropout, v.as_f64())),
    Setting::new("head_size", Range::Count { min: 0, max: MAX_HEAD_SIZE }, HeadPhase,
        "hidden units of the head; 0 = a single linear layer",
        |s| int(s.head_size), |s, v| put(&mut s.head_size, size(v))),
    Setting::new("unfreeze_depth", Range::Blocks, FinetuneOnly,
        "last backbone blocks fine-tuned after the head phase; 0 = head only",
        |s| int(s.unfreeze_depth), |s, v| put(&mut s.unfreeze_depth, size(v))),
    Setting::new("batch_size", AT_LEAST_1, HeadPhase,
        "images per training step, in both phases",
        |s| int(s.batch_size), |s, v| put(&mut s.batch_size, size(v))),
    Setting::new("head_epochs", AT_LEAST_1, HeadPhase,
        "most epochs of the head phase",
        |s| int(s.head_epochs), |s, v| put(&mut s.head_epochs, size(v))),
    Setting::new("finetune_epochs", AT_LEAST_0, FinetuneOnly,
        "most epochs of the fine-tune phase",
        |s| int(s.finetune_epochs), |s, v| put(&mut s.finetune_epochs, size(v))),
    Setting::new("patience", AT_LEAST_0, HeadPhase,
        "epochs without a better objective before a phase stops; 0 = never stop early",
        |s| int(s.patience), |s, v| put(&mut s.patience, size(v))),
    Setting::new("finetune_lr_factor", Range::Positive, FinetuneOnly,
        "fine-tune learning rate = learning_rate x this",
        |s| ParamValue::Float(s.finetune_lr_factor),
        |s, v| put(&mut s.finetune_lr_factor, v.as_f64())),
    Setting::new("optimizer", Range::Choice(Optimizer::VARIANTS), HeadPhase,
        "the optimiser of both phases",
        |s| name(s.optimizer), |s, v| put(&mut s.optimizer, v.as_name())),
    Setting::new("weight_decay", Range::NonNegative, HeadPhase,
        "weight decay of both phases: an L2 term for adam and sgd, decoupled for adamw",
        |s| ParamValue::Float(s.weight_decay), |s, v| put(&mut s.weight_decay, v.as_f64())),
    Setting::new("seed", AT_LEAST_0, HeadPhase,
        "seeds head init, dropout and shuffling (set in [study], or as a [grid] axis)",
        |s| ParamValue::Int(i64::try_from(s.seed).unwrap_or(i64::MAX)),
        |s, v| put(&mut s.seed, v.as_count()))
        .outside_train_table(),
    Setting::new("objective", Range::Choice(Objective::VARIANTS), HeadPhase,
        "what early stopping watches and the report ranks by (val_loss: lower is better)",
        |s| name(s.objective), |s, v| put(&mut s.objective, v.as_name()))
        .omitted_at_default(),
    Setting::new("class_weights", Range::Choice(ClassWeights::VARIANTS), HeadPhase,
        "balanced: weigh class c by n / (n_classes x count_c) in the training loss",
        |s| name(s.class_weights), |s, v| put(&mut s.class_weights, v.as_name()))
        .omitted_at_default(),
    Setting::new("label_smoothing", Range::Fraction, HeadPhase,
        "training targets (1 - this) on the label and this / n_classes on every class, as \
         PyTorch's CrossEntropyLoss(label_smoothing); validation loss stays plain",
        |s| ParamValue::Float(s.label_smoothing), |s, v| put(&mut s.label_smoothing, v.as_f64()))
        .omitted_at_default(),
    Setting::new("lr_schedule", Range::Choice(LrSchedule::VARIANTS), HeadPhase,
        "constant, or cosine: each phase's rate falls along half a cosine to 0 over the steps \
         of its most epochs",
        |s| name(s.lr_schedule), |s, v| put(&mut s.lr_schedule, v.as_name()))
        .omitted_at_default(),
    Setting::new("augment.views", Range::Count { min: 0, max: MAX_VIEWS }, HeadPhase,
        "augmented views of each training image, made in the frozen pass (which costs that many \
         more passes over the training images); each epoch trains on one per image; 0 = none",
        |s| int(s.augment_views), |s, v| put(&mut s.augment_views, size(v)))
        .omitted_at_default(),
    Setting::new("augment.hflip", Range::Flag, HeadPhase,
        "each view is mirrored left-right with probability 1/2",
        |s| ParamValue::Bool(s.augment_hflip), |s, v| put(&mut s.augment_hflip, v.as_flag()))
        .omitted_at_default(),
    Setting::new("augment.crop", Range::Share, HeadPhase,
        "random resized crop: each view keeps at least this share of the photo's area \
         (aspect 3/4..4/3), resized to image_size; 1 = no crop",
        |s| ParamValue::Float(s.augment_crop), |s, v| put(&mut s.augment_crop, v.as_f64()))
        .omitted_at_default(),
    Setting::new("augment.colour", Range::Fraction, HeadPhase,
        "colour jitter: brightness, contrast and saturation each scaled by a factor in \
         [1 - this, 1 + this]; 0 = none",
        |s| ParamValue::Float(s.augment_colour), |s, v| put(&mut s.augment_colour, v.as_f64()))
        .omitted_at_default(),
];

/// The setting of that name.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

impl Setting {
    /// A setting `[train]` may fix, kept in keys and fingerprints at every value.
    const fn new(
        name: &'static str,
        range: Range,
        affects: Affects,
        doc: &'static str,
        get: fn(&TrainSettings) -> ParamValue,
        set: fn(&mut TrainSettings, &ParamValue),
    ) -> Setting {
        Setting {
            name,
            range,
            affects,
            in_train_table: true,
            omitted_at_default: false,
            doc,
            get,
            set,
        }
    }

    /// Not a `[train]` key (the seed: `[study]` or a `[grid]` axis).
    const fn outside_train_table(self) -> Setting {
        Setting {
            in_train_table: false,
            ..self
        }
    }

    /// Left out of keys and fingerprints at its default.
    const fn omitted_at_default(self) -> Setting {
        Setting {
            omitted_at_default: true,
            ..self
        }
    }

    fn is_default_in(&self, settings: &TrainSettings) -> bool {
        (self.get)(settings) == (self.get)(&TrainSettings::default())
    }
}

impl TrainSettings {
    /// The augmentation this trial trains with, if any.
    pub fn augment(&self) -> Option<Augment> {
        (self.augment_views > 0).then_some(Augment {
            views: self.augment_views,
            set: ViewSet {
                hflip: self.augment_hflip,
                crop: self.augment_crop,
                colour: self.augment_colour,
            },
        })
    }

    /// Without views the other augment settings change nothing: put them at their defaults,
    /// so that such a trial is the same trial (key, head phase) as one that never named them.
    pub fn drop_unused_augmentation(&mut self) {
        if self.augment_views == 0 {
            let none = TrainSettings::default();
            self.augment_hflip = none.augment_hflip;
            self.augment_crop = none.augment_crop;
            self.augment_colour = none.augment_colour;
        }
    }

    /// Sets the setting `name` (unknown names are refused by the grid before this).
    pub fn apply(&mut self, name: &str, value: &ParamValue) {
        if let Some(s) = setting(name) {
            (s.set)(self, value);
        }
    }

    /// The value of every head-phase setting: trials with equal keys share one head phase.
    pub fn head_phase_key(&self) -> String {
        SETTINGS
            .iter()
            .filter(|s| s.affects == Affects::HeadPhase)
            .map(|s| format!("{}={}", s.name, (s.get)(self)))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// The settings as a JSON object by name, leaving out `except` and the settings omitted at
    /// their default (what fingerprints compare).
    pub fn to_json_except(&self, except: &[&str]) -> serde_json::Map<String, serde_json::Value> {
        SETTINGS
            .iter()
            .filter(|s| !except.contains(&s.name))
            .filter(|s| !(s.omitted_at_default && s.is_default_in(self)))
            .map(|s| {
                let value = serde_json::to_value((s.get)(self)).unwrap_or_default();
                (s.name.to_string(), value)
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
