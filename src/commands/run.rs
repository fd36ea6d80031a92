//! `gridsearch run GRID...`: validate every grid, then run each study's unfinished trials.

use super::progress::bar;
use super::Exit;
use crate::cli::RunArgs;
use crate::data::decode::{decode_all, DecodedImages};
use crate::data::{load_dataset, Dataset, Sample};
use crate::error::InputError;
use crate::grid::{fingerprint_changes, Grid};
use crate::model::{load_backbone, Backbone, Device};
use crate::report::{build, render, Format};
use crate::scheduler::{is_dead_worker, run_sweep, SweepSummary};
use crate::store::{Recovered, Store};
use crate::train::features::{record, Activations};
use crate::train::{FeatureBank, Interrupted, PhaseContext, Plan};
use crate::trial::{StudyRecord, TrialSpec, TrialState};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running trial whose heartbeat is older than this was left by a dead process.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// What `run` needs beyond the grids.
struct Options<'a> {
    db: &'a Path,
    jobs: usize,
    quiet: bool,
    max_attempts: u32,
    cancel: &'a AtomicBool,
}

pub fn run(args: &RunArgs, db: &Path, quiet: bool) -> anyhow::Result<Exit> {
    let grids = args
        .grids
        .iter()
        .map(|path| Grid::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let device = crate::model::default_device()?;
    let studies = check_inputs(&grids, &device)?;
    let mut store = Store::open(db)?;
    let names = study_names(&store, &grids, args.new_study)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    let jobs = args
        .jobs
        .map_or_else(crate::threads::available_cores, usize::from);
    let options = Options {
        db,
        jobs,
        quiet,
        max_attempts: args.max_attempts,
        cancel: &cancel,
    };
    let mut total = SweepSummary::default();
    for (study, name) in studies.iter().zip(&names) {
        match run_study(study, name, &device, &mut store, &options) {
            Ok(summary) => total.add(summary),
            Err(e) if e.is::<Interrupted>() => break,
            Err(e) => return Err(e),
        }
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

/// A study keeps the settings it was created with: trials on other data, weights or fixed
/// [train] settings would not be comparable. Such a grid is refused with what changed, or,
/// with `--new-study`, runs as a new study named `<name>-2` (or the next free number).
fn study_names(store: &Store, grids: &[Grid], new_study: bool) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = Vec::with_capacity(grids.len());
    let mut planned: HashMap<String, String> = HashMap::new();
    for grid in grids {
        let fingerprint = grid.fingerprint();
        let mut name = grid.study_name.clone();
        let mut suffix = 1;
        loop {
            let existing = match planned.get(&name) {
                Some(f) => Some(f.clone()),
                None => match store.study(&name)? {
                    Some(study) => store.study_fingerprint(study.id)?,
                    None => None,
                },
            };
            let Some(existing) = existing.filter(|f| *f != fingerprint) else {
                break;
            };
            if !new_study {
                let changes = fingerprint_changes(&existing, &fingerprint).join(", ");
                return Err(InputError::new(format!(
                    "{}: study `{name}` was run with other settings ({changes}); its trials \
                     would not be comparable: rename the study in [study] or pass --new-study",
                    grid.path.display()
                ))
                .into());
            }
            suffix += 1;
            name = format!("{}-{suffix}", grid.study_name);
        }
        planned.insert(name.clone(), fingerprint);
        names.push(name);
    }
    Ok(names)
}

/// A grid whose data folders have been listed and whose weights have been loaded.
struct CheckedGrid<'g> {
    grid: &'g Grid,
    dataset: Dataset,
    backbone: Arc<dyn Backbone>,
}

/// Everything that can be wrong with the input, checked before any work: every grid's data
/// folders are listed and split, every weights file is loaded (once, shared by the grids
/// that name it).
fn check_inputs<'g>(grids: &'g [Grid], device: &Device) -> anyhow::Result<Vec<CheckedGrid<'g>>> {
    let mut loaded: HashMap<(String, PathBuf), Arc<dyn Backbone>> = HashMap::new();
    let mut checked = Vec::with_capacity(grids.len());
    for grid in grids {
        let dataset = load_dataset(&grid.data, grid.seed)?;
        let key = (grid.model.backbone.clone(), grid.model.weights.clone());
        let backbone = match loaded.get(&key) {
            Some(backbone) => backbone.clone(),
            None => {
                let model = load_backbone(&grid.model.backbone, &grid.model.weights, device)?;
                let backbone: Arc<dyn Backbone> = Arc::from(model);
                loaded.insert(key, backbone.clone());
                backbone
            }
        };
        checked.push(CheckedGrid {
            grid,
            dataset,
            backbone,
        });
    }
    Ok(checked)
}

