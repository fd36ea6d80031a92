//! Depthwise 2-D convolution (NHWC, TensorFlow "SAME" padding) as a fast, differentiable CPU op.
//!
//! candle's grouped convolution runs one convolution per channel; here one pass over NHWC data
//! keeps the channels innermost and contiguous, so the inner loops vectorise. Forward, grad-input
//! and grad-weight are parallel over image rows; every output element is summed in a fixed order,
//! so results do not depend on thread scheduling. Tensors on other devices (CUDA) take
//! [`depthwise_conv2d_taps`], a composite of candle ops that autograd differentiates anywhere;
//! the tests hold it to this kernel, forward and backward.

use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Upper bound on the per-task partial sums that the weight gradient adds up at the end.
const MAX_WEIGHT_GRAD_BLOCKS: usize = 32;

/// Output size and padding (before, after) of TensorFlow "SAME" padding along one axis:
/// `out = ceil(size / stride)`, the odd extra pixel of padding goes after.
pub fn same_padding(size: usize, k: usize, stride: usize) -> (usize, usize, usize) {
    let out = size.div_ceil(stride);
    let total = (out.saturating_sub(1) * stride + k).saturating_sub(size);
    (out, total / 2, total - total / 2)
}

/// Depthwise convolution of `x` [N, H, W, C] with `w` [K, K, C], TF-SAME padding, giving
/// [N, ceil(H/stride), ceil(W/stride), C]. Differentiable in both `x` and `w`.
pub fn depthwise_conv2d(x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
    let geometry = Geometry::of(x, w, stride)?;
    if !x.device().is_cpu() || !w.device().is_cpu() {
        return depthwise_conv2d_taps(x, w, stride);
    }
    x.contiguous()?
        .apply_op2(&w.contiguous()?, DepthwiseConv2d { geometry })
}

/// Converts a PyTorch depthwise kernel [C, 1, K, K] to this module's layout [K, K, C].
pub fn depthwise_weight_from_torch(w: &Tensor) -> Result<Tensor> {
    let (c, one, kh, kw) = w.dims4()?;
    if one != 1 || kh != kw {
        bail!("depthwise weight must be [C, 1, K, K], got {:?}", w.dims());
    }
    w.reshape((c, kh, kw))?.permute((1, 2, 0))?.contiguous()
}

/// The same convolution as a sum over the K*K kernel taps: each tap is a shifted, strided view of
/// the zero-padded input times that tap's per-channel weights. Only candle ops (pad, reshape,
/// narrow, broadcast_mul, add), so it runs and differentiates on every device, in K*K
/// element-wise launches instead of one conv per channel. The device path for non-CPU tensors.
///
/// The stride is taken without a strided slice: the padded input [N, Hq*s, Wq*s, C] is viewed as
/// [N, Hq, s, Wq, s, C], so padded row `oh*s + kh` is (row `oh + kh/s`, phase `kh%s`).
pub fn depthwise_conv2d_taps(x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
    let g = Geometry::of(x, w, stride)?;
    let s = stride;
    // Rows (cols) of the phase view: enough that oh + kh/s stays inside for every tap.
    let hq = g.ho + (g.k - 1) / s;
    let wq = g.wo + (g.k - 1) / s;
    let padded = x
        .pad_with_zeros(1, g.pad_top, hq * s - g.h - g.pad_top)?
        .pad_with_zeros(2, g.pad_left, wq * s - g.w - g.pad_left)?
        .reshape((g.n, hq, s, wq, s, g.c))?;
    let mut sum: Option<Tensor> = None;
    for kh in 0..g.k {
        let rows = padded.narrow(1, kh / s, g.ho)?.narrow(2, kh % s, 1)?;
        for kw in 0..g.k {
            let tap = rows
                .narrow(3, kw / s, g.wo)?
                .narrow(4, kw % s, 1)?
                .squeeze(4)?
                .squeeze(2)?;
            let weight = w.narrow(0, kh, 1)?.narrow(1, kw, 1)?.reshape(g.c)?;
            let term = tap.broadcast_mul(&weight)?;
            sum = Some(match sum {
                None => term,
                Some(total) => (total + term)?,
            });
        }
    }
    // Geometry::of rejects k == 0, so there was at least one tap.
    sum.ok_or_else(|| candle_core::Error::Msg("depthwise_conv2d_taps: no taps".into()))
}

