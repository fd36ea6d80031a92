//! An exported model: its card, and the classifier it describes rebuilt on a loaded backbone.

use super::card::ModelCard;
use crate::model::{Backbone, Classifier};
use candle_core::Tensor;
use std::collections::HashMap;

/// A model card with its trained classifier.
pub struct ExportedModel {
    pub card: ModelCard,
    pub classifier: Classifier,
}

impl ExportedModel {
    /// Rebuild the card's classifier from its tensors on `backbone`; `source` names the file in
    /// errors.
    pub fn new(
        card: ModelCard,
        tensors: &HashMap<String, Tensor>,
        backbone: &dyn Backbone,
        source: &str,
    ) -> anyhow::Result<ExportedModel> {
        let classes = card.labels.len();
        let classifier =
            Classifier::from_tensors(tensors, backbone, card.unfreeze_depth, classes, source)?;
        Ok(ExportedModel { card, classifier })
    }
}
