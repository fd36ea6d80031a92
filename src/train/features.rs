//! One frozen backbone pass over the images as they decode, recording every activation the plan
//! needs.

use super::rows::RecordedRows;
use super::Interrupted;
use crate::data::decode::Skipped;
use crate::data::pass_input::PassInput;
use crate::data::stream::Streamed;
use crate::data::Sample;
use crate::model::frozen::FrozenForward;
use crate::model::Recorded;
use crate::trial::{Augment, TrainSettings, ViewSet};
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

/// The augmented views of a split's images: row `rows[v][i]` of `all` holds view v of image i.
pub struct ViewRows {
    pub all: RecordedRows,
    pub rows: Vec<Vec<u32>>,
}

/// The frozen work of a study: computed once, shared by every trial.
pub struct FeatureBank {
    pub train: Activations,
    pub val: Activations,
    /// The views of the training images, per view set its trials use (validation has none).
    pub train_views: HashMap<ViewSet, ViewRows>,
}

impl FeatureBank {
    /// Whether the recorded work holds what a trial with `settings` trains on: the input of
    /// its first fine-tuned block (`boundary`, if any) and its augmented views.
    pub fn holds(&self, boundary: Option<usize>, settings: &TrainSettings) -> bool {
        let recorded = boundary.is_none_or(|b| self.train.frozen.boundaries.contains_key(&b));
        let views = settings.augment().is_none_or(|a| {
            self.train_views
                .get(&a.set)
                .is_some_and(|v| v.rows.len() >= a.views)
        });
        recorded && views
    }
}

/// Activations of many inputs (images, and augmented views of some), looked up by input: one
/// frozen pass shared by every study that uses the same backbone, weights and image size (e.g.
/// seven attributes of one photo set).
pub struct SharedActivations {
    rows: HashMap<PassInput, u32>,
    frozen: RecordedRows,
}

impl SharedActivations {
    /// Record the frozen pass over `inputs` as they decode (see [`FrozenForward::streamed`]),
    /// keeping the pooled features and the pass's boundaries. Files that are not readable
    /// images are left out and told to `skipped` (once: not again for each view of one);
    /// `on_batch(n)` reports progress in inputs.
    pub fn record(
        pass: &FrozenForward,
        inputs: &[PassInput],
        cancel: &AtomicBool,
        on_batch: &(dyn Fn(usize) + Sync),
        skipped: &mut dyn FnMut(Skipped),
    ) -> anyhow::Result<SharedActivations> {
        let before_batch = stop_on_cancel(cancel, on_batch);
        let decode = |input: &PassInput| input.decode(pass.size, None);
        let (mut outputs, mut kept) = (Vec::new(), Vec::new());
        pass.streamed(inputs, &decode, &before_batch, &mut |event| {
            match event {
                Streamed::Unreadable(i, _) if inputs[i].view.is_some() => on_batch(1),
                Streamed::Unreadable(i, reason) => skipped(Skipped {
                    path: inputs[i].path.clone(),
                    reason: reason.to_string(),
                }),
                Streamed::Worked(items, recorded) => {
                    kept.extend(items.into_iter().map(|i| inputs[i].clone()));
                    outputs.push(recorded);
                }
            }
            Ok(())
        })?;
        let frozen = RecordedRows::in_memory(Recorded::cat(outputs)?, pass.device);
        Ok(SharedActivations::new(frozen, kept))
    }

    /// Rows `frozen` of `inputs` (row i = input i).
    pub fn new(frozen: RecordedRows, inputs: Vec<PassInput>) -> SharedActivations {
        let rows = inputs
            .into_iter()
            .enumerate()
            .map(|(i, input)| (input, i as u32))
            .collect();
        SharedActivations { rows, frozen }
    }

    /// How many images have rows (as they are, not counting views).
    pub fn images(&self) -> usize {
        self.rows.keys().filter(|i| i.view.is_none()).count()
    }

    /// How many augmented views have rows.
    pub fn views(&self) -> usize {
        self.rows.len() - self.images()
    }

    /// One study's split: the rows of those `samples` that were recorded (files that did not
    /// decode are left out), with the study's own labels. Never augmented.
    pub fn select(&self, samples: &[Sample], device: &Device) -> Result<Activations> {
        let kept: Vec<(u32, &Sample)> = samples
            .iter()
            .filter_map(|s| {
                let row = self.rows.get(&PassInput::plain(&s.path));
                row.map(|&row| (row, s))
            })
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

impl SharedActivations {
    /// The rows of `augment`'s views of the images `files` (a split as [`Self::select`] gave
    /// it), in that order; a view that was not recorded falls back to the image as it is.
    pub fn select_views(&self, files: &[PathBuf], augment: &Augment) -> ViewRows {
        let rows = (0..augment.views)
            .map(|number| {
                files
                    .iter()
                    .map(|path| {
                        let view = PassInput {
                            path: path.clone(),
                            view: Some((augment.set, number)),
                        };
                        let row = self.rows.get(&view);
                        *row.or_else(|| self.rows.get(&PassInput::plain(path)))
                            .expect("select gave only recorded files")
                    })
                    .collect()
            })
            .collect();
        ViewRows {
            all: self.frozen.clone(),
            rows,
        }
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
    use crate::data::decode::decode_file;
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
        let inputs: Vec<PassInput> = samples.iter().map(|s| PassInput::plain(&s.path)).collect();
        let shared =
            SharedActivations::record(&pass, &inputs, &AtomicBool::new(false), &|_| {}, &mut |s| {
                skipped.push(s.path)
            })
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
