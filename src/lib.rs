//! gridsearch: grid search for transfer-learning image classifiers with shared frozen work.

pub mod allocator;
pub mod cache;
pub mod catalogue;
pub mod cli;
pub mod commands;
pub mod data;
pub mod digest;
pub mod error;
pub mod grid;
pub mod inference;
pub mod model;
pub mod path_name;
pub mod ranking;
pub mod report;
pub mod scheduler;
pub mod serve;
pub mod similarity;
pub mod store;
pub mod sweep;
pub mod threads;
pub mod train;
pub mod trial;
