//! SHA-256 of a file's bytes: how model cards name their backbone and the activation cache
//! names its weights and images.

use sha2::{Digest, Sha256};
use std::path::Path;

/// The SHA-256 of a file's bytes.
pub fn file_sha256(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher.finalize().into())
}

/// The SHA-256 of a file's bytes, in lower-case hex.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    Ok(hex(&file_sha256(path)?))
}

/// Bytes in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
