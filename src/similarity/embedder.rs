//! What an image's embedding is: the frozen backbone's pooled features, or an exported model's
//! penultimate layer (its fine-tuned blocks and hidden units), L2-normalised.

use crate::inference::model_set::{BackbonePass, ImageRows, ImageSource};
use crate::inference::ExportedModel;
use crate::inference::SavedModel;
use crate::model::{load_backbone, Device};
use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// Where embeddings come from; an index keeps it so that queries are embedded the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EmbeddingSource {
    /// The frozen backbone's pooled features.
    Backbone {
        backbone: String,
        weights: PathBuf,
        image_size: usize,
    },
    /// An exported model's penultimate layer.
    Model { folder: PathBuf },
}

/// A loaded [`EmbeddingSource`].
pub struct Embedder {
    pub source: EmbeddingSource,
    pass: BackbonePass,
    model: Option<ExportedModel>,
}

impl Embedder {
    pub fn load(source: &EmbeddingSource, device: &Device) -> anyhow::Result<Embedder> {
        let (pass, model) = match source {
            EmbeddingSource::Backbone {
                backbone,
                weights,
                image_size,
            } => {
                let backbone = Arc::from(load_backbone(backbone, weights, device)?);
                let pass = BackbonePass {
                    backbone,
                    image_size: *image_size,
                    boundaries: BTreeSet::new(),
                };
                (pass, None)
            }
            EmbeddingSource::Model { folder } => {
                let saved = SavedModel::read_folder(folder, device)?;
                let card = &saved.card;
                let backbone: Arc<dyn crate::model::Backbone> = Arc::from(load_backbone(
                    &card.backbone,
                    &card.backbone_weights,
                    device,
                )?);
                let image_size = card.image_size;
                let source = folder.display().to_string();
                let model =
                    ExportedModel::new(saved.card, &saved.tensors, backbone.as_ref(), &source)?;
                let pass = BackbonePass {
                    backbone,
                    image_size,
                    boundaries: model.classifier.boundary().into_iter().collect(),
                };
                (pass, Some(model))
            }
        };
        Ok(Embedder {
            source: source.clone(),
            pass,
            model,
        })
    }

    /// Unit-length embeddings [decoded images, width] of `images`, with each image's row in
    /// them or why it could not be read.
    pub fn embed(
        &self,
        images: &[ImageSource],
        device: &Device,
    ) -> anyhow::Result<(ImageRows, Option<Tensor>)> {
        let mut parts = Vec::new();
        let rows = self.pass.run(images, device, &mut |recorded| {
            let embedding = match &self.model {
                None => recorded.pooled,
                Some(model) => model.classifier.penultimate(&recorded)?,
            };
            parts.push(normalised(&embedding)?);
            Ok(())
        })?;
        let all = if parts.is_empty() {
            None
        } else {
            Some(Tensor::cat(&parts, 0)?)
        };
        Ok((rows, all))
    }
}

/// Rows scaled to unit length (a zero row stays zero), so dot products are cosines.
fn normalised(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    x.broadcast_div(&norm)
}
