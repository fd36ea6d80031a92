//! Every exported model of a folder, run together: one backbone pass per (backbone, image size)
//! serves all the models that share it, as in training.

use super::exported::ExportedModel;
use super::saved::{model_folders, SavedModel, WEIGHTS_FILE};
use crate::data::decode::{decode_bytes, decode_file, DecodeError};
use crate::model::frozen::forward_pixels;
use crate::model::{load_backbone, Backbone, Device, Recorded};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One model's answer for one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The study (attribute) the model was trained for.
    pub attribute: String,
    pub labels: Vec<String>,
    pub probabilities: Vec<f32>,
}

impl Prediction {
    /// The most probable label and its probability.
    pub fn top(&self) -> (&str, f32) {
        let best = crate::model::classifier::argmax(&self.probabilities);
        (&self.labels[best], self.probabilities[best])
    }
}

/// An image to predict: a file, or bytes held in memory (an upload).
#[derive(Debug, Clone, Copy)]
pub enum ImageSource<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

impl ImageSource<'_> {
    /// `size` x `size` RGB bytes, or why the image cannot be read.
    pub fn decode(&self, size: usize) -> Result<Vec<u8>, DecodeError> {
        match self {
            ImageSource::File(path) => decode_file(path, size),
            ImageSource::Bytes(bytes) => decode_bytes(bytes, size),
        }
    }
}

/// Per image of a batch: its row in the outputs, or why it could not be read.
pub type ImageRows = Vec<Result<usize, DecodeError>>;

/// One frozen backbone at one image size, with the blocks its models start from.
pub struct BackbonePass {
    pub backbone: Arc<dyn Backbone>,
    pub image_size: usize,
    pub boundaries: BTreeSet<usize>,
}

impl BackbonePass {
    /// Decode `images` at this pass's size and run the backbone over those that decode.
    /// Returns, per image, its row in the outputs or why it failed.
    pub fn run(
        &self,
        images: &[ImageSource],
        device: &Device,
    ) -> anyhow::Result<(ImageRows, Vec<Recorded>)> {
        let decoded: Vec<Result<Vec<u8>, DecodeError>> = images
            .par_iter()
            .map(|i| i.decode(self.image_size))
            .collect();
        let mut rows = Vec::with_capacity(images.len());
        let mut pixels = Vec::new();
        let mut next = 0;
        for d in decoded {
            rows.push(d.map(|bytes| {
                pixels.extend_from_slice(&bytes);
                next += 1;
                next - 1
            }));
        }
        let outputs = forward_pixels(
            self.backbone.as_ref(),
            &pixels,
            self.image_size,
            &self.boundaries,
            device,
            &|_| Ok(()),
        )?;
        Ok((rows, outputs))
    }
}

/// Models that share one backbone pass: the same backbone weights at the same image size.
struct Group {
    key: (String, PathBuf, usize),
    pass: BackbonePass,
    models: Vec<ExportedModel>,
}

/// Every model of an export folder, grouped by the backbone pass they need.
pub struct ModelSet {
    groups: Vec<Group>,
}

impl ModelSet {
    /// Load every model folder under `dir` (or `dir` itself when it is one).
    pub fn load(dir: &Path, device: &Device) -> anyhow::Result<ModelSet> {
        let saved = model_folders(dir)?
            .iter()
            .map(|folder| SavedModel::read_folder(folder, device))
            .collect::<anyhow::Result<Vec<_>>>()?;
        ModelSet::from_saved(saved, device)
    }

    /// Models from their saved form; each distinct backbone file is loaded once.
    pub fn from_saved(saved: Vec<SavedModel>, device: &Device) -> anyhow::Result<ModelSet> {
        let mut backbones: HashMap<(String, PathBuf), Arc<dyn Backbone>> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        for model in saved {
            let card = &model.card;
            let file = &card.backbone_weights;
            let identity = match &card.backbone_sha256 {
                Some(sha) => PathBuf::from(sha),
                None => file.canonicalize().unwrap_or_else(|_| file.clone()),
            };
            let key = (card.backbone.clone(), identity);
            let group_key = (key.0.clone(), key.1.clone(), card.image_size);
            let backbone = match backbones.get(&key) {
                Some(b) => b.clone(),
                None => {
                    let b: Arc<dyn Backbone> =
                        Arc::from(load_backbone(&card.backbone, file, device)?);
                    backbones.insert(key, b.clone());
                    b
                }
            };
            let folder = file.parent().unwrap_or(file);
            let source = folder.join(WEIGHTS_FILE).display().to_string();
            let image_size = card.image_size;
            let exported =
                ExportedModel::new(model.card, &model.tensors, backbone.as_ref(), &source)?;
            let group = match groups.iter_mut().find(|g| g.key == group_key) {
                Some(g) => g,
                None => {
                    groups.push(Group {
                        key: group_key,
                        pass: BackbonePass {
                            backbone,
                            image_size,
                            boundaries: BTreeSet::new(),
                        },
                        models: Vec::new(),
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            group.pass.boundaries.extend(exported.classifier.boundary());
            group.models.push(exported);
        }
        Ok(ModelSet { groups })
    }

    /// The models' cards, in the order predictions come.
    pub fn cards(&self) -> Vec<&super::ModelCard> {
        self.groups
            .iter()
            .flat_map(|g| g.models.iter().map(|m| &m.card))
            .collect()
    }

    /// Every model's prediction for each image, or why that image could not be read.
    pub fn predict(
        &self,
        images: &[ImageSource],
        device: &Device,
    ) -> anyhow::Result<Vec<Result<Vec<Prediction>, DecodeError>>> {
        let mut results: Vec<Result<Vec<Prediction>, DecodeError>> =
            images.iter().map(|_| Ok(Vec::new())).collect();
        for group in &self.groups {
            let (rows, outputs) = group.pass.run(images, device)?;
            let mut per_model = Vec::with_capacity(group.models.len());
            for model in &group.models {
                let mut probabilities: Vec<Vec<f32>> = Vec::new();
                for recorded in &outputs {
                    let p = model.classifier.probabilities(recorded)?;
                    probabilities.extend(p.to_vec2::<f32>()?);
                }
                per_model.push(probabilities);
            }
            for (result, row) in results.iter_mut().zip(&rows) {
                match (result.as_mut(), row) {
                    (Ok(predictions), Ok(row)) => {
                        for (model, probabilities) in group.models.iter().zip(&per_model) {
                            predictions.push(Prediction {
                                attribute: model.card.study.clone(),
                                labels: model.card.labels.clone(),
                                probabilities: probabilities[*row].clone(),
                            });
                        }
                    }
                    (Ok(_), Err(reason)) => *result = Err(reason.clone()),
                    (Err(_), _) => {}
                }
            }
        }
        Ok(results)
    }
}
