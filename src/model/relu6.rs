//! ReLU6, min(max(x, 0), 6), as a differentiable CPU op with a cheap backward pass.
//!
//! candle's `clamp` backward builds several comparison tensors; here the backward pass is one
//! element-wise loop that lets the gradient through where the output is strictly inside (0, 6).
//! Tensors on other devices (CUDA) take [`relu6_composite`], candle ops with the same values and
//! the same gradient (plain `clamp` would split the gradient at exactly 0 and 6).

use super::depthwise::contiguous_f32;
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements handled by one parallel task; small tensors run in a single task.
const CHUNK: usize = 1 << 15;

/// Upper bound of the activation.
const SIX: f32 = 6.0;

/// min(max(x, 0), 6) for an f32 tensor of any shape; differentiable.
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    if x.dtype() != DType::F32 {
        bail!("relu6 needs an f32 tensor, got {:?}", x.dtype());
    }
    if !x.device().is_cpu() {
        return relu6_composite(x);
    }
    x.contiguous()?.apply_op1(Relu6)
}

/// ReLU6 from candle ops, for every device: x where 0 < x < 6, else the clamped value as a
/// constant. So the gradient passes exactly where the CPU op lets it through (strictly inside),
/// and a NaN stays NaN as there.
pub fn relu6_composite(x: &Tensor) -> Result<Tensor> {
    let inside = x.gt(0f32)?.mul(&x.lt(SIX)?)?;
    let constant = x.detach();
    // NaN is neither inside nor clampable: keep it (with no gradient, as the CPU op does).
    let is_nan = constant.ne(&constant)?;
    let clamped = is_nan.where_cond(&constant, &constant.clamp(0f32, SIX)?)?;
    inside.where_cond(x, &clamped)
}

/// Forward op; its backward is [`Relu6Grad`].
struct Relu6;

impl CustomOp1 for Relu6 {
    fn name(&self) -> &'static str {
        "relu6"
    }

    fn cpu_fwd(&self, x: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(x, layout, self.name())?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| clamp_into(y, x));
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad_y: &Tensor) -> Result<Option<Tensor>> {
        let grad_y = grad_y.contiguous()?;
        Ok(Some(grad_y.apply_op2_no_bwd(y, &Relu6Grad)?))
    }
}

/// y[i] = min(max(x[i], 0), 6); a NaN stays NaN so that diverging training stays visible.
fn clamp_into(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x.clamp(0.0, SIX);
    }
}

/// Backward op with operands (grad_y, y): grad_x = grad_y where 0 < y < 6, else 0.
struct Relu6Grad;

impl CustomOp2 for Relu6Grad {
    fn name(&self) -> &'static str {
        "relu6-grad"
    }

    fn cpu_fwd(
        &self,
        grad_y: &CpuStorage,
        grad_y_layout: &Layout,
        y: &CpuStorage,
        y_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if grad_y_layout.shape() != y_layout.shape() {
            bail!(
                "relu6-grad: gradient {:?} and output {:?} differ in shape",
                grad_y_layout.shape(),
                y_layout.shape()
            );
        }
        let grad_y = contiguous_f32(grad_y, grad_y_layout, self.name())?;
        let y = contiguous_f32(y, y_layout, self.name())?;
        let mut grad_x = vec![0f32; y.len()];
        grad_x
            .par_chunks_mut(CHUNK)
            .zip(grad_y.par_chunks(CHUNK).zip(y.par_chunks(CHUNK)))
            .for_each(|(gx, (gy, y))| mask_gradient(gx, gy, y));
        Ok((CpuStorage::F32(grad_x), y_layout.shape().clone()))
    }
}

