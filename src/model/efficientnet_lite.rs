//! EfficientNet-Lite0 on candle (NHWC inside), loaded from the checkpoint's own key names.
//!
//! Stem conv3x3/s2 -> BN -> ReLU6; 16 MBConv blocks without squeeze-excite (ReLU6 after the
//! expand and depthwise BN, none after the project BN, residual when stride 1 and in == out);
//! head conv1x1 320 -> 1280 -> BN -> ReLU6; mean over H, W. BN eps 1e-3, TensorFlow "SAME"
//! padding (stride-2 convs put the extra pixel bottom/right), inputs `(x - 127.5) / 128`.

use super::depthwise::same_padding;
use super::frozen::{run_recording, trainable_copies, Backbone, Recorded, TrainableTail};
use super::layers::{BatchNorm, ConvBn};
use super::relu6::relu6;
use super::weights::Checkpoint;
use crate::catalogue::{BackboneInfo, BackboneKind};
use candle_core::{Device, Result, Tensor, Var};
use std::collections::BTreeSet;
use std::path::Path;

const BN_EPS: f64 = 1e-3;
const STEM_CHANNELS: usize = 32;
const HEAD_IN: usize = 320;
/// Block count and feature width, as catalogued.
const INFO: &BackboneInfo = BackboneKind::EfficientNetLite0.info();
/// (kernel, stride, expand ratio, in channels, out channels, repeats) per stage.
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
];

/// The shape of one MBConv block.
#[derive(Clone, Copy, Debug)]
struct BlockShape {
    kernel: usize,
    stride: usize,
    expand: usize,
    cin: usize,
    cout: usize,
}

fn block_shapes() -> Vec<BlockShape> {
    let mut shapes = Vec::with_capacity(INFO.blocks);
    for (kernel, stride, expand, cin, cout, repeats) in STAGES {
        for i in 0..repeats {
            shapes.push(BlockShape {
                kernel,
                stride: if i == 0 { stride } else { 1 },
                expand,
                cin: if i == 0 { cin } else { cout },
                cout,
            });
        }
    }
    shapes
}

/// One inverted-residual block.
#[derive(Clone)]
pub struct MbConv {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl MbConv {
    fn load(ckpt: &Checkpoint, index: usize, shape: BlockShape) -> anyhow::Result<Self> {
        let p = format!("_blocks.{index}");
        let mid = shape.cin * shape.expand;
        let expand = if shape.expand == 1 {
            None
        } else {
            let names = (format!("{p}._expand_conv"), format!("{p}._bn0"));
            Some(ConvBn::pointwise(
                ckpt,
                &names.0,
                &names.1,
                (shape.cin, mid),
                BN_EPS,
            )?)
        };
        let dw = (format!("{p}._depthwise_conv"), format!("{p}._bn1"));
        let pj = (format!("{p}._project_conv"), format!("{p}._bn2"));
        Ok(MbConv {
            expand,
            depthwise: ConvBn::depthwise(
                ckpt,
                &dw.0,
                &dw.1,
                (mid, shape.kernel, shape.stride),
                BN_EPS,
            )?,
            project: ConvBn::pointwise(ckpt, &pj.0, &pj.1, (mid, shape.cout), BN_EPS)?,
            residual: shape.stride == 1 && shape.cin == shape.cout,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = match &self.expand {
            Some(expand) => relu6(&expand.forward(x)?)?,
            None => x.clone(),
        };
        h = relu6(&self.depthwise.forward(&h)?)?;
        h = self.project.forward(&h)?;
        if self.residual {
            h = (h + x)?;
        }
        Ok(h)
    }

    fn trainable(&self) -> Result<(MbConv, Vec<Var>)> {
        let mut vars = Vec::new();
        let mut take = |layer: &ConvBn| -> Result<ConvBn> {
            let (layer, v) = layer.trainable()?;
            vars.extend(v);
            Ok(layer)
        };
        let block = MbConv {
            expand: self.expand.as_ref().map(&mut take).transpose()?,
            depthwise: take(&self.depthwise)?,
            project: take(&self.project)?,
            residual: self.residual,
        };
        Ok((block, vars))
    }
}

/// The stem: a dense 3x3/s2 convolution on the NCHW image, then BN and ReLU6, output NHWC.
#[derive(Clone)]
struct Stem {
    weight: Tensor,
    bn: BatchNorm,
}

impl Stem {
    fn forward(&self, images: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = images.dims4()?;
        let (_, top, bottom) = same_padding(h, 3, 2);
        let (_, left, right) = same_padding(w, 3, 2);
        let x = images
            .pad_with_zeros(2, top, bottom)?
            .pad_with_zeros(3, left, right)?
            .conv2d(&self.weight, 0, 2, 1, 1)?
            .permute((0, 2, 3, 1))?;
        relu6(&self.bn.apply(&x)?.contiguous()?)
    }
}

/// The head convolution and the global average pool that give the pooled features.
#[derive(Clone)]
pub struct FeatureHead {
    conv: ConvBn,
}

impl FeatureHead {
    /// x [N, H, W, 320] -> pooled [N, 1280].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        relu6(&self.conv.forward(x)?)?.mean((1, 2))
    }
}

/// The whole pretrained network, frozen.
pub struct EfficientNetLite0 {
    stem: Stem,
    blocks: Vec<MbConv>,
    head: FeatureHead,
    classifier: Option<(Tensor, Tensor)>,
}

impl EfficientNetLite0 {
    pub fn load(path: &Path, device: &Device) -> anyhow::Result<Self> {
        let ckpt = Checkpoint::open(path, device, "EfficientNet-Lite0")?;
        let stem = Stem {
            weight: ckpt.get("_conv_stem.weight", &[STEM_CHANNELS, 3, 3, 3])?,
            bn: BatchNorm::load(&ckpt, "_bn0", STEM_CHANNELS, BN_EPS)?,
        };
        let blocks = block_shapes()
            .into_iter()
            .enumerate()
            .map(|(i, shape)| MbConv::load(&ckpt, i, shape))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let conv = ConvBn::pointwise(
            &ckpt,
            "_conv_head",
            "_bn1",
            (HEAD_IN, INFO.feature_dim),
            BN_EPS,
        )?;
        let classifier = ckpt.optional_linear("_fc", (1000, INFO.feature_dim))?;
        Ok(EfficientNetLite0 {
            stem,
            blocks,
            head: FeatureHead { conv },
            classifier,
        })
    }

