//! Studies -> shared frozen work -> scheduler: check the grids, queue their trials, record one
//! frozen pass per group of studies that can share it, then run each study's sweep.

pub mod cached;
pub mod frozen;
pub mod groups;

pub use cached::CachedPass;
pub use frozen::{BackbonePass, Frozen, FrozenJob, FrozenSource, Notice};
pub use groups::{group, FrozenGroup, FrozenKey, StudyNeeds};

use crate::catalogue::BackboneKind;
use crate::data::decode::Skipped;
use crate::data::{load_dataset, Dataset, Sample};
use crate::error::InputError;
use crate::grid::{fingerprint_changes, Grid};
use crate::inference::card::{ModelCard, TrialSummary, FORMAT};
use crate::inference::checkpoints::{self, CheckpointKeeper};
use crate::model::{Backbone, Device};
use crate::scheduler::{is_dead_worker, run_sweep, Destination, Progress, SweepSummary, Work};
use crate::store::{Recovered, Store};
use crate::train::features::SharedActivations;
use crate::train::{FeatureBank, Interrupted, PhaseContext, Plan};
use crate::trial::{StudyRecord, TrialRecord, TrialSpec, TrialState};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running trial whose heartbeat is older than this was left by a dead process.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// How to run the sweep.
pub struct Settings<'a> {
    /// The database file: each worker opens its own connection; checkpoints live beside it.
    pub db: &'a Path,
    pub device: &'a Device,
    /// Workers training side by side.
    pub jobs: usize,
    /// A trial abandoned by dead processes this many times is failed, not run again.
    pub max_attempts: u32,
    /// How many of each study's best trials keep their weights.
    pub keep_checkpoints: usize,
    /// Run a grid whose study was created with other settings as a new study (`<name>-2`).
    pub new_study: bool,
    /// Set by Ctrl-C: running trials go back to pending and the sweep stops.
    pub cancel: &'a AtomicBool,
}

/// What the sweep tells its caller as it goes, in order; the caller decides what to show.
pub enum Event<'a> {
    /// Trials left running by processes that died: `requeued` are pending again, `failed`
    /// ran out of attempts.
    Recovered {
        study: &'a str,
        recovered: Recovered,
        max_attempts: u32,
    },
    /// A study's trials are queued: `todo` left to run (none: it is finished), `added` new.
    Queued {
        study: &'a str,
        todo: usize,
        added: usize,
    },
    /// A file that is not a readable image; it is left out.
    Skipped(&'a Skipped),
    /// Something about the activation cache (one line), e.g. a damaged file recomputed.
    Cache(&'a str),
    /// One group's frozen work is recorded: `images` and `views` (augmented views of some of
    /// them) at `size` px for `studies` studies, `from_cache` of these read from the on-disk
    /// cache.
    FrozenWork {
        images: usize,
        views: usize,
        from_cache: usize,
        size: usize,
        seconds: f64,
        studies: usize,
    },
    /// A study's trials start, sharing work as `plan` says, on each of `folds` folds when
    /// cross-validated.
    Training {
        study: &'a str,
        plan: &'a Plan,
        folds: Option<usize>,
    },
    /// A study's trials are done (not interrupted), with their records as stored.
    Trained {
        seconds: f64,
        study: &'a StudyRecord,
        trials: &'a [TrialRecord],
        checkpoints: &'a CheckpointKeeper,
    },
}

/// A grid whose data folders have been listed and whose weights have been loaded.
pub struct CheckedGrid<'g> {
    grid: &'g Grid,
    dataset: Dataset,
    backbone: Arc<dyn Backbone>,
    frozen: FrozenKey,
}

/// Everything that can be wrong with the input, checked before any work: every grid's data
/// folders are listed and split, every weights file is loaded (once, shared by the grids
/// that name it, however they spell its path).
pub fn check_inputs<'g>(
    grids: &'g [Grid],
    device: &Device,
) -> anyhow::Result<Vec<CheckedGrid<'g>>> {
    let mut loaded: HashMap<(BackboneKind, PathBuf), Arc<dyn Backbone>> = HashMap::new();
    let mut checked = Vec::with_capacity(grids.len());
    for grid in grids {
        let dataset = load_dataset(&grid.data, grid.seed)?;
        let model = &grid.model;
        // A file that is not there has no canonical path: loading it says what is wrong.
        let weights = model
            .weights
            .canonicalize()
            .unwrap_or_else(|_| model.weights.clone());
        let key = (model.backbone, weights);
        let backbone = match loaded.get(&key) {
            Some(backbone) => backbone.clone(),
            None => {
                let backbone: Arc<dyn Backbone> =
                    Arc::from(model.backbone.load(&model.weights, device)?);
                loaded.insert(key.clone(), backbone.clone());
                backbone
            }
        };
        let (backbone_kind, weights) = key;
        checked.push(CheckedGrid {
            grid,
            dataset,
            backbone,
            frozen: FrozenKey {
                backbone: backbone_kind,
                weights,
                image_size: grid.data.image_size,
            },
        });
    }
    Ok(checked)
}

