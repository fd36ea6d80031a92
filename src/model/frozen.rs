//! What training needs from any backbone (one recording forward pass and a trainable tail), and
//! the helpers every implementation shares; it knows no implementation (`load` picks them).

use crate::catalogue::BackboneInfo;
use crate::data::decode::DecodeError;
use crate::data::stream::{decode_streamed, PixelBatch, StreamShape, Streamed};
use candle_core::{Device, Result, Tensor, Var};
use std::collections::{BTreeMap, BTreeSet};

/// What a frozen pass leaves behind, row i = image i: of one batch, or of a whole split.
pub struct Recorded {
    /// Pooled features [N, feature_dim].
    pub pooled: Tensor,
    /// The input of block `b` for each requested boundary `b`.
    pub boundaries: BTreeMap<usize, Tensor>,
}

impl Recorded {
    /// The rows of `parts` one after another (batches of one pass, in order).
    pub fn cat(parts: Vec<Recorded>) -> Result<Recorded> {
        let mut pooled = Vec::with_capacity(parts.len());
        let mut boundaries: BTreeMap<usize, Vec<Tensor>> = BTreeMap::new();
        for part in parts {
            pooled.push(part.pooled);
            for (b, t) in part.boundaries {
                boundaries.entry(b).or_default().push(t);
            }
        }
        Ok(Recorded {
            pooled: Tensor::cat(&pooled, 0)?,
            boundaries: boundaries
                .into_iter()
                .map(|(b, parts)| Ok((b, Tensor::cat(&parts, 0)?)))
                .collect::<Result<_>>()?,
        })
    }

    /// The rows at `index` (u32 [K]), in its order.
    pub fn rows(&self, index: &Tensor) -> Result<Recorded> {
        Ok(Recorded {
            pooled: self.pooled.index_select(index, 0)?,
            boundaries: self
                .boundaries
                .iter()
                .map(|(&b, t)| Ok((b, t.index_select(index, 0)?)))
                .collect::<Result<_>>()?,
        })
    }
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

/// The frozen backbone at one image size on one device, recording the inputs of `boundaries`.
pub struct FrozenForward<'a> {
    pub backbone: &'a dyn Backbone,
    pub size: usize,
    pub boundaries: &'a BTreeSet<usize>,
    pub device: &'a Device,
}

impl FrozenForward<'_> {
    /// One batch of images given as RGB bytes (`size` x `size`, HWC, one after another).
    pub fn batch(&self, pixels: &[u8]) -> Result<Recorded> {
        let n = pixels.len() / (self.size * self.size * 3);
        let rgb = Tensor::from_slice(pixels, (n, self.size, self.size, 3), self.device)?;
        let input = self.backbone.preprocess(&rgb)?;
        self.backbone.forward_recording(&input, self.boundaries)
    }

    /// How the pass is streamed, as `threads::policy` says for the device: on the CPU small
    /// batches side by side, one per core (two per core held more memory and ran no faster,
    /// `bench/frozen_pass.sh`); on a GPU larger ones, one after another; the next images
    /// decode meanwhile.
    pub fn shape(&self) -> StreamShape {
        let policy = crate::threads::policy(!self.device.is_cpu());
        StreamShape {
            batch: policy.forward_batch,
            side_by_side: if policy.parallel_batches {
                rayon::current_num_threads()
            } else {
                0
            },
        }
    }

    /// `items` decoded by `decode` at this size, through the backbone as they decode (see
    /// [`decode_streamed`]): the batches are runs of [`StreamShape::batch`] readable images
    /// from the first, whatever the cores. `before_batch(n)` runs before each batch of n
    /// images: it may report progress, or stop the pass with an error. `done` gets, in
    /// order, each input that did not decode and each batch's items and outputs.
    pub fn streamed<T: Sync>(
        &self,
        items: &[T],
        decode: &(dyn Fn(&T) -> std::result::Result<Vec<u8>, DecodeError> + Sync),
        before_batch: &(dyn Fn(usize) -> anyhow::Result<()> + Sync),
        done: &mut dyn FnMut(Streamed<Recorded>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let work = |pixels: &PixelBatch| -> anyhow::Result<Recorded> {
            before_batch(pixels.items.len())?;
            Ok(self.batch(&pixels.pixels)?)
        };
        decode_streamed(items, self.shape(), decode, &work, done)
    }
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

/// The width of the pooled features `backbone` computes (on one black image of its smallest
/// size), for tests that hold a loaded backbone to its catalogue entry.
#[cfg(test)]
pub(crate) fn pooled_width(backbone: &dyn Backbone) -> usize {
    let size = backbone.info().min_image_size;
    let rgb = Tensor::zeros((1, size, size, 3), candle_core::DType::U8, &Device::Cpu).unwrap();
    let input = backbone.preprocess(&rgb).unwrap();
    let recorded = backbone
        .forward_recording(&input, &BTreeSet::new())
        .unwrap();
    recorded.pooled.dim(1).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows `values` as pooled features [N, 1], and as the input of block 3, [N, 2].
    fn recorded(values: &[f32]) -> Recorded {
        let cpu = &Device::Cpu;
        let twice: Vec<f32> = values.iter().flat_map(|&v| [v, 10.0 * v]).collect();
        Recorded {
            pooled: Tensor::from_slice(values, (values.len(), 1), cpu).unwrap(),
            boundaries: BTreeMap::from([(
                3,
                Tensor::from_vec(twice, (values.len(), 2), cpu).unwrap(),
            )]),
        }
    }

    #[test]
    fn batches_join_in_order_and_rows_are_picked_by_index() {
        let all = Recorded::cat(vec![recorded(&[0.0, 1.0]), recorded(&[2.0])]).unwrap();
        let expected = recorded(&[0.0, 1.0, 2.0]);
        assert_eq!(
            all.pooled.to_vec2::<f32>().unwrap(),
            expected.pooled.to_vec2::<f32>().unwrap()
        );
        assert_eq!(
            all.boundaries[&3].to_vec2::<f32>().unwrap(),
            expected.boundaries[&3].to_vec2::<f32>().unwrap()
        );
        let index = Tensor::new(&[2u32, 0], &Device::Cpu).unwrap();
        let picked = all.rows(&index).unwrap();
        assert_eq!(picked.pooled.to_vec2::<f32>().unwrap(), [[2.0], [0.0]]);
        assert_eq!(
            picked.boundaries[&3].to_vec2::<f32>().unwrap(),
            [[2.0, 20.0], [0.0, 0.0]]
        );
    }
}
