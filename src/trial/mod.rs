//! Trial vocabulary shared by every layer: settings, identity, states and metrics (imports no
//! other module of the crate).

mod augment;
mod metrics;
mod settings;
mod vocabulary;

pub use augment::{Augment, ViewSet};
pub use metrics::{EpochMetrics, TrialOutcome};
pub use settings::{setting, Affects, ParamValue, Range, Setting, TrainSettings, SETTINGS};
pub use vocabulary::{
    list_choices, ClassWeights, LrSchedule, Objective, Optimizer, Phase, TrialState, Vocabulary,
};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One point of the grid: its stable identity, the axis values that define it, its full settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialSpec {
    /// Stable hash of the canonical settings (hex); unique within a study.
    pub key: String,
    /// The grid axes' values for this trial, by axis name (what a report shows).
    pub params: BTreeMap<String, ParamValue>,
    pub settings: TrainSettings,
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