/// Queue every study's trials, record the frozen work they share (once per group), then train
/// each study's trials. A failed trial is counted, not an error; on Ctrl-C it stops early.
pub fn run(
    studies: &[CheckedGrid],
    store: &mut Store,
    source: &dyn FrozenSource,
    settings: &Settings,
    progress: &dyn Progress,
    on_event: &mut dyn FnMut(Event),
) -> anyhow::Result<SweepSummary> {
    let names = study_names(store, studies, settings.new_study)?;
    // Every study is queued first: their plans decide the frozen work, done once for all.
    let queued = studies
        .iter()
        .zip(&names)
        .map(|(checked, name)| queue_trials(checked, name, store, settings, on_event))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut total = SweepSummary::default();
    let frozen = match shared_frozen_work(studies, &queued, source, settings, progress, on_event) {
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
        match run_study(
            checked, queued, &shared, store, settings, progress, on_event,
        ) {
            Ok(summary) => total.add(summary),
            Err(e) if e.is::<Interrupted>() => break,
            Err(e) => return Err(e),
        }
        if settings.cancel.load(Ordering::SeqCst) {
            break;
        }
    }
    Ok(total)
}

/// A study keeps the settings it was created with: trials on other data, weights or fixed
/// [train] settings would not be comparable. Such a grid is refused with what changed, or,
/// with `--new-study`, runs as a new study named `<name>-2` (or the next free number).
fn study_names(
    store: &Store,
    studies: &[CheckedGrid],
    new_study: bool,
) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = Vec::with_capacity(studies.len());
    let mut planned: HashMap<String, String> = HashMap::new();
    for grid in studies.iter().map(|s| s.grid) {
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

/// A study's trials, queued in the store, and the plan of the work they share.
struct Queued {
    study: StudyRecord,
    todo: Vec<TrialSpec>,
    recovered: Recovered,
    plan: Plan,
}

/// Add the grid's new trials to its study; return them with the trials left to run.
fn queue_trials(
    checked: &CheckedGrid,
    name: &str,
    store: &mut Store,
    settings: &Settings,
    on_event: &mut dyn FnMut(Event),
) -> anyhow::Result<Queued> {
    let grid = checked.grid;
    let study = store.ensure_study(name, &grid.text, &grid.fingerprint())?;
    let trials = grid.trials();
    let added = store.add_trials(study.id, &trials)?;
    let recovered = store.recover_abandoned(
        study.id,
        STALE_AFTER,
        settings.max_attempts,
        &is_dead_worker,
    )?;
    if recovered.requeued + recovered.failed > 0 {
        on_event(Event::Recovered {
            study: &study.name,
            recovered,
            max_attempts: settings.max_attempts,
        });
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
    on_event(Event::Queued {
        study: &study.name,
        todo: todo.len(),
        added,
    });
    let plan = Plan::new(&todo, checked.backbone.info());
    Ok(Queued {
        study,
        todo,
        recovered,
        plan,
    })
}

/// The frozen work of every study with trials to run: one decode and one backbone pass per
/// group (see [`group`]), over the union of its studies' images, recording every boundary any
/// of them needs. Seven attributes of one photo set cost one pass, not seven.
fn shared_frozen_work(
    studies: &[CheckedGrid],
    queued: &[Queued],
    source: &dyn FrozenSource,
    settings: &Settings,
    progress: &dyn Progress,
    on_event: &mut dyn FnMut(Event),
) -> anyhow::Result<Vec<Option<Arc<SharedActivations>>>> {
    let needs: Vec<StudyNeeds> = studies
        .iter()
        .zip(queued)
        .map(|(checked, queued)| StudyNeeds {
            key: &checked.frozen,
            train: &checked.dataset.train,
            val: &checked.dataset.val,
            boundaries: &queued.plan.boundaries,
            views: &queued.plan.views,
            trials: queued.todo.len(),
        })
        .collect();
    let mut shared = vec![None; studies.len()];
    for group in group(&needs) {
        let clock = Instant::now();
        let job = FrozenJob {
            key: &group.key,
            backbone: studies[group.members[0]].backbone.as_ref(),
            inputs: &group.inputs,
            boundaries: &group.boundaries,
            cancel: settings.cancel,
        };
        let frozen = source.activations(&job, progress, &mut |notice| match notice {
            Notice::Skipped(s) => on_event(Event::Skipped(s)),
            Notice::Cache(line) => on_event(Event::Cache(line)),
        })?;
        on_event(Event::FrozenWork {
            images: frozen.images,
            views: frozen.views,
            from_cache: frozen.from_cache,
            size: group.key.image_size,
            seconds: clock.elapsed().as_secs_f64(),
            studies: group.members.len(),
        });
        let activations = Arc::new(frozen.activations);
        for i in group.members {
            shared[i] = Some(activations.clone());
        }
    }
    Ok(shared)
}

/// Train a study's queued trials on its rows of the shared frozen work.
fn run_study(
    checked: &CheckedGrid,
    queued: Queued,
    shared: &SharedActivations,
    store: &mut Store,
    settings: &Settings,
    progress: &dyn Progress,
    on_event: &mut dyn FnMut(Event),
) -> anyhow::Result<SweepSummary> {
    let banks = checked
        .dataset
        .splits()
        .iter()
        .map(|(train, val)| split_bank(shared, train, val, &queued.plan, settings.device))
        .collect::<anyhow::Result<Vec<FeatureBank>>>()?;
    for split in banks.iter().flat_map(|bank| [&bank.train, &bank.val]) {
        if split.class_count()? < 2 {
            return Err(InputError::new(format!(
                "{}: [data] fewer than two classes have readable images in a split",
                checked.grid.path.display()
            ))
            .into());
        }
    }
    on_event(Event::Training {
        study: &queued.study.name,
        plan: &queued.plan,
        folds: checked.grid.data.folds,
    });
    let folds: Vec<PhaseContext> = banks
        .iter()
        .map(|bank| PhaseContext {
            bank,
            backbone: checked.backbone.as_ref(),
            classes: checked.dataset.classes.len(),
            device: settings.device,
            cancel: settings.cancel,
        })
        .collect();
    let clock = Instant::now();
    progress.start(Work::Trials, queued.todo.len());
    let checkpoints = checkpoint_keeper(checked, &queued.study.name, settings);
    let destination = Destination {
        db: settings.db,
        study_id: queued.study.id,
        checkpoints: &checkpoints,
    };
    let summary = run_sweep(
        &folds,
        destination,
        queued.plan.groups,
        settings.jobs,
        progress,
    )?;
    progress.finish();
    if settings.cancel.load(Ordering::SeqCst) {
        return Ok(summary);
    }
    on_event(Event::Trained {
        seconds: clock.elapsed().as_secs_f64(),
        study: &queued.study,
        trials: &store.trials(queued.study.id)?,
        checkpoints: &checkpoints,
    });
    Ok(summary)
}

/// One train/validation split's rows of the shared frozen work (a fold's, with
/// cross-validation): rows are selected, never copied or computed again; the training images'
/// views are those the plan's trials train on.
fn split_bank(
    shared: &SharedActivations,
    train: &[Sample],
    val: &[Sample],
    plan: &Plan,
    device: &Device,
) -> anyhow::Result<FeatureBank> {
    let train = shared.select(train, device)?;
    let train_views = plan
        .views
        .iter()
        .map(|augment| (augment.set, shared.select_views(&train.files, augment)))
        .collect();
    Ok(FeatureBank {
        train,
        val: shared.select(val, device)?,
        train_views,
    })
}

/// What every checkpoint of the study will say about its model.
fn checkpoint_keeper(checked: &CheckedGrid, study: &str, settings: &Settings) -> CheckpointKeeper {
    let info = checked.backbone.info();
    let card = ModelCard {
        format: FORMAT.to_string(),
        study: study.to_string(),
        labels: checked.dataset.classes.clone(),
        backbone: info.name().to_string(),
        backbone_weights: checked.frozen.weights.clone(),
        backbone_sha256: None,
        image_size: checked.frozen.image_size,
        preprocessing: ModelCard::preprocessing_of(info),
        unfreeze_depth: 0,
        head_hidden: 0,
        trial: TrialSummary::default(),
    };
    CheckpointKeeper {
        dir: checkpoints::study_dir(settings.db, study),
        keep: settings.keep_checkpoints,
        card,
    }
}