/// The same convolution through candle's own grouped `conv2d` (one conv per channel): slow, but
/// works on every device. An independent reference in tests.
pub fn depthwise_conv2d_grouped(x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
    let g = Geometry::of(x, w, stride)?;
    let (_, _, pad_bottom) = same_padding(g.h, g.k, stride);
    let (_, _, pad_right) = same_padding(g.w, g.k, stride);
    let nchw = x
        .permute((0, 3, 1, 2))?
        .pad_with_zeros(2, g.pad_top, pad_bottom)?
        .pad_with_zeros(3, g.pad_left, pad_right)?;
    let kernel = w.permute((2, 0, 1))?.unsqueeze(1)?.contiguous()?;
    nchw.conv2d(&kernel, 0, stride, 1, g.c)?
        .permute((0, 2, 3, 1))?
        .contiguous()
}

/// Every size of one depthwise convolution, checked once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    k: usize,
    stride: usize,
    ho: usize,
    wo: usize,
    pad_top: usize,
    pad_left: usize,
}

impl Geometry {
    /// Validates dtypes, ranks and sizes of the operands and derives the output geometry.
    fn of(x: &Tensor, w: &Tensor, stride: usize) -> Result<Geometry> {
        if x.dtype() != DType::F32 || w.dtype() != DType::F32 {
            bail!(
                "depthwise_conv2d needs f32 tensors, got x {:?} and w {:?}",
                x.dtype(),
                w.dtype()
            );
        }
        let (n, h, w_in, c) = match x.dims() {
            &[n, h, w, c] => (n, h, w, c),
            dims => bail!("depthwise_conv2d: x must be [N, H, W, C], got {dims:?}"),
        };
        let k = match w.dims() {
            &[kh, kw, wc] if kh == kw && wc == c => kh,
            dims => bail!(
                "depthwise_conv2d: w must be [K, K, {c}] for x {:?}, got {dims:?}",
                x.dims()
            ),
        };
        if stride == 0 || k == 0 || n == 0 || h == 0 || w_in == 0 || c == 0 {
            bail!(
                "depthwise_conv2d: empty size or zero stride (x {:?}, w {:?}, stride {stride})",
                x.dims(),
                w.dims()
            );
        }
        Ok(Geometry::new(n, h, w_in, c, k, stride))
    }

    fn new(n: usize, h: usize, w: usize, c: usize, k: usize, stride: usize) -> Geometry {
        let (ho, pad_top, _) = same_padding(h, k, stride);
        let (wo, pad_left, _) = same_padding(w, k, stride);
        Geometry {
            n,
            h,
            w,
            c,
            k,
            stride,
            ho,
            wo,
            pad_top,
            pad_left,
        }
    }

    fn input_shape(&self) -> Shape {
        Shape::from((self.n, self.h, self.w, self.c))
    }

    fn output_shape(&self) -> Shape {
        Shape::from((self.n, self.ho, self.wo, self.c))
    }

    fn weight_shape(&self) -> Shape {
        Shape::from((self.k, self.k, self.c))
    }

    /// Length of one input row (W pixels of C channels).
    fn input_row_len(&self) -> usize {
        self.w * self.c
    }

    /// Length of one output row (Wo pixels of C channels).
    fn output_row_len(&self) -> usize {
        self.wo * self.c
    }

