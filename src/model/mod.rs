//! Backbones, heads and the CPU kernels they need (everything here is candle).

pub mod classifier;
pub mod depthwise;
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
pub use frozen::{Backbone, Recorded, TrainableTail};
pub use head::{Head, HeadConfig};
pub use load::load_backbone;

/// The device training runs on: CUDA when built with `--features cuda` and a GPU is present.
pub fn default_device() -> candle_core::Result<candle_core::Device> {
    #[cfg(feature = "cuda")]
    {
        candle_core::Device::cuda_if_available(0)
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(candle_core::Device::Cpu)
    }
}
