//! One frozen backbone pass over the decoded images, recording every activation the plan needs.

use super::Interrupted;
use crate::data::decode::DecodedImages;
use crate::data::Sample;
use crate::model::frozen::forward_pixels;
use crate::model::{Backbone, Recorded};
use candle_core::{Device, Result, Tensor};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Frozen activations of one split, row i = image i, with what each row is.
pub struct Activations {
    /// Pooled features and the input of each recorded boundary block.
    pub frozen: Recorded,
    /// Class index per image [N] (u32).
    pub labels: Tensor,
    /// The image file of each row.
    pub files: Vec<PathBuf>,
}

/// The frozen work of a study: computed once, shared by every trial.
pub struct FeatureBank {
    pub train: Activations,
    pub val: Activations,
}

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
    let before_batch = |n: usize| -> anyhow::Result<()> {
        if cancel.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        on_batch(n);
        Ok(())
    };
    let outputs = forward_pixels(
        backbone,
        &images.pixels,
        images.size,
        boundaries,
        device,
        &before_batch,
    )?;
    let frozen = Recorded::cat(outputs)?;
    let labels: Vec<u32> = images.samples.iter().map(|s| s.label as u32).collect();
    Ok(Activations {
        frozen,
        labels: Tensor::new(labels, device)?,
        files: images.samples.iter().map(|s| s.path.clone()).collect(),
    })
}

/// Activations of many images, looked up by file: one frozen pass shared by every study that
/// uses the same backbone, weights and image size (e.g. seven attributes of one photo set).
pub struct SharedActivations {
    rows: HashMap<PathBuf, u32>,
    all: Activations,
}

impl SharedActivations {
    /// Record the frozen pass over `images` (their labels are not used: each study brings its own).
    pub fn record(
        backbone: &dyn Backbone,
        images: &DecodedImages,
        boundaries: &BTreeSet<usize>,
        device: &Device,
        cancel: &AtomicBool,
        on_batch: &(dyn Fn(usize) + Sync),
    ) -> anyhow::Result<SharedActivations> {
        let all = record(backbone, images, boundaries, device, cancel, on_batch)?;
        let rows = images
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| (s.path.clone(), i as u32))
            .collect();
        Ok(SharedActivations { rows, all })
    }

    /// One study's split: the rows of those `samples` that were recorded (files that did not
    /// decode are left out), with the study's own labels.
    pub fn select(&self, samples: &[Sample]) -> Result<Activations> {
        let kept: Vec<(u32, &Sample)> = samples
            .iter()
            .filter_map(|s| self.rows.get(&s.path).map(|&row| (row, s)))
            .collect();
        let rows: Vec<u32> = kept.iter().map(|(row, _)| *row).collect();
        let labels: Vec<u32> = kept.iter().map(|(_, s)| s.label as u32).collect();
        let device = self.all.frozen.pooled.device();
        let index = Tensor::new(rows.as_slice(), device)?;
        Ok(Activations {
            frozen: self.all.frozen.rows(&index)?,
            labels: Tensor::new(labels, device)?,
            files: kept.iter().map(|(_, s)| s.path.clone()).collect(),
        })
    }
}

impl Activations {
    /// The distinct classes present (a split needs two to train and validate on).
    pub fn class_count(&self) -> Result<usize> {
        let labels: Vec<u32> = self.labels.to_vec1()?;
        Ok(labels.iter().collect::<BTreeSet<_>>().len())
    }
}
