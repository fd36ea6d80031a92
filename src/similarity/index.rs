//! A catalogue folder's embeddings in one file: built once, updated for new or changed photos
//! only, searched by cosine similarity.

use super::embedder::{Embedder, EmbeddingSource};
use crate::data::source::{has_image_extension, is_hidden};
use crate::error::InputError;
use crate::inference::model_set::ImageSource;
use crate::inference::tensor_file;
use crate::model::Device;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const META_KEY: &str = "gridsearch.index";
const EMBEDDINGS: &str = "embeddings";
const FORMAT: &str = "gridsearch-index/1";
/// Images embedded per step (bounds memory on big catalogues).
const CHUNK: usize = 512;

/// One catalogue photo: its path under the root and what identifies its content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    pub path: PathBuf,
    pub bytes: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub modified: u64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    root: PathBuf,
    source: EmbeddingSource,
    entries: Vec<Entry>,
}

/// The embeddings of every readable image under `root`, row i = `entries[i]`.
pub struct CatalogueIndex {
    pub root: PathBuf,
    pub source: EmbeddingSource,
    pub entries: Vec<Entry>,
    /// [entries, width], unit rows.
    pub embeddings: Tensor,
}

/// A catalogue photo close to a query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbour {
    /// Row in the index.
    pub row: usize,
    /// Path under the catalogue root.
    pub path: PathBuf,
    /// Cosine similarity, 1 = same direction.
    pub similarity: f32,
}

/// What an update did.
#[derive(Debug, Default)]
pub struct UpdateStats {
    pub embedded: usize,
    pub reused: usize,
    /// Files that are not readable images, with why.
    pub skipped: Vec<(PathBuf, String)>,
}

impl CatalogueIndex {
    /// Index every image under `root` with `embedder`, reusing rows of `previous` for files
    /// whose size and modification time are unchanged (same root and source only).
    /// `on_progress(done, total)` follows the embedding.
    pub fn build(
        root: &Path,
        embedder: &Embedder,
        previous: Option<CatalogueIndex>,
        device: &Device,
        on_progress: &dyn Fn(usize, usize),
    ) -> anyhow::Result<(CatalogueIndex, UpdateStats)> {
        let root = root.canonicalize().map_err(|e| {
            InputError::new(format!(
                "{}: cannot read the catalogue ({e})",
                root.display()
            ))
        })?;
        let Listing {
            images: files,
            skipped,
        } = list_images(&root)?;
        if files.is_empty() {
            return Err(
                InputError::new(format!("{}: no images in the catalogue", root.display())).into(),
            );
        }
        let (reusable, old) = match previous {
            Some(p) if p.root == root && p.source == embedder.source => {
                let rows: HashMap<Entry, u32> = p.entries.iter().cloned().zip(0..).collect();
                (rows, Some(p.embeddings))
            }
            _ => (HashMap::new(), None),
        };
        let mut stats = UpdateStats {
            skipped,
            ..UpdateStats::default()
        };
        let mut entries = Vec::with_capacity(files.len());
        let mut parts = Vec::new();
        let (kept, fresh): (Vec<Entry>, Vec<Entry>) =
            files.into_iter().partition(|e| reusable.contains_key(e));
        if let (Some(old), false) = (old, kept.is_empty()) {
            let rows: Vec<u32> = kept.iter().map(|e| reusable[e]).collect();
            parts.push(old.index_select(&Tensor::new(rows, device)?, 0)?);
            stats.reused = kept.len();
            entries.extend(kept);
        }
        let mut done = 0;
        for chunk in fresh.chunks(CHUNK) {
            let paths: Vec<PathBuf> = chunk.iter().map(|e| root.join(&e.path)).collect();
            let sources: Vec<ImageSource> = paths.iter().map(|p| ImageSource::File(p)).collect();
            let (rows, embeddings) = embedder.embed(&sources, device)?;
            for (entry, row) in chunk.iter().zip(rows) {
                match row {
                    Ok(_) => {
                        entries.push(entry.clone());
                        stats.embedded += 1;
                    }
                    Err(reason) => stats.skipped.push((entry.path.clone(), reason.to_string())),
                }
            }
            parts.extend(embeddings);
            done += chunk.len();
            on_progress(done, fresh.len());
        }
        if entries.is_empty() {
            return Err(InputError::new(format!(
                "{}: none of the catalogue's files is a readable image",
                root.display()
            ))
            .into());
        }
        let index = CatalogueIndex {
            root,
            source: embedder.source.clone(),
            entries,
            embeddings: Tensor::cat(&parts, 0)?,
        };
        Ok((index, stats))
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let header = Header {
            format: FORMAT.to_string(),
            root: self.root.clone(),
            source: self.source.clone(),
            entries: self.entries.clone(),
        };
        let metadata = HashMap::from([(META_KEY.to_string(), serde_json::to_string(&header)?)]);
        tensor_file::write(
            path,
            &[(EMBEDDINGS.to_string(), self.embeddings.clone())],
            metadata,
        )
    }

