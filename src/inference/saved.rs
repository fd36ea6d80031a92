//! A trained model at rest: one file (a run's checkpoint) or a folder (what `export` writes).

use super::card::ModelCard;
use super::tensor_file;
use crate::catalogue::BackboneInfo;
use crate::error::InputError;
use crate::model::{Classifier, Head, HeadConfig};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const CARD_KEY: &str = "gridsearch.card";
const VALIDATION_KEY: &str = "gridsearch.validation";
const PROBABILITIES: &str = "validation.probabilities";
/// Names inside a model folder.
pub const CARD_FILE: &str = "model.json";
pub const WEIGHTS_FILE: &str = "weights.safetensors";
pub const BACKBONE_FILE: &str = "backbone.safetensors";
pub const VALIDATION_FILE: &str = "validation.csv";

/// The model's own pass over its validation split when it was trained.
#[derive(Debug, Clone)]
pub struct Validation {
    pub files: Vec<PathBuf>,
    /// True class of each file.
    pub labels: Vec<usize>,
    /// [files, classes].
    pub probabilities: Tensor,
}

/// A model card with the trained tensors (see `Classifier::tensors`).
pub struct SavedModel {
    pub card: ModelCard,
    pub tensors: HashMap<String, Tensor>,
    pub validation: Option<Validation>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ValidationIndex {
    files: Vec<PathBuf>,
    labels: Vec<usize>,
}

impl SavedModel {
    /// One safetensors file holding everything (checkpoints beside the database).
    pub fn write_file(&self, path: &Path) -> anyhow::Result<()> {
        let mut tensors: Vec<(String, Tensor)> = self
            .tensors
            .iter()
            .map(|(k, t)| (k.clone(), t.clone()))
            .collect();
        let mut metadata =
            HashMap::from([(CARD_KEY.to_string(), serde_json::to_string(&self.card)?)]);
        if let Some(v) = &self.validation {
            tensors.push((PROBABILITIES.to_string(), v.probabilities.clone()));
            let index = ValidationIndex {
                files: v.files.clone(),
                labels: v.labels.clone(),
            };
            metadata.insert(VALIDATION_KEY.to_string(), serde_json::to_string(&index)?);
        }
        tensor_file::write(path, &tensors, metadata)
    }

    pub fn read_file(path: &Path, device: &Device) -> anyhow::Result<SavedModel> {
        let (mut tensors, metadata) = tensor_file::read(path, device)?;
        let card_json = metadata.get(CARD_KEY).ok_or_else(|| {
            InputError::new(format!(
                "{}: not a gridsearch checkpoint (no card)",
                path.display()
            ))
        })?;
        let (card, backbone) = parse_card(card_json, path)?;
        check_head_shapes(&card, backbone, &tensors, path)?;
        let validation = match (metadata.get(VALIDATION_KEY), tensors.remove(PROBABILITIES)) {
            (Some(index), Some(probabilities)) => {
                let index: ValidationIndex = serde_json::from_str(index)?;
                Some(Validation {
                    files: index.files,
                    labels: index.labels,
                    probabilities,
                })
            }
            _ => None,
        };
        Ok(SavedModel {
            card,
            tensors,
            validation,
        })
    }

    /// A self-describing folder: `model.json` (the card), `weights.safetensors` (the trained
    /// tensors), `backbone.safetensors` (a copy of the frozen weights `backbone`) and
    /// `validation.csv` (the model's validation pass).
    pub fn write_folder(&self, dir: &Path, backbone: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let target = dir.join(BACKBONE_FILE);
        if !same_file(backbone, &target) {
            // A copy, never a hard link: writing to the exported file must not change the
            // original weights (a link is the same file).
            let _ = std::fs::remove_file(&target);
            std::fs::copy(backbone, &target).map_err(|e| {
                anyhow::anyhow!(
                    "{}: cannot copy to {} ({e})",
                    backbone.display(),
                    target.display()
                )
            })?;
        }
        let mut card = self.card.clone();
        card.backbone_weights = PathBuf::from(BACKBONE_FILE);
        let tensors: Vec<(String, Tensor)> = self
            .tensors
            .iter()
            .map(|(k, t)| (k.clone(), t.clone()))
            .collect();
        tensor_file::write(&dir.join(WEIGHTS_FILE), &tensors, HashMap::new())?;
        if let Some(v) = &self.validation {
            write_validation_csv(&dir.join(VALIDATION_FILE), &card.labels, v)?;
        }
        std::fs::write(
            dir.join(CARD_FILE),
            serde_json::to_string_pretty(&card)? + "\n",
        )?;
        Ok(())
    }

