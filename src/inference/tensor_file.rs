//! Safetensors files with a JSON header entry: how checkpoints, models and indexes are stored.

use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Write `tensors` and `metadata` to `path` atomically (a temporary file renamed into place),
/// so a reader never sees half a file and a crash leaves the old one.
pub fn write(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> anyhow::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let contiguous = tensors
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.contiguous()?)))
        .collect::<candle_core::Result<Vec<_>>>()?;
    safetensors::serialize_to_file(
        contiguous.iter().map(|(k, t)| (k.as_str(), t)),
        Some(metadata),
        &temporary,
    )
    .map_err(|e| anyhow::anyhow!("{}: cannot write ({e})", temporary.display()))?;
    // The writer creates its file owner-only; a model is as readable as any file the user makes.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o644))?;
    }
    std::fs::rename(&temporary, path)?;
    Ok(())
}

/// The tensors (as f32 on `device`) and the metadata of a file written by [`write`].
pub fn read(
    path: &Path,
    device: &Device,
) -> anyhow::Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read ({e})", path.display()))?;
    let not_ours = |e: &dyn std::fmt::Display| {
        crate::error::InputError::new(format!(
            "{}: not a readable safetensors file ({e})",
            path.display()
        ))
    };
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| not_ours(&e))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| not_ours(&e))?
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(candle_core::DType::F32)?)))
        .collect::<candle_core::Result<_>>()?;
    Ok((tensors, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_and_metadata_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.safetensors");
        let t = Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
        let meta = HashMap::from([("k".to_string(), "{\"a\":1}".to_string())]);
        write(&path, &[("t".into(), t.t().unwrap())], meta.clone()).unwrap();
        let (tensors, back) = read(&path, &Device::Cpu).unwrap();
        assert_eq!(back, meta);
        let values: Vec<Vec<f32>> = tensors["t"].to_vec2().unwrap();
        assert_eq!(values, [[1.0, 3.0], [2.0, 4.0]]);
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
