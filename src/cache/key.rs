//! What names a cache folder (one backbone pass: backbone, weights, image size, pixels) and the
//! recordings kept in it (the pooled features and each boundary block's input).

use crate::data::decode::PIXELS_VERSION;

/// One backbone pass over images, whatever images: its activations are a pure function of
/// this and each image's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassKey {
    pub backbone: &'static str,
    /// SHA-256 of the weights file, hex.
    pub weights_sha256: String,
    pub image_size: usize,
}

impl PassKey {
    /// The folder of this pass in the cache: readable, and distinct for distinct keys.
    pub fn folder_name(&self) -> String {
        let weights = &self.weights_sha256[..self.weights_sha256.len().min(16)];
        format!(
            "{}-{weights}-{}px-pixels{PIXELS_VERSION}",
            self.backbone, self.image_size
        )
    }
}

/// One recorded tensor of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Recording {
    /// The pooled features (what a head-only trial reads).
    Pooled,
    /// The input of block `b` (what a trial fine-tuning from block `b` reads).
    Block(usize),
}

impl Recording {
    /// How its files are named: `pooled`, `block14`.
    pub fn name(&self) -> String {
        match self {
            Recording::Pooled => "pooled".into(),
            Recording::Block(b) => format!("block{b}"),
        }
    }

    /// The recording a file name starts with (`<recording>.<id>.safetensors`).
    pub fn of_file_name(name: &str) -> Option<Recording> {
        let stem = name.strip_suffix(".safetensors")?;
        let (recording, _) = stem.split_once('.')?;
        match recording {
            "pooled" => Some(Recording::Pooled),
            _ => recording
                .strip_prefix("block")?
                .parse()
                .ok()
                .map(Recording::Block),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_back_their_recording() {
        for r in [Recording::Pooled, Recording::Block(14)] {
            let name = format!("{}.1733-12.safetensors", r.name());
            assert_eq!(Recording::of_file_name(&name), Some(r));
        }
        for other in [
            ".pooled.1.safetensors.partial",
            "block.1.safetensors",
            "x.safetensors",
            ".lock",
        ] {
            assert_eq!(Recording::of_file_name(other), None, "{other}");
        }
    }
}