    /// Input row read by output row `oh` through kernel row `kh`, if inside the image.
    fn input_row_of(&self, oh: usize, kh: usize) -> Option<usize> {
        input_position(oh, kh, self.stride, self.pad_top, self.h)
    }

    /// Input column read by output column `ow` through kernel column `kw`, if inside the image.
    fn input_col_of(&self, ow: usize, kw: usize) -> Option<usize> {
        input_position(ow, kw, self.stride, self.pad_left, self.w)
    }

    /// Output row that reads input row `ih` through kernel row `kh`, if any.
    fn output_row_of(&self, ih: usize, kh: usize) -> Option<usize> {
        output_position(ih, kh, self.stride, self.pad_top, self.ho)
    }

    /// Output column that reads input column `iw` through kernel column `kw`, if any.
    fn output_col_of(&self, iw: usize, kw: usize) -> Option<usize> {
        output_position(iw, kw, self.stride, self.pad_left, self.wo)
    }
}

/// Unpadded input position of output `out` and tap `tap`, or None when it falls in the padding.
fn input_position(out: usize, tap: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
    let padded = out * stride + tap;
    padded.checked_sub(pad).filter(|&position| position < size)
}

/// Output position whose tap `tap` reads input position `input`, if one exists.
fn output_position(
    input: usize,
    tap: usize,
    stride: usize,
    pad: usize,
    out_size: usize,
) -> Option<usize> {
    let padded = (input + pad).checked_sub(tap)?;
    if padded % stride != 0 {
        return None;
    }
    Some(padded / stride).filter(|&out| out < out_size)
}

/// Defines `$name`, which runs `$body` compiled for AVX2 (8-wide vectors) when the CPU has it
/// and the portable build otherwise. Without FMA, both give bit-identical results.
macro_rules! avx2_dispatch {
    ($name:ident, $avx2:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe { $avx2($($arg),*) };
            }
            $body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn $avx2($($arg: $ty),*) {
            $body($($arg),*)
        }
    };
}

avx2_dispatch!(forward_row, forward_row_avx2, forward_row_body,
    (g: &Geometry, x: &[f32], w: &[f32], n: usize, oh: usize, y_row: &mut [f32]));
avx2_dispatch!(grad_input_row, grad_input_row_avx2, grad_input_row_body,
    (g: &Geometry, grad_y: &[f32], w: &[f32], n: usize, ih: usize, gx_row: &mut [f32]));
avx2_dispatch!(grad_weight_row, grad_weight_row_avx2, grad_weight_row_body,
    (g: &Geometry, x: &[f32], grad_y: &[f32], n: usize, oh: usize, acc: &mut [f32]));

/// `acc[i] += a[i] * b[i]` over the common length; written so that it vectorises.
#[inline(always)]
fn multiply_accumulate(acc: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, &x), &y) in acc.iter_mut().zip(a).zip(b) {
        *o += x * y;
    }
}

/// The contiguous f32 data of a storage, or an error naming the op.
/// The f32 data of a contiguous operand (custom ops read storages directly).
pub(crate) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: operand must be contiguous"),
    }
}

/// Checks that an operand has the shape the geometry expects.
fn expect_shape(layout: &Layout, expected: &Shape, op: &str, what: &str) -> Result<()> {
    if layout.shape() != expected {
        bail!(
            "{op}: {what} has shape {:?}, expected {expected:?}",
            layout.shape()
        );
    }
    Ok(())
}

/// Forward op: y = depthwise_conv(x, w); its backward uses the two ops below.
struct DepthwiseConv2d {
    geometry: Geometry,
}

