//! gridsearch: grid search for transfer-learning image classifiers with shared frozen work.

pub mod backbones;
pub mod error;
pub mod model;
pub mod trial;
