//! `gridsearch backbones`: every catalogued backbone, its blocks and its image sizes.

use super::Exit;
use crate::catalogue::{BackboneInfo, BACKBONES};
use std::fmt::Write;

pub fn run() -> anyhow::Result<Exit> {
    crate::out!("{}", render(BACKBONES));
    Ok(Exit::Ok)
}

/// One paragraph per backbone; the first is the default.
pub fn render(backbones: &[BackboneInfo]) -> String {
    let mut out = String::new();
    for (i, b) in backbones.iter().enumerate() {
        let default = if i == 0 { " (default)" } else { "" };
        let _ = writeln!(out, "{}{default}", b.name());
        let _ = writeln!(
            out,
            "  blocks:        {} (unfreeze_depth 0..={}): {}",
            b.blocks,
            b.blocks,
            b.block_names.join(", ")
        );
        let _ = writeln!(
            out,
            "  image size:    default {}, minimum {}",
            b.default_image_size, b.min_image_size
        );
        let _ = writeln!(out, "  feature width: {}", b.feature_dim);
        if i + 1 < backbones.len() {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_both_backbones_with_their_blocks() {
        let text = super::render(crate::catalogue::BACKBONES);
        assert!(text.starts_with("efficientnet-lite0 (default)\n"));
        assert!(
            text.contains("inception-v3\n  blocks:        11 (unfreeze_depth 0..=11): Mixed_5b,")
        );
        assert!(text.contains("_blocks.15\n"));
        assert!(text.contains("default 299, minimum 75"));
    }
}
