//! Loading a catalogued backbone: the one place that maps a `BackboneKind` to its implementation.

use super::efficientnet_lite::EfficientNetLite0;
use super::frozen::Backbone;
use super::inception_v3::InceptionV3;
use crate::catalogue::BackboneKind;
use candle_core::Device;
use std::path::Path;

impl BackboneKind {
    /// This backbone, frozen, from its weights.
    pub fn load(self, weights: &Path, device: &Device) -> anyhow::Result<Box<dyn Backbone>> {
        Ok(match self {
            BackboneKind::EfficientNetLite0 => Box::new(EfficientNetLite0::load(weights, device)?),
            BackboneKind::InceptionV3 => Box::new(InceptionV3::load(weights, device)?),
        })
    }
}

/// Load the backbone named in a grid file or model card from its weights.
pub fn load_backbone(
    name: &str,
    weights: &Path,
    device: &Device,
) -> anyhow::Result<Box<dyn Backbone>> {
    let kind: BackboneKind = name
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown backbone `{name}`"))?;
    kind.load(weights, device)
}
