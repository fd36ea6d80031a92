//! One input of the frozen pass: an image file as it is, or one augmented view of it.

use super::augment::{decode_view, view_id};
use super::decode::{decode_file, DecodeError};
use crate::digest::file_sha256;
use crate::trial::ViewSet;
use std::path::{Path, PathBuf};

/// An image file as it is (`view` none), or view number `n` of `set` drawn from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PassInput {
    pub path: PathBuf,
    pub view: Option<(ViewSet, usize)>,
}

impl PassInput {
    /// The file as it is.
    pub fn plain(path: &Path) -> PassInput {
        PassInput {
            path: path.to_path_buf(),
            view: None,
        }
    }

    /// What the input's pixels are, from the SHA-256 of its file: the file's own for the
    /// image as it is, the view's identity (see [`view_id`]) for a view.
    pub fn id(&self, file_sha256: &[u8; 32]) -> [u8; 32] {
        match &self.view {
            None => *file_sha256,
            Some((set, number)) => view_id(file_sha256, set, *number),
        }
    }

    /// The input as `size` x `size` RGB bytes; `id` is [`PassInput::id`] when already known
    /// (a view's seed), else the file is hashed for it.
    pub fn decode(&self, size: usize, id: Option<&[u8; 32]>) -> Result<Vec<u8>, DecodeError> {
        let Some((set, _)) = &self.view else {
            return decode_file(&self.path, size);
        };
        let id = match id {
            Some(id) => *id,
            None => self.id(&file_sha256(&self.path)?),
        };
        decode_view(&self.path, size, set, &id)
    }
}
