//! InceptionV3's building blocks in NCHW: BasicConv2d and the five Mixed block kinds.
//!
//! Written for exactness against torchvision, not speed: candle's dense conv2d, BatchNorm kept
//! as a separate affine map after the convolution (running statistics, eps 0.001), average
//! pooling with zero padding counted (`count_include_pad=True`).

use super::layers::BatchNorm;
use super::weights::Checkpoint;
use candle_core::{Result, Tensor, Var};

const BN_EPS: f64 = 1e-3;

/// torchvision's BasicConv2d: conv (no bias) -> BatchNorm -> ReLU.
#[derive(Clone)]
pub struct BasicConv {
    weight: Tensor,
    bn: BatchNorm,
    stride: usize,
    /// Zero padding (rows, columns); kernels may be asymmetric (1x7, 7x1, ...).
    pad: (usize, usize),
}

/// Shape of one BasicConv2d: (name, cin, cout, (kh, kw), stride, (pad_h, pad_w)).
type ConvSpec<'a> = (&'a str, usize, usize, (usize, usize), usize, (usize, usize));

impl BasicConv {
    /// Load `{prefix}.conv.weight` and `{prefix}.bn.*`.
    pub fn load(ckpt: &Checkpoint, prefix: &str, spec: ConvSpec) -> anyhow::Result<Self> {
        let (_, cin, cout, (kh, kw), stride, pad) = spec;
        Ok(BasicConv {
            weight: ckpt.get(&format!("{prefix}.conv.weight"), &[cout, cin, kh, kw])?,
            bn: BatchNorm::load(ckpt, &format!("{prefix}.bn"), cout, BN_EPS)?,
            stride,
            pad,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (ph, pw) = self.pad;
        let x = if ph + pw > 0 {
            x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?
        } else {
            x.clone()
        };
        let y = x.conv2d(&self.weight, 0, self.stride, 1, 1)?;
        let (scale, shift) = self.bn.scale_and_shift()?;
        let c = scale.dim(0)?;
        y.broadcast_mul(&scale.reshape((c, 1, 1))?)?
            .broadcast_add(&shift.reshape((c, 1, 1))?)?
            .relu()
    }

    fn trainable(&self) -> Result<(BasicConv, Vec<Var>)> {
        let weight = Var::from_tensor(&self.weight.copy()?)?;
        let (bn, mut vars) = self.bn.trainable()?;
        vars.insert(0, weight.clone());
        let conv = BasicConv {
            weight: weight.as_tensor().clone(),
            bn,
            ..self.clone()
        };
        Ok((conv, vars))
    }
}

/// One step of a branch.
#[derive(Clone)]
enum Op {
    Conv(BasicConv),
    /// 3x3 average pool, stride 1, zero padding 1 counted in the average.
    AvgPool,
    /// 3x3 max pool, stride 2, no padding.
    MaxPool,
    /// Two convolutions on the same input, concatenated over channels (InceptionE).
    Fork(BasicConv, BasicConv),
}

impl Op {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Op::Conv(conv) => conv.forward(x),
            Op::AvgPool => avg_pool_3x3_same(x),
            Op::MaxPool => x.max_pool2d_with_stride(3, 2),
            Op::Fork(a, b) => Tensor::cat(&[a.forward(x)?, b.forward(x)?], 1),
        }
    }
}

/// torchvision's `F.avg_pool2d(x, 3, stride=1, padding=1)`: zeros count in the average.
pub fn avg_pool_3x3_same(x: &Tensor) -> Result<Tensor> {
    x.pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?
        .avg_pool2d_with_stride(3, 1)
}

/// One Mixed block: parallel branches concatenated over channels.
#[derive(Clone)]
pub struct Mixed {
    branches: Vec<Vec<Op>>,
}

impl Mixed {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let outs = self
            .branches
            .iter()
            .map(|ops| ops.iter().try_fold(x.clone(), |h, op| op.forward(&h)))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&outs, 1)
    }

    /// A copy whose conv weights and BN gamma/beta are fresh variables, with them.
    pub fn trainable(&self) -> Result<(Mixed, Vec<Var>)> {
        let mut vars = Vec::new();
        let mut take = |conv: &BasicConv| -> Result<BasicConv> {
            let (conv, v) = conv.trainable()?;
            vars.extend(v);
            Ok(conv)
        };
        let mut branches = Vec::with_capacity(self.branches.len());
        for ops in &self.branches {
            let mut copied = Vec::with_capacity(ops.len());
            for op in ops {
                copied.push(match op {
                    Op::Conv(c) => Op::Conv(take(c)?),
                    Op::Fork(a, b) => Op::Fork(take(a)?, take(b)?),
                    other => other.clone(),
                });
            }
            branches.push(copied);
        }
        Ok((Mixed { branches }, vars))
    }
}

/// A branch step as data: a conv spec, a pool, or a fork of two conv specs.
enum Step<'a> {
    C(ConvSpec<'a>),
    Avg,
    Max,
    F(ConvSpec<'a>, ConvSpec<'a>),
}
use Step::{Avg, Max, C, F};

