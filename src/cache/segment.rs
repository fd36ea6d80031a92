//! One cache file: the rows of one recording for some images, as safetensors (`rows`: f32
//! [n, ...], `ids`: u8 [n, 32], the images' SHA-256), with what made them in its metadata and a
//! CRC-32 of the rows. Written as the pass goes to a temporary file, renamed when whole; read
//! memory-mapped and checked before any row is used.

use super::key::Recording;
use crate::train::rows::RowStorage;
use candle_core::{DType, Device, Tensor};
use memmap2::Mmap;
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// What every segment's metadata says first; another value is another format.
pub const FORMAT: &str = "gridsearch-activations-1";

/// The bytes before the data: the header's 8-byte length and its JSON, padded with spaces (as
/// safetensors allows) so the rows can be written before their count is known.
const HEADER_SPACE: usize = 4096;

/// How a segment's temporary file ends, until it is renamed into place.
pub const PARTIAL: &str = ".partial";

/// An image's identity: the SHA-256 of its file's bytes.
pub type ImageId = [u8; 32];

/// What made a segment, all of which must match for its rows to be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub backbone: String,
    pub weights_sha256: String,
    pub image_size: usize,
    pub recording: Recording,
}

impl Provenance {
    fn metadata(&self, rows_crc32: u32) -> HashMap<String, String> {
        HashMap::from([
            ("format".into(), FORMAT.into()),
            ("gridsearch".into(), env!("CARGO_PKG_VERSION").into()),
            (
                "pixels".into(),
                crate::data::decode::PIXELS_VERSION.to_string(),
            ),
            ("backbone".into(), self.backbone.clone()),
            ("weights_sha256".into(), self.weights_sha256.clone()),
            ("image_size".into(), self.image_size.to_string()),
            ("recording".into(), self.recording.name()),
            ("rows_crc32".into(), rows_crc32.to_string()),
        ])
    }
}

/// Why a segment's rows cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SegmentProblem {
    #[error("written by another version ({0})")]
    OtherVersion(String),
    #[error("damaged ({0})")]
    Damaged(String),
    #[error("cannot be read ({0})")]
    Unreadable(#[from] std::io::Error),
}

/// A segment being written: rows are appended batch by batch; nothing is at the final name
/// until [`SegmentWriter::finish`] (dropped before that, the temporary file is removed).
pub struct SegmentWriter {
    file: Option<BufWriter<File>>,
    temporary: PathBuf,
    destination: PathBuf,
    row_dims: Option<Vec<usize>>,
    ids: Vec<ImageId>,
    crc: crc32fast::Hasher,
}

impl SegmentWriter {
    /// Start a segment that will be `destination` (a temporary file beside it until finished).
    pub fn create(destination: PathBuf) -> std::io::Result<SegmentWriter> {
        let name = destination
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        let temporary = destination.with_file_name(format!(".{name}{PARTIAL}"));
        let mut file = BufWriter::new(File::create(&temporary)?);
        file.write_all(&[b' '; HEADER_SPACE])?;
        Ok(SegmentWriter {
            file: Some(file),
            temporary,
            destination,
            row_dims: None,
            ids: Vec::new(),
            crc: crc32fast::Hasher::new(),
        })
    }

    /// Append the rows `picked` of `rows` ([k, ...] f32, on any device): those of the images
    /// `ids`, one per picked row.
    pub fn append(&mut self, ids: &[ImageId], rows: &Tensor, picked: &[u32]) -> anyhow::Result<()> {
        let dims = &rows.dims()[1..];
        match &self.row_dims {
            None => self.row_dims = Some(dims.to_vec()),
            Some(known) => anyhow::ensure!(known == dims, "rows of another shape"),
        }
        anyhow::ensure!(picked.len() == ids.len(), "one row per image");
        let values: Vec<f32> = rows
            .index_select(&Tensor::new(picked, rows.device())?, 0)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_device(&Device::Cpu)?
            .to_vec1()?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.crc.update(&bytes);
        self.file().write_all(&bytes)?;
        self.ids.extend_from_slice(ids);
        Ok(())
    }

