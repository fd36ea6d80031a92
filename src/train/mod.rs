//! Training on candle: the shared-work plan, the recorded activations, and the two phases.

pub mod features;
pub mod fit;
pub mod folds;
pub mod metrics;
pub mod phases;
pub mod plan;
pub mod rows;

pub use features::FeatureBank;
pub use phases::{finetune_phase, head_phase, summarize, PhaseContext};
pub use plan::{HeadGroup, Plan};

pub use crate::error::Interrupted;
