//! Placeholder depthwise convolution (candle grouped conv); replaced by the dedicated kernel.

use candle_core::{Result, Tensor};

/// x [N,H,W,C], w [K,K,C], TF SAME padding.
pub fn depthwise_conv2d(x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
    let (_, h, wd, c) = x.dims4()?;
    let k = w.dim(0)?;
    let (pt, pb) = same_padding(h, k, stride);
    let (pl, pr) = same_padding(wd, k, stride);
    let x = x.permute((0, 3, 1, 2))?;
    let x = x.pad_with_zeros(2, pt, pb)?.pad_with_zeros(3, pl, pr)?;
    let kernel = w.permute((2, 0, 1))?.unsqueeze(1)?.contiguous()?;
    x.conv2d(&kernel, 0, stride, 1, c)?
        .permute((0, 2, 3, 1))?
        .contiguous()
}

fn same_padding(size: usize, k: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + k).saturating_sub(size);
    (total / 2, total - total / 2)
}

pub fn depthwise_weight_from_torch(w: &Tensor) -> Result<Tensor> {
    w.squeeze(1)?.permute((1, 2, 0))?.contiguous()
}