    /// Images appended so far.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Write the ids and the header, flush to disk and rename to the final name.
    pub fn finish(mut self, provenance: &Provenance) -> anyhow::Result<PathBuf> {
        let n = self.ids.len();
        let dims = self.row_dims.clone().unwrap_or_default();
        let row_bytes = 4 * dims.iter().product::<usize>();
        let ids: Vec<u8> = self.ids.concat();
        self.file().write_all(&ids)?;
        let shape: Vec<usize> = std::iter::once(n).chain(dims).collect();
        let metadata = provenance.metadata(self.crc.clone().finalize());
        let header = serde_json::json!({
            "__metadata__": metadata,
            "rows": {"dtype": "F32", "shape": shape, "data_offsets": [0, n * row_bytes]},
            "ids": {"dtype": "U8", "shape": [n, 32],
                    "data_offsets": [n * row_bytes, n * row_bytes + ids.len()]},
        })
        .to_string();
        let space = HEADER_SPACE - 8;
        anyhow::ensure!(header.len() <= space, "cache header too long");
        let mut file = self.file.take().expect("not finished").into_inner()?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&(space as u64).to_le_bytes())?;
        file.write_all(header.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&self.temporary, &self.destination)?;
        Ok(self.destination.clone())
    }

    fn file(&mut self) -> &mut BufWriter<File> {
        self.file.as_mut().expect("not finished")
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// A segment's file, mapped and checked: its rows can be gathered by the training.
pub struct MappedSegment {
    map: Mmap,
    /// Where the rows start in the file, and the floats of one row.
    rows_at: usize,
    row_floats: usize,
    row_dims: Vec<usize>,
    pub ids: Vec<ImageId>,
    pub path: PathBuf,
}

impl MappedSegment {
    /// Map `path` and check it is whole, of this format and version, made by `expected`, and
    /// that its rows' CRC-32 matches.
    pub fn open(path: &Path, expected: &Provenance) -> Result<MappedSegment, SegmentProblem> {
        let file = File::open(path)?;
        // SAFETY: cache files are only ever written under another name and renamed into
        // place, never changed after; a file truncated by hand is caught below (its size) or
        // fails the CRC.
        let map = unsafe { Mmap::map(&file)? };
        let damaged = |what: String| SegmentProblem::Damaged(what);
        let tensors = SafeTensors::deserialize(&map).map_err(|e| damaged(e.to_string()))?;
        let (_, header) = SafeTensors::read_metadata(&map).map_err(|e| damaged(e.to_string()))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let field = |k: &str| metadata.get(k).map(String::as_str).unwrap_or("");
        let version = (field("gridsearch"), field("pixels"));
        let ours = (
            env!("CARGO_PKG_VERSION"),
            crate::data::decode::PIXELS_VERSION.to_string(),
        );
        if field("format") != FORMAT || version != (ours.0, ours.1.as_str()) {
            return Err(SegmentProblem::OtherVersion(format!(
                "format {:?}, gridsearch {:?}, pixels {:?}",
                field("format"),
                version.0,
                version.1
            )));
        }
        let made_by = (
            field("backbone"),
            field("weights_sha256"),
            field("image_size"),
            field("recording"),
        );
        let size = expected.image_size.to_string();
        let recording = expected.recording.name();
        let wanted = (
            expected.backbone.as_str(),
            expected.weights_sha256.as_str(),
            size.as_str(),
            recording.as_str(),
        );
        if made_by != wanted {
            return Err(damaged(format!("made by another pass: {made_by:?}")));
        }
        let rows = tensors.tensor("rows").map_err(|e| damaged(e.to_string()))?;
        let ids = tensors.tensor("ids").map_err(|e| damaged(e.to_string()))?;
        let n = rows.shape().first().copied().unwrap_or(0);
        if rows.dtype() != safetensors::Dtype::F32
            || ids.dtype() != safetensors::Dtype::U8
            || ids.shape() != [n, 32]
        {
            return Err(damaged("unexpected tensors".into()));
        }
        let crc = crc32fast::hash(rows.data());
        if field("rows_crc32") != crc.to_string() {
            return Err(damaged("the rows' CRC-32 does not match".into()));
        }
        let rows_at = rows.data().as_ptr() as usize - map.as_ptr() as usize;
        let row_dims = rows.shape()[1..].to_vec();
        let ids = ids
            .data()
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        Ok(MappedSegment {
            rows_at,
            row_floats: row_dims.iter().product(),
            row_dims,
            ids,
            path: path.to_path_buf(),
            map,
        })
    }

    /// The shape of one row.
    pub fn row_dims(&self) -> &[usize] {
        &self.row_dims
    }

    /// Bytes of the file.
    pub fn bytes(&self) -> usize {
        self.map.len()
    }

    /// Append row `i`'s floats to `out`.
    fn copy_row(&self, i: usize, out: &mut Vec<f32>) {
        let start = self.rows_at + 4 * i * self.row_floats;
        let bytes = &self.map[start..start + 4 * self.row_floats];
        out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        );
    }
}