fn build(ckpt: &Checkpoint, prefix: &str, branches: &[&[Step]]) -> anyhow::Result<Mixed> {
    let conv = |spec: &ConvSpec| BasicConv::load(ckpt, &format!("{prefix}.{}", spec.0), *spec);
    let mut out = Vec::with_capacity(branches.len());
    for steps in branches {
        let mut ops = Vec::with_capacity(steps.len());
        for step in steps.iter() {
            ops.push(match step {
                C(spec) => Op::Conv(conv(spec)?),
                Avg => Op::AvgPool,
                Max => Op::MaxPool,
                F(a, b) => Op::Fork(conv(a)?, conv(b)?),
            });
        }
        out.push(ops);
    }
    Ok(Mixed { branches: out })
}

const K1: (usize, usize) = (1, 1);
const K3: (usize, usize) = (3, 3);
const P0: (usize, usize) = (0, 0);
const P1: (usize, usize) = (1, 1);

/// InceptionA: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1; out 224 + pool_features.
pub fn inception_a(ckpt: &Checkpoint, p: &str, cin: usize, pool: usize) -> anyhow::Result<Mixed> {
    build(
        ckpt,
        p,
        &[
            &[C(("branch1x1", cin, 64, K1, 1, P0))],
            &[
                C(("branch5x5_1", cin, 48, K1, 1, P0)),
                C(("branch5x5_2", 48, 64, (5, 5), 1, (2, 2))),
            ],
            &[
                C(("branch3x3dbl_1", cin, 64, K1, 1, P0)),
                C(("branch3x3dbl_2", 64, 96, K3, 1, P1)),
                C(("branch3x3dbl_3", 96, 96, K3, 1, P1)),
            ],
            &[Avg, C(("branch_pool", cin, pool, K1, 1, P0))],
        ],
    )
}

/// InceptionB (grid reduction 35 -> 17): 3x3/2 | 1x1-3x3-3x3/2 | maxpool; out cin + 480.
pub fn inception_b(ckpt: &Checkpoint, p: &str, cin: usize) -> anyhow::Result<Mixed> {
    build(
        ckpt,
        p,
        &[
            &[C(("branch3x3", cin, 384, K3, 2, P0))],
            &[
                C(("branch3x3dbl_1", cin, 64, K1, 1, P0)),
                C(("branch3x3dbl_2", 64, 96, K3, 1, P1)),
                C(("branch3x3dbl_3", 96, 96, K3, 2, P0)),
            ],
            &[Max],
        ],
    )
}

/// InceptionC: factorised 7x7 branches of width `c7`; out 768.
pub fn inception_c(ckpt: &Checkpoint, p: &str, cin: usize, c7: usize) -> anyhow::Result<Mixed> {
    let (k17, p17, k71, p71) = ((1, 7), (0, 3), (7, 1), (3, 0));
    build(
        ckpt,
        p,
        &[
            &[C(("branch1x1", cin, 192, K1, 1, P0))],
            &[
                C(("branch7x7_1", cin, c7, K1, 1, P0)),
                C(("branch7x7_2", c7, c7, k17, 1, p17)),
                C(("branch7x7_3", c7, 192, k71, 1, p71)),
            ],
            &[
                C(("branch7x7dbl_1", cin, c7, K1, 1, P0)),
                C(("branch7x7dbl_2", c7, c7, k71, 1, p71)),
                C(("branch7x7dbl_3", c7, c7, k17, 1, p17)),
                C(("branch7x7dbl_4", c7, c7, k71, 1, p71)),
                C(("branch7x7dbl_5", c7, 192, k17, 1, p17)),
            ],
            &[Avg, C(("branch_pool", cin, 192, K1, 1, P0))],
        ],
    )
}

/// InceptionD (grid reduction 17 -> 8): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool; out cin + 512.
pub fn inception_d(ckpt: &Checkpoint, p: &str, cin: usize) -> anyhow::Result<Mixed> {
    build(
        ckpt,
        p,
        &[
            &[
                C(("branch3x3_1", cin, 192, K1, 1, P0)),
                C(("branch3x3_2", 192, 320, K3, 2, P0)),
            ],
            &[
                C(("branch7x7x3_1", cin, 192, K1, 1, P0)),
                C(("branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3))),
                C(("branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0))),
                C(("branch7x7x3_4", 192, 192, K3, 2, P0)),
            ],
            &[Max],
        ],
    )
}

/// InceptionE: expanded filter bank with 1x3 / 3x1 forks; out 2048.
pub fn inception_e(ckpt: &Checkpoint, p: &str, cin: usize) -> anyhow::Result<Mixed> {
    let (k13, p13, k31, p31) = ((1, 3), (0, 1), (3, 1), (1, 0));
    build(
        ckpt,
        p,
        &[
            &[C(("branch1x1", cin, 320, K1, 1, P0))],
            &[
                C(("branch3x3_1", cin, 384, K1, 1, P0)),
                F(
                    ("branch3x3_2a", 384, 384, k13, 1, p13),
                    ("branch3x3_2b", 384, 384, k31, 1, p31),
                ),
            ],
            &[
                C(("branch3x3dbl_1", cin, 448, K1, 1, P0)),
                C(("branch3x3dbl_2", 448, 384, K3, 1, P1)),
                F(
                    ("branch3x3dbl_3a", 384, 384, k13, 1, p13),
                    ("branch3x3dbl_3b", 384, 384, k31, 1, p31),
                ),
            ],
            &[Avg, C(("branch_pool", cin, 192, K1, 1, P0))],
        ],
    )
}
