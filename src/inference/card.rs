//! A model card: what a trained model needs to run and where it came from, as JSON.

use crate::catalogue::{lookup, BackboneInfo, MAX_IMAGE_SIZE};
use crate::trial::{ParamValue, TrainSettings, TrialOutcome, TrialRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The card format this build writes and reads.
pub const FORMAT: &str = "gridsearch-model/1";

/// Everything about one trained model except its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub format: String,
    /// The study (one attribute) the model was trained for.
    pub study: String,
    /// Class names; output `i` is the probability of `labels[i]`.
    pub labels: Vec<String>,
    pub backbone: String,
    /// The frozen backbone's weights: relative to the card's folder, or absolute.
    pub backbone_weights: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_sha256: Option<String>,
    pub image_size: usize,
    pub preprocessing: Preprocessing,
    /// Final backbone blocks whose fine-tuned copies are in the weights (0: none).
    pub unfreeze_depth: usize,
    /// Hidden units of the head (0: one linear layer).
    pub head_hidden: usize,
    pub trial: TrialSummary,
}

/// How an image becomes the network's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    pub decode: String,
    pub normalisation: String,
}

/// The trial the weights come from: its grid values, settings and validation scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialSummary {
    pub id: i64,
    pub key: String,
    pub params: BTreeMap<String, ParamValue>,
    pub settings: TrainSettings,
    /// Scores on the study's validation split of the weights the trial kept (its best epoch's),
    /// so `val_accuracy` (not `best_val_accuracy`) is what they score. Cross-validated: the
    /// means over the folds, with `outcome.folds` and `outcome.objective_sd`.
    pub outcome: TrialOutcome,
    /// Cross-validated: the fold (0-based) whose model these weights are, the best by the
    /// trial's objective; its validation photos are the ones the card's scores of that fold
    /// (and `export`'s validation.csv) are of. Absent without folds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<usize>,
}

impl From<&TrialRecord> for TrialSummary {
    /// A stored trial's summary (a trial that is not complete has a default outcome).
    fn from(trial: &TrialRecord) -> TrialSummary {
        TrialSummary {
            id: trial.id,
            key: trial.key.clone(),
            params: trial.params.clone(),
            settings: trial.settings.clone(),
            outcome: trial.outcome.clone().unwrap_or_default(),
            fold: None,
        }
    }
}

impl ModelCard {
    /// The preprocessing a backbone's models use.
    pub fn preprocessing_of(info: &BackboneInfo) -> Preprocessing {
        Preprocessing {
            decode: crate::data::decode::DECODING.to_string(),
            normalisation: info.normalisation.to_string(),
        }
    }

    /// What the card promises, checked before anything is built from it: this build's format,
    /// a known backbone, an image size that backbone accepts (its smallest to
    /// [`MAX_IMAGE_SIZE`]), two or more distinct labels, an unfreeze depth within its blocks
    /// and a well-formed SHA-256. Returns the backbone's entry, or what is wrong.
    pub fn check(&self) -> Result<&'static BackboneInfo, String> {
        if self.format != FORMAT {
            return Err(format!(
                "model format `{}`, this build reads `{FORMAT}`",
                self.format
            ));
        }
        let info = lookup(&self.backbone)
            .ok_or_else(|| format!("unknown backbone `{}`", self.backbone))?;
        let sizes = info.min_image_size..=MAX_IMAGE_SIZE;
        if !sizes.contains(&self.image_size) {
            return Err(format!(
                "image_size {} is out of range ({} to {MAX_IMAGE_SIZE} for {})",
                self.image_size,
                info.min_image_size,
                info.name()
            ));
        }
        let distinct: std::collections::BTreeSet<&String> = self.labels.iter().collect();
        if self.labels.len() < 2 || distinct.len() != self.labels.len() {
            return Err(format!(
                "labels {:?}: a model needs two or more distinct labels",
                self.labels
            ));
        }
        if self.unfreeze_depth > info.blocks {
            return Err(format!(
                "unfreeze_depth {} but {} has {} blocks",
                self.unfreeze_depth,
                info.name(),
                info.blocks
            ));
        }
        if let Some(sha) = &self.backbone_sha256 {
            let hex = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex {
                return Err(format!(
                    "backbone_sha256 `{sha}` is not a SHA-256 (64 hex digits)"
                ));
            }
        }
        Ok(info)
    }
}
