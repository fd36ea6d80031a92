//! An exported model: its card, and the classifier it describes rebuilt on a loaded backbone.

use super::card::ModelCard;
use crate::error::InputError;
use crate::model::{Backbone, Classifier};
use candle_core::Tensor;
use std::collections::{HashMap, HashSet};

/// A model card with its trained classifier.
pub struct ExportedModel {
    pub card: ModelCard,
    pub classifier: Classifier,
}

impl ExportedModel {
    /// Rebuild the card's classifier from its tensors on `backbone`, every tensor checked
    /// against it (none missing, none of another shape, none left over); `source` names the
    /// file in errors.
    pub fn new(
        card: ModelCard,
        tensors: &HashMap<String, Tensor>,
        backbone: &dyn Backbone,
        source: &str,
    ) -> anyhow::Result<ExportedModel> {
        let classes = card.labels.len();
        let classifier =
            Classifier::from_tensors(tensors, backbone, card.unfreeze_depth, classes, source)?;
        let used: HashSet<String> = classifier.tensors().into_iter().map(|(n, _)| n).collect();
        let mut unused: Vec<&String> = tensors.keys().filter(|n| !used.contains(*n)).collect();
        unused.sort();
        if let Some(name) = unused.first() {
            return Err(InputError::new(format!(
                "{source}: tensor `{name}` is not part of the model the card describes \
                 (unfreeze_depth {}, {} hidden units)",
                card.unfreeze_depth, card.head_hidden
            ))
            .into());
        }
        Ok(ExportedModel { card, classifier })
    }
}
