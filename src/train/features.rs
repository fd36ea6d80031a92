//! One frozen backbone pass over the images as they decode, recording every activation the plan
//! needs.

use super::rows::RecordedRows;
use super::Interrupted;
use crate::data::decode::{decode_file, Skipped};
use crate::data::stream::Streamed;
use crate::data::Sample;
use crate::model::frozen::FrozenForward;
use crate::model::Recorded;
use candle_core::{Device, Result, Tensor};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Frozen activations of one split, row i = image i, with what each row is.
pub struct Activations {
    /// Pooled features and the input of each recorded boundary block.
    pub frozen: RecordedRows,
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

/// Activations of many images, looked up by file: one frozen pass shared by every study that
/// uses the same backbone, weights and image size (e.g. seven attributes of one photo set).
pub struct SharedActivations {
    rows: HashMap<PathBuf, u32>,
    frozen: RecordedRows,
}

impl SharedActivations {
    /// Record the frozen pass over `samples` as they decode (see [`FrozenForward::streamed`];
    /// their labels are not used: each study brings its own), keeping the pooled features and
    /// the pass's boundaries. Files that are not readable images are left out and told to
    /// `skipped`; `on_batch(n)` reports progress in images.
    pub fn record(
        pass: &FrozenForward,
        samples: &[Sample],
        cancel: &AtomicBool,
        on_batch: &(dyn Fn(usize) + Sync),
        skipped: &mut dyn FnMut(Skipped),
    ) -> anyhow::Result<SharedActivations> {
        let before_batch = stop_on_cancel(cancel, on_batch);
        let decode = |sample: &Sample| decode_file(&sample.path, pass.size);
        let (mut outputs, mut kept) = (Vec::new(), Vec::new());
        pass.streamed(samples, &decode, &before_batch, &mut |event| {
            match event {
                Streamed::Unreadable(i, reason) => skipped(Skipped {
                    path: samples[i].path.clone(),
                    reason: reason.to_string(),
                }),
                Streamed::Worked(items, recorded) => {
                    kept.extend(items.into_iter().map(|i| &samples[i]));
                    outputs.push(recorded);
                }
            }
            Ok(())
        })?;
        let frozen = RecordedRows::in_memory(Recorded::cat(outputs)?, pass.device);
        let files = kept.iter().map(|s| s.path.clone()).collect();
        Ok(SharedActivations::new(frozen, files))
    }

    /// Rows `frozen` of the images `files` (row i = file i).
    pub fn new(frozen: RecordedRows, files: Vec<PathBuf>) -> SharedActivations {
        let rows = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.clone(), i as u32))
            .collect();
        SharedActivations { rows, frozen }
    }

    /// How many images have rows.
    pub fn images(&self) -> usize {
        self.rows.len()
    }

    /// One study's split: the rows of those `samples` that were recorded (files that did not
    /// decode are left out), with the study's own labels.
    pub fn select(&self, samples: &[Sample], device: &Device) -> Result<Activations> {
        let kept: Vec<(u32, &Sample)> = samples
            .iter()
            .filter_map(|s| self.rows.get(&s.path).map(|&row| (row, s)))
            .collect();
        let rows: Vec<u32> = kept.iter().map(|(row, _)| *row).collect();
        let labels: Vec<u32> = kept.iter().map(|(_, s)| s.label as u32).collect();
        Ok(Activations {
            frozen: self.frozen.pick(&rows),
            labels: Tensor::new(labels, device)?,
            files: kept.iter().map(|(_, s)| s.path.clone()).collect(),
        })
    }
}

/// What runs before each batch of a frozen pass: `on_batch(n)` for its n images, or
/// [`Interrupted`] once `cancel` is set.
pub fn stop_on_cancel<'a>(
    cancel: &'a AtomicBool,
    on_batch: &'a (dyn Fn(usize) + Sync),
) -> impl Fn(usize) -> anyhow::Result<()> + Sync + 'a {
    move |n| {
        if cancel.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        on_batch(n);
        Ok(())
    }
}

impl Activations {
    /// The distinct classes present (a split needs two to train and validate on).
    pub fn class_count(&self) -> Result<usize> {
        let labels: Vec<u32> = self.labels.to_vec1()?;
        Ok(labels.iter().collect::<BTreeSet<_>>().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::load_backbone;
    use candle_core::Device;
    use std::path::Path;

    /// Every float of `t`, as bits.
    fn bits(t: &Tensor) -> Vec<u32> {
        let values: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// The pass as it was before streaming: decode every file into one buffer (unreadable
    /// ones left out), then the backbone over runs of `batch` images from the first.
    fn decode_everything(pass: &FrozenForward, samples: &[Sample], batch: usize) -> Recorded {
        let pixels: Vec<u8> = samples
            .iter()
            .filter_map(|s| decode_file(&s.path, pass.size).ok())
            .flatten()
            .collect();
        let per_batch = batch * pass.size * pass.size * 3;
        let parts = pixels
            .chunks(per_batch)
            .map(|chunk| pass.batch(chunk).unwrap())
            .collect();
        Recorded::cat(parts).unwrap()
    }

    #[test]
    fn streamed_activations_equal_the_decode_everything_pass_bit_for_bit() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        let mut paths: Vec<_> = std::fs::read_dir(repo.join("data/footwear/boot"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        paths.truncate(75);
        // Unreadable files in the middle shift every later batch by one image each.
        let text = dir.path().join("notes.jpg");
        std::fs::write(&text, b"not a photo").unwrap();
        paths.insert(33, text.clone());
        paths.insert(50, dir.path().join("vanished.jpg"));
        let samples: Vec<Sample> = paths
            .iter()
            .map(|p| Sample {
                path: p.clone(),
                label: 1,
            })
            .collect();
        let device = Device::Cpu;
        let backbone = load_backbone(
            "efficientnet-lite0",
            &repo.join("models/efficientnet_lite0.safetensors"),
            &device,
        )
        .unwrap();
        let boundaries = BTreeSet::from([12, 14]);
        let pass = FrozenForward {
            backbone: backbone.as_ref(),
            size: 96,
            boundaries: &boundaries,
            device: &device,
        };
        assert!(
            pass.shape().batch < 75,
            "several batches: {:?}",
            pass.shape()
        );
        let mut skipped = Vec::new();
        let shared = SharedActivations::record(
            &pass,
            &samples,
            &AtomicBool::new(false),
            &|_| {},
            &mut |s| skipped.push(s.path),
        )
        .unwrap();
        assert_eq!(skipped, [text, dir.path().join("vanished.jpg")]);
        let expected = decode_everything(&pass, &samples, pass.shape().batch);
        let all = shared.select(&samples, &device).unwrap();
        let got = &all.frozen;
        assert_eq!(
            bits(&got.pooled.to_tensor().unwrap()),
            bits(&expected.pooled)
        );
        assert_eq!(got.boundaries.len(), 2);
        for (b, t) in &expected.boundaries {
            let recorded = got.boundaries[b].to_tensor().unwrap();
            assert_eq!(bits(&recorded), bits(t), "boundary {b}");
        }
        let kept: Vec<_> = paths.iter().filter(|p| p.starts_with(repo)).collect();
        assert_eq!(all.files.iter().collect::<Vec<_>>(), kept);
        let split = shared.select(&samples[70..], &device).unwrap();
        assert_eq!(split.files.len(), samples.len() - 70);
    }
}
