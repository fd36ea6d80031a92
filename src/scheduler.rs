//! Runs a plan's head groups on a pool of workers: claims, epochs, outcomes, Ctrl-C, progress.

use crate::inference::checkpoints::CheckpointKeeper;
use crate::model::Classifier;
use crate::store::{Claimed, Lease, LeaseLost, Store};
use crate::train::folds::{best_fold, mean_over_folds};
use crate::train::phases::{FineTuned, HeadPhase};
use crate::train::{
    finetune_phase, head_phase, summarize, HeadGroup, Interrupted, PhaseContext, Plan,
};
use crate::trial::{EpochMetrics, TrialOutcome, TrialRecord, TrialSpec, TrialState};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The kinds of long work a caller may want to show progress of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// The frozen backbone pass over image files as they are read and resized, one streamed
    /// phase (steps: images, as each batch starts or as a file turns out unreadable).
    Backbone,
    /// Training a study's trials (steps: trials).
    Trials,
}

/// Progress of long work, told to whoever shows it (a bar, a log, nothing). One piece of work
/// runs at a time: `start`, any number of `advance` and `message` (from any thread), `finish`.
pub trait Progress: Sync {
    /// Work of this kind begins, `total` steps long.
    fn start(&self, work: Work, total: usize);
    /// `n` more steps are done.
    fn advance(&self, n: usize);
    /// What is being done now (e.g. the trial in training).
    fn message(&self, text: &str);
    /// The work is over (finished or interrupted).
    fn finish(&self);
}

/// Progress that nobody watches.
pub struct Unwatched;

impl Progress for Unwatched {
    fn start(&self, _: Work, _: usize) {}
    fn advance(&self, _: usize) {}
    fn message(&self, _: &str) {}
    fn finish(&self) {}
}

/// How a sweep ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepSummary {
    pub completed: usize,
    pub failed: usize,
    /// Trials put back to pending because the user interrupted.
    pub released: usize,
    /// Trials this worker stopped because its lease was lost (another worker ran them).
    pub dropped: usize,
}

impl SweepSummary {
    pub fn add(&mut self, other: SweepSummary) {
        self.completed += other.completed;
        self.failed += other.failed;
        self.released += other.released;
        self.dropped += other.dropped;
    }
}

/// Where a sweep stores its results: the database, and the keeper of the best weights.
#[derive(Clone, Copy)]
pub struct Destination<'a> {
    pub db: &'a Path,
    pub study_id: i64,
    pub checkpoints: &'a CheckpointKeeper,
}

