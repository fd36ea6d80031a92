//! Frozen activations through the on-disk cache: rows of images already cached are read
//! (memory-mapped), only new or changed images go through the backbone, and their rows are
//! added to the cache for the next run and every other process of the host.

use super::frozen::{BackbonePass, Frozen, FrozenJob, FrozenSource, Notice};
use crate::cache::{ImageId, MappedSegment, PassFolder, PassKey, Recording, SegmentRows};
use crate::data::decode::Skipped;
use crate::data::pass_input::PassInput;
use crate::data::stream::Streamed;
use crate::digest::{file_sha256, sha256_of};
use crate::model::frozen::FrozenForward;
use crate::model::Device;
use crate::scheduler::{Progress, Work};
use crate::train::features::{stop_on_cancel, SharedActivations};
use crate::train::rows::{RecordedRows, Rows};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The backbone pass, reading and filling the cache in `dir`.
pub struct CachedPass<'d> {
    pub dir: PathBuf,
    pub device: &'d Device,
}

/// Something the cache could not do (read its folder, lock, write): the run goes on without it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CacheTrouble(String);

fn trouble(what: &str) -> impl Fn(std::io::Error) -> anyhow::Error + '_ {
    move |e| CacheTrouble(format!("{what}: {e}")).into()
}

impl FrozenSource for CachedPass<'_> {
    fn activations(
        &self,
        job: &FrozenJob,
        progress: &dyn Progress,
        notice: &mut dyn FnMut(Notice),
    ) -> anyhow::Result<Frozen> {
        let mut skipped = Vec::new();
        match self.through_cache(job, progress, notice, &mut skipped) {
            Ok(frozen) => {
                skipped.iter().for_each(|s| notice(Notice::Skipped(s)));
                Ok(frozen)
            }
            Err(e) => match e.downcast::<CacheTrouble>() {
                Ok(trouble) => {
                    let line = format!(
                        "cache: {}: {trouble}; going on without caching",
                        self.dir.display()
                    );
                    notice(Notice::Cache(&line));
                    BackbonePass {
                        device: self.device,
                    }
                    .activations(job, progress, notice)
                }
                Err(other) => Err(other),
            },
        }
    }
}

