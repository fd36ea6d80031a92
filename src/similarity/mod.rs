//! Similar-image search: a catalogue's embeddings, stored once, and cosine nearest neighbours.

pub mod embedder;
pub mod index;

pub use embedder::{Embedder, EmbeddingSource};
pub use index::{CatalogueIndex, Neighbour};
