//! `gridsearch run GRID...`: validate every grid, run each study's unfinished trials, say so.

use super::progress::Bars;
use super::Exit;
use crate::cache;
use crate::cli::RunArgs;
use crate::grid::Grid;
use crate::report::{build, render, Format};
use crate::store::{local_folder, refuse_network_filesystem, shown_location, Store};
use crate::sweep::{self, BackbonePass, CachedPass, Event, FrozenSource, Settings};
use crate::train::folds::cost_line;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub fn run(args: &RunArgs, db: &Path, quiet: bool) -> anyhow::Result<Exit> {
    // From here on the URL is shown without its password.
    let db = &shown_location(db);
    refuse_network_filesystem(db, args.store.allow_network_fs)?;
    let device = crate::model::select_device(args.device.device.as_deref())?;
    let grids = args
        .grids
        .iter()
        .map(|path| Grid::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let policy = crate::threads::policy(!device.is_cpu());
    if !quiet {
        eprintln!("device: {}", crate::model::describe_device(&device));
    }
    let studies = sweep::check_inputs(&grids, &device)?;
    let mut store = Store::open(db)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    let settings = Settings {
        db,
        device: &device,
        jobs: args.jobs.map_or(policy.default_jobs, usize::from),
        max_attempts: args.max_attempts,
        keep_checkpoints: args.keep_checkpoints,
        new_study: args.new_study,
        cancel: &cancel,
    };
    let uncached = BackbonePass { device: &device };
    let cached = CachedPass {
        dir: args
            .cache_dir
            .clone()
            .unwrap_or_else(|| cache::default_dir(&local_folder(db))),
        device: &device,
    };
    let source: &dyn FrozenSource = match args.no_cache {
        true => &uncached,
        false => &cached,
    };
    let total = sweep::run(
        &studies,
        &mut store,
        source,
        &settings,
        &Bars::new(quiet),
        &mut |event| say(&event, quiet),
    )?;
    if total.dropped > 0 {
        eprintln!(
            "warning: {} trials stopped here: their lease was lost while this worker was cut \
             off (another worker runs them; nothing was counted twice)",
            total.dropped
        );
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

/// Prints to standard output; once its reader has gone (`| head`), the sweep goes on unprinted.
fn stdout(text: &str) {
    let _closed = crate::error::print(text);
}

/// What the user reads of the sweep: progress notes on stderr (not with --quiet), each
/// study's ranked trials on stdout.
fn say(event: &Event, quiet: bool) {
    match *event {
        Event::Recovered {
            study,
            recovered,
            max_attempts,
        } => eprintln!(
            "study {study}: {} trials left running by a process that died are pending again; {} failed after {max_attempts} attempts",
            recovered.requeued, recovered.failed
        ),
        Event::Queued {
            study,
            todo: 0,
            added,
        } => stdout(&format!("study {study}: every trial is finished ({added} new)\n")),
        Event::Queued { .. } | Event::FrozenWork { .. } | Event::Training { .. } if quiet => {}
        Event::Queued { study, todo, added } => {
            eprintln!("study {study}: {todo} trials to run ({added} new)")
        }
        Event::Skipped(s) => eprintln!(
            "warning: {}: skipped, not a readable image ({})",
            s.path.display(),
            s.reason
        ),
        Event::Cache(line) => eprintln!("warning: {line}"),
        Event::FrozenWork {
            images,
            views: 0,
            from_cache,
            size,
            seconds,
            studies,
        } => eprintln!(
            "backbone pass: {images} images at {size} px in {seconds:.1} s ({from_cache} from the cache), shared by {studies} studies"
        ),
        Event::FrozenWork {
            images,
            views,
            from_cache,
            size,
            seconds,
            studies,
        } => eprintln!(
            "backbone pass: {images} images and {views} augmented views at {size} px in {seconds:.1} s ({from_cache} from the cache), shared by {studies} studies"
        ),
        Event::Training { study, plan, folds } => {
            eprint!("study {study}: {plan}");
            if let Some(folds) = folds {
                eprintln!("{}", cost_line(folds));
            }
        }
        Event::Trained {
            seconds,
            study,
            trials,
            checkpoints,
        } => {
            if !quiet {
                eprintln!("time: trials {seconds:.1} s");
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
            stdout(&render(&build(study, trials, Some(5)), Format::Table));
        }
    }
}
