//! Many workers on one PostgreSQL database, as on a cluster: real `gridsearch run` processes,
//! each in its own PID namespace (`unshare --pid --fork`: their pids collide, as on many hosts)
//! and its own folder, against the real test server. Every trial completes exactly once, the
//! work is spread, and faults lose nothing: kill -9 of a worker mid-trial, the server restarting
//! mid-run, a worker paused past its lease (its late write is rejected).

mod common;

use common::postgres::{gridsearch_connections, restart_server, url, Database};
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One test at a time: they share the server, and one restarts it.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERVER: Mutex<()> = Mutex::new(());
    SERVER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Trials in the grid: one head group each (the learning rate is a head setting).
const TRIALS: usize = 8;

/// A grid of [`TRIALS`] fine-tuned trials, each about a second on the shipped photos at 64 px.
fn cluster_grid(dir: &Path) -> PathBuf {
    let text = grid_text(
        "cluster",
        (6, 3),
        "learning_rate = [1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3, 7e-3, 8e-3]\nunfreeze_depth = [2]",
    )
    .replace("finetune_epochs = 2", "finetune_epochs = 15");
    write(&dir.join("grid.toml"), &text)
}

/// Whether workers can have PID namespaces of their own here (else they run without, said loudly).
fn pid_namespaces() -> bool {
    let allowed = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !allowed {
        eprintln!("WARNING: `unshare --pid --fork` is not permitted here: workers share one PID namespace");
    }
    allowed
}

/// One `gridsearch run` worker in its own folder (its checkpoints go there), its stderr in a file.
struct Worker {
    child: Child,
    dir: PathBuf,
    wrapped: bool,
}

impl Worker {
    fn start(
        root: &Path,
        n: usize,
        db: &Path,
        grid: &Path,
        lease_seconds: u32,
        wrapped: bool,
    ) -> Worker {
        let dir = root.join(format!("worker{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut command = if wrapped {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--kill-child"])
                .arg(env!("CARGO_BIN_EXE_gridsearch"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_gridsearch"))
        };
        command
            .arg("--db")
            .arg(db)
            .args(["--quiet", "run", "--jobs", "1", "--keep-checkpoints", "100"])
            .arg(grid)
            .env("GRIDSEARCH_LEASE_SECONDS", lease_seconds.to_string())
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
        Worker {
            child: command.spawn().expect("worker starts"),
            dir,
            wrapped,
        }
    }

    /// The pid of the gridsearch process itself (under `unshare`, its child).
    fn gridsearch_pid(&self) -> i32 {
        let outer = self.child.id() as i32;
        if !self.wrapped {
            return outer;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let status =
                    std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
                if status.lines().any(|l| l == format!("PPid:\t{outer}")) {
                    return entry.file_name().to_str().unwrap().parse().unwrap();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the worker under unshare did not start");
    }

    fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to a process of ours.
        assert_eq!(unsafe { libc::kill(self.gridsearch_pid(), signal) }, 0);
    }

    /// Wait for the worker's exit (at most two minutes); its exit code and stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("a worker did not finish: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (status.code(), self.stderr())
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }
}

/// The keys of the trials whose weights a worker kept in its folder: the ones it completed.
fn kept_checkpoints(dir: &Path) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    // A server database keeps its files under runs/ in the working directory.
    let mut folders = vec![dir.join("runs/checkpoints")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "safetensors") {
                keys.insert(path.file_stem().unwrap().to_str().unwrap().to_string());
            }
        }
    }
    keys
}