    pub fn load(path: &Path, device: &Device) -> anyhow::Result<CatalogueIndex> {
        if !path.is_file() {
            return Err(InputError::new(format!(
                "{}: no index here (run `gridsearch index DIR` first)",
                path.display()
            ))
            .into());
        }
        let (mut tensors, metadata) = tensor_file::read(path, device)?;
        let not_index = || InputError::new(format!("{}: not a gridsearch index", path.display()));
        let header: Header = metadata
            .get(META_KEY)
            .and_then(|h| serde_json::from_str(h).ok())
            .ok_or_else(not_index)?;
        let embeddings = tensors.remove(EMBEDDINGS).ok_or_else(not_index)?;
        if header.format != FORMAT || embeddings.dim(0)? != header.entries.len() {
            return Err(not_index().into());
        }
        Ok(CatalogueIndex {
            root: header.root,
            source: header.source,
            entries: header.entries,
            embeddings,
        })
    }

    /// The `k` rows most similar to the unit embedding `query` [width], best first, leaving
    /// out `exclude` (the query itself when it is in the catalogue).
    pub fn nearest(
        &self,
        query: &Tensor,
        k: usize,
        exclude: Option<usize>,
    ) -> anyhow::Result<Vec<Neighbour>> {
        let scores: Vec<f32> = self
            .embeddings
            .matmul(&query.unsqueeze(1)?)?
            .squeeze(1)?
            .to_vec1()?;
        Ok(top_k(&scores, k, exclude)
            .into_iter()
            .map(|(row, similarity)| Neighbour {
                row,
                path: self.entries[row].path.clone(),
                similarity,
            })
            .collect())
    }

    /// The `k` catalogue photos nearest one image; Err: why the image cannot be read.
    pub fn query(
        &self,
        embedder: &Embedder,
        image: ImageSource,
        k: usize,
        device: &Device,
    ) -> Result<Vec<Neighbour>, String> {
        let (rows, embeddings) = embedder
            .embed(&[image], device)
            .map_err(|e| format!("{e:#}"))?;
        if let Err(reason) = &rows[0] {
            return Err(reason.to_string());
        }
        let embedding = embeddings
            .expect("one image decoded")
            .squeeze(0)
            .map_err(|e| e.to_string())?;
        self.nearest(&embedding, k, None)
            .map_err(|e| format!("{e:#}"))
    }

    /// The catalogue's own labels: the first folder of each path under the root.
    fn folder_of(&self, row: usize) -> String {
        let path = &self.entries[row].path;
        match path.components().next() {
            Some(first) if path.components().count() > 1 => {
                first.as_os_str().to_string_lossy().into()
            }
            _ => String::new(),
        }
    }

    /// Leave-one-out retrieval: for every photo, the share of its `k` nearest other photos
    /// that sit in the same top-level folder (e.g. the same department).
    pub fn same_folder_rate(&self, k: usize) -> anyhow::Result<FolderAgreement> {
        let n = self.entries.len();
        let folders: Vec<String> = (0..n).map(|i| self.folder_of(i)).collect();
        let mut agreement = FolderAgreement {
            k,
            ..FolderAgreement::default()
        };
        let all_t = self.embeddings.t()?;
        for start in (0..n).step_by(256) {
            let len = 256.min(n - start);
            let scores: Vec<Vec<f32>> = self
                .embeddings
                .narrow(0, start, len)?
                .matmul(&all_t)?
                .to_vec2()?;
            for (offset, row) in scores.iter().enumerate() {
                let query = start + offset;
                let hits = top_k(row, k, Some(query))
                    .iter()
                    .filter(|(r, _)| folders[*r] == folders[query])
                    .count();
                let slot = agreement
                    .by_folder
                    .entry(folders[query].clone())
                    .or_default();
                slot.0 += hits;
                slot.1 += k;
            }
        }
        agreement.queries = n;
        Ok(agreement)
    }
}