/// Queue the grid's trials, do the frozen work the unfinished ones need, run them, report.
fn run_study(
    checked: &CheckedGrid,
    name: &str,
    device: &Device,
    store: &mut Store,
    options: &Options,
) -> anyhow::Result<SweepSummary> {
    let grid = checked.grid;
    let (study, todo, recovered) = queue_trials(grid, name, store, options)?;
    let abandoned = SweepSummary {
        failed: recovered.failed,
        ..SweepSummary::default()
    };
    if todo.is_empty() {
        return Ok(abandoned);
    }
    let info = checked.backbone.info();
    let plan = Plan::new(&todo, info.blocks);
    if !options.quiet {
        eprint!("{plan}");
    }
    let clock = Instant::now();
    let bank = frozen_work(checked, &plan, device, options)?;
    let frozen_seconds = clock.elapsed().as_secs_f64();
    let ctx = PhaseContext {
        bank: &bank,
        backbone: checked.backbone.as_ref(),
        classes: checked.dataset.classes.len(),
        device,
        cancel: options.cancel,
    };
    let progress = bar(todo.len(), "trials", options.quiet);
    let mut summary = run_sweep(
        &ctx,
        options.db,
        study.id,
        plan.groups,
        options.jobs,
        &progress,
    )?;
    progress.finish_and_clear();
    summary.add(abandoned);
    if options.cancel.load(Ordering::SeqCst) {
        return Ok(summary);
    }
    if !options.quiet {
        let trial_seconds = clock.elapsed().as_secs_f64() - frozen_seconds;
        eprintln!(
            "time: decode and backbone pass {frozen_seconds:.1} s, trials {trial_seconds:.1} s"
        );
    }
    let report = build(&study, &store.trials(study.id)?, Some(5));
    print!("{}", render(&report, Format::Table));
    Ok(summary)
}

/// Add the grid's new trials to its study; return the study and the trials left to run.
fn queue_trials(
    grid: &Grid,
    name: &str,
    store: &mut Store,
    options: &Options,
) -> anyhow::Result<(StudyRecord, Vec<TrialSpec>, Recovered)> {
    let study = store.ensure_study(name, &grid.text, &grid.fingerprint())?;
    let trials = grid.trials();
    let added = store.add_trials(study.id, &trials)?;
    let recovered =
        store.recover_abandoned(study.id, STALE_AFTER, options.max_attempts, &is_dead_worker)?;
    if recovered.requeued + recovered.failed > 0 {
        eprintln!(
            "study {}: {} trials left running by a process that died are pending again; {} failed after {} attempts",
            study.name, recovered.requeued, recovered.failed, options.max_attempts
        );
    }
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
    if todo.is_empty() {
        println!(
            "study {}: every trial is finished ({added} new)",
            study.name
        );
    } else if !options.quiet {
        eprintln!(
            "study {}: {} trials to run ({added} new)",
            study.name,
            todo.len()
        );
    }
    Ok((study, todo, recovered))
}

/// Decode every image once and run the frozen backbone once, recording what the plan needs.
fn frozen_work(
    checked: &CheckedGrid,
    plan: &Plan,
    device: &Device,
    options: &Options,
) -> anyhow::Result<FeatureBank> {
    let (grid, backbone) = (checked.grid, checked.backbone.as_ref());
    let size = grid.data.image_size;
    let frozen = |samples: &[Sample], label: &str| -> anyhow::Result<Activations> {
        let images = decode(grid, samples, size, options.quiet)?;
        let progress = bar(images.samples.len(), label, options.quiet);
        let tick = |n: usize| progress.inc(n as u64);
        let out = record(
            backbone,
            &images,
            &plan.boundaries,
            device,
            options.cancel,
            &tick,
        )?;
        progress.finish_and_clear();
        Ok(out)
    };
    Ok(FeatureBank {
        train: frozen(&checked.dataset.train, "backbone")?,
        val: frozen(&checked.dataset.val, "backbone val")?,
    })
}

/// Decode one split, report skipped files once each, refuse a split left without two classes.
fn decode(
    grid: &Grid,
    samples: &[Sample],
    size: usize,
    quiet: bool,
) -> anyhow::Result<DecodedImages> {
    let progress = bar(samples.len(), "decode", quiet);
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
    if classes.len() < 2 {
        return Err(InputError::new(format!(
            "{}: [data] fewer than two classes have readable images in a split ({} files skipped)",
            grid.path.display(),
            skipped.len()
        ))
        .into());
    }
    Ok(images)
}
