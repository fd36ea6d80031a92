//! Reading a safetensors checkpoint by key name, with errors that name the file and the key.

use crate::error::InputError;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The tensors of one checkpoint file, looked up by their own key names.
pub struct Checkpoint {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    model_name: &'static str,
}

impl Checkpoint {
    /// Load every tensor of `path` as f32 on `device`; `model_name` only phrases errors.
    pub fn open(path: &Path, device: &Device, model_name: &'static str) -> anyhow::Result<Self> {
        if !path.is_file() {
            return Err(
                InputError::new(format!("{}: weights file not found", path.display())).into(),
            );
        }
        let tensors = candle_core::safetensors::load(path, device).map_err(|e| {
            InputError::new(format!(
                "{}: not a readable safetensors file ({})",
                path.display(),
                first_line(&e.to_string())
            ))
        })?;
        Ok(Checkpoint {
            path: path.to_path_buf(),
            tensors,
            model_name,
        })
    }

    /// The tensor `key` as f32, checked against the expected shape.
    pub fn get(&self, key: &str, shape: &[usize]) -> anyhow::Result<Tensor> {
        let tensor = self.tensors.get(key).ok_or_else(|| {
            InputError::new(format!(
                "{}: not {} weights: tensor `{key}` is missing",
                self.path.display(),
                self.model_name
            ))
        })?;
        if tensor.dims() != shape {
            return Err(InputError::new(format!(
                "{}: not {} weights: tensor `{key}` has shape {:?}, expected {:?}",
                self.path.display(),
                self.model_name,
                tensor.dims(),
                shape
            ))
            .into());
        }
        Ok(tensor.to_dtype(DType::F32)?)
    }

    /// The ImageNet classifier (weight [classes, features], bias), when the file has one.
    pub fn optional_linear(
        &self,
        prefix: &str,
        (classes, features): (usize, usize),
    ) -> anyhow::Result<Option<(Tensor, Tensor)>> {
        let weight = format!("{prefix}.weight");
        if !self.tensors.contains_key(&weight) {
            return Ok(None);
        }
        let bias = self.get(&format!("{prefix}.bias"), &[classes])?;
        Ok(Some((self.get(&weight, &[classes, features])?, bias)))
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
