//! The grid file: parse and validate it, and expand it into trials.

mod doc;
mod folds;
mod sections;
mod settings;

use crate::catalogue::BackboneKind;
use crate::error::InputError;
use crate::trial::{ParamValue, TrainSettings, TrialSpec};
use doc::Issue;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A checked grid file: where the data and weights are, the fixed settings and the axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub path: PathBuf,
    /// The file's text, as read.
    pub text: String,
    pub study_name: String,
    pub seed: u64,
    pub data: DataConfig,
    pub model: ModelConfig,
    /// `[train]` over the defaults, with the study seed.
    pub fixed: TrainSettings,
    /// `[grid]` axes in file order.
    pub axes: Vec<Axis>,
}

/// Where the images come from (paths resolved against the grid file's folder).
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// One folder with a folder per class, split by the tool.
    Folder { root: PathBuf },
    /// Pre-split folders, each with a folder per class.
    Split { train: PathBuf, val: PathBuf },
    /// A CSV file: one row per image, its path (relative to the file's folder) in
    /// `path_column` and its class in `label`; rows whose label is in `ignore` are dropped.
    Manifest {
        path: PathBuf,
        label: String,
        path_column: String,
        ignore: Vec<String>,
    },
}

impl DataSource {
    /// Whether the tool splits this source into training and validation (not pre-split).
    pub fn is_split_by_the_tool(&self) -> bool {
        !matches!(self, DataSource::Split { .. })
    }
}

/// How a `Folder` source is split into training and validation images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitMode {
    /// Stratified, shuffled with the study seed.
    Random,
    /// Per class, files sorted by name: first train, then val.
    Ordered,
}

/// The `[data]` section, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DataConfig {
    pub source: DataSource,
    pub image_size: usize,
    pub split: SplitMode,
    pub val_fraction: f64,
    pub train_per_class: Option<usize>,
    pub val_per_class: Option<usize>,
    /// `folds = k`: stratified k-fold cross-validation over every image (`split::folds`);
    /// None: one train/validation split.
    pub folds: Option<usize>,
}

/// The `[model]` section, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub backbone: BackboneKind,
    pub weights: PathBuf,
}

/// One `[grid]` key: a setting and its distinct values, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub name: String,
    pub values: Vec<ParamValue>,
}

impl Grid {
    /// Reads, parses and checks a grid file, and checks that its data folders and weights exist.
    pub fn load(path: &Path) -> Result<Grid, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            InputError::new(format!(
                "{}: cannot read the grid file: {e}",
                path.display()
            ))
        })?;
        let (grid, required) =
            sections::parse_document(path, &text).map_err(|issue| issue.into_error(path, &text))?;
        for needed in &required {
            check_exists(needed).map_err(|issue| issue.into_error(path, &text))?;
        }
        Ok(grid)
    }

    /// Parses and checks grid text; `path` names it in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Grid, InputError> {
        sections::parse_document(path, text)
            .map(|(grid, _)| grid)
            .map_err(|issue| issue.into_error(path, text))
    }

    /// Every combination of axis values, first axis outermost, each with its full settings and key.
    pub fn trials(&self) -> Vec<TrialSpec> {
        let total: usize = self.axes.iter().map(|a| a.values.len()).product();
        let mut indices = vec![0usize; self.axes.len()];
        let mut trials = Vec::with_capacity(total);
        for _ in 0..total {
            trials.push(self.trial_at(&indices));
            advance(&mut indices, &self.axes);
        }
        trials
    }

    fn trial_at(&self, indices: &[usize]) -> TrialSpec {
        let mut settings = self.fixed.clone();
        let mut params = BTreeMap::new();
        for (axis, &i) in self.axes.iter().zip(indices) {
            let value = &axis.values[i];
            settings.apply(&axis.name, value);
            params.insert(axis.name.clone(), value.clone());
        }
        settings.drop_unused_augmentation();
        TrialSpec {
            key: trial_key(&settings),
            params,
            settings,
        }
    }

    /// What makes trials of two grids comparable, as canonical JSON: data, model, backbone,
    /// the fixed [train] settings (plus the study seed when it shuffles the split); not the
    /// axes, not the study name. Kept as text so that a mismatch can say what changed.
    pub fn fingerprint(&self) -> String {
        let data = &self.data;
        let source = match &data.source {
            DataSource::Folder { root } => serde_json::json!({ "root": path_text(root) }),
            DataSource::Split { train, val } => {
                serde_json::json!({ "train": path_text(train), "val": path_text(val) })
            }
            DataSource::Manifest {
                path,
                label,
                path_column,
                ignore,
            } => serde_json::json!({
                "manifest": path_text(path), "label": label, "path_column": path_column,
                "ignore": ignore,
            }),
        };
        let shuffled = data.source.is_split_by_the_tool() && data.split == SplitMode::Random;
        let backbone = Some(self.model.backbone.info()).map(|b| {
            serde_json::json!({
                "name": b.name(), "blocks": b.blocks, "feature_dim": b.feature_dim,
                "default_image_size": b.default_image_size, "min_image_size": b.min_image_size,
            })
        });
        let mut data_json = serde_json::json!({
                "source": source,
                "image_size": data.image_size,
                "split": format!("{:?}", data.split),
                "val_fraction": data.val_fraction,
                "train_per_class": data.train_per_class,
                "val_per_class": data.val_per_class,
                "split_seed": shuffled.then_some(self.seed),
        });
        // Only with folds, so that every fingerprint made before them stays the same.
        if let Some(folds) = data.folds {
            data_json["folds"] = folds.into();
        }
        let canonical = serde_json::json!({
            "data": data_json,
            "model": { "backbone": self.model.backbone, "weights": path_text(&self.model.weights) },
            "backbone": backbone,
            "train": self.fixed_train_settings(),
        });
        canonical.to_string()
    }
}

