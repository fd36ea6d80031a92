//! One small module per subcommand: glue between settings, store, training and report.

pub mod backbones;
pub mod cache;
pub mod export;
pub mod index;
pub mod plan;
pub mod predict;
pub mod progress;
pub mod report;
pub mod run;
pub mod serve;
pub mod settings;
pub mod similar;
pub mod status;

pub use crate::error::Exit;
