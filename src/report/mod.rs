//! Study reports: `build` turns stored trials and epochs into a `Report` (numbers only: ranking,
//! effects, importance, seeds, curves); `render` and `html` draw it.
//!
//! One-way inside: `schema` (the types) <- `curves`, `effects` <- `build` <- `status`;
//! `schema` <- `cells` <- `trial_sections`, `stat_sections` <- `render`; `cells`, `plots`, `svg` <- `html`.

mod build;
mod cells;
mod curves;
mod effects;
pub mod html;
mod plots;
mod render;
pub mod schema;
mod stat_sections;
pub mod status;
mod svg;
mod trial_sections;

pub use build::{build, build_with_epochs};
pub use render::{render, Format};
pub use schema::Report;
