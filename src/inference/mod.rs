//! Using trained models: their cards and weight files, loading them, and predicting with them.

pub mod card;
pub mod checkpoints;
pub mod exported;
pub mod model_set;
pub mod saved;
pub mod tensor_file;

pub use card::ModelCard;
pub use exported::ExportedModel;
pub use model_set::{ModelSet, Prediction};
pub use saved::{SavedModel, Validation};