/// Poll until `ready` holds on the trials (at most a minute).
fn wait_for(
    database: &Database,
    what: &str,
    ready: impl Fn(&[(String, String, i64, Option<String>)]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(&database.trials()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            database.trials()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn running_keys(database: &Database) -> BTreeSet<String> {
    database
        .trials()
        .into_iter()
        .filter(|t| t.1 == "running")
        .map(|t| t.0)
        .collect()
}

/// Every trial of the grid is complete, once; `status` (the real binary on the same database)
/// agrees. Returns the attempts of each trial, by key.
fn assert_every_trial_complete_once(database: &Database) -> Vec<(String, i64)> {
    let trials = database.trials();
    assert_eq!(trials.len(), TRIALS, "{trials:?}");
    assert!(trials.iter().all(|t| t.1 == "complete"), "{trials:?}");
    let status = ok(&gridsearch(&database.url, &["status", "--json"]));
    assert!(
        status.contains(&format!("\"complete\": {TRIALS}")),
        "{status}"
    );
    trials.into_iter().map(|t| (t.0, t.2)).collect()
}

#[test]
fn four_workers_in_their_own_pid_namespaces_complete_every_trial_once_and_share_the_work() {
    let Some(base) = url() else { return };
    let _server = one_at_a_time();
    let database = Database::new(&base);
    let root = tempfile::tempdir().unwrap();
    let grid = cluster_grid(root.path());
    let wrapped = pid_namespaces();
    let workers: Vec<Worker> = (0..4)
        .map(|n| Worker::start(root.path(), n, &database.url, &grid, 30, wrapped))
        .collect();
    let mut completed_by: Vec<BTreeSet<String>> = Vec::new();
    for worker in workers {
        let dir = worker.dir.clone();
        let (code, stderr) = worker.finish();
        assert_eq!(code, Some(0), "{stderr}");
        completed_by.push(kept_checkpoints(&dir));
    }
    let attempts = assert_every_trial_complete_once(&database);
    assert!(
        attempts.iter().all(|(_, a)| *a == 1),
        "each claimed once: {attempts:?}"
    );
    let all: BTreeSet<String> = attempts.into_iter().map(|(k, _)| k).collect();
    let union: BTreeSet<String> = completed_by.iter().flatten().cloned().collect();
    let total: usize = completed_by.iter().map(BTreeSet::len).sum();
    assert_eq!(
        (union, total),
        (all, TRIALS),
        "each trial completed by exactly one worker"
    );
    let busy = completed_by.iter().filter(|k| !k.is_empty()).count();
    assert!(busy >= 2, "the work is spread: {completed_by:?}");
    if wrapped {
        let names: BTreeSet<Option<String>> = database.trials().into_iter().map(|t| t.3).collect();
        assert_eq!(
            names.len(),
            1,
            "in their own namespaces the pids collide: {names:?}"
        );
    }
}

#[test]
fn a_worker_killed_mid_trial_loses_nothing_and_its_trial_runs_again() {
    let Some(base) = url() else { return };
    let _server = one_at_a_time();
    let database = Database::new(&base);
    let root = tempfile::tempdir().unwrap();
    let grid = cluster_grid(root.path());
    let wrapped = pid_namespaces();
    let first = Worker::start(root.path(), 0, &database.url, &grid, 3, wrapped);
    wait_for(&database, "the first worker's trial", |t| {
        t.iter().any(|r| r.1 == "running")
    });
    let killed = running_keys(&database);
    let others: Vec<Worker> = (1..4)
        .map(|n| Worker::start(root.path(), n, &database.url, &grid, 3, wrapped))
        .collect();
    first.signal(libc::SIGKILL);
    let (code, _) = first.finish();
    assert_ne!(code, Some(0), "killed");
    for worker in others {
        let (code, stderr) = worker.finish();
        assert_eq!(code, Some(0), "{stderr}");
    }
    let attempts = assert_every_trial_complete_once(&database);
    for (key, attempt) in attempts {
        let expected = if killed.contains(&key) { 2 } else { 1 };
        assert_eq!(
            attempt, expected,
            "{key}: the killed trial ran again, once ({killed:?})"
        );
    }
}

#[test]
fn the_server_restarting_mid_run_loses_nothing() {
    let Some(base) = url() else { return };
    let _server = one_at_a_time();
    let database = Database::new(&base);
    let root = tempfile::tempdir().unwrap();
    let grid = cluster_grid(root.path());
    let wrapped = pid_namespaces();
    let workers: Vec<Worker> = (0..4)
        .map(|n| Worker::start(root.path(), n, &database.url, &grid, 60, wrapped))
        .collect();
    // Every worker has connected (two connections each), and trials are under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while gridsearch_connections(&database) < 8 {
        assert!(Instant::now() < deadline, "the workers did not all connect");
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for(&database, "a trial running", |t| {
        t.iter().any(|r| r.1 == "running")
    });
    restart_server();
    let done_before_restart = database
        .trials()
        .iter()
        .filter(|t| t.1 == "complete")
        .count();
    assert!(done_before_restart < TRIALS, "the restart came mid-run");
    for worker in workers {
        let (code, stderr) = worker.finish();
        assert_eq!(code, Some(0), "{stderr}");
    }
    assert_every_trial_complete_once(&database);
}

#[test]
fn a_worker_paused_past_its_lease_has_its_late_write_rejected() {
    let Some(base) = url() else { return };
    let _server = one_at_a_time();
    let database = Database::new(&base);
    let root = tempfile::tempdir().unwrap();
    let grid = cluster_grid(root.path());
    let wrapped = pid_namespaces();
    let paused = Worker::start(root.path(), 0, &database.url, &grid, 2, wrapped);
    wait_for(&database, "the first worker's trial", |t| {
        t.iter().any(|r| r.1 == "running")
    });
    paused.signal(libc::SIGSTOP);
    let held = running_keys(&database);
    let others: Vec<Worker> = (1..4)
        .map(|n| Worker::start(root.path(), n, &database.url, &grid, 2, wrapped))
        .collect();
    // Its lease runs out; another worker takes its trial over and completes it.
    wait_for(
        &database,
        "the paused worker's trial done by another",
        |t| {
            t.iter()
                .filter(|r| held.contains(&r.0))
                .all(|r| r.1 == "complete" && r.2 == 2)
        },
    );
    let before = database.trials();
    paused.signal(libc::SIGCONT);
    let (code, stderr) = paused.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("lease was lost"),
        "its late write was rejected: {stderr}"
    );
    for worker in others {
        let (code, stderr) = worker.finish();
        assert_eq!(code, Some(0), "{stderr}");
    }
    let attempts = assert_every_trial_complete_once(&database);
    for (key, attempt) in attempts {
        let expected = if held.contains(&key) { 2 } else { 1 };
        assert_eq!(attempt, expected, "{key}: not run a third time ({held:?})");
    }
    let after_held: Vec<_> = database
        .trials()
        .into_iter()
        .filter(|t| held.contains(&t.0))
        .collect();
    let before_held: Vec<_> = before.into_iter().filter(|t| held.contains(&t.0)).collect();
    assert_eq!(after_held, before_held, "the late write changed nothing");
}
