//! Studies -> shared frozen work -> scheduler: which studies can share one frozen pass.

pub mod groups;

pub use groups::{group, FrozenGroup, FrozenKey, StudyNeeds};
