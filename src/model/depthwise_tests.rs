//! The depthwise op checked against TensorFlow's padding and candle's grouped convolution.

use super::*;
use candle_core::{Device, Var};

/// Deterministic pseudo-random values in [-1, 1) from a 64-bit LCG.
fn lcg_values(seed: u64, len: usize) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn random_tensor(seed: u64, dims: &[usize]) -> Tensor {
    let len = dims.iter().product();
    Tensor::from_vec(lcg_values(seed, len), dims, &Device::Cpu).unwrap()
}

/// Largest |a - b| / max(1, |b|) over all elements.
fn max_relative_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

/// (N, H, W, C, K, stride): odd and even sizes, N = 1, images smaller than the kernel.
const CASES: &[(usize, usize, usize, usize, usize, usize)] = &[
    (1, 5, 5, 16, 3, 1),
    (2, 7, 6, 24, 3, 2),
    (1, 8, 8, 17, 5, 2),
    (3, 4, 4, 40, 5, 1),
    (2, 9, 11, 8, 5, 2),
    (1, 3, 2, 33, 5, 1),
    (2, 1, 1, 5, 3, 2),
    (1, 6, 7, 1152, 5, 1),
    (2, 14, 14, 96, 3, 2),
];

#[test]
fn same_padding_matches_tensorflow() {
    assert_eq!(same_padding(56, 3, 2), (28, 0, 1));
    assert_eq!(same_padding(7, 3, 2), (4, 1, 1));
    assert_eq!(same_padding(4, 5, 1), (4, 2, 2));
    assert_eq!(same_padding(8, 5, 2), (4, 1, 2));
    assert_eq!(same_padding(1, 3, 2), (1, 1, 1));
    assert_eq!(same_padding(5, 1, 2), (3, 0, 0));
}

#[test]
fn forward_matches_candle_grouped_conv() {
    for (i, &(n, h, w, c, k, stride)) in CASES.iter().enumerate() {
        let x = random_tensor(2 * i as u64, &[n, h, w, c]);
        let wt = random_tensor(2 * i as u64 + 1, &[k, k, c]);
        let ours = depthwise_conv2d(&x, &wt, stride).unwrap();
        let reference = depthwise_conv2d_grouped(&x, &wt, stride).unwrap();
        let (ho, wo) = (h.div_ceil(stride), w.div_ceil(stride));
        assert_eq!(ours.dims(), &[n, ho, wo, c]);
        let diff = max_relative_diff(&ours, &reference);
        assert!(diff <= 1e-5, "case {i}: forward differs by {diff}");
    }
}

