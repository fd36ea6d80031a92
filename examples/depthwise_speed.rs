//! Times the NHWC depthwise-conv op against candle's grouped conv2d on EfficientNet-Lite0 shapes.
//!
//! Run with `cargo run --release --example depthwise_speed`. Prints the median of 5 runs for the
//! forward pass and for forward + backward (loss = sum(y * r)). candle's side is timed on an
//! already padded NCHW tensor, so it pays for the convolution alone. "loss only" is the same
//! loss's forward + backward on a leaf of the output's shape: candle's share of both f+b columns.
//! mimalloc is the allocator, as in gridsearch: with glibc's malloc every large temporary is a
//! fresh mmap, and the page faults cost more than the kernels.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use gridsearch::model::depthwise;

use candle_core::{Device, Result, Tensor, Var};
use std::time::{Duration, Instant};

const RUNS: usize = 5;

/// (label, N, H, W, C, K, stride).
const SHAPES: &[(&str, usize, usize, usize, usize, usize, usize)] = &[
    ("last block k5 s1", 32, 4, 4, 1152, 5, 1),
    ("last block k3 s1", 32, 4, 4, 1152, 3, 1),
    ("early block k3 s2", 32, 56, 56, 96, 3, 2),
];

fn main() -> Result<()> {
    println!(
        "{:<18} {:>24} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8}",
        "block",
        "x [N,H,W,C]",
        "fwd ours",
        "fwd candle",
        "speedup",
        "f+b ours",
        "f+b candle",
        "speedup"
    );
    for &(label, n, h, w, c, k, stride) in SHAPES {
        let x = pseudo_random(1, &[n, h, w, c])?;
        let wt = pseudo_random(2, &[k, k, c])?;
        let r = pseudo_random(3, &[n, h.div_ceil(stride), w.div_ceil(stride), c])?;
        let (x_nchw, wt_torch) = candle_operands(&x, &wt, stride)?;
        let r_nchw = r.permute((0, 3, 1, 2))?.contiguous()?;

        let ours = |x: &Tensor, w: &Tensor| depthwise::depthwise_conv2d(x, w, stride);
        let candle = |x: &Tensor, w: &Tensor| x.conv2d(w, 0, stride, 1, c);
        let fwd_ours = median_time(|| ours(&x, &wt).map(drop))?;
        let both_ours = median_time(|| forward_backward(&ours, &x, &wt, &r))?;
        let loss_only = median_time(|| forward_backward(&|y, _| Ok(y.clone()), &r, &wt, &r))?;
        let fwd_candle = median_time(|| candle(&x_nchw, &wt_torch).map(drop))?;
        let both_candle = median_time(|| forward_backward(&candle, &x_nchw, &wt_torch, &r_nchw))?;

        println!(
            "{label:<18} {:>24} {:>10} {:>10} {:>7.1}x {:>10} {:>10} {:>7.1}x {:>10}",
            format!("{:?} k{k} s{stride}", [n, h, w, c]),
            millis(fwd_ours),
            millis(fwd_candle),
            fwd_candle.as_secs_f64() / fwd_ours.as_secs_f64(),
            millis(both_ours),
            millis(both_candle),
            both_candle.as_secs_f64() / both_ours.as_secs_f64(),
            millis(loss_only),
        );
    }
    Ok(())
}

/// NCHW input with the TF-SAME padding already applied, and the [C, 1, K, K] kernel.
fn candle_operands(x: &Tensor, w: &Tensor, stride: usize) -> Result<(Tensor, Tensor)> {
    let (_, h, wd, _) = x.dims4()?;
    let k = w.dim(0)?;
    let (_, top, bottom) = depthwise::same_padding(h, k, stride);
    let (_, left, right) = depthwise::same_padding(wd, k, stride);
    let x_nchw = x
        .permute((0, 3, 1, 2))?
        .pad_with_zeros(2, top, bottom)?
        .pad_with_zeros(3, left, right)?
        .contiguous()?;
    let kernel = w.permute((2, 0, 1))?.unsqueeze(1)?.contiguous()?;
    Ok((x_nchw, kernel))
}

/// One forward and backward pass of sum(conv(x, w) * r), both operands trainable.
fn forward_backward(
    conv: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor>,
    x: &Tensor,
    w: &Tensor,
    r: &Tensor,
) -> Result<()> {
    let x = Var::from_tensor(x)?;
    let w = Var::from_tensor(w)?;
    let loss = conv(x.as_tensor(), w.as_tensor())?.mul(r)?.sum_all()?;
    loss.backward().map(drop)
}

/// Median wall time of `RUNS` calls, after one warm-up call.
fn median_time(mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    f()?;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[RUNS / 2])
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Values in [-1, 1) from a 64-bit LCG, so runs are comparable.
fn pseudo_random(seed: u64, dims: &[usize]) -> Result<Tensor> {
    let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let len: usize = dims.iter().product();
    let values: Vec<f32> = (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(values, dims, &Device::Cpu)
}
