//! A trained classifier on a frozen backbone: its head, and the trained copy of the last blocks
//! when it fine-tuned them. Training makes it, checkpoints and exports save it, predict, similar
//! and serve load it; each reads a frozen pass's [`Recorded`] rows through it the same way.

use super::frozen::{Backbone, Recorded, TrainableTail};
use super::head::Head;
use crate::error::InputError;
use candle_core::{Result, Tensor, D};
use rand::rngs::StdRng;
use std::collections::HashMap;

/// Rows per forward batch when a classifier scores many recorded rows.
const BATCH: usize = 128;
const HEAD_PREFIX: &str = "head.";

/// The fine-tuned copy of a backbone's last blocks, and the block whose recorded input it takes.
pub struct FineTunedBlocks {
    pub boundary: usize,
    pub blocks: Box<dyn TrainableTail>,
}

/// A head, plus the fine-tuned blocks in front of it when the trial unfroze any.
pub struct Classifier {
    pub head: Head,
    pub tail: Option<FineTunedBlocks>,
}

impl Recorded {
    /// The recorded input of block `boundary`.
    pub fn input_of(&self, boundary: usize) -> anyhow::Result<&Tensor> {
        self.boundaries
            .get(&boundary)
            .ok_or_else(|| anyhow::anyhow!("the backbone pass did not record block {boundary}"))
    }
}

impl Classifier {
    /// The block whose recorded input this classifier starts from, if it fine-tuned any.
    pub fn boundary(&self) -> Option<usize> {
        self.tail.as_ref().map(|t| t.boundary)
    }

    /// What this classifier reads of a frozen pass: the pooled features, or the recorded input
    /// of its first fine-tuned block.
    pub fn input<'r>(&self, recorded: &'r Recorded) -> anyhow::Result<&'r Tensor> {
        match self.boundary() {
            None => Ok(&recorded.pooled),
            Some(boundary) => recorded.input_of(boundary),
        }
    }

    /// Logits of rows of [`Classifier::input`]; dropout only when `training` carries an rng.
    pub fn logits(&self, input: &Tensor, training: Option<&mut StdRng>) -> Result<Tensor> {
        match &self.tail {
            None => self.head.forward(input, training),
            Some(tail) => self.head.forward(&tail.blocks.forward(input)?, training),
        }
    }

    /// The trainable variables: the head's, then the fine-tuned blocks'.
    pub fn vars(&self) -> Vec<candle_core::Var> {
        let mut vars = self.head.vars();
        if let Some(tail) = &self.tail {
            vars.extend(tail.blocks.vars().iter().cloned());
        }
        vars
    }

    /// Pooled features as this classifier sees them: through its fine-tuned blocks when it has them.
    pub fn features(&self, recorded: &Recorded) -> anyhow::Result<Tensor> {
        let input = self.input(recorded)?;
        Ok(match &self.tail {
            None => input.clone(),
            Some(tail) => tail.blocks.forward(input)?.detach(),
        })
    }

    /// Class probabilities [N, classes] of every row of `recorded` (no dropout), in batches.
    pub fn probabilities(&self, recorded: &Recorded) -> anyhow::Result<Tensor> {
        let input = self.input(recorded)?;
        self.probabilities_of(input.dim(0)?, &|start, len| input.narrow(0, start, len))
    }

    /// Class probabilities [n, classes] of `n` input rows (no dropout), where `rows(start, len)`
    /// gives `len` rows of [`Classifier::input`] from `start`; in batches.
    pub fn probabilities_of(
        &self,
        n: usize,
        rows: &dyn Fn(usize, usize) -> Result<Tensor>,
    ) -> anyhow::Result<Tensor> {
        let mut parts = Vec::with_capacity(n.div_ceil(BATCH));
        for start in (0..n).step_by(BATCH) {
            let logits = self.logits(&rows(start, BATCH.min(n - start))?, None)?;
            parts.push(candle_nn::ops::softmax(&logits, D::Minus1)?.detach());
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// The layer before the logits [N, width] of every row of `recorded`: its embedding.
    pub fn penultimate(&self, recorded: &Recorded) -> anyhow::Result<Tensor> {
        Ok(self.head.penultimate(&self.features(recorded)?)?.detach())
    }

    /// The tensors that make it: `head.layers.{i}.weight|bias` and `tail.{i}`, the fine-tuned
    /// blocks' variables in the order the backbone's trainable tail lists them.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self
            .head
            .named_tensors()
            .into_iter()
            .map(|(name, t)| (format!("{HEAD_PREFIX}{name}"), t))
            .collect();
        if let Some(tail) = &self.tail {
            for (i, var) in tail.blocks.vars().iter().enumerate() {
                named.push((tail_key(i), var.as_tensor().clone()));
            }
        }
        named
    }

    /// Rebuilds a classifier of `classes` outputs that fine-tuned `unfreeze_depth` blocks of
    /// `backbone` from its [`Classifier::tensors`]; `source` names the file in errors.
    pub fn from_tensors(
        tensors: &HashMap<String, Tensor>,
        backbone: &dyn Backbone,
        unfreeze_depth: usize,
        classes: usize,
        source: &str,
    ) -> anyhow::Result<Classifier> {
        let bad = |what: String| InputError::new(format!("{source}: {what}"));
        let head =
            Head::from_named_tensors(tensors, HEAD_PREFIX, 0.0).map_err(|e| bad(e.to_string()))?;
        let outputs = head.named_tensors().last().map(|(_, b)| b.elem_count());
        if outputs != Some(classes) {
            return Err(bad(format!(
                "the head has {outputs:?} outputs but the card names {classes} labels"
            ))
            .into());
        }
        let info = backbone.info();
        if unfreeze_depth > info.blocks {
            return Err(bad(format!(
                "unfreeze_depth {unfreeze_depth} but {} has {} blocks",
                info.name(),
                info.blocks
            ))
            .into());
        }
        if unfreeze_depth == 0 {
            return Ok(Classifier { head, tail: None });
        }
        let blocks = backbone.trainable_tail(unfreeze_depth)?;
        for (i, var) in blocks.vars().iter().enumerate() {
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
        let tail = FineTunedBlocks {
            boundary: info.boundary_of(unfreeze_depth),
            blocks,
        };
        Ok(Classifier {
            head,
            tail: Some(tail),
        })
    }
}

fn tail_key(i: usize) -> String {
    format!("tail.{i:04}")
}

/// The index of the largest value (the first of equals): the predicted class.
pub fn argmax(values: &[f32]) -> usize {
    (0..values.len()).fold(0, |best, i| if values[i] > values[best] { i } else { best })
}
