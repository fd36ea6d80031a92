//! Every exported model of a folder, run together: one backbone pass per (backbone, image size)
//! serves all the models that share it, as in training.

use super::exported::ExportedModel;
use super::saved::{model_folders, SavedModel, WEIGHTS_FILE};
use crate::data::decode::{decode_bytes, decode_file, DecodeError};
use crate::data::stream::Streamed;
use crate::model::frozen::FrozenForward;
use crate::model::{load_backbone, Backbone, Device, Recorded};
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
    /// Decode `images` at this pass's size and run the backbone over those that decode, as
    /// they decode: `on_batch` gets each batch's outputs in order (so rows of the images that
    /// decoded, one batch after another). Returns, per image, its row or why it failed.
    pub fn run(
        &self,
        images: &[ImageSource],
        device: &Device,
        on_batch: &mut dyn FnMut(Recorded) -> anyhow::Result<()>,
    ) -> anyhow::Result<ImageRows> {
        let pass = FrozenForward {
            backbone: self.backbone.as_ref(),
            size: self.image_size,
            boundaries: &self.boundaries,
            device,
        };
        let mut rows: Vec<Option<Result<usize, DecodeError>>> = vec![None; images.len()];
        let mut next = 0;
        let decode = |image: &ImageSource| image.decode(self.image_size);
        pass.streamed(images, &decode, &|_| Ok(()), &mut |event| match event {
            Streamed::Unreadable(i, reason) => {
                rows[i] = Some(Err(reason));
                Ok(())
            }
            Streamed::Worked(items, recorded) => {
                for i in items {
                    rows[i] = Some(Ok(next));
                    next += 1;
                }
                on_batch(recorded)
            }
        })?;
        Ok(rows
            .into_iter()
            .map(|row| row.expect("every image decoded or failed"))
            .collect())
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
            let mut per_model: Vec<Vec<Vec<f32>>> = vec![Vec::new(); group.models.len()];
            let rows = group.pass.run(images, device, &mut |recorded| {
                for (model, probabilities) in group.models.iter().zip(&mut per_model) {
                    let p = model.classifier.probabilities(&recorded)?;
                    probabilities.extend(p.to_vec2::<f32>()?);
                }
                Ok(())
            })?;
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