/// Run every pending trial of `groups` with `jobs` workers, each with its own store connection,
/// on every fold of `folds` (the study's one split without cross-validation).
pub fn run_sweep(
    folds: &[PhaseContext],
    destination: Destination,
    groups: Vec<HeadGroup>,
    jobs: usize,
    progress: &dyn Progress,
) -> anyhow::Result<SweepSummary> {
    let queue = Mutex::new(VecDeque::from(groups));
    let worker_name = format!("{}-{}", hostname(), std::process::id());
    // Name format `host-pid-index`: `is_dead_worker` reads it back.
    let jobs = jobs.max(1);
    // Each worker's element-wise and depthwise kernels parallelise on its own share of the
    // cores (candle's GEMMs are single-threaded, see `threads`).
    let threads_per_worker = (rayon::current_num_threads() / jobs).max(1);
    let results: Vec<anyhow::Result<SweepSummary>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|w| {
                let queue = &queue;
                let name = format!("{worker_name}-{w}");
                scope.spawn(move || -> anyhow::Result<SweepSummary> {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads_per_worker)
                        .build()?;
                    pool.install(|| work(folds, destination, queue, &name, progress))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    let mut total = SweepSummary::default();
    for result in results {
        total.add(result?);
    }
    Ok(total)
}

/// One worker: take head groups off the queue until it is empty or the user interrupts; then,
/// where leases expire (PostgreSQL), adopt the trials whose worker died or was cut off.
fn work(
    folds: &[PhaseContext],
    destination: Destination,
    queue: &Mutex<VecDeque<HeadGroup>>,
    name: &str,
    progress: &dyn Progress,
) -> anyhow::Result<SweepSummary> {
    let ctx = &folds[0];
    let mut store = Store::open(destination.db)?;
    let mut summary = SweepSummary::default();
    let mut adopted: VecDeque<HeadGroup> = VecDeque::new();
    while !ctx.cancel.load(Ordering::Relaxed) {
        let next = queue.lock().expect("queue lock").pop_front();
        let next = next.or_else(|| adopted.pop_front());
        let group = match next {
            Some(group) => group,
            None => {
                adopted = wait_for_expired_leases(ctx, &mut store, destination.study_id)?;
                match adopted.pop_front() {
                    Some(group) => group,
                    None => break,
                }
            }
        };
        run_group(
            folds,
            &mut store,
            destination,
            &group,
            name,
            progress,
            &mut summary,
        )?;
    }
    Ok(summary)
}

/// While other workers hold trials of the study under leases that expire (PostgreSQL), look
/// again every poll interval, recovering expired leases, until some trial is pending that this
/// worker's frozen work can train: those trials, as head groups. Empty when nothing is left to
/// wait for, when leases do not expire (SQLite: no waiting), or on Ctrl-C.
fn wait_for_expired_leases(
    ctx: &PhaseContext,
    store: &mut Store,
    study_id: i64,
) -> anyhow::Result<VecDeque<HeadGroup>> {
    let Some(interval) = store.lease_poll_interval() else {
        return Ok(VecDeque::new());
    };
    let info = ctx.backbone.info();
    let trainable = |t: &TrialRecord| {
        let depth = t.settings.unfreeze_depth;
        let boundary = (depth > 0).then(|| info.boundary_of(depth));
        ctx.bank.holds(boundary, &t.settings)
    };
    loop {
        let trials = store.trials(study_id)?;
        let pending: Vec<TrialSpec> = trials
            .iter()
            .filter(|t| t.state == TrialState::Pending && trainable(t))
            .map(|t| TrialSpec {
                key: t.key.clone(),
                params: t.params.clone(),
                settings: t.settings.clone(),
            })
            .collect();
        if !pending.is_empty() {
            return Ok(Plan::new(&pending, info).groups.into());
        }
        let held_elsewhere = trials.iter().any(|t| t.state == TrialState::Running);
        if !held_elsewhere || !sleep_unless_cancelled(interval, ctx.cancel) {
            return Ok(VecDeque::new());
        }
        store.recover_expired_leases(study_id)?;
    }
}

/// Sleep for `duration` in short steps; false when Ctrl-C came first.
fn sleep_unless_cancelled(duration: Duration, cancel: &AtomicBool) -> bool {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    !cancel.load(Ordering::Relaxed)
}

/// Whether a worker name (`host-pid-index`) belongs to a process on this host that has
/// exited: its trials were abandoned (kill -9, a crash, a power cut) and can run again now.
pub fn is_dead_worker(worker: &str) -> bool {
    let mut parts = worker.rsplitn(3, '-');
    let (_index, pid, host) = (parts.next(), parts.next(), parts.next());
    let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    let proc_fs = Path::new("/proc/self").exists();
    host == Some(hostname().as_str())
        && pid != std::process::id()
        && proc_fs
        && !Path::new(&format!("/proc/{pid}")).exists()
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}

/// Claim a group's pending trials and train them, counting into `summary`. A lost lease drops the group's trials (another worker runs them); if the store fails midway,
/// the claimed trials still running are put back to pending before the error goes up.
fn run_group(
    folds: &[PhaseContext],
    store: &mut Store,
    destination: Destination,
    group: &HeadGroup,
    worker: &str,
    progress: &dyn Progress,
    summary: &mut SweepSummary,
) -> anyhow::Result<()> {
    let keys: Vec<String> = group.trials.iter().map(|t| t.key.clone()).collect();
    let claimed = store.claim(destination.study_id, &keys, worker)?;
    if claimed.is_empty() {
        return Ok(());
    }
    let before = *summary;
    let result = train_group(
        folds,
        store,
        destination.checkpoints,
        &claimed,
        progress,
        summary,
    );
    if let Err(e) = result {
        let leases: Vec<Lease> = claimed.iter().map(|c| c.lease).collect();
        let release = store.release(&leases);
        if e.downcast_ref::<LeaseLost>().is_none() {
            return Err(e);
        }
        release?;
        let finished = summary.completed + summary.failed - before.completed - before.failed;
        let dropped = claimed.len() - finished;
        summary.dropped += dropped;
        progress.advance(dropped);
        progress.message(&format!("warning: {e}"));
    }
    Ok(())
}

/// For each fold (one without cross-validation): one head phase, then every claimed trial
/// still in training branches from it. A trial completes after its last fold, with the mean
/// of its folds' outcomes, and offers the model of its best fold.
fn train_group(
    folds: &[PhaseContext],
    store: &mut Store,
    checkpoints: &CheckpointKeeper,
    claimed: &[Claimed],
    progress: &dyn Progress,
    summary: &mut SweepSummary,
) -> anyhow::Result<()> {
    let leases: Vec<Lease> = claimed.iter().map(|c| c.lease).collect();
    // Trials neither complete nor failed: the leases to keep alive.
    let mut active = vec![true; claimed.len()];
    let mut outcomes: Vec<Vec<TrialOutcome>> = vec![Vec::new(); claimed.len()];
    // The best fold so far and its model, while later folds may still beat it.
    let mut best_so_far: Vec<Option<(usize, Classifier)>> = claimed.iter().map(|_| None).collect();
    for (fold, ctx) in folds.iter().enumerate() {
        let last = fold + 1 == folds.len();
        let live: Vec<usize> = (0..claimed.len()).filter(|&i| active[i]).collect();
        let Some(&first) = live.first() else {
            return Ok(());
        };
        let live_leases: Vec<Lease> = live.iter().map(|&i| leases[i]).collect();
        let first = &claimed[first].trial;
        let label = fold_label(fold, folds.len());
        let started = Instant::now();
        progress.message(&format!("{label}head phase {}", describe(first)));
        let mut record_head_epoch = |m: &EpochMetrics| {
            let m = EpochMetrics { fold, ..m.clone() };
            for lease in &live_leases {
                store.record_epoch(lease, &m)?;
            }
            store.heartbeat(&live_leases)
        };
        let head = guarded(|| head_phase(ctx, &first.settings, &mut record_head_epoch));
        let head = match head {
            Ok(head) => head,
            Err(e) if e.is::<Interrupted>() => {
                store.release(&live_leases)?;
                summary.released += live_leases.len();
                return Ok(());
            }
            Err(e) if e.downcast_ref::<LeaseLost>().is_some() => return Err(e),
            Err(e) => {
                for lease in &live_leases {
                    store.fail_trial(lease, &format!("{label}head phase: {e:#}"))?;
                    summary.failed += 1;
                    progress.advance(1);
                }
                return Ok(());
            }
        };
        let head_seconds = started.elapsed().as_secs_f64();
        for &i in &live {
            let Claimed { trial, lease } = &claimed[i];
            progress.message(&format!("{label}fine-tune {}", describe(trial)));
            // The group's claim stays alive while its branches (and folds) train one by one.
            let alive: Vec<Lease> = (0..claimed.len())
                .filter(|&j| active[j])
                .map(|j| leases[j])
                .collect();
            let mut record = |m: &EpochMetrics| {
                store.record_epoch(lease, &EpochMetrics { fold, ..m.clone() })?;
                store.heartbeat(&alive)
            };
            let tuned = guarded(|| branch(ctx, trial, &head, &mut record));
            match tuned {
                Ok(tuned) => {
                    let epochs = tuned.as_ref().map_or(&[][..], |t| &t.epochs);
                    let seconds = head_seconds + epochs.iter().map(|e| e.seconds).sum::<f64>();
                    let all: Vec<EpochMetrics> =
                        head.epochs.iter().chain(epochs).cloned().collect();
                    let objective = trial.settings.objective;
                    outcomes[i].push(summarize(&all, objective, seconds));
                    let is_best = best_fold(&outcomes[i], objective) == Some(fold);
                    if !last {
                        if is_best {
                            best_so_far[i] = Some((fold, owned_model(tuned, &head)?));
                        }
                        continue;
                    }
                    store.complete_trial(lease, &mean_over_folds(&outcomes[i]))?;
                    active[i] = false;
                    let cross_validated = folds.len() > 1;
                    match (is_best, &best_so_far[i]) {
                        (false, Some((best, model))) => checkpoints.offer(
                            store,
                            trial,
                            model,
                            &folds[*best].bank.val,
                            Some(*best),
                        )?,
                        _ => {
                            let model = tuned.as_ref().map_or(&head.model, |t| &t.model);
                            let fold = cross_validated.then_some(fold);
                            checkpoints.offer(store, trial, model, &ctx.bank.val, fold)?
                        }
                    }
                    summary.completed += 1;
                }
                Err(e) if e.is::<Interrupted>() => {
                    store.release(&alive)?;
                    summary.released += alive.len();
                    return Ok(());
                }
                Err(e) if e.downcast_ref::<LeaseLost>().is_some() => return Err(e),
                Err(e) => {
                    store.fail_trial(lease, &format!("{label}{e:#}"))?;
                    active[i] = false;
                    summary.failed += 1;
                }
            }
            progress.advance(1);
        }
    }
    Ok(())
}

/// "fold 2/3: " while cross-validating; nothing with one split.
fn fold_label(fold: usize, folds: usize) -> String {
    if folds > 1 {
        format!("fold {}/{folds}: ", fold + 1)
    } else {
        String::new()
    }
}

/// The model a branch ended with, owned: the fine-tuned one, or a copy of the shared head.
fn owned_model(tuned: Option<FineTuned>, head: &HeadPhase) -> anyhow::Result<Classifier> {
    match tuned {
        Some(tuned) => Ok(tuned.model),
        None => Ok(Classifier {
            head: head.model.head.fork()?,
            tail: None,
        }),
    }
}

/// A trial's own training after the shared head phase: its fine-tune phase, or none.
fn branch(
    ctx: &PhaseContext,
    trial: &TrialRecord,
    head: &HeadPhase,
    record: &mut dyn FnMut(&EpochMetrics) -> anyhow::Result<()>,
) -> anyhow::Result<Option<FineTuned>> {
    if trial.settings.unfreeze_depth == 0 {
        return Ok(None);
    }
    finetune_phase(ctx, head, &trial.settings, record).map(Some)
}

/// Run `work`, turning a panic into an error so that one trial can't take down the sweep.
fn guarded<T>(work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(anyhow::anyhow!("panicked: {message}"))
    })
}

fn describe(trial: &TrialRecord) -> String {
    trial
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_dead_only_when_its_process_on_this_host_is_gone() {
        let host = hostname();
        assert!(
            !is_dead_worker(&format!("{host}-{}-0", std::process::id())),
            "ourselves"
        );
        assert!(!is_dead_worker(&format!("{host}-1-0")), "pid 1 is alive");
        assert!(
            !is_dead_worker(&format!("other-host-{}-0", u32::MAX - 1)),
            "another host: heartbeat decides"
        );
        assert!(!is_dead_worker("garbage"));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(
            is_dead_worker(&format!("{host}-{pid}-1")),
            "an exited process"
        );
    }
}