impl Grid {
    /// The [train] settings that are not grid axes (the seed never: it only varies trials,
    /// and its effect on the split is part of the data).
    fn fixed_train_settings(&self) -> serde_json::Value {
        let mut except: Vec<&str> = self.axes.iter().map(|a| a.name.as_str()).collect();
        except.push("seed");
        serde_json::Value::Object(self.fixed.to_json_except(&except))
    }
}

/// The top-level settings (`section.key`) on which two fingerprints differ.
pub fn fingerprint_changes(old: &str, new: &str) -> Vec<String> {
    let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap_or_default();
    let (old, new) = (parse(old), parse(new));
    let mut changed = Vec::new();
    for section in ["data", "model", "backbone", "train"] {
        let (a, b) = (&old[section], &new[section]);
        match (a.as_object(), b.as_object()) {
            (Some(a_map), Some(b_map)) => {
                let keys: std::collections::BTreeSet<&String> =
                    a_map.keys().chain(b_map.keys()).collect();
                changed.extend(
                    keys.into_iter()
                        .filter(|k| a_map.get(*k) != b_map.get(*k))
                        .map(|k| format!("{section}.{k}")),
                );
            }
            _ if a != b => changed.push(section.to_string()),
            _ => {}
        }
    }
    changed
}

/// Steps the odometer of axis indices: the last axis turns fastest.
fn advance(indices: &mut [usize], axes: &[Axis]) {
    for (index, axis) in indices.iter_mut().zip(axes).rev() {
        *index += 1;
        if *index < axis.values.len() {
            return;
        }
        *index = 0;
    }
}

/// First 16 hex characters of the SHA-256 of the settings' JSON.
fn trial_key(settings: &TrainSettings) -> String {
    let json = serde_json::to_string(settings).unwrap_or_else(|_| format!("{settings:?}"));
    sha256_hex(json.as_bytes())[..16].to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A path as the fingerprint sees it: absolute when it exists, so that running the same grid
/// from another folder (or as `./grids/x.toml`) keeps the same fingerprint.
fn path_text(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn check_exists(needed: &sections::RequiredPath) -> Result<(), Issue> {
    let path = &needed.path;
    let problem = if !path.exists() {
        "does not exist"
    } else if needed.is_dir && !path.is_dir() {
        "is not a folder"
    } else if !needed.is_dir && !path.is_file() {
        "is not a file"
    } else {
        return Ok(());
    };
    Err(Issue::at(
        needed.key_span.clone(),
        format!("{} {} {problem}", needed.what, path.display()),
    ))
}

#[cfg(test)]
mod tests;
