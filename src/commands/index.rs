//! `gridsearch index DIR`: embed a catalogue's photos once; reruns embed only what changed.

use super::progress::bar;
use super::Exit;
use crate::cli::{EmbeddingArgs, IndexArgs};
use crate::error::InputError;
use crate::model::Device;
use crate::similarity::{CatalogueIndex, Embedder, EmbeddingSource};
use std::path::Path;
use std::time::Instant;

pub fn run(args: &IndexArgs, quiet: bool) -> anyhow::Result<Exit> {
    let device = crate::model::select_device(args.device.device.as_deref())?;
    let source = embedding_source(&args.embedding)?;
    let (index, _) = update_index(&args.dir, &args.index, source, &device, quiet)?;
    crate::outln!(
        "indexed {} photos of {} -> {}",
        index.entries.len(),
        args.dir.display(),
        args.index.display()
    );
    Ok(Exit::Ok)
}

/// The embedding the options ask for, with paths made absolute so the index outlives the
/// working directory.
pub fn embedding_source(args: &EmbeddingArgs) -> anyhow::Result<EmbeddingSource> {
    let absolute = |path: &Path, what: &str| {
        path.canonicalize()
            .map_err(|e| InputError::new(format!("{}: {what} not found ({e})", path.display())))
    };
    if let Some(folder) = &args.model {
        return Ok(EmbeddingSource::Model {
            folder: absolute(folder, "model folder")?,
        });
    }
    let info = crate::catalogue::lookup(&args.backbone).ok_or_else(|| {
        InputError::new(format!(
            "--backbone {}: unknown (see `gridsearch backbones`)",
            args.backbone
        ))
    })?;
    let image_size = args.image_size.unwrap_or(info.default_image_size);
    if image_size < info.min_image_size {
        return Err(InputError::new(format!(
            "--image-size {image_size}: {} needs at least {}",
            info.name(),
            info.min_image_size
        ))
        .into());
    }
    Ok(EmbeddingSource::Backbone {
        backbone: info.name().to_string(),
        weights: absolute(&args.weights, "weights file")?,
        image_size,
    })
}

/// Bring the index at `index_path` up to date with the catalogue `dir` and save it: photos
/// already embedded the same way are reused, new or changed ones embedded, removed ones dropped.
/// Returns the index with the embedder that made it (queries must be embedded the same way).
pub fn update_index(
    dir: &Path,
    index_path: &Path,
    source: EmbeddingSource,
    device: &Device,
    quiet: bool,
) -> anyhow::Result<(CatalogueIndex, Embedder)> {
    let previous = index_path
        .is_file()
        .then(|| CatalogueIndex::load(index_path, device))
        .transpose()?;
    let previous_count = previous.as_ref().map(|p| p.entries.len());
    let embedder = Embedder::load(&source, device)?;
    let clock = Instant::now();
    let progress = bar(0, "embed", quiet);
    let on_progress = |done: usize, total: usize| {
        progress.set_length(total as u64);
        progress.set_position(done as u64);
    };
    let (index, stats) = CatalogueIndex::build(dir, &embedder, previous, device, &on_progress)?;
    progress.finish_and_clear();
    for (path, reason) in &stats.skipped {
        eprintln!(
            "warning: {}: skipped, not a readable image ({reason})",
            index.root.join(path).display()
        );
    }
    let seconds = clock.elapsed().as_secs_f64();
    if stats.embedded > 0 || Some(index.entries.len()) != previous_count {
        index.save(index_path)?;
    }
    if !quiet {
        eprintln!(
            "index: {} photos embedded in {seconds:.1} s ({:.0} per second), {} reused",
            stats.embedded,
            stats.embedded as f64 / seconds.max(1e-9),
            stats.reused
        );
    }
    Ok((index, embedder))
}