impl CustomOp2 for DepthwiseConv2d {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        w: &CpuStorage,
        w_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.geometry;
        expect_shape(x_layout, &g.input_shape(), self.name(), "x")?;
        expect_shape(w_layout, &g.weight_shape(), self.name(), "w")?;
        let x = contiguous_f32(x, x_layout, self.name())?;
        let w = contiguous_f32(w, w_layout, self.name())?;
        let y = forward(g, x, w);
        Ok((CpuStorage::F32(y), g.output_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad_y: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let geometry = self.geometry;
        let grad_y = grad_y.contiguous()?;
        // An operand that tracks no gradient (frozen input or weight) gets none computed.
        let grad_x = x
            .track_op()
            .then(|| grad_y.apply_op2_no_bwd(w, &DepthwiseGradInput { geometry }))
            .transpose()?;
        let grad_w = w
            .track_op()
            .then(|| x.apply_op2_no_bwd(&grad_y, &DepthwiseGradWeight { geometry }))
            .transpose()?;
        Ok((grad_x, grad_w))
    }
}

/// Forward pass on contiguous NHWC data, parallel over (image, output row).
fn forward(g: &Geometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; g.n * g.ho * g.output_row_len()];
    y.par_chunks_mut(g.output_row_len())
        .enumerate()
        .for_each(|(row, y_row)| forward_row(g, x, w, row / g.ho, row % g.ho, y_row));
    y
}

/// One output row: every kernel tap whose input row is inside the image adds its contribution.
#[inline(always)]
fn forward_row_body(g: &Geometry, x: &[f32], w: &[f32], n: usize, oh: usize, y_row: &mut [f32]) {
    let (c, k) = (g.c, g.k);
    for kh in 0..k {
        let Some(ih) = g.input_row_of(oh, kh) else {
            continue;
        };
        let x_row = &x[(n * g.h + ih) * g.input_row_len()..][..g.input_row_len()];
        let w_row = &w[kh * k * c..][..k * c];
        for (ow, y_px) in y_row.chunks_exact_mut(c).enumerate() {
            for (kw, w_px) in w_row.chunks_exact(c).enumerate() {
                if let Some(iw) = g.input_col_of(ow, kw) {
                    multiply_accumulate(y_px, &x_row[iw * c..][..c], w_px);
                }
            }
        }
    }
}

/// Backward op for the input: grad_x = conv_transpose(grad_y, w). Operands (grad_y, w).
struct DepthwiseGradInput {
    geometry: Geometry,
}

impl CustomOp2 for DepthwiseGradInput {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        grad_y: &CpuStorage,
        grad_y_layout: &Layout,
        w: &CpuStorage,
        w_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.geometry;
        expect_shape(grad_y_layout, &g.output_shape(), self.name(), "grad_y")?;
        expect_shape(w_layout, &g.weight_shape(), self.name(), "w")?;
        let grad_y = contiguous_f32(grad_y, grad_y_layout, self.name())?;
        let w = contiguous_f32(w, w_layout, self.name())?;
        let grad_x = grad_input(g, grad_y, w);
        Ok((CpuStorage::F32(grad_x), g.input_shape()))
    }
}

/// Input gradient, parallel over (image, input row): each input row gathers from the output rows
/// that read it, so no two tasks write the same element.
fn grad_input(g: &Geometry, grad_y: &[f32], w: &[f32]) -> Vec<f32> {
    let mut grad_x = vec![0f32; g.n * g.h * g.input_row_len()];
    grad_x
        .par_chunks_mut(g.input_row_len())
        .enumerate()
        .for_each(|(row, gx_row)| grad_input_row(g, grad_y, w, row / g.h, row % g.h, gx_row));
    grad_x
}

/// One input row of the input gradient.
#[inline(always)]
fn grad_input_row_body(
    g: &Geometry,
    grad_y: &[f32],
    w: &[f32],
    n: usize,
    ih: usize,
    gx_row: &mut [f32],
) {
    let (c, k) = (g.c, g.k);
    for kh in 0..k {
        let Some(oh) = g.output_row_of(ih, kh) else {
            continue;
        };
        let gy_row = &grad_y[(n * g.ho + oh) * g.output_row_len()..][..g.output_row_len()];
        let w_row = &w[kh * k * c..][..k * c];
        for (iw, gx_px) in gx_row.chunks_exact_mut(c).enumerate() {
            for (kw, w_px) in w_row.chunks_exact(c).enumerate() {
                if let Some(ow) = g.output_col_of(iw, kw) {
                    multiply_accumulate(gx_px, &gy_row[ow * c..][..c], w_px);
                }
            }
        }
    }
}

