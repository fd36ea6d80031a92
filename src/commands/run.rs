//! `gridsearch run GRID...`: validate every grid, then run each study's unfinished trials.

use super::progress::bar;
use super::Exit;
use crate::cli::RunArgs;
use crate::data::decode::{decode_all, DecodedImages};
use crate::data::{load_dataset, Sample};
use crate::error::InputError;
use crate::grid::Grid;
use crate::model::load_backbone;
use crate::report::{build, render, Format};
use crate::scheduler::{run_sweep, SweepSummary};
use crate::store::Store;
use crate::train::features::{record, Activations};
use crate::train::{FeatureBank, PhaseContext, Plan};
use crate::trial::{TrialSpec, TrialState};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running trial whose heartbeat is older than this was left by a dead process.
const STALE_AFTER: Duration = Duration::from_secs(600);

pub fn run(args: &RunArgs, db: &Path, quiet: bool) -> anyhow::Result<Exit> {
    let grids = args
        .grids
        .iter()
        .map(|path| Grid::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut store = Store::open(db)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    let jobs = args
        .jobs
        .map_or_else(crate::threads::available_cores, usize::from);
    let mut total = SweepSummary::default();
    for grid in &grids {
        let summary = run_grid(grid, &mut store, db, jobs, quiet, &cancel)?;
        total.completed += summary.completed;
        total.failed += summary.failed;
        total.released += summary.released;
        if cancel.load(Ordering::SeqCst) {
            break;
        }
    }
    if cancel.load(Ordering::SeqCst) {
        eprintln!(
            "interrupted: {} running trials put back to pending; run the same command again to resume",
            total.released
        );
        return Ok(Exit::Interrupted);
    }
    if total.failed > 0 {
        eprintln!(
            "{} trials failed (their errors are in the report)",
            total.failed
        );
        return Ok(Exit::TrialsFailed);
    }
    Ok(Exit::Ok)
}

fn run_grid(
    grid: &Grid,
    store: &mut Store,
    db: &Path,
    jobs: usize,
    quiet: bool,
    cancel: &AtomicBool,
) -> anyhow::Result<SweepSummary> {
    let study = store.ensure_study(&grid.study_name, &grid.text, &grid.fingerprint())?;
    let trials = grid.trials();
    let added = store.add_trials(study.id, &trials)?;
    store.requeue_stale(study.id, STALE_AFTER)?;
    let pending: HashSet<String> = store
        .trials(study.id)?
        .into_iter()
        .filter(|t| t.state == TrialState::Pending)
        .map(|t| t.key)
        .collect();
    let todo: Vec<TrialSpec> = trials
        .into_iter()
        .filter(|t| pending.contains(&t.key))
        .collect();
    let info = crate::backbones::lookup(&grid.model.backbone).expect("validated backbone");
    if todo.is_empty() {
        println!(
            "study {}: every trial is finished ({added} new)",
            study.name
        );
        return Ok(SweepSummary::default());
    }
    let plan = Plan::new(&todo, info.blocks);
    if !quiet {
        eprintln!(
            "study {}: {} trials to run ({added} new)",
            study.name,
            todo.len()
        );
        eprint!("{plan}");
    }
    let clock = Instant::now();
    let dataset = load_dataset(&grid.data, grid.seed)?;
    let train = decode(&dataset.train, grid.data.image_size, "decode", quiet)?;
    let val = decode(&dataset.val, grid.data.image_size, "decode val", quiet)?;
    let decode_seconds = clock.elapsed().as_secs_f64();
    let device = crate::model::default_device()?;
    let backbone = load_backbone(&grid.model.backbone, &grid.model.weights, &device)?;
    let frozen = |images: &DecodedImages, label: &str| -> anyhow::Result<Activations> {
        let progress = bar(images.samples.len(), label, quiet);
        let out = record(backbone.as_ref(), images, &plan.boundaries, &device, &|n| {
            progress.inc(n as u64)
        })?;
        progress.finish_and_clear();
        Ok(out)
    };
    let bank = FeatureBank {
        train: frozen(&train, "backbone")?,
        val: frozen(&val, "backbone val")?,
    };
    let frozen_seconds = clock.elapsed().as_secs_f64() - decode_seconds;
    let ctx = PhaseContext {
        bank: &bank,
        backbone: backbone.as_ref(),
        classes: dataset.classes.len(),
        device: &device,
        cancel,
    };
    let progress = bar(todo.len(), "trials", quiet);
    let summary = run_sweep(&ctx, db, study.id, plan.groups, jobs, &progress)?;
    progress.finish_and_clear();
    if !quiet {
        let images = train.samples.len() + val.samples.len();
        eprintln!(
            "time: decode {decode_seconds:.1} s, backbone pass {frozen_seconds:.1} s ({:.0} img/s), trials {:.1} s",
            images as f64 / frozen_seconds,
            clock.elapsed().as_secs_f64() - decode_seconds - frozen_seconds
        );
    }
    let report = build(&study, &store.trials(study.id)?, Some(5));
    print!("{}", render(&report, Format::Table));
    Ok(summary)
}

/// Decode one split, report skipped files once each, refuse a split left empty.
fn decode(
    samples: &[Sample],
    size: usize,
    label: &str,
    quiet: bool,
) -> anyhow::Result<DecodedImages> {
    let progress = bar(samples.len(), label, quiet);
    let (images, skipped) = decode_all(samples, size, &|| progress.inc(1));
    progress.finish_and_clear();
    for s in &skipped {
        eprintln!(
            "warning: {}: skipped, not a readable image ({})",
            s.path.display(),
            s.reason
        );
    }
    let classes: BTreeSet<usize> = images.samples.iter().map(|s| s.label).collect();
    if images.samples.is_empty() || classes.len() < 2 {
        return Err(InputError::new(format!(
            "{label}: fewer than two classes have readable images ({} files skipped)",
            skipped.len()
        ))
        .into());
    }
    Ok(images)
}
