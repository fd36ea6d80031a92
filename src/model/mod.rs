//! Backbones, heads and the CPU kernels they need (everything here is candle).

pub mod classifier;
pub mod depthwise;
pub mod device;
pub mod efficientnet_lite;
pub mod frozen;
pub mod head;
pub mod inception_blocks;
pub mod inception_v3;
pub mod layers;
pub mod load;
pub mod relu6;
pub mod weights;

pub use candle_core::Device;
pub use classifier::{Classifier, FineTunedBlocks};
pub use device::{default_device, describe as describe_device, select_device};
pub use frozen::{Backbone, Recorded, TrainableTail};
pub use head::{Head, HeadConfig};
pub use load::load_backbone;
