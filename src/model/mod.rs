//! Backbones, heads and the CPU kernels they need (everything here is candle).

pub mod backbone;
pub mod depthwise;
pub mod efficientnet_lite;
pub mod head;
pub mod layers;
pub mod relu6;
pub mod weights;

pub use backbone::{load_backbone, Backbone, Recorded, TrainableTail};
pub use head::{Head, HeadConfig};