/// Backward op for the weight: grad_w[kh, kw, c] = sum over n, oh, ow of grad_y * x.
/// Operands (x, grad_y).
struct DepthwiseGradWeight {
    geometry: Geometry,
}

impl CustomOp2 for DepthwiseGradWeight {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        grad_y: &CpuStorage,
        grad_y_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.geometry;
        expect_shape(x_layout, &g.input_shape(), self.name(), "x")?;
        expect_shape(grad_y_layout, &g.output_shape(), self.name(), "grad_y")?;
        let x = contiguous_f32(x, x_layout, self.name())?;
        let grad_y = contiguous_f32(grad_y, grad_y_layout, self.name())?;
        let grad_w = grad_weight(g, x, grad_y);
        Ok((CpuStorage::F32(grad_w), g.weight_shape()))
    }
}

/// Weight gradient: the (image, output row) pairs are cut into at most
/// [`MAX_WEIGHT_GRAD_BLOCKS`] fixed blocks, each summed into its own accumulator in parallel;
/// the accumulators are then added in block order (parallel over channels), so the result is
/// the same on every run.
fn grad_weight(g: &Geometry, x: &[f32], grad_y: &[f32]) -> Vec<f32> {
    let rows = g.n * g.ho;
    let rows_per_block = rows.div_ceil(MAX_WEIGHT_GRAD_BLOCKS);
    let weight_len = g.k * g.k * g.c;
    let blocks: Vec<Vec<f32>> = (0..rows.div_ceil(rows_per_block))
        .into_par_iter()
        .map(|block| {
            let mut acc = vec![0f32; weight_len];
            let end = ((block + 1) * rows_per_block).min(rows);
            for row in block * rows_per_block..end {
                grad_weight_row(g, x, grad_y, row / g.ho, row % g.ho, &mut acc);
            }
            acc
        })
        .collect();
    sum_in_order(&blocks, weight_len)
}

/// Adds the contributions of one output row to the weight-gradient accumulator.
#[inline(always)]
fn grad_weight_row_body(
    g: &Geometry,
    x: &[f32],
    grad_y: &[f32],
    n: usize,
    oh: usize,
    acc: &mut [f32],
) {
    let (c, k) = (g.c, g.k);
    let gy_row = &grad_y[(n * g.ho + oh) * g.output_row_len()..][..g.output_row_len()];
    for kh in 0..k {
        let Some(ih) = g.input_row_of(oh, kh) else {
            continue;
        };
        let x_row = &x[(n * g.h + ih) * g.input_row_len()..][..g.input_row_len()];
        let acc_row = &mut acc[kh * k * c..][..k * c];
        for (ow, gy_px) in gy_row.chunks_exact(c).enumerate() {
            for (kw, acc_px) in acc_row.chunks_exact_mut(c).enumerate() {
                if let Some(iw) = g.input_col_of(ow, kw) {
                    multiply_accumulate(acc_px, &x_row[iw * c..][..c], gy_px);
                }
            }
        }
    }
}

/// Element-wise sum of equally long vectors, always adding them in the given order.
fn sum_in_order(parts: &[Vec<f32>], len: usize) -> Vec<f32> {
    const CHUNK: usize = 1024;
    let mut total = vec![0f32; len];
    total
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, out)| {
            for part in parts {
                for (o, &p) in out.iter_mut().zip(&part[i * CHUNK..]) {
                    *o += p;
                }
            }
        });
    total
}

#[cfg(test)]
#[path = "depthwise_tests.rs"]
mod tests;