/// How often neighbours share their query's folder: overall and per folder (hits, neighbours).
#[derive(Debug, Default, Serialize)]
pub struct FolderAgreement {
    pub k: usize,
    pub queries: usize,
    pub by_folder: std::collections::BTreeMap<String, (usize, usize)>,
}

impl FolderAgreement {
    pub fn rate(&self) -> f64 {
        let (hits, total) = self
            .by_folder
            .values()
            .fold((0, 0), |(h, t), (a, b)| (h + a, t + b));
        hits as f64 / total.max(1) as f64
    }
}

/// Indices and values of the `k` largest `scores`, largest first, skipping `exclude`.
fn top_k(scores: &[f32], k: usize, exclude: Option<usize>) -> Vec<(usize, f32)> {
    let mut order: Vec<usize> = (0..scores.len()).filter(|&i| Some(i) != exclude).collect();
    let k = k.min(order.len());
    if k == 0 {
        return Vec::new();
    }
    let by_score = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    order.select_nth_unstable_by(k - 1, by_score);
    order.truncate(k);
    order.sort_by(by_score);
    order.into_iter().map(|i| (i, scores[i])).collect()
}

/// What the catalogue walk found: the image files, sorted by path, and the entries it left
/// alone, with why (both relative to the root).
#[derive(Default)]
struct Listing {
    images: Vec<Entry>,
    skipped: Vec<(PathBuf, String)>,
}

/// Every image file under `root` (hidden files and folders skipped). The walk never leaves
/// `root` and reads each folder once: symbolic links are not followed, to a folder or to a
/// file (a link leads outside the root, or to a file the walk visits anyway), and only
/// regular files are taken (a FIFO or device named `*.jpg` is never opened). Links to
/// folders and image-named entries that are not taken are listed as skipped.
fn list_images(root: &Path) -> anyhow::Result<Listing> {
    let mut listing = Listing::default();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let cannot_read =
            |e: std::io::Error| InputError::new(format!("{}: cannot read ({e})", folder.display()));
        for item in std::fs::read_dir(&folder).map_err(cannot_read)? {
            let item = item.map_err(cannot_read)?;
            let path = item.path();
            if is_hidden(&path) {
                continue;
            }
            // The entry itself, not what a link points to.
            let kind = item.file_type().map_err(cannot_read)?;
            if kind.is_dir() {
                folders.push(path);
                continue;
            }
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            if kind.is_symlink() {
                if has_image_extension(&path) || path.is_dir() {
                    let reason = "a symbolic link: the catalogue walk does not follow links";
                    listing.skipped.push((relative, reason.to_string()));
                }
                continue;
            }
            if !has_image_extension(&path) {
                continue;
            }
            if !kind.is_file() {
                let reason = "a FIFO, socket or device, not a regular file";
                listing.skipped.push((relative, reason.to_string()));
                continue;
            }
            let meta = item.metadata().map_err(cannot_read)?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64);
            listing.images.push(Entry {
                path: relative,
                bytes: meta.len(),
                modified,
            });
        }
    }
    listing.images.sort_by(|a, b| a.path.cmp(&b.path));
    listing.skipped.sort();
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_largest_first_and_skips_the_query() {
        let scores = [0.1, 0.9, 0.5, 0.95, -1.0];
        assert_eq!(top_k(&scores, 2, None), [(3, 0.95), (1, 0.9)]);
        assert_eq!(top_k(&scores, 2, Some(3)), [(1, 0.9), (2, 0.5)]);
        assert_eq!(top_k(&scores, 10, Some(0)).len(), 4);
        assert!(top_k(&[], 3, None).is_empty());
    }
}
