//! `gridsearch run GRID...`: validate every grid, then run each study's unfinished trials.

use super::progress::Bars;
use super::Exit;
use crate::checkpoints::{self, CheckpointKeeper};
use crate::cli::RunArgs;
use crate::data::decode::{decode_all, DecodedImages};
use crate::data::{load_dataset, Dataset, Sample};
use crate::error::InputError;
use crate::grid::{fingerprint_changes, Grid};
use crate::inference::card::{ModelCard, TrialSummary, FORMAT};
use crate::model::{load_backbone, Backbone, Device};
use crate::report::{build, render, Format};
use crate::scheduler::{is_dead_worker, run_sweep, Destination, Progress, SweepSummary, Work};
use crate::store::{Recovered, Store};
use crate::sweep::{group, FrozenKey, StudyNeeds};
use crate::train::features::SharedActivations;
use crate::train::{FeatureBank, Interrupted, PhaseContext, Plan};
use crate::trial::{StudyRecord, TrialSpec, TrialState};
use std::collections::{HashMap, HashSet};
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
    keep_checkpoints: usize,
    cancel: &'a AtomicBool,
    progress: &'a dyn Progress,
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
        keep_checkpoints: args.keep_checkpoints,
        cancel: &cancel,
        progress: &Bars::new(quiet),
    };
    // Every study is queued first: their plans decide the frozen work, done once for all.
    let queued = studies
        .iter()
        .zip(&names)
        .map(|(checked, name)| queue_trials(checked, name, &mut store, &options))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut total = SweepSummary::default();
    let frozen = match shared_frozen_work(&studies, &queued, &device, &options) {
        Ok(frozen) => frozen,
        Err(e) if e.is::<Interrupted>() => Vec::new(),
        Err(e) => return Err(e),
    };
    for ((checked, queued), shared) in studies.iter().zip(queued).zip(frozen) {
        total.add(SweepSummary {
            failed: queued.recovered.failed,
            ..SweepSummary::default()
        });
        let Some(shared) = shared else { continue };
        match run_study(checked, queued, &shared, &device, &mut store, &options) {
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
    frozen: FrozenKey,
}

/// Everything that can be wrong with the input, checked before any work: every grid's data
/// folders are listed and split, every weights file is loaded (once, shared by the grids
/// that name it, however they spell its path).
fn check_inputs<'g>(grids: &'g [Grid], device: &Device) -> anyhow::Result<Vec<CheckedGrid<'g>>> {
    let mut loaded: HashMap<(String, PathBuf), Arc<dyn Backbone>> = HashMap::new();
    let mut checked = Vec::with_capacity(grids.len());
    for grid in grids {
        let dataset = load_dataset(&grid.data, grid.seed)?;
        let model = &grid.model;
        // A file that is not there has no canonical path: loading it says what is wrong.
        let weights = model
            .weights
            .canonicalize()
            .unwrap_or_else(|_| model.weights.clone());
        let key = (model.backbone.clone(), weights);
        let backbone = match loaded.get(&key) {
            Some(backbone) => backbone.clone(),
            None => {
                let backbone: Arc<dyn Backbone> =
                    Arc::from(load_backbone(&model.backbone, &model.weights, device)?);
                loaded.insert(key.clone(), backbone.clone());
                backbone
            }
        };
        let (backbone_name, weights) = key;
        checked.push(CheckedGrid {
            grid,
            dataset,
            backbone,
            frozen: FrozenKey {
                backbone: backbone_name,
                weights,
                image_size: grid.data.image_size,
            },
        });
    }
    Ok(checked)
}

/// A study's trials, queued in the store, and the plan of the work they share.
struct Queued {
    study: StudyRecord,
    todo: Vec<TrialSpec>,
    recovered: Recovered,
    plan: Plan,
}