/// The rows of several segments of one recording, one after another, as one storage; it holds
/// `in_use` (the folder's shared lock) while it lives, so no eviction removes its files.
pub struct SegmentRows {
    segments: Vec<MappedSegment>,
    /// Global row of each segment's first row.
    starts: Vec<usize>,
    rows: usize,
    _in_use: std::sync::Arc<File>,
}

impl SegmentRows {
    pub fn new(segments: Vec<MappedSegment>, in_use: std::sync::Arc<File>) -> SegmentRows {
        let mut starts = Vec::with_capacity(segments.len());
        let mut rows = 0;
        for s in &segments {
            starts.push(rows);
            rows += s.ids.len();
        }
        SegmentRows {
            segments,
            starts,
            rows,
            _in_use: in_use,
        }
    }
}

impl RowStorage for SegmentRows {
    fn len(&self) -> usize {
        self.rows
    }

    fn gather(&self, index: &[u32], device: &Device) -> candle_core::Result<Tensor> {
        let Some(first) = self.segments.first() else {
            candle_core::bail!("no cached rows");
        };
        let mut out = Vec::with_capacity(index.len() * first.row_floats);
        for &i in index {
            let i = i as usize;
            let s = self.starts.partition_point(|&start| start <= i) - 1;
            self.segments[s].copy_row(i - self.starts[s], &mut out);
        }
        let shape: Vec<usize> = std::iter::once(index.len())
            .chain(first.row_dims.iter().copied())
            .collect();
        Tensor::from_vec(out, shape, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            backbone: "efficientnet-lite0".into(),
            weights_sha256: "ab".repeat(32),
            image_size: 64,
            recording: Recording::Block(14),
        }
    }

    fn written(dir: &Path, rows: &[[f32; 3]]) -> PathBuf {
        let mut writer = SegmentWriter::create(dir.join("block14.1.safetensors")).unwrap();
        for (i, row) in rows.iter().enumerate() {
            let t = Tensor::new(&[[*row]], &Device::Cpu).unwrap();
            writer.append(&[[i as u8; 32]], &t, &[0]).unwrap();
        }
        writer.finish(&provenance()).unwrap()
    }

    #[test]
    fn written_rows_read_back_mapped_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [[1.5, -0.0, f32::MIN_POSITIVE], [3.0, 4.0, 5.0]];
        let path = written(dir.path(), &rows);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
        let segment = MappedSegment::open(&path, &provenance()).unwrap();
        assert_eq!(segment.ids, [[0u8; 32], [1u8; 32]]);
        assert_eq!(segment.row_dims(), [1, 3]);
        let storage = SegmentRows::new(
            vec![segment],
            std::sync::Arc::new(File::open(&path).unwrap()),
        );
        let t = storage.gather(&[1, 0], &Device::Cpu).unwrap();
        let got: Vec<u32> = t
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let want: Vec<u32> = rows[1]
            .iter()
            .chain(&rows[0])
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_damaged_truncated_or_foreign_segment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), &[[1.0, 2.0, 3.0]]);
        let bytes = std::fs::read(&path).unwrap();
        let problem = |bytes: &[u8], expected: &Provenance| {
            std::fs::write(&path, bytes).unwrap();
            MappedSegment::open(&path, expected)
                .err()
                .unwrap()
                .to_string()
        };
        let mut flipped = bytes.clone();
        flipped[HEADER_SPACE + 5] ^= 1;
        assert!(problem(&flipped, &provenance()).contains("CRC-32"));
        assert!(problem(&bytes[..bytes.len() - 7], &provenance()).starts_with("damaged"));
        let other = Provenance {
            image_size: 128,
            ..provenance()
        };
        assert!(problem(&bytes, &other).contains("another pass"));
        let mut older = bytes.clone();
        let at = older
            .windows(FORMAT.len())
            .position(|w| w == FORMAT.as_bytes())
            .unwrap();
        older[at + FORMAT.len() - 1] = b'0';
        assert!(problem(&older, &provenance()).starts_with("written by another version"));
        assert!(problem(b"", &provenance()).starts_with("damaged"));
    }

    #[test]
    fn an_unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SegmentWriter::create(dir.path().join("pooled.1.safetensors")).unwrap();
        let t = Tensor::new(&[[1f32], [2.0]], &Device::Cpu).unwrap();
        writer.append(&[[7; 32]], &t, &[1]).unwrap();
        drop(writer);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
