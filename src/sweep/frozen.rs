//! Where a group's frozen activations come from: one backbone pass over the images as they
//! decode (`cached` puts the on-disk cache in front of it).

use super::groups::FrozenKey;
use crate::data::decode::Skipped;
use crate::data::pass_input::PassInput;
use crate::model::frozen::FrozenForward;
use crate::model::{Backbone, Device};
use crate::scheduler::{Progress, Work};
use crate::train::features::SharedActivations;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

/// One group's frozen work: `inputs` (images, and augmented views of some) through `backbone`
/// at the key's image size, keeping the pooled features and the inputs of `boundaries`.
pub struct FrozenJob<'a> {
    pub key: &'a FrozenKey,
    pub backbone: &'a dyn Backbone,
    pub inputs: &'a [PassInput],
    pub boundaries: &'a BTreeSet<usize>,
    /// Set by Ctrl-C: the work stops with [`crate::train::Interrupted`].
    pub cancel: &'a AtomicBool,
}

/// A job's activations, over the `images` that could be read and their `views`, `from_cache`
/// of all these read from the on-disk cache rather than computed.
pub struct Frozen {
    pub activations: SharedActivations,
    pub images: usize,
    pub views: usize,
    pub from_cache: usize,
}

/// What a source tells as it works.
pub enum Notice<'a> {
    /// A file that is not a readable image: it is left out.
    Skipped(&'a Skipped),
    /// Something about the cache a user should know (one line).
    Cache(&'a str),
}

/// A source of frozen activations: the backbone pass itself, or through the on-disk cache.
pub trait FrozenSource {
    /// Do `job`, telling `notice` of each file that is not a readable image (it is left out).
    fn activations(
        &self,
        job: &FrozenJob,
        progress: &dyn Progress,
        notice: &mut dyn FnMut(Notice),
    ) -> anyhow::Result<Frozen>;
}

/// Run the frozen backbone once over the images as they decode, on `device`.
pub struct BackbonePass<'d> {
    pub device: &'d Device,
}

impl FrozenSource for BackbonePass<'_> {
    fn activations(
        &self,
        job: &FrozenJob,
        progress: &dyn Progress,
        notice: &mut dyn FnMut(Notice),
    ) -> anyhow::Result<Frozen> {
        let pass = FrozenForward {
            backbone: job.backbone,
            size: job.key.image_size,
            boundaries: job.boundaries,
            device: self.device,
        };
        // One phase: every file is a step, as its batch starts or when it cannot be read.
        progress.start(Work::Backbone, job.inputs.len());
        let mut unreadable = Vec::new();
        let recorded = SharedActivations::record(
            &pass,
            job.inputs,
            job.cancel,
            &|n| progress.advance(n),
            &mut |s| {
                progress.advance(1);
                unreadable.push(s);
            },
        );
        progress.finish();
        // Told once the bar is gone, so the warnings are not drawn over.
        unreadable.iter().for_each(|s| notice(Notice::Skipped(s)));
        let activations = recorded?;
        Ok(Frozen {
            images: activations.images(),
            views: activations.views(),
            activations,
            from_cache: 0,
        })
    }
}
