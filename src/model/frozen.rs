//! What training needs from any backbone (one recording forward pass and a trainable tail), and
//! the helpers every implementation shares; it knows no implementation (`load` picks them).

use crate::catalogue::BackboneInfo;
use candle_core::{Device, Result, Tensor, Var};
use std::collections::{BTreeMap, BTreeSet};

/// What one frozen pass over a batch leaves behind.
pub struct Recorded {
    /// Pooled features [N, feature_dim].
    pub pooled: Tensor,
    /// The input of block `b` for each requested boundary `b`.
    pub boundaries: BTreeMap<usize, Tensor>,
}

/// A frozen, pretrained feature extractor whose last blocks can be fine-tuned.
pub trait Backbone: Send + Sync {
    fn info(&self) -> &'static BackboneInfo;
    /// Turn RGB bytes [N, S, S, 3] (u8, HWC) into the network's normalised input.
    fn preprocess(&self, rgb: &Tensor) -> Result<Tensor>;
    /// Pooled features, plus the input of every block in `boundaries`.
    fn forward_recording(&self, input: &Tensor, boundaries: &BTreeSet<usize>) -> Result<Recorded>;
    /// A trainable copy of the last `depth` blocks (plus the final 1x1 conv).
    fn trainable_tail(&self, depth: usize) -> Result<Box<dyn TrainableTail>>;
}

/// The fine-tuned part of a backbone: from the recorded boundary activation to pooled features.
pub trait TrainableTail: Send + Sync {
    fn forward(&self, boundary: &Tensor) -> Result<Tensor>;
    fn vars(&self) -> &[Var];
}

/// Images per forward batch of a frozen pass.
pub const FORWARD_BATCH: usize = 32;

/// The frozen backbone over images given as RGB bytes (`size` x `size`, HWC, one image after
/// another), in batches that run side by side, one per core (see `threads`). `before_batch(n)`
/// runs before each batch of n images: it may report progress, or stop the pass with an error.
pub fn forward_pixels(
    backbone: &dyn Backbone,
    pixels: &[u8],
    size: usize,
    boundaries: &BTreeSet<usize>,
    device: &Device,
    before_batch: &(dyn Fn(usize) -> anyhow::Result<()> + Sync),
) -> anyhow::Result<Vec<Recorded>> {
    use rayon::prelude::*;
    let per_image = size * size * 3;
    let n = pixels.len() / per_image;
    let starts: Vec<usize> = (0..n).step_by(FORWARD_BATCH).collect();
    starts
        .par_iter()
        .map(|&start| -> anyhow::Result<Recorded> {
            let end = (start + FORWARD_BATCH).min(n);
            before_batch(end - start)?;
            let bytes = &pixels[start * per_image..end * per_image];
            let rgb = Tensor::from_slice(bytes, (end - start, size, size, 3), device)?;
            Ok(backbone.forward_recording(&backbone.preprocess(&rgb)?, boundaries)?)
        })
        .collect()
}

/// Run `blocks(x, from, to)` over all `total` blocks from the stem's output, keeping the input
/// of every block in `boundaries`; returns the last block's output and those inputs.
pub fn run_recording(
    stem_out: Tensor,
    total: usize,
    boundaries: &BTreeSet<usize>,
    blocks: impl Fn(&Tensor, usize, usize) -> Result<Tensor>,
) -> Result<(Tensor, BTreeMap<usize, Tensor>)> {
    let (mut x, mut recorded, mut at) = (stem_out, BTreeMap::new(), 0);
    for &b in boundaries {
        x = blocks(&x, at, b)?;
        recorded.insert(b, x.clone());
        at = b;
    }
    Ok((blocks(&x, at, total)?, recorded))
}

/// Trainable copies of `blocks` (made by `copy`) and all their variables, in order.
pub fn trainable_copies<B>(
    blocks: &[B],
    copy: impl Fn(&B) -> Result<(B, Vec<Var>)>,
) -> Result<(Vec<B>, Vec<Var>)> {
    let mut vars = Vec::new();
    let mut copies = Vec::with_capacity(blocks.len());
    for block in blocks {
        let (b, v) = copy(block)?;
        copies.push(b);
        vars.extend(v);
    }
    Ok((copies, vars))
}

/// ImageNet logits of pooled features through a checkpoint's classifier, when it has one.
pub fn imagenet_logits(
    features: &Tensor,
    classifier: &Option<(Tensor, Tensor)>,
) -> Option<Result<Tensor>> {
    classifier
        .as_ref()
        .map(|(w, b)| features.matmul(&w.t()?)?.broadcast_add(b))
}
