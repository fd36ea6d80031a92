//! The new classification head: dropout -> linear [-> ReLU -> dropout -> linear], seeded.

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::rngs::StdRng;
use rand::Rng;

/// The shape of a head.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadConfig {
    pub feature_dim: usize,
    /// Hidden units; 0 means one linear layer straight to the classes.
    pub hidden: usize,
    pub classes: usize,
    pub dropout: f64,
}

/// A head's trainable layers: (weight [in, out], bias [out]) each.
pub struct Head {
    layers: Vec<(Var, Var)>,
    dropout: f64,
}

impl Head {
    /// New layers initialised as PyTorch's `nn.Linear` does: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    pub fn new(config: HeadConfig, rng: &mut StdRng, device: &Device) -> Result<Head> {
        let widths = if config.hidden == 0 {
            vec![config.feature_dim, config.classes]
        } else {
            vec![config.feature_dim, config.hidden, config.classes]
        };
        let layers = widths
            .windows(2)
            .map(|pair| linear_init(pair[0], pair[1], rng, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Head {
            layers,
            dropout: config.dropout,
        })
    }

    /// Logits of pooled features; dropout is applied only when `training` carries an rng.
    pub fn forward(&self, features: &Tensor, mut training: Option<&mut StdRng>) -> Result<Tensor> {
        let mut x = features.clone();
        for (i, (weight, bias)) in self.layers.iter().enumerate() {
            if i > 0 {
                x = x.relu()?;
            }
            if let Some(rng) = training.as_deref_mut() {
                x = dropout(&x, self.dropout, rng)?;
            }
            x = x
                .matmul(weight.as_tensor())?
                .broadcast_add(bias.as_tensor())?;
        }
        Ok(x)
    }

    /// The activations the last layer sees (hidden units after ReLU; the features themselves
    /// for a single-layer head): the head's own embedding of an image.
    pub fn penultimate(&self, features: &Tensor) -> Result<Tensor> {
        let hidden = &self.layers[..self.layers.len() - 1];
        hidden
            .iter()
            .try_fold(features.clone(), |x, (weight, bias)| {
                x.matmul(weight.as_tensor())?
                    .broadcast_add(bias.as_tensor())?
                    .relu()
            })
    }

    /// A head from the tensors [`Head::named_tensors`] gave, looked up by those names.
    pub fn from_named_tensors(
        tensors: &std::collections::HashMap<String, Tensor>,
        prefix: &str,
        dropout: f64,
    ) -> Result<Head> {
        let mut layers = Vec::new();
        while let Some(weight) = tensors.get(&format!("{prefix}layers.{}.weight", layers.len())) {
            let bias = tensors
                .get(&format!("{prefix}layers.{}.bias", layers.len()))
                .ok_or_else(|| {
                    candle_core::Error::Msg(format!("head layer {} has no bias", layers.len()))
                })?;
            layers.push((Var::from_tensor(weight)?, Var::from_tensor(bias)?));
        }
        if layers.is_empty() {
            candle_core::bail!("no `{prefix}layers.0.weight` tensor: not a trained head");
        }
        Ok(Head { layers, dropout })
    }

    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    /// An independent copy (new variables with the same values), to branch training from.
    pub fn fork(&self) -> Result<Head> {
        let copy = |v: &Var| Var::from_tensor(&v.as_tensor().copy()?);
        let layers = self
            .layers
            .iter()
            .map(|(w, b)| Ok((copy(w)?, copy(b)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Head {
            layers,
            dropout: self.dropout,
        })
    }

    /// The layers' tensors, named `layers.{i}.weight|bias` (weights stored [in, out]).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut named = Vec::new();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            named.push((format!("layers.{i}.weight"), w.as_tensor().clone()));
            named.push((format!("layers.{i}.bias"), b.as_tensor().clone()));
        }
        named
    }
}

fn linear_init(
    fan_in: usize,
    fan_out: usize,
    rng: &mut StdRng,
    device: &Device,
) -> Result<(Var, Var)> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    let mut uniform =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
    let weight = Tensor::from_vec(uniform(fan_in * fan_out), (fan_in, fan_out), device)?;
    let bias = Tensor::from_vec(uniform(fan_out), fan_out, device)?;
    Ok((Var::from_tensor(&weight)?, Var::from_tensor(&bias)?))
}

/// Inverted dropout with a mask drawn from `rng` (so a seed fixes every mask).
fn dropout(x: &Tensor, p: f64, rng: &mut StdRng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let keep = 1.0 - p;
    let scale = (1.0 / keep) as f32;
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| {
            if rng.random::<f64>() < keep {
                scale
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(DType::F32)?;
    x * mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn config(hidden: usize, dropout: f64) -> HeadConfig {
        HeadConfig {
            feature_dim: 8,
            hidden,
            classes: 3,
            dropout,
        }
    }

    #[test]
    fn same_seed_gives_the_same_head_and_the_bound_holds() {
        let make =
            || Head::new(config(4, 0.0), &mut StdRng::seed_from_u64(7), &Device::Cpu).unwrap();
        let (a, b) = (make(), make());
        for ((_, ta), (_, tb)) in a.named_tensors().iter().zip(b.named_tensors()) {
            let diff = (ta - &tb)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert_eq!(diff, 0.0);
        }
        let w0 = a.named_tensors()[0]
            .1
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(w0 <= 1.0 / 8f32.sqrt() && w0 > 0.0);
        assert_eq!(a.vars().len(), 4);
    }

    #[test]
    fn dropout_only_when_training_and_keeps_the_mean() {
        let head = Head::new(config(0, 0.5), &mut StdRng::seed_from_u64(1), &Device::Cpu).unwrap();
        let x = Tensor::ones((4, 8), DType::F32, &Device::Cpu).unwrap();
        let eval1 = head.forward(&x, None).unwrap();
        let eval2 = head.forward(&x, None).unwrap();
        let diff = (&eval1 - &eval2)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0);
        let ones = Tensor::ones((1000, 100), DType::F32, &Device::Cpu).unwrap();
        let dropped = dropout(&ones, 0.5, &mut StdRng::seed_from_u64(3)).unwrap();
        let mean = dropped.mean_all().unwrap().to_scalar::<f32>().unwrap();
        assert!((mean - 1.0).abs() < 0.02, "mean {mean}");
        let zeros = dropped
            .eq(0f32)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .mean_all()
            .unwrap();
        assert!((zeros.to_scalar::<f32>().unwrap() - 0.5).abs() < 0.02);
    }

    #[test]
    fn fork_is_independent() {
        let head = Head::new(config(0, 0.0), &mut StdRng::seed_from_u64(1), &Device::Cpu).unwrap();
        let fork = head.fork().unwrap();
        fork.vars()[0]
            .set(&fork.vars()[0].zeros_like().unwrap())
            .unwrap();
        let original = head.vars()[0]
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(original > 0.0);
    }
}