impl CachedPass<'_> {
    fn through_cache(
        &self,
        job: &FrozenJob,
        progress: &dyn Progress,
        notice: &mut dyn FnMut(Notice),
        skipped: &mut Vec<Skipped>,
    ) -> anyhow::Result<Frozen> {
        let weights = &job.key.weights;
        let key = PassKey {
            backbone: job.backbone.info().name(),
            weights_sha256: sha256_of(weights).map_err(trouble(&weights.display().to_string()))?,
            image_size: job.key.image_size,
        };
        let ids = input_ids(job.inputs);
        let folder = PassFolder::open(&self.dir, &key).map_err(trouble("cannot open it"))?;
        let _building = folder.building().map_err(trouble("cannot lock it"))?;
        let recordings: Vec<Recording> = std::iter::once(Recording::Pooled)
            .chain(job.boundaries.iter().map(|&b| Recording::Block(b)))
            .collect();
        let mut warn = |line: String| notice(Notice::Cache(&line));
        let mut segments = Vec::with_capacity(recordings.len());
        for &recording in &recordings {
            let found = folder.segments(recording, &mut warn);
            segments.push(found.map_err(trouble("cannot read it"))?);
        }
        let cached: Vec<HashSet<ImageId>> = segments
            .iter()
            .map(|s| s.iter().flat_map(|s| s.ids.iter().copied()).collect())
            .collect();
        let todo = to_compute(&ids, &cached);
        if !todo.is_empty() {
            let added = self.compute(
                job,
                &folder,
                &recordings,
                &ids,
                &cached,
                &todo,
                progress,
                skipped,
            )?;
            for (found, new) in segments.iter_mut().zip(added) {
                found.extend(new);
            }
        }
        let from_cache = ids
            .iter()
            .filter(|id| id.is_some_and(|id| cached.iter().all(|c| c.contains(&id))))
            .count();
        let (frozen, inputs) = self.rows(&folder, &recordings, segments, job, &ids);
        let activations = SharedActivations::new(frozen, inputs);
        Ok(Frozen {
            images: activations.images(),
            views: activations.views(),
            activations,
            from_cache,
        })
    }

    /// Run the backbone over the inputs `todo`, writing the rows each recording lacks to a
    /// new segment of it; returns the new segments, mapped, per recording.
    #[allow(clippy::too_many_arguments)]
    fn compute(
        &self,
        job: &FrozenJob,
        folder: &PassFolder,
        recordings: &[Recording],
        ids: &[Option<ImageId>],
        cached: &[HashSet<ImageId>],
        todo: &[usize],
        progress: &dyn Progress,
        skipped: &mut Vec<Skipped>,
    ) -> anyhow::Result<Vec<Vec<MappedSegment>>> {
        let lacking =
            |r: usize, id: &Option<ImageId>| id.is_some_and(|id| !cached[r].contains(&id));
        let mut writers = Vec::with_capacity(recordings.len());
        for (r, &recording) in recordings.iter().enumerate() {
            let needed = todo.iter().any(|&i| lacking(r, &ids[i]));
            let writer = match needed {
                true => Some(
                    folder
                        .writer(recording)
                        .map_err(trouble("cannot write to it"))?,
                ),
                false => None,
            };
            writers.push(writer);
        }
        let blocks: BTreeSet<usize> = recordings
            .iter()
            .zip(&writers)
            .filter_map(|(r, w)| match (r, w) {
                (Recording::Block(b), Some(_)) => Some(*b),
                _ => None,
            })
            .collect();
        let pass = FrozenForward {
            backbone: job.backbone,
            size: job.key.image_size,
            boundaries: &blocks,
            device: self.device,
        };
        progress.start(Work::Backbone, todo.len());
        let on_batch = |n| progress.advance(n);
        let before_batch = stop_on_cancel(job.cancel, &on_batch);
        let decode = |&i: &usize| job.inputs[i].decode(pass.size, ids[i].as_ref());
        let streamed = pass.streamed(todo, &decode, &before_batch, &mut |event| {
            match event {
                Streamed::Unreadable(k, reason) => {
                    progress.advance(1);
                    let input = &job.inputs[todo[k]];
                    if input.view.is_none() {
                        skipped.push(Skipped {
                            path: input.path.clone(),
                            reason: reason.to_string(),
                        });
                    }
                }
                Streamed::Worked(items, recorded) => {
                    for (r, writer) in writers.iter_mut().enumerate() {
                        let Some(writer) = writer else { continue };
                        let mut keep = Vec::new();
                        let mut kept_ids = Vec::new();
                        for (row, &k) in items.iter().enumerate() {
                            if let Some(id) = ids[todo[k]].filter(|_| lacking(r, &ids[todo[k]])) {
                                keep.push(row as u32);
                                kept_ids.push(id);
                            }
                        }
                        let rows = match recordings[r] {
                            Recording::Pooled => &recorded.pooled,
                            Recording::Block(b) => recorded.input_of(b)?,
                        };
                        writer
                            .append(&kept_ids, rows, &keep)
                            .map_err(|e| CacheTrouble(format!("cannot write to it: {e:#}")))?;
                    }
                }
            }
            Ok(())
        });
        progress.finish();
        streamed?;
        let mut added = Vec::with_capacity(writers.len());
        for (writer, &recording) in writers.into_iter().zip(recordings) {
            let mut new = Vec::new();
            if let Some(writer) = writer.filter(|w| !w.is_empty()) {
                let path = writer
                    .finish(&folder.provenance(recording))
                    .map_err(|e| CacheTrouble(format!("cannot write to it: {e:#}")))?;
                let segment = MappedSegment::open(&path, &folder.provenance(recording))
                    .map_err(|e| CacheTrouble(format!("{}: {e}", path.display())))?;
                new.push(segment);
            }
            added.push(new);
        }
        Ok(added)
    }

    /// The rows of `job`'s inputs found in `segments` (every recording of one input), in the
    /// inputs' order, and those inputs.
    fn rows(
        &self,
        folder: &PassFolder,
        recordings: &[Recording],
        segments: Vec<Vec<MappedSegment>>,
        job: &FrozenJob,
        ids: &[Option<ImageId>],
    ) -> (RecordedRows, Vec<PassInput>) {
        let rows_of: Vec<HashMap<ImageId, u32>> = segments
            .iter()
            .map(|found| {
                let ids = found.iter().flat_map(|s| s.ids.iter().copied());
                // A later segment's row of an image wins (none should repeat one).
                ids.enumerate().map(|(row, id)| (id, row as u32)).collect()
            })
            .collect();
        let mut found = Vec::new();
        let mut positions: Vec<Vec<u32>> = vec![Vec::new(); recordings.len()];
        for (input, id) in job.inputs.iter().zip(ids) {
            let Some(id) = id else { continue };
            let rows: Option<Vec<u32>> = rows_of.iter().map(|m| m.get(id).copied()).collect();
            if let Some(rows) = rows {
                found.push(input.clone());
                for (p, row) in positions.iter_mut().zip(rows) {
                    p.push(row);
                }
            }
        }
        let mut views = segments.into_iter().zip(positions).map(|(found, p)| {
            let storage = Arc::new(SegmentRows::new(found, folder.in_use()));
            Rows::all(storage, self.device).pick(&p)
        });
        let pooled = views.next().expect("the pooled recording comes first");
        let boundaries = recordings[1..]
            .iter()
            .map(|r| match r {
                Recording::Block(b) => *b,
                Recording::Pooled => unreachable!("only the first is pooled"),
            })
            .zip(views)
            .collect();
        (RecordedRows { pooled, boundaries }, found)
    }
}

/// The identity of each input (see [`PassInput::id`]), hashing each file once however many
/// views of it there are; none for a file that cannot be read.
fn input_ids(inputs: &[PassInput]) -> Vec<Option<ImageId>> {
    let paths: HashSet<&Path> = inputs.iter().map(|i| i.path.as_path()).collect();
    let files: HashMap<&Path, Option<ImageId>> = paths
        .into_par_iter()
        .map(|path| (path, image_id(path)))
        .collect();
    inputs
        .iter()
        .map(|input| files[input.path.as_path()].map(|file| input.id(&file)))
        .collect()
}

/// The inputs to run through the backbone: each image or view some recording lacks (once, however
/// many files hold it), and each file that cannot be read (so that its reason is told).
fn to_compute(ids: &[Option<ImageId>], cached: &[HashSet<ImageId>]) -> Vec<usize> {
    let mut queued = HashSet::new();
    (0..ids.len())
        .filter(|&i| match ids[i] {
            None => true,
            Some(id) => cached.iter().any(|c| !c.contains(&id)) && queued.insert(id),
        })
        .collect()
}

/// A file's identity, if it is a regular file that can be read (else its decode says why not).
fn image_id(path: &Path) -> Option<ImageId> {
    let meta = std::fs::metadata(path).ok()?;
    meta.is_file().then(|| file_sha256(path).ok()).flatten()
}
