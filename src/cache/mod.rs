//! Frozen activations on disk: one folder per backbone pass (weights, image size, pixels
//! version), in it one safetensors segment per recording per run that added images, rows
//! addressed by each image's SHA-256, memory-mapped so every process of a host reads one copy
//! from the page cache. `sweep::cached` decides what to compute; this module only stores.

pub mod entries;
pub mod folder;
pub mod key;
pub mod segment;

pub use folder::PassFolder;
pub use key::{PassKey, Recording};
pub use segment::{ImageId, MappedSegment, SegmentRows};

/// The cache folder when none is given: `cache/` in the folder kept beside the database
/// (`store::local_folder`).
pub fn default_dir(local_folder: &std::path::Path) -> std::path::PathBuf {
    local_folder.join("cache")
}