    /// Normalised NCHW images -> NHWC activations entering block 0.
    pub fn stem(&self, images: &Tensor) -> Result<Tensor> {
        self.stem.forward(images)
    }

    /// Run blocks `from..to` on NHWC activations.
    pub fn blocks(&self, x: &Tensor, from: usize, to: usize) -> Result<Tensor> {
        self.blocks[from..to]
            .iter()
            .try_fold(x.clone(), |h, block| block.forward(&h))
    }

    pub fn head(&self) -> &FeatureHead {
        &self.head
    }

    /// Pooled features of normalised NCHW images.
    pub fn features(&self, images: &Tensor) -> Result<Tensor> {
        let x = self.blocks(&self.stem(images)?, 0, INFO.blocks)?;
        self.head.forward(&x)
    }

    /// ImageNet logits of pooled features, when the checkpoint has its classifier.
    pub fn imagenet_logits(&self, features: &Tensor) -> Option<Result<Tensor>> {
        super::frozen::imagenet_logits(features, &self.classifier)
    }

    /// A trainable copy of the last `depth` blocks and the head convolution.
    pub fn trainable_tail(&self, depth: usize) -> Result<(Vec<MbConv>, FeatureHead, Vec<Var>)> {
        let (blocks, mut vars) =
            trainable_copies(&self.blocks[INFO.boundary_of(depth)..], |b| b.trainable())?;
        let (conv, v) = self.head.conv.trainable()?;
        vars.extend(v);
        Ok((blocks, FeatureHead { conv }, vars))
    }
}

impl Backbone for EfficientNetLite0 {
    fn info(&self) -> &'static BackboneInfo {
        INFO
    }

    fn preprocess(&self, rgb: &Tensor) -> Result<Tensor> {
        let x = rgb.to_dtype(candle_core::DType::F32)?;
        ((x - 127.5)? / 128.0)?.permute((0, 3, 1, 2))?.contiguous()
    }

    fn forward_recording(&self, input: &Tensor, boundaries: &BTreeSet<usize>) -> Result<Recorded> {
        let (x, recorded) =
            run_recording(self.stem(input)?, INFO.blocks, boundaries, |x, a, b| {
                self.blocks(x, a, b)
            })?;
        Ok(Recorded {
            pooled: self.head().forward(&x)?,
            boundaries: recorded,
        })
    }

    fn trainable_tail(&self, depth: usize) -> Result<Box<dyn TrainableTail>> {
        let (blocks, head, vars) = EfficientNetLite0::trainable_tail(self, depth)?;
        Ok(Box::new(EfficientNetTail { blocks, head, vars }))
    }
}

struct EfficientNetTail {
    blocks: Vec<MbConv>,
    head: FeatureHead,
    vars: Vec<Var>,
}

impl TrainableTail for EfficientNetTail {
    fn forward(&self, boundary: &Tensor) -> Result<Tensor> {
        let x = self
            .blocks
            .iter()
            .try_fold(boundary.clone(), |h, block| block.forward(&h))?;
        self.head.forward(&x)
    }

    fn vars(&self) -> &[Var] {
        &self.vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::frozen::pooled_width;

    /// The network `load` builds is the one catalogued: its blocks, their names, its width.
    #[test]
    fn loaded_blocks_and_feature_width_match_the_catalogue() {
        let weights =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/efficientnet_lite0.safetensors");
        let model = EfficientNetLite0::load(&weights, &Device::Cpu).unwrap();
        assert_eq!(model.blocks.len(), INFO.blocks);
        for (i, name) in INFO.block_names.iter().enumerate() {
            assert_eq!(
                *name,
                format!("_blocks.{i}"),
                "the checkpoint name of block {i}"
            );
        }
        assert_eq!(pooled_width(&model), INFO.feature_dim);
    }
}
