//! torchvision's InceptionV3 on candle (NCHW, eval mode, no aux logits, no transform_input).
//!
//! Stem: Conv2d_1a..4a with two 3x3/2 max pools (299 -> 35x35x192); 11 Mixed blocks (5b..7c)
//! that are the unfreeze boundaries; global average pool -> 2048 features; fc -> 1000 logits.
//! Loads torchvision's own key names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.*`).

use super::frozen::{
    imagenet_logits, run_recording, trainable_copies, Backbone, Recorded, TrainableTail,
};
use super::inception_blocks::{
    inception_a, inception_b, inception_c, inception_d, inception_e, BasicConv, Mixed,
};
use super::weights::Checkpoint;
use crate::catalogue::{BackboneInfo, BackboneKind};
use candle_core::{DType, Device, Result, Tensor, Var};
use std::collections::BTreeSet;
use std::path::Path;

/// Mixed block count (the unfreeze boundaries) and feature width, as catalogued.
const INFO: &BackboneInfo = BackboneKind::InceptionV3.info();
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The whole pretrained network, frozen.
pub struct InceptionV3 {
    stem: Vec<BasicConv>,
    blocks: Vec<Mixed>,
    classifier: Option<(Tensor, Tensor)>,
}

impl InceptionV3 {
    pub fn load(path: &Path, device: &Device) -> anyhow::Result<Self> {
        let ckpt = Checkpoint::open(path, device, "InceptionV3")?;
        let conv = |name: &str, cin, cout, k, stride, pad| {
            BasicConv::load(&ckpt, name, (name, cin, cout, (k, k), stride, (pad, pad)))
        };
        let stem = vec![
            conv("Conv2d_1a_3x3", 3, 32, 3, 2, 0)?,
            conv("Conv2d_2a_3x3", 32, 32, 3, 1, 0)?,
            conv("Conv2d_2b_3x3", 32, 64, 3, 1, 1)?,
            conv("Conv2d_3b_1x1", 64, 80, 1, 1, 0)?,
            conv("Conv2d_4a_3x3", 80, 192, 3, 1, 0)?,
        ];
        let c = &ckpt;
        let blocks = vec![
            inception_a(c, "Mixed_5b", 192, 32)?,
            inception_a(c, "Mixed_5c", 256, 64)?,
            inception_a(c, "Mixed_5d", 288, 64)?,
            inception_b(c, "Mixed_6a", 288)?,
            inception_c(c, "Mixed_6b", 768, 128)?,
            inception_c(c, "Mixed_6c", 768, 160)?,
            inception_c(c, "Mixed_6d", 768, 160)?,
            inception_c(c, "Mixed_6e", 768, 192)?,
            inception_d(c, "Mixed_7a", 768)?,
            inception_e(c, "Mixed_7b", 1280)?,
            inception_e(c, "Mixed_7c", 2048)?,
        ];
        let classifier = ckpt.optional_linear("fc", (1000, INFO.feature_dim))?;
        Ok(InceptionV3 {
            stem,
            blocks,
            classifier,
        })
    }

    /// Normalised NCHW images -> the input of Mixed_5b.
    pub fn stem(&self, images: &Tensor) -> Result<Tensor> {
        let s = &self.stem;
        let x = s[..3]
            .iter()
            .try_fold(images.clone(), |h, c| c.forward(&h))?;
        let x = x.max_pool2d_with_stride(3, 2)?;
        let x = s[3..].iter().try_fold(x, |h, c| c.forward(&h))?;
        x.max_pool2d_with_stride(3, 2)
    }

    /// Run Mixed blocks `from..to`.
    pub fn blocks(&self, x: &Tensor, from: usize, to: usize) -> Result<Tensor> {
        run_blocks(&self.blocks[from..to], x)
    }

    /// Pooled features of normalised NCHW images.
    pub fn features(&self, images: &Tensor) -> Result<Tensor> {
        self.blocks(&self.stem(images)?, 0, INFO.blocks)?
            .mean((2, 3))
    }

    /// ImageNet logits of pooled features, when the checkpoint has its classifier.
    pub fn imagenet_logits(&self, features: &Tensor) -> Option<Result<Tensor>> {
        imagenet_logits(features, &self.classifier)
    }
}

fn run_blocks(blocks: &[Mixed], x: &Tensor) -> Result<Tensor> {
    blocks.iter().try_fold(x.clone(), |h, b| b.forward(&h))
}

impl Backbone for InceptionV3 {
    fn info(&self) -> &'static BackboneInfo {
        INFO
    }

    fn preprocess(&self, rgb: &Tensor) -> Result<Tensor> {
        let device = rgb.device();
        let mean = Tensor::new(&MEAN, device)?;
        let std = Tensor::new(&STD, device)?;
        let x = (rgb.to_dtype(DType::F32)? / 255.0)?;
        x.broadcast_sub(&mean)?
            .broadcast_div(&std)?
            .permute((0, 3, 1, 2))?
            .contiguous()
    }

    fn forward_recording(&self, input: &Tensor, boundaries: &BTreeSet<usize>) -> Result<Recorded> {
        let (x, recorded) =
            run_recording(self.stem(input)?, INFO.blocks, boundaries, |x, a, b| {
                self.blocks(x, a, b)
            })?;
        Ok(Recorded {
            pooled: x.mean((2, 3))?,
            boundaries: recorded,
        })
    }

    fn trainable_tail(&self, depth: usize) -> Result<Box<dyn TrainableTail>> {
        let (blocks, vars) =
            trainable_copies(&self.blocks[INFO.boundary_of(depth)..], |b| b.trainable())?;
        Ok(Box::new(InceptionTail { blocks, vars }))
    }
}

/// The last Mixed blocks as variables, then the global average pool.
struct InceptionTail {
    blocks: Vec<Mixed>,
    vars: Vec<Var>,
}

impl TrainableTail for InceptionTail {
    fn forward(&self, boundary: &Tensor) -> Result<Tensor> {
        run_blocks(&self.blocks, boundary)?.mean((2, 3))
    }

    fn vars(&self) -> &[Var] {
        &self.vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::frozen::pooled_width;
    use std::path::PathBuf;

    /// The fixture weights (torchvision's shapes, seeded random values), or None (with a loud
    /// message) when they are absent outside CI, found as `tests/parity_inception.rs` finds them.
    fn fixture_weights() -> Option<PathBuf> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/inception_v3");
        if dir.is_dir() {
            return Some(dir.join("inception_v3_random_f16.safetensors"));
        }
        let message =
            "SKIPPED: InceptionV3 against the catalogue: ../shared/fixtures/inception_v3 not found";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("\n!!!!!!!!!!!!!!!!\n{message}\n!!!!!!!!!!!!!!!!\n");
        None
    }

    /// The network `load` builds is the one catalogued: its Mixed blocks and its width.
    #[test]
    fn loaded_blocks_and_feature_width_match_the_catalogue() {
        let Some(weights) = fixture_weights() else {
            return;
        };
        let model = InceptionV3::load(&weights, &Device::Cpu).unwrap();
        assert_eq!(model.blocks.len(), INFO.blocks);
        assert_eq!(pooled_width(&model), INFO.feature_dim);
    }
}
