//! Convolution + inference-mode BatchNorm in NHWC, the BatchNorm folded into the convolution.
//!
//! BatchNorm always uses its running statistics (inference mode, also while fine-tuning), so it
//! is an affine map per channel: `y = conv(x) * scale + shift` with `scale = gamma / sqrt(var +
//! eps)` and `shift = beta - mean * scale`. Folding `scale` into the weights saves a pass over
//! every activation, and stays differentiable in the weights, gamma and beta when they train.

use super::depthwise::depthwise_conv2d;
use super::weights::Checkpoint;
use candle_core::{Result, Tensor, Var, D};

/// BatchNorm's parameters; `inv_std` = 1/sqrt(running_var + eps) is a constant.
#[derive(Clone)]
pub struct BatchNorm {
    pub gamma: Tensor,
    pub beta: Tensor,
    mean: Tensor,
    inv_std: Tensor,
}

impl BatchNorm {
    /// `prefix.weight`, `.bias`, `.running_mean`, `.running_var` of a checkpoint.
    pub fn load(
        ckpt: &Checkpoint,
        prefix: &str,
        channels: usize,
        eps: f64,
    ) -> anyhow::Result<Self> {
        let var = ckpt.get(&format!("{prefix}.running_var"), &[channels])?;
        Ok(BatchNorm {
            gamma: ckpt.get(&format!("{prefix}.weight"), &[channels])?,
            beta: ckpt.get(&format!("{prefix}.bias"), &[channels])?,
            mean: ckpt.get(&format!("{prefix}.running_mean"), &[channels])?,
            inv_std: (var + eps)?.sqrt()?.recip()?,
        })
    }

    /// The affine map on activations whose channel axis is last.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let (scale, shift) = self.scale_and_shift()?;
        x.broadcast_mul(&scale)?.broadcast_add(&shift)
    }

    /// Per-channel (scale, shift) of the affine map.
    pub fn scale_and_shift(&self) -> Result<(Tensor, Tensor)> {
        let scale = (&self.gamma * &self.inv_std)?;
        let shift = (&self.beta - (&self.mean * &scale)?)?;
        Ok((scale, shift))
    }
}

impl BatchNorm {
    /// A copy whose gamma and beta are fresh variables (for fine-tuning), with them.
    pub fn trainable(&self) -> Result<(BatchNorm, Vec<Var>)> {
        let gamma = Var::from_tensor(&self.gamma.copy()?)?;
        let beta = Var::from_tensor(&self.beta.copy()?)?;
        let bn = BatchNorm {
            gamma: gamma.as_tensor().clone(),
            beta: beta.as_tensor().clone(),
            ..self.clone()
        };
        Ok((bn, vec![gamma, beta]))
    }
}

/// Which convolution a [`ConvBn`] is; the weight layout follows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// 1x1 convolution, weight [Cin, Cout]: one GEMM over all pixels.
    Pointwise,
    /// Depthwise KxK convolution, weight [K, K, C], TF "SAME" padding.
    Depthwise { stride: usize },
}

/// A convolution followed by inference-mode BatchNorm, on NHWC activations.
#[derive(Clone)]
pub struct ConvBn {
    pub weight: Tensor,
    pub bn: BatchNorm,
    pub kind: ConvKind,
}

impl ConvBn {
    /// Load a 1x1 conv stored as [Cout, Cin, 1, 1] and its BatchNorm.
    pub fn pointwise(
        ckpt: &Checkpoint,
        conv: &str,
        bn: &str,
        (cin, cout): (usize, usize),
        eps: f64,
    ) -> anyhow::Result<Self> {
        let w = ckpt.get(&format!("{conv}.weight"), &[cout, cin, 1, 1])?;
        Ok(ConvBn {
            weight: w.reshape((cout, cin))?.t()?.contiguous()?,
            bn: BatchNorm::load(ckpt, bn, cout, eps)?,
            kind: ConvKind::Pointwise,
        })
    }

    /// Load a depthwise conv stored as [C, 1, K, K] and its BatchNorm.
    pub fn depthwise(
        ckpt: &Checkpoint,
        conv: &str,
        bn: &str,
        (channels, k, stride): (usize, usize, usize),
        eps: f64,
    ) -> anyhow::Result<Self> {
        let w = ckpt.get(&format!("{conv}.weight"), &[channels, 1, k, k])?;
        Ok(ConvBn {
            weight: super::depthwise::depthwise_weight_from_torch(&w)?,
            bn: BatchNorm::load(ckpt, bn, channels, eps)?,
            kind: ConvKind::Depthwise { stride },
        })
    }

    /// conv + BN on x [N, H, W, Cin] -> [N, Ho, Wo, Cout].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (scale, shift) = self.bn.scale_and_shift()?;
        // Both layouts keep the output channel last, so the scale broadcasts over it.
        let weight = self.weight.broadcast_mul(&scale)?;
        let y = match self.kind {
            ConvKind::Pointwise => {
                let (n, h, w, cin) = x.dims4()?;
                let cout = weight.dim(D::Minus1)?;
                x.reshape((n * h * w, cin))?
                    .matmul(&weight)?
                    .reshape((n, h, w, cout))?
            }
            ConvKind::Depthwise { stride } => depthwise_conv2d(x, &weight, stride)?,
        };
        y.broadcast_add(&shift)
    }

    /// A copy whose weight, gamma and beta are fresh variables (for fine-tuning), with them.
    pub fn trainable(&self) -> Result<(ConvBn, Vec<Var>)> {
        let weight = Var::from_tensor(&self.weight.copy()?)?;
        let (bn, mut vars) = self.bn.trainable()?;
        let layer = ConvBn {
            weight: weight.as_tensor().clone(),
            bn,
            kind: self.kind,
        };
        vars.insert(0, weight);
        Ok((layer, vars))
    }
}
