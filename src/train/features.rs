//! One frozen backbone pass over the decoded images, recording every activation the plan needs.

use super::Interrupted;
use crate::data::decode::DecodedImages;
use crate::model::{Backbone, Recorded};
use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

/// Frozen activations of one split, row i = image i.
pub struct Activations {
    /// Pooled features [N, F].
    pub pooled: Tensor,
    /// Input of block b, [N, H, W, C], for each recorded boundary b.
    pub boundaries: BTreeMap<usize, Tensor>,
    /// Class index per image [N] (u32).
    pub labels: Tensor,
}

/// The frozen work of a study: computed once, shared by every trial.
pub struct FeatureBank {
    pub train: Activations,
    pub val: Activations,
}

/// Images per forward batch of the frozen pass.
const FORWARD_BATCH: usize = 32;

/// Run the frozen backbone once over `images`, keeping the pooled features and `boundaries`.
/// `on_batch(n)` reports progress in images.
pub fn record(
    backbone: &dyn Backbone,
    images: &DecodedImages,
    boundaries: &BTreeSet<usize>,
    device: &Device,
    cancel: &AtomicBool,
    on_batch: &(dyn Fn(usize) + Sync),
) -> anyhow::Result<Activations> {
    let side = images.size;
    let per_image = side * side * 3;
    let n = images.samples.len();
    let starts: Vec<usize> = (0..n).step_by(FORWARD_BATCH).collect();
    // Batches are independent: they run side by side, one per core (see `threads`).
    let outputs: Vec<Recorded> = starts
        .par_iter()
        .map(|&start| -> anyhow::Result<Recorded> {
            if cancel.load(Ordering::Relaxed) {
                return Err(Interrupted.into());
            }
            let end = (start + FORWARD_BATCH).min(n);
            let bytes = &images.pixels[start * per_image..end * per_image];
            let rgb = Tensor::from_slice(bytes, (end - start, side, side, 3), device)?;
            let out = backbone.forward_recording(&backbone.preprocess(&rgb)?, boundaries)?;
            on_batch(end - start);
            Ok(out)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut pooled = Vec::with_capacity(outputs.len());
    let mut recorded: BTreeMap<usize, Vec<Tensor>> = BTreeMap::new();
    for out in outputs {
        pooled.push(out.pooled);
        for (b, t) in out.boundaries {
            recorded.entry(b).or_default().push(t);
        }
    }
    let labels: Vec<u32> = images.samples.iter().map(|s| s.label as u32).collect();
    Ok(Activations {
        pooled: Tensor::cat(&pooled, 0)?,
        boundaries: recorded
            .into_iter()
            .map(|(b, parts)| Ok((b, Tensor::cat(&parts, 0)?)))
            .collect::<Result<_>>()?,
        labels: Tensor::new(labels, device)?,
    })
}