/// grad_x[i] = grad_y[i] if 0 < y[i] < 6, else 0.
fn mask_gradient(grad_x: &mut [f32], grad_y: &[f32], y: &[f32]) {
    for ((gx, &gy), &y) in grad_x.iter_mut().zip(grad_y).zip(y) {
        *gx = if y > 0.0 && y < SIX { gy } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    const INPUT: [f32; 9] = [-3.0, -0.0, 0.0, 1e-7, 2.5, 5.999, 6.0, 6.5, 100.0];

    #[test]
    fn forward_clamps_to_zero_and_six() {
        let x = Tensor::new(&INPUT, &Device::Cpu).unwrap();
        let y = relu6(&x).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(y, [0.0, 0.0, 0.0, 1e-7, 2.5, 5.999, 6.0, 6.0, 6.0]);
    }

    #[test]
    fn backward_passes_gradient_strictly_inside_zero_six() {
        let x = Var::new(&INPUT, &Device::Cpu).unwrap();
        let weights = Tensor::new(&[1f32, 2., 3., 4., 5., 6., 7., 8., 9.], &Device::Cpu).unwrap();
        let loss = relu6(x.as_tensor())
            .unwrap()
            .mul(&weights)
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let grad_x = grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(grad_x, [0.0, 0.0, 0.0, 4.0, 5.0, 6.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn large_non_contiguous_tensor_matches_clamp() {
        let rows = CHUNK / 2 + 3;
        let values: Vec<f32> = (0..rows * 7).map(|i| (i % 97) as f32 * 0.2 - 5.0).collect();
        let x = Tensor::from_vec(values, (rows, 7), &Device::Cpu)
            .unwrap()
            .t()
            .unwrap();
        let ours = relu6(&x).unwrap();
        let reference = x.clamp(0f32, 6f32).unwrap();
        assert_eq!(ours.dims(), &[7, rows]);
        let diff = ours
            .sub(&reference)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
    }

    #[test]
    fn nan_stays_nan() {
        let x = Tensor::new(&[f32::NAN, 1.0], &Device::Cpu).unwrap();
        let y = relu6(&x).unwrap().to_vec1::<f32>().unwrap();
        assert!(y[0].is_nan());
        assert_eq!(y[1], 1.0);
    }

    /// Values and gradients of sum(f(x) * r) for `INPUT` and a large random tensor.
    fn forward_and_backward(f: fn(&Tensor) -> Result<Tensor>, x: &Tensor) -> (Tensor, Tensor) {
        let x = Var::from_tensor(x).unwrap();
        let y = f(x.as_tensor()).unwrap();
        let r = Tensor::arange(0f32, x.elem_count() as f32, x.device())
            .unwrap()
            .reshape(x.shape())
            .unwrap()
            .affine(1e-3, 0.5)
            .unwrap();
        let grads = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let grad = grads.get(x.as_tensor()).unwrap().clone();
        (y, grad)
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn device_composite_equals_the_cpu_op_forward_and_backward() {
        let edge = Tensor::new(&INPUT, &Device::Cpu).unwrap();
        let values: Vec<f32> = (0..3 * 17 * 19 * 8)
            .map(|i| ((i * 7919) % 1601) as f32 * 0.01 - 8.0)
            .collect();
        let random = Tensor::from_vec(values, (3, 17, 19, 8), &Device::Cpu).unwrap();
        for x in [edge, random] {
            let (y, gx) = forward_and_backward(relu6, &x);
            let (y_dev, gx_dev) = forward_and_backward(relu6_composite, &x);
            assert_eq!(max_abs_diff(&y, &y_dev), 0.0);
            assert_eq!(max_abs_diff(&gx, &gx_dev), 0.0);
        }
        let nan = Tensor::new(&[f32::NAN, 7.0, -1.0], &Device::Cpu).unwrap();
        let y = relu6_composite(&nan).unwrap().to_vec1::<f32>().unwrap();
        assert!(y[0].is_nan());
        assert_eq!(&y[1..], [6.0, 0.0]);
    }

    #[test]
    fn rejects_non_f32() {
        let x = Tensor::new(&[1f64, 7.0], &Device::Cpu).unwrap();
        let error = relu6(&x).unwrap_err().to_string();
        assert!(error.contains("f32"), "{error}");
    }
}
