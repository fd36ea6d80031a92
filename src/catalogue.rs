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
    /// The blocks' names in the checkpoint, first to last (`blocks` of them).
    pub block_names: &'static [&'static str],
    /// How RGB bytes become the network's input, in words (model cards carry it).
    pub normalisation: &'static str,
}

/// Every backbone this build knows; the first is the default.
pub const BACKBONES: &[BackboneInfo] = &[
    BackboneInfo {
        name: "efficientnet-lite0",
        blocks: 16,
        default_image_size: 224,
        min_image_size: 32,
        feature_dim: 1280,
        block_names: &[
            "_blocks.0",
            "_blocks.1",
            "_blocks.2",
            "_blocks.3",
            "_blocks.4",
            "_blocks.5",
            "_blocks.6",
            "_blocks.7",
            "_blocks.8",
            "_blocks.9",
            "_blocks.10",
            "_blocks.11",
            "_blocks.12",
            "_blocks.13",
            "_blocks.14",
            "_blocks.15",
        ],
        normalisation: "(x - 127.5) / 128 per RGB channel",
    },
    BackboneInfo {
        name: "inception-v3",
        blocks: 11,
        default_image_size: 299,
        // 75 px still leaves Mixed_7c a 1x1 feature map after the three grid reductions.
        min_image_size: 75,
        feature_dim: 2048,
        block_names: &[
            "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
            "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
        ],
        normalisation: "(x / 255 - mean) / std with ImageNet's mean and std per RGB channel",
    },
];

/// Look a backbone up by its grid-file name.
pub fn lookup(name: &str) -> Option<&'static BackboneInfo> {
    BACKBONES.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_block_has_a_name() {
        for b in super::BACKBONES {
            assert_eq!(b.block_names.len(), b.blocks, "{}", b.name);
        }
    }
}
