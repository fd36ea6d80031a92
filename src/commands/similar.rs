//! `gridsearch similar IMAGE`: the catalogue photos nearest an image; `--evaluate`: how often
//! neighbours share their query's folder, and how long a query takes.

use super::Exit;
use crate::cli::SimilarArgs;
use crate::error::InputError;
use crate::inference::model_set::ImageSource;
use crate::model::Device;
use crate::similarity::{CatalogueIndex, Embedder};
use std::time::Instant;

/// Catalogue photos timed as queries by `--evaluate`.
const TIMED_QUERIES: usize = 21;

pub fn run(args: &SimilarArgs) -> anyhow::Result<Exit> {
    let device = crate::model::select_device(args.device.device.as_deref())?;
    let index = CatalogueIndex::load(&args.index, &device)?;
    let embedder = Embedder::load(&index.source, &device)?;
    let k = usize::from(args.k);
    if args.evaluate {
        return evaluate(&index, &embedder, k, args.json, &device);
    }
    let image = args
        .image
        .as_deref()
        .expect("clap requires IMAGE without --evaluate");
    let neighbours = index
        .query(&embedder, ImageSource::File(image), k, &device)
        .map_err(|reason| {
            InputError::new(format!(
                "{}: not a readable image ({reason})",
                image.display()
            ))
        })?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&neighbours)?);
    } else {
        for (rank, n) in neighbours.iter().enumerate() {
            crate::outln!(
                "{:>2}  {:.4}  {}",
                rank + 1,
                n.similarity,
                index.root.join(&n.path).display()
            );
        }
    }
    Ok(Exit::Ok)
}

fn evaluate(
    index: &CatalogueIndex,
    embedder: &Embedder,
    k: usize,
    json: bool,
    device: &Device,
) -> anyhow::Result<Exit> {
    let agreement = index.same_folder_rate(k)?;
    let step = (index.entries.len() / TIMED_QUERIES).max(1);
    let mut times = Vec::with_capacity(TIMED_QUERIES);
    for row in (0..index.entries.len()).step_by(step).take(TIMED_QUERIES) {
        let path = index.root.join(&index.entries[row].path);
        let clock = Instant::now();
        index
            .query(embedder, ImageSource::File(&path), k, device)
            .map_err(|reason| anyhow::anyhow!("{}: {reason}", path.display()))?;
        times.push(clock.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let median_ms = times[times.len() / 2];
    if json {
        let value = serde_json::json!({
            "k": k,
            "queries": agreement.queries,
            "same_folder_rate": agreement.rate(),
            "by_folder": agreement.by_folder,
            "median_query_ms": median_ms,
            "timed_queries": times.len(),
        });
        crate::outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(Exit::Ok);
    }
    crate::outln!(
        "{}: {} photos; their {k} nearest other photos share the query's folder {:.1}% of the time",
        index.root.display(),
        agreement.queries,
        100.0 * agreement.rate()
    );
    for (folder, (hits, total)) in &agreement.by_folder {
        crate::outln!(
            "  {folder:<12} {:.1}%",
            100.0 * *hits as f64 / (*total).max(1) as f64
        );
    }
    crate::outln!(
        "one query (decode, embed, search {} photos): median {median_ms:.1} ms over {} queries",
        agreement.queries,
        times.len()
    );
    Ok(Exit::Ok)
}