#[test]
fn forward_on_constant_input_counts_taps_inside_the_image() {
    // All-ones input and kernel: each output is the number of taps that land in the image.
    let x = Tensor::ones((1, 3, 3, 2), DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::ones((3, 3, 2), DType::F32, &Device::Cpu).unwrap();
    let y = depthwise_conv2d(&x, &w, 1).unwrap();
    let channel0 = y.narrow(3, 0, 1).unwrap().flatten_all().unwrap();
    let expected = [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0];
    assert_eq!(channel0.to_vec1::<f32>().unwrap(), expected);
}

#[test]
fn even_size_with_stride_two_pads_only_bottom_and_right() {
    // H = W = 4, K = 3, stride 2: TF pads 0 before and 1 after, so the first output sees a
    // full 3x3 window and the last row/column loses one tap row/column.
    let x = Tensor::ones((1, 4, 4, 1), DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::ones((3, 3, 1), DType::F32, &Device::Cpu).unwrap();
    let y = depthwise_conv2d(&x, &w, 2).unwrap().flatten_all().unwrap();
    assert_eq!(y.to_vec1::<f32>().unwrap(), [9.0, 6.0, 6.0, 4.0]);
}

/// Gradients of sum(conv(x, w) * r) with respect to x and w.
fn gradients(
    conv: fn(&Tensor, &Tensor, usize) -> Result<Tensor>,
    x: &Tensor,
    w: &Tensor,
    r: &Tensor,
    stride: usize,
) -> (Tensor, Tensor) {
    let x = Var::from_tensor(x).unwrap();
    let w = Var::from_tensor(w).unwrap();
    let loss = conv(x.as_tensor(), w.as_tensor(), stride)
        .unwrap()
        .mul(r)
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    (
        grads.get(x.as_tensor()).unwrap().clone(),
        grads.get(w.as_tensor()).unwrap().clone(),
    )
}

#[test]
fn backward_matches_candle_grouped_conv() {
    for (i, &(n, h, w, c, k, stride)) in CASES.iter().enumerate() {
        let seed = 100 + 3 * i as u64;
        let x = random_tensor(seed, &[n, h, w, c]);
        let wt = random_tensor(seed + 1, &[k, k, c]);
        let r = random_tensor(seed + 2, &[n, h.div_ceil(stride), w.div_ceil(stride), c]);
        let (gx, gw) = gradients(depthwise_conv2d, &x, &wt, &r, stride);
        let (ref_gx, ref_gw) = gradients(depthwise_conv2d_grouped, &x, &wt, &r, stride);
        assert_eq!(gx.dims(), x.dims());
        assert_eq!(gw.dims(), wt.dims());
        let dx = max_relative_diff(&gx, &ref_gx);
        let dw = max_relative_diff(&gw, &ref_gw);
        assert!(dx <= 1e-4, "case {i}: grad_x differs by {dx}");
        assert!(dw <= 1e-4, "case {i}: grad_w differs by {dw}");
    }
}

#[test]
fn frozen_input_gets_no_gradient_and_weight_gradient_is_unchanged() {
    let x = random_tensor(21, &[2, 6, 5, 12]);
    let w = Var::from_tensor(&random_tensor(22, &[3, 3, 12])).unwrap();
    let r = random_tensor(23, &[2, 3, 3, 12]);
    let loss = depthwise_conv2d(&x, w.as_tensor(), 2)
        .unwrap()
        .mul(&r)
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    assert!(grads.get(&x).is_none());
    let (_, ref_gw) = gradients(depthwise_conv2d_grouped, &x, w.as_tensor(), &r, 2);
    let gw = grads.get(w.as_tensor()).unwrap();
    assert!(max_relative_diff(gw, &ref_gw) <= 1e-4);
}

#[test]
fn portable_and_dispatched_kernels_agree_bitwise() {
    let g = Geometry::new(2, 7, 9, 37, 5, 2);
    let x = lcg_values(11, g.n * g.h * g.input_row_len());
    let w = lcg_values(12, g.k * g.k * g.c);
    let dispatched = forward(&g, &x, &w);
    let mut portable = vec![0f32; dispatched.len()];
    for (row, y_row) in portable.chunks_exact_mut(g.output_row_len()).enumerate() {
        forward_row_body(&g, &x, &w, row / g.ho, row % g.ho, y_row);
    }
    assert_eq!(dispatched, portable);
}

#[test]
fn non_contiguous_input_gives_the_same_result() {
    let nchw = random_tensor(7, &[2, 12, 5, 6]);
    let x = nchw.permute((0, 2, 3, 1)).unwrap();
    assert!(!x.is_contiguous());
    let w = random_tensor(8, &[3, 3, 12]);
    let ours = depthwise_conv2d(&x, &w, 2).unwrap();
    let reference = depthwise_conv2d(&x.contiguous().unwrap(), &w, 2).unwrap();
    assert_eq!(max_relative_diff(&ours, &reference), 0.0);
}

#[test]
fn torch_weight_layout_is_transposed() {
    let torch = Tensor::arange(0f32, 18.0, &Device::Cpu)
        .unwrap()
        .reshape((2, 1, 3, 3))
        .unwrap();
    let ours = depthwise_weight_from_torch(&torch).unwrap();
    assert_eq!(ours.dims(), &[3, 3, 2]);
    // ours[kh, kw, c] == torch[c, 0, kh, kw]
    let value = |kh: usize, kw: usize, c: usize| {
        ours.get(kh)
            .unwrap()
            .get(kw)
            .unwrap()
            .get(c)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert_eq!(value(0, 0, 0), 0.0);
    assert_eq!(value(1, 2, 0), 5.0);
    assert_eq!(value(2, 1, 1), 16.0);
    assert!(depthwise_weight_from_torch(&random_tensor(1, &[2, 2, 3, 3])).is_err());
}

#[test]
fn rejects_wrong_dtype_rank_and_channels() {
    let x = random_tensor(1, &[1, 4, 4, 8]);
    let w = random_tensor(2, &[3, 3, 8]);
    let x_f64 = x.to_dtype(DType::F64).unwrap();
    let error = depthwise_conv2d(&x_f64, &w, 1).unwrap_err().to_string();
    assert!(error.contains("f32"), "{error}");
    let x_rank3 = random_tensor(3, &[4, 4, 8]);
    let error = depthwise_conv2d(&x_rank3, &w, 1).unwrap_err().to_string();
    assert!(error.contains("[N, H, W, C]"), "{error}");
    let w_wrong_c = random_tensor(4, &[3, 3, 7]);
    let error = depthwise_conv2d(&x, &w_wrong_c, 1).unwrap_err().to_string();
    assert!(error.contains("[K, K, 8]"), "{error}");
    assert!(depthwise_conv2d(&x, &w, 0).is_err());
}

/// Largest |a - b| over all elements.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    a.sub(b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The depthwise layers of EfficientNet-Lite0 at 224 px (kernel, stride, input size, channels
/// cut to keep the test quick: the taps do not mix channels), then odd sizes and images smaller
/// than the kernel.
const DEVICE_CASES: &[(usize, usize, usize, usize, usize, usize)] = &[
    (2, 112, 112, 8, 3, 1),
    (2, 112, 112, 8, 3, 2),
    (2, 56, 56, 8, 3, 1),
    (2, 56, 56, 8, 5, 2),
    (2, 28, 28, 16, 5, 1),
    (2, 28, 28, 16, 3, 2),
    (2, 14, 14, 24, 3, 1),
    (2, 14, 14, 24, 5, 1),
    (2, 14, 14, 24, 5, 2),
    (2, 7, 7, 1152, 5, 1),
    (2, 7, 7, 40, 3, 1),
    (1, 9, 11, 8, 5, 2),
    (3, 4, 4, 40, 5, 1),
    (1, 3, 2, 33, 5, 1),
    (2, 1, 1, 5, 3, 2),
    (2, 7, 6, 24, 3, 2),
];

/// Forward and grad_x: within 1e-5 absolute (the forward pass is in fact bit-identical: the
/// taps are added in the kernel's order). grad_w: within 1e-5 of its largest element.
#[test]
fn device_path_equals_the_cpu_kernel_forward_and_backward() {
    for (i, &(n, h, w, c, k, stride)) in DEVICE_CASES.iter().enumerate() {
        let seed = 500 + 4 * i as u64;
        let x = random_tensor(seed, &[n, h, w, c]);
        let wt = random_tensor(seed + 1, &[k, k, c]);
        let ours = depthwise_conv2d(&x, &wt, stride).unwrap();
        let taps = depthwise_conv2d_taps(&x, &wt, stride).unwrap();
        let forward = max_abs_diff(&taps, &ours);
        assert!(forward <= 1e-5, "case {i}: forward differs by {forward}");
        let r = random_tensor(seed + 2, ours.dims());
        let (gx, gw) = gradients(depthwise_conv2d, &x, &wt, &r, stride);
        let (taps_gx, taps_gw) = gradients(depthwise_conv2d_taps, &x, &wt, &r, stride);
        let dx = max_abs_diff(&taps_gx, &gx);
        assert!(dx <= 1e-5, "case {i}: grad_x differs by {dx}");
        let dw = max_abs_diff(&taps_gw, &gw);
        // grad_w's elements are sums of up to N*Ho*Wo (here 25,088) products, |grad_w| up to
        // ~130: two summation orders differ by ~1e-4 there, so its bound scales with its size.
        let scale = max_abs_diff(&gw, &gw.zeros_like().unwrap()).max(1.0);
        assert!(
            dw <= 1e-5 * scale,
            "case {i}: grad_w differs by {dw} (largest |grad_w| {scale})"
        );
    }
}

#[test]
fn device_path_keeps_frozen_inputs_frozen() {
    let x = random_tensor(31, &[2, 6, 5, 12]);
    let w = Var::from_tensor(&random_tensor(32, &[3, 3, 12])).unwrap();
    let loss = depthwise_conv2d_taps(&x, w.as_tensor(), 2)
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    assert!(grads.get(&x).is_none());
    assert!(grads.get(w.as_tensor()).is_some());
    assert!(depthwise_conv2d_taps(&x.to_dtype(DType::F64).unwrap(), w.as_tensor(), 2).is_err());
}
