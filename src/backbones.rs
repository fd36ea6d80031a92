//! The catalogue of supported backbones: names, blocks and sizes (no candle; grid validation uses it).

/// What the rest of the tool may know about a backbone without loading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackboneInfo {
    /// The name used in grid files (`[model] backbone = "..."`).
    pub name: &'static str,
    /// Blocks that can be unfrozen: `unfreeze_depth` ranges over 0..=blocks.
    pub blocks: usize,
    /// Image size the backbone was trained at.
    pub default_image_size: usize,
    /// Smallest image size accepted (the feature map must keep at least one pixel).
    pub min_image_size: usize,
    /// Width of the pooled features a head sees.
    pub feature_dim: usize,
}

/// Every backbone this build knows.
pub const BACKBONES: &[BackboneInfo] = &[BackboneInfo {
    name: "efficientnet-lite0",
    blocks: 16,
    default_image_size: 224,
    min_image_size: 32,
    feature_dim: 1280,
}];

/// Look a backbone up by its grid-file name.
pub fn lookup(name: &str) -> Option<&'static BackboneInfo> {
    BACKBONES.iter().find(|b| b.name == name)
}
