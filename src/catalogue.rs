//! The catalogue of supported backbones: names, blocks and sizes (no candle; grid validation uses it).

use strum::VariantNames;

crate::vocabulary! {
    /// A supported backbone. Its name, as grid files and model cards spell it, is derived here
    /// once; `model` is the one place that knows how to load each kind.
    pub enum BackboneKind {
        #[strum(serialize = "efficientnet-lite0")]
        EfficientNetLite0,
        #[strum(serialize = "inception-v3")]
        InceptionV3,
    }
}

impl BackboneKind {
    /// This backbone's catalogue entry.
    pub const fn info(self) -> &'static BackboneInfo {
        &BACKBONES[self as usize]
    }
}

/// What the rest of the tool may know about a backbone without loading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackboneInfo {
    /// Which backbone this is; its name is the one used in grid files (`[model] backbone = "..."`).
    pub kind: BackboneKind,
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

/// The largest image side accepted anywhere: in grid files (`image_size`) and model cards.
pub const MAX_IMAGE_SIZE: usize = 1024;

/// Every backbone this build knows, in `BackboneKind` order; the first is the default.
pub const BACKBONES: &[BackboneInfo] = &[
    BackboneInfo {
        kind: BackboneKind::EfficientNetLite0,
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
        kind: BackboneKind::InceptionV3,
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

// `BackboneKind::info` indexes `BACKBONES` by kind: one entry per kind, in the enum's order.
const _: () = {
    assert!(BACKBONES.len() == <BackboneKind as VariantNames>::VARIANTS.len());
    let mut i = 0;
    while i < BACKBONES.len() {
        assert!(BACKBONES[i].kind as usize == i);
        i += 1;
    }
};

impl BackboneInfo {
    /// The name used in grid files and model cards.
    pub fn name(&self) -> &'static str {
        self.kind.into()
    }

    /// The boundary of a fine-tune of the last `depth` blocks: the first block it trains, whose
    /// recorded input it starts from.
    pub fn boundary_of(&self, depth: usize) -> usize {
        self.blocks - depth
    }

    /// How many blocks a fine-tune from `boundary` trains (the inverse of `boundary_of`).
    pub fn depth_of(&self, boundary: usize) -> usize {
        self.blocks - boundary
    }
}

/// Look a backbone up by its grid-file name.
pub fn lookup(name: &str) -> Option<&'static BackboneInfo> {
    name.parse::<BackboneKind>().ok().map(BackboneKind::info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_has_a_name() {
        for b in BACKBONES {
            assert_eq!(b.block_names.len(), b.blocks, "{}", b.name());
        }
    }

    #[test]
    fn each_kind_is_named_once_and_finds_its_entry() {
        assert_eq!(
            BackboneKind::VARIANTS,
            ["efficientnet-lite0", "inception-v3"]
        );
        for b in BACKBONES {
            assert_eq!(b.kind.to_string(), b.name());
            assert_eq!(lookup(b.name()), Some(b));
            assert_eq!(b.kind.info(), b);
            let json = serde_json::to_string(&b.kind).unwrap();
            assert_eq!(json, format!("\"{}\"", b.name()));
            assert_eq!(serde_json::from_str::<BackboneKind>(&json).unwrap(), b.kind);
        }
        assert_eq!(lookup("efficientnet-Lite0"), None);
        assert_eq!(lookup(""), None);
    }

    #[test]
    fn a_boundary_and_its_depth_are_inverses() {
        let info = BackboneKind::EfficientNetLite0.info();
        assert_eq!(info.boundary_of(0), 16);
        assert_eq!(info.boundary_of(2), 14);
        for depth in 0..=info.blocks {
            assert_eq!(info.depth_of(info.boundary_of(depth)), depth);
        }
    }
}
