//! Where a group's frozen activations come from: today, a decode and one backbone pass.

use super::groups::FrozenKey;
use crate::data::decode::{decode_all, Skipped};
use crate::data::Sample;
use crate::model::{Backbone, Device};
use crate::scheduler::{Progress, Work};
use crate::train::features::SharedActivations;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

/// One group's frozen work: `samples` through `backbone` at the key's image size, keeping the
/// pooled features and the inputs of `boundaries`.
pub struct FrozenJob<'a> {
    pub key: &'a FrozenKey,
    pub backbone: &'a dyn Backbone,
    pub samples: &'a [Sample],
    pub boundaries: &'a BTreeSet<usize>,
    /// Set by Ctrl-C: the work stops with [`crate::train::Interrupted`].
    pub cancel: &'a AtomicBool,
}

/// A job's activations, over the `images` that could be read.
pub struct Frozen {
    pub activations: SharedActivations,
    pub images: usize,
}

/// A source of frozen activations (an on-disk cache can be another).
pub trait FrozenSource {
    /// Do `job`, telling `skipped` of each file that is not a readable image (it is left out).
    fn activations(
        &self,
        job: &FrozenJob,
        progress: &dyn Progress,
        skipped: &mut dyn FnMut(&Skipped),
    ) -> anyhow::Result<Frozen>;
}

/// Decode every image once, then run the frozen backbone once over them, on `device`.
pub struct BackbonePass<'d> {
    pub device: &'d Device,
}

impl FrozenSource for BackbonePass<'_> {
    fn activations(
        &self,
        job: &FrozenJob,
        progress: &dyn Progress,
        skipped: &mut dyn FnMut(&Skipped),
    ) -> anyhow::Result<Frozen> {
        progress.start(Work::Decode, job.samples.len());
        let (images, unreadable) =
            decode_all(job.samples, job.key.image_size, &|| progress.advance(1));
        progress.finish();
        unreadable.iter().for_each(skipped);
        progress.start(Work::Backbone, images.samples.len());
        let activations = SharedActivations::record(
            job.backbone,
            &images,
            job.boundaries,
            self.device,
            job.cancel,
            &|n| progress.advance(n),
        )?;
        progress.finish();
        Ok(Frozen {
            activations,
            images: images.samples.len(),
        })
    }
}
