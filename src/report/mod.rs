//! Study reports: `build` turns stored trials and epochs into a `Report` (numbers only: ranking,
//! effects, importance, seeds, curves); `render` and `html` draw it.

pub mod build;
pub mod curves;
pub mod effects;
pub mod html;
mod plots;
pub mod render;
mod sections;
pub mod status;
mod svg;

pub use build::{build, build_with_epochs, Report};
pub use render::{render, Format};

/// Kept for `commands::export` until it imports `crate::ranking::best_first` itself.
pub use crate::ranking::best_first;