/// Train a study's queued trials on its rows of the shared frozen work, then report.
fn run_study(
    checked: &CheckedGrid,
    queued: Queued,
    shared: &SharedActivations,
    device: &Device,
    store: &mut Store,
    options: &Options,
) -> anyhow::Result<SweepSummary> {
    let bank = FeatureBank {
        train: shared.select(&checked.dataset.train)?,
        val: shared.select(&checked.dataset.val)?,
    };
    for split in [&bank.train, &bank.val] {
        if split.class_count()? < 2 {
            return Err(InputError::new(format!(
                "{}: [data] fewer than two classes have readable images in a split",
                checked.grid.path.display()
            ))
            .into());
        }
    }
    if !options.quiet {
        eprint!("study {}: {}", queued.study.name, queued.plan);
    }
    let ctx = PhaseContext {
        bank: &bank,
        backbone: checked.backbone.as_ref(),
        classes: checked.dataset.classes.len(),
        device,
        cancel: options.cancel,
    };
    let clock = Instant::now();
    options.progress.start(Work::Trials, queued.todo.len());
    let checkpoints = checkpoint_keeper(checked, &queued.study.name, options)?;
    let destination = Destination {
        db: options.db,
        study_id: queued.study.id,
        checkpoints: &checkpoints,
    };
    let summary = run_sweep(
        &ctx,
        destination,
        queued.plan.groups,
        options.jobs,
        options.progress,
    )?;
    options.progress.finish();
    if options.cancel.load(Ordering::SeqCst) {
        return Ok(summary);
    }
    if !options.quiet {
        eprintln!("time: trials {:.1} s", clock.elapsed().as_secs_f64());
        match checkpoints.keep {
            0 => {}
            1 => eprintln!(
                "the best trial's weights are kept in {} (`gridsearch export` makes a model folder)",
                checkpoints.dir.display()
            ),
            n => eprintln!(
                "the {n} best trials' weights are kept in {} (`gridsearch export` makes a model folder)",
                checkpoints.dir.display()
            ),
        }
    }
    let report = build(&queued.study, &store.trials(queued.study.id)?, Some(5));
    print!("{}", render(&report, Format::Table));
    Ok(summary)
}

/// What every checkpoint of the study will say about its model.
fn checkpoint_keeper(
    checked: &CheckedGrid,
    study: &str,
    options: &Options,
) -> anyhow::Result<CheckpointKeeper> {
    let grid = checked.grid;
    let info = checked.backbone.info();
    let card = ModelCard {
        format: FORMAT.to_string(),
        study: study.to_string(),
        labels: checked.dataset.classes.clone(),
        backbone: info.name.to_string(),
        backbone_weights: checked.frozen.weights.clone(),
        backbone_sha256: None,
        image_size: grid.data.image_size,
        preprocessing: ModelCard::preprocessing_of(info),
        unfreeze_depth: 0,
        head_hidden: 0,
        trial: TrialSummary::default(),
    };
    Ok(CheckpointKeeper {
        dir: checkpoints::study_dir(options.db, study),
        keep: options.keep_checkpoints,
        card,
    })
}

/// Add the grid's new trials to its study; return them with the trials left to run.
fn queue_trials(
    checked: &CheckedGrid,
    name: &str,
    store: &mut Store,
    options: &Options,
) -> anyhow::Result<Queued> {
    let grid = checked.grid;
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
    let plan = Plan::new(&todo, checked.backbone.info().blocks);
    Ok(Queued {
        study,
        todo,
        recovered,
        plan,
    })
}

/// The frozen work of every study with trials to run: one decode and one backbone pass per
/// group (backbone, weights file, image size), over the union of those studies' images,
/// recording every boundary any of them needs. Seven attributes of one photo set cost one
/// pass, not seven.
fn shared_frozen_work(
    studies: &[CheckedGrid],
    queued: &[Queued],
    device: &Device,
    options: &Options,
) -> anyhow::Result<Vec<Option<Arc<SharedActivations>>>> {
    let needs: Vec<StudyNeeds> = studies
        .iter()
        .zip(queued)
        .map(|(checked, queued)| StudyNeeds {
            key: &checked.frozen,
            train: &checked.dataset.train,
            val: &checked.dataset.val,
            boundaries: &queued.plan.boundaries,
            trials: queued.todo.len(),
        })
        .collect();
    let mut shared = vec![None; studies.len()];
    for group in group(&needs) {
        let (size, members, samples, boundaries) = (
            group.key.image_size,
            group.members,
            group.samples,
            group.boundaries,
        );
        let clock = Instant::now();
        let images = decode(&samples, size, options.progress);
        let progress = options.progress;
        progress.start(Work::Backbone, images.samples.len());
        let tick = |n: usize| progress.advance(n);
        let backbone = studies[members[0]].backbone.as_ref();
        let activations = SharedActivations::record(
            backbone,
            &images,
            &boundaries,
            device,
            options.cancel,
            &tick,
        )?;
        progress.finish();
        if !options.quiet {
            eprintln!(
                "backbone pass: {} images at {size} px in {:.1} s, shared by {} studies",
                images.samples.len(),
                clock.elapsed().as_secs_f64(),
                members.len()
            );
        }
        let activations = Arc::new(activations);
        for i in members {
            shared[i] = Some(activations.clone());
        }
    }
    Ok(shared)
}

/// Decode images once, reporting each file that could not be read once.
fn decode(samples: &[Sample], size: usize, progress: &dyn Progress) -> DecodedImages {
    progress.start(Work::Decode, samples.len());
    let (images, skipped) = decode_all(samples, size, &|| progress.advance(1));
    progress.finish();
    for s in &skipped {
        eprintln!(
            "warning: {}: skipped, not a readable image ({})",
            s.path.display(),
            s.reason
        );
    }
    images
}
