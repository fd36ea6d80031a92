//! One trained model on top of a frozen backbone pass: its fine-tuned blocks (if any) and head.

use super::card::ModelCard;
use crate::model::{Backbone, Head, Recorded, TrainableTail};
use candle_core::{Tensor, D};
use std::collections::HashMap;

const HEAD_PREFIX: &str = "head.";

/// A trained head, and the trained copy of the backbone's last blocks when it fine-tuned them.
pub struct Classifier {
    pub card: ModelCard,
    head: Head,
    /// The fine-tuned blocks and the block whose recorded input they start from.
    tail: Option<(usize, Box<dyn TrainableTail>)>,
}

/// The tensors that make a trained model: `head.layers.{i}.weight|bias` and `tail.{i}`, the
/// fine-tuned blocks' variables in the order the backbone's trainable tail lists them.
pub fn trained_tensors(head: &Head, tail: Option<&dyn TrainableTail>) -> Vec<(String, Tensor)> {
    let mut named: Vec<(String, Tensor)> = head
        .named_tensors()
        .into_iter()
        .map(|(name, t)| (format!("{HEAD_PREFIX}{name}"), t))
        .collect();
    if let Some(tail) = tail {
        for (i, var) in tail.vars().iter().enumerate() {
            named.push((tail_key(i), var.as_tensor().clone()));
        }
    }
    named
}

/// A head's class probabilities [N, classes] of features (no dropout).
pub fn class_probabilities(head: &Head, features: &Tensor) -> anyhow::Result<Tensor> {
    let logits = head.forward(features, None)?;
    Ok(candle_nn::ops::softmax(&logits, D::Minus1)?.detach())
}

/// The index of the largest value (the first of equals): the predicted class.
pub fn argmax(values: &[f32]) -> usize {
    (0..values.len()).fold(0, |best, i| if values[i] > values[best] { i } else { best })
}

fn tail_key(i: usize) -> String {
    format!("tail.{i:04}")
}

impl Classifier {
    /// Rebuild a model from its card and [`trained_tensors`] on `backbone`; `source` names the
    /// file in errors.
    pub fn new(
        card: ModelCard,
        tensors: &HashMap<String, Tensor>,
        backbone: &dyn Backbone,
        source: &str,
    ) -> anyhow::Result<Classifier> {
        let bad = |what: String| crate::error::InputError::new(format!("{source}: {what}"));
        let head =
            Head::from_named_tensors(tensors, HEAD_PREFIX, 0.0).map_err(|e| bad(e.to_string()))?;
        let classes = head.named_tensors().last().map(|(_, b)| b.elem_count());
        if classes != Some(card.labels.len()) {
            return Err(bad(format!(
                "the head has {classes:?} outputs but the card names {} labels",
                card.labels.len()
            ))
            .into());
        }
        let info = backbone.info();
        if card.unfreeze_depth > info.blocks {
            return Err(bad(format!(
                "unfreeze_depth {} but {} has {} blocks",
                card.unfreeze_depth,
                info.name(),
                info.blocks
            ))
            .into());
        }
        let tail = if card.unfreeze_depth == 0 {
            None
        } else {
            let tail = backbone.trainable_tail(card.unfreeze_depth)?;
            for (i, var) in tail.vars().iter().enumerate() {
                let saved = tensors
                    .get(&tail_key(i))
                    .ok_or_else(|| bad(format!("tensor `{}` is missing", tail_key(i))))?;
                if saved.dims() != var.dims() {
                    return Err(bad(format!(
                        "tensor `{}` has shape {:?}, the backbone's block needs {:?}",
                        tail_key(i),
                        saved.dims(),
                        var.dims()
                    ))
                    .into());
                }
                var.set(saved)?;
            }
            Some((info.boundary_of(card.unfreeze_depth), tail))
        };
        Ok(Classifier { card, head, tail })
    }

    /// The block whose recorded input this model starts from, if it fine-tuned any.
    pub fn boundary(&self) -> Option<usize> {
        self.tail.as_ref().map(|(boundary, _)| *boundary)
    }

    /// Pooled features as this model sees them: through its fine-tuned blocks when it has them.
    pub fn features(&self, recorded: &Recorded) -> anyhow::Result<Tensor> {
        let Some((boundary, tail)) = &self.tail else {
            return Ok(recorded.pooled.clone());
        };
        let input = recorded
            .boundaries
            .get(boundary)
            .ok_or_else(|| anyhow::anyhow!("the backbone pass did not record block {boundary}"))?;
        Ok(tail.forward(input)?.detach())
    }

    /// Class probabilities [N, classes] from the model's features.
    pub fn probabilities(&self, features: &Tensor) -> anyhow::Result<Tensor> {
        class_probabilities(&self.head, features)
    }

    /// The layer before the logits [N, width]: the model's embedding of its images.
    pub fn penultimate(&self, features: &Tensor) -> anyhow::Result<Tensor> {
        Ok(self.head.penultimate(features)?.detach())
    }
}