    /// A folder written by [`SavedModel::write_folder`]; the card's backbone path is resolved
    /// against the folder. Checked when read: the card (see [`ModelCard::check`]), the
    /// backbone file against the card's SHA-256, and the head tensors' shapes against the card.
    /// The validation pass is not read back.
    pub fn read_folder(dir: &Path, device: &Device) -> anyhow::Result<SavedModel> {
        let card_path = dir.join(CARD_FILE);
        let text = std::fs::read_to_string(&card_path).map_err(|e| {
            InputError::new(format!(
                "{}: cannot read the model card ({e})",
                card_path.display()
            ))
        })?;
        let (mut card, backbone) = parse_card(&text, &card_path)?;
        card.backbone_weights = dir.join(&card.backbone_weights);
        check_backbone_digest(&card, &card_path)?;
        let weights = dir.join(WEIGHTS_FILE);
        let (tensors, _) = tensor_file::read(&weights, device)?;
        check_head_shapes(&card, backbone, &tensors, &weights)?;
        Ok(SavedModel {
            card,
            tensors,
            validation: None,
        })
    }
}

/// The card in `json` (read from `path`), checked (see [`ModelCard::check`]), with its
/// backbone's entry in the catalogue.
fn parse_card(json: &str, path: &Path) -> anyhow::Result<(ModelCard, &'static BackboneInfo)> {
    let card: ModelCard = serde_json::from_str(json)
        .map_err(|e| InputError::new(format!("{}: not a model card ({e})", path.display())))?;
    let backbone = card
        .check()
        .map_err(|why| InputError::new(format!("{}: {why}", path.display())))?;
    Ok((card, backbone))
}

/// Refuse head tensors in `path` that are missing or not the shape the card's head needs:
/// [features, hidden] and [hidden] then [hidden, labels] and [labels] (or [features, labels]
/// and [labels] without a hidden layer), so a bad file fails when loaded, not at predict time.
fn check_head_shapes(
    card: &ModelCard,
    info: &BackboneInfo,
    tensors: &HashMap<String, Tensor>,
    path: &Path,
) -> anyhow::Result<()> {
    let config = HeadConfig {
        feature_dim: info.feature_dim,
        hidden: card.head_hidden,
        classes: card.labels.len(),
        dropout: 0.0,
    };
    let mut rng = rand::SeedableRng::seed_from_u64(0);
    let expected = Classifier {
        head: Head::new(config, &mut rng, &Device::Cpu)?,
        tail: None,
    };
    for (name, needed) in expected.tensors() {
        let found = tensors.get(&name).ok_or_else(|| {
            InputError::new(format!(
                "{}: tensor `{name}` is missing (the card's head has {} hidden units and {} labels)",
                path.display(),
                card.head_hidden,
                card.labels.len()
            ))
        })?;
        if found.dims() != needed.dims() {
            return Err(InputError::new(format!(
                "{}: tensor `{name}` has shape {:?}, the card's head needs {:?} ({} features, \
                 {} hidden units, {} labels)",
                path.display(),
                found.dims(),
                needed.dims(),
                info.feature_dim,
                card.head_hidden,
                card.labels.len()
            ))
            .into());
        }
    }
    Ok(())
}

/// Refuse a backbone file whose SHA-256 is not the one the card (at `card_path`) recorded at
/// export, so a model never runs on weights other than those it was trained on.
fn check_backbone_digest(card: &ModelCard, card_path: &Path) -> anyhow::Result<()> {
    let Some(expected) = &card.backbone_sha256 else {
        return Ok(());
    };
    let file = &card.backbone_weights;
    let actual = crate::digest::sha256_of(file).map_err(|e| {
        InputError::new(format!(
            "{}: cannot read the backbone weights ({e})",
            file.display()
        ))
    })?;
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(InputError::new(format!(
            "{}: SHA-256 {actual} differs from the {expected} that {} records: the backbone \
             file changed since export",
            file.display(),
            card_path.display()
        ))
        .into());
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `file,label,predicted,p_<label>...`: one row per validation image.
fn write_validation_csv(path: &Path, labels: &[String], v: &Validation) -> anyhow::Result<()> {
    let mut out = csv::Writer::from_path(path)?;
    let mut header = vec!["file".to_string(), "label".into(), "predicted".into()];
    header.extend(labels.iter().map(|l| format!("p_{l}")));
    out.write_record(&header)?;
    let rows: Vec<Vec<f32>> = v.probabilities.to_vec2()?;
    for ((file, &label), p) in v.files.iter().zip(&v.labels).zip(rows) {
        let predicted = crate::model::classifier::argmax(&p);
        let mut record = vec![
            file.display().to_string(),
            labels[label].clone(),
            labels[predicted].clone(),
        ];
        record.extend(p.iter().map(|x| format!("{x:.6}")));
        out.write_record(&record)?;
    }
    out.flush()?;
    Ok(())
}

/// The model folders under `dir`: `dir` itself when it holds a card, else its subfolders that do.
pub fn model_folders(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if dir.join(CARD_FILE).is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        InputError::new(format!(
            "{}: cannot read the models folder ({e})",
            dir.display()
        ))
    })?;
    let mut folders: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(CARD_FILE).is_file())
        .collect();
    folders.sort();
    if folders.is_empty() {
        return Err(InputError::new(format!(
            "{}: no exported models here (run `gridsearch export --out {}` first)",
            dir.display(),
            dir.display()
        ))
        .into());
    }
    Ok(folders)
}
