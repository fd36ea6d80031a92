//! Study reports: `build` turns stored trials into a ranked `Report`, `render` draws it as text.

pub mod build;
pub mod render;

pub use build::{build, Report};
pub use render::{render, Format};
