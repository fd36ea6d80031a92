//! One pass's folder in the cache: the locks every process of the host honours, the usable
//! segments of each recording, and new segments.
//!
//! Two lock files: every process using the folder's rows holds `.in-use.lock` shared (so an
//! eviction, which needs it exclusive, never removes files someone has mapped), and a process
//! adding rows holds `.building.lock` exclusive (so a second process wanting the same rows
//! waits, then finds them, instead of computing them twice).

use super::key::{PassKey, Recording};
use super::segment::{MappedSegment, Provenance, SegmentProblem, SegmentWriter, PARTIAL};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub const IN_USE: &str = ".in-use.lock";
const BUILDING: &str = ".building.lock";

/// A pass's folder, marked in use by this process for as long as it (or any rows read from
/// it) lives.
pub struct PassFolder {
    path: PathBuf,
    key: PassKey,
    in_use: Arc<File>,
}

impl PassFolder {
    /// Open the folder of `key` under `cache_dir`, creating it if need be.
    pub fn open(cache_dir: &Path, key: &PassKey) -> io::Result<PassFolder> {
        let path = cache_dir.join(key.folder_name());
        std::fs::create_dir_all(&path)?;
        let in_use = lock_file(&path.join(IN_USE))?;
        in_use.lock_shared()?;
        Ok(PassFolder {
            path,
            key: key.clone(),
            in_use: Arc::new(in_use),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wait until no other process adds rows here, then hold that right until the returned
    /// file is dropped.
    /// Half-written files left by a process that died are removed then (only a builder
    /// writes, so none is being written).
    pub fn building(&self) -> io::Result<File> {
        let lock = lock_file(&self.path.join(BUILDING))?;
        lock.lock()?;
        for entry in std::fs::read_dir(&self.path)?.filter_map(|e| e.ok()) {
            if entry.file_name().to_string_lossy().ends_with(PARTIAL) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(lock)
    }

    /// The shared lock, for storages that outlive this value.
    pub fn in_use(&self) -> Arc<File> {
        self.in_use.clone()
    }

    /// What a segment of `recording` must have been made by.
    pub fn provenance(&self, recording: Recording) -> Provenance {
        Provenance {
            backbone: self.key.backbone.to_string(),
            weights_sha256: self.key.weights_sha256.clone(),
            image_size: self.key.image_size,
            recording,
        }
    }

    /// Every usable segment of `recording`, oldest first, each marked used now. One that
    /// cannot be used is told to `warn` and removed (its rows will be computed again).
    pub fn segments(
        &self,
        recording: Recording,
        warn: &mut dyn FnMut(String),
    ) -> io::Result<Vec<MappedSegment>> {
        let expected = self.provenance(recording);
        let mut segments = Vec::new();
        for path in segment_files(&self.path)? {
            if path_recording(&path) != Some(recording) {
                continue;
            }
            match MappedSegment::open(&path, &expected) {
                Ok(segment) => {
                    mark_used(&path);
                    segments.push(segment);
                }
                Err(problem) => {
                    let removed = std::fs::remove_file(&path).is_ok();
                    warn(problem_line(&path, &problem, removed));
                }
            }
        }
        Ok(segments)
    }

    /// A new segment of `recording`, under a name no other segment has.
    pub fn writer(&self, recording: Recording) -> io::Result<SegmentWriter> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{}.{nanos}-{}.safetensors",
            recording.name(),
            std::process::id()
        );
        SegmentWriter::create(self.path.join(name))
    }
}

/// The warning for a segment whose rows are not used.
fn problem_line(path: &Path, problem: &SegmentProblem, removed: bool) -> String {
    let then = if removed {
        "removed; its rows will be computed again"
    } else {
        "left as it is (cannot remove it); its rows are computed again"
    };
    format!("cache: {}: {problem}: {then}", path.display())
}

/// The segment files of a folder (`*.safetensors`), in name order (oldest first).
pub fn segment_files(folder: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| path_recording(p).is_some())
        .collect();
    files.sort();
    Ok(files)
}

/// The recording a segment file holds, by its name.
pub fn path_recording(path: &Path) -> Option<Recording> {
    Recording::of_file_name(path.file_name()?.to_str()?)
}

/// A lock file, opened for writing when the folder allows it (locks work on either).
pub fn lock_file(path: &Path) -> io::Result<File> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Ok(file) => Ok(file),
        Err(e) if path.exists() => File::open(path).map_err(|_| e),
        Err(e) => Err(e),
    }
}

/// Set a segment's modification time to now: the cache's "last used" (not possible in a
/// read-only folder, which is fine: nothing evicts there either).
fn mark_used(path: &Path) {
    if let Ok(file) = OpenOptions::new().write(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}
