//! What the cache holds, entry by entry (one recording of one pass), and removing the least
//! recently used entries, never one a running process has mapped.

use super::folder::{lock_file, path_recording, segment_files, IN_USE};
use super::key::Recording;
use std::fs::TryLockError;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One recording of one pass: every segment of it in one folder.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The pass's folder name (backbone, weights, image size, pixels version).
    pub pass: String,
    pub recording: Recording,
    /// Rows, one per image (as the files' headers say).
    pub images: usize,
    pub bytes: u64,
    /// When a run last read it (its newest file's modification time).
    pub last_used: SystemTime,
    files: Vec<PathBuf>,
}

/// Every entry under `cache_dir`, least recently used first (none if the folder is absent).
pub fn list(cache_dir: &Path) -> io::Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    if !cache_dir.exists() {
        return Ok(entries);
    }
    for folder in std::fs::read_dir(cache_dir)? {
        let folder = folder?.path();
        if !folder.is_dir() {
            continue;
        }
        let pass = folder
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        for file in segment_files(&folder)? {
            let Some(recording) = path_recording(&file) else {
                continue;
            };
            let meta = std::fs::metadata(&file)?;
            let at = match entries
                .iter()
                .position(|e| e.pass == pass && e.recording == recording)
            {
                Some(at) => at,
                None => {
                    entries.push(Entry {
                        pass: pass.clone(),
                        recording,
                        images: 0,
                        bytes: 0,
                        last_used: SystemTime::UNIX_EPOCH,
                        files: Vec::new(),
                    });
                    entries.len() - 1
                }
            };
            let entry = &mut entries[at];
            entry.images += rows_in(&file);
            entry.bytes += meta.len();
            entry.last_used = entry.last_used.max(meta.modified()?);
            entry.files.push(file);
        }
    }
    entries.sort_by_key(|e| (e.last_used, e.pass.clone(), e.recording));
    Ok(entries)
}

/// The rows a segment's header declares (0 if it cannot be read: a run will replace it).
fn rows_in(file: &Path) -> usize {
    let header = read_header(file).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&header).unwrap_or_default();
    json["rows"]["shape"][0].as_u64().unwrap_or(0) as usize
}

/// A segment's header JSON, not its rows.
fn read_header(file: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(file)?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)?;
    let n = u64::from_le_bytes(len).min(1 << 20) as usize;
    let mut bytes = vec![0; n];
    f.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// What an eviction did.
#[derive(Debug, Default, Clone)]
pub struct Evicted {
    pub removed: Vec<Entry>,
    /// Entries that were to go but a running process has their pass mapped.
    pub in_use: Vec<Entry>,
    /// Bytes the cache holds afterwards.
    pub bytes_left: u64,
}

/// Remove the least recently used entries until the cache holds at most `max_bytes`; an entry
/// whose pass a process has in use is left (and counted).
pub fn evict(cache_dir: &Path, max_bytes: u64) -> io::Result<Evicted> {
    let entries = list(cache_dir)?;
    let mut left: u64 = entries.iter().map(|e| e.bytes).sum();
    let mut evicted = Evicted::default();
    for entry in entries {
        if left <= max_bytes {
            break;
        }
        let folder = cache_dir.join(&entry.pass);
        let lock = lock_file(&folder.join(IN_USE))?;
        match lock.try_lock() {
            Ok(()) => {
                for file in &entry.files {
                    std::fs::remove_file(file)?;
                }
                left -= entry.bytes;
                remove_if_empty(&folder);
                evicted.removed.push(entry);
            }
            Err(TryLockError::WouldBlock) => evicted.in_use.push(entry),
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
    evicted.bytes_left = left;
    Ok(evicted)
}

/// Remove a pass's folder once it holds no segment (only its lock files), while its in-use
/// lock is held.
fn remove_if_empty(folder: &Path) {
    if segment_files(folder).is_ok_and(|files| files.is_empty()) {
        let _ = std::fs::remove_dir_all(folder);
    }
}
