//! Crashes, concurrent runs and Ctrl-C lose nothing: real processes, real kills, real SQLite.

mod common;

use common::*;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// 3 learning rates x 3 depths = 9 trials, 3 head groups: a run of a few seconds.
const AXES: &str = "learning_rate = [1e-3, 3e-3, 1e-2]\nunfreeze_depth = [0, 1, 2]";

/// Epochs a complete trial stores: 3 head + 2 fine-tune when it unfreezes anything.
fn expected_epochs(rows: &[Row]) -> BTreeSet<i64> {
    rows.iter().map(|r| r.5).collect()
}

#[test]
fn kill_9_at_random_points_loses_no_finished_trial_and_runs_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    // 12 trials on 80 photos per class: long enough (several seconds) for several kills.
    let axes = "learning_rate = [1e-3, 3e-3, 1e-2, 3e-2]\nunfreeze_depth = [0, 1, 2]";
    let grid = write(
        &dir.path().join("kill.toml"),
        &grid_text("kill", (80, 10), axes),
    );
    let grid = grid.to_str().unwrap();
    // Kill points from a fixed-seed generator: reproducible, spread over a run's life.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut finished: HashMap<String, Option<String>> = HashMap::new();
    let mut kills = 0;
    for _ in 0..6 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(200 + (state >> 33) % 2500);
        // Enough attempts that the trials killed most often are not given up on.
        let mut child = spawn(&db, &["run", "--max-attempts", "20", grid]);
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        if !db.exists() {
            continue;
        }
        assert!(integrity_ok(&db), "integrity after a kill at {delay:?}");
        for row in trial_rows(&db) {
            if let Some(before) = finished.get(&row.0) {
                assert_eq!(&row.2, before, "finished trial {} was touched again", row.0);
                assert_eq!(row.1, "complete");
            } else if row.1 == "complete" {
                finished.insert(row.0.clone(), row.2.clone());
            }
        }
    }
    assert!(kills >= 3, "most kills should land mid-run ({kills})");
    let out = gridsearch(&db, &["run", "--max-attempts", "20", grid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = trial_rows(&db);
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r.1 == "complete"), "{rows:?}");
    for row in &rows {
        if let Some(before) = finished.get(&row.0) {
            assert_eq!(&row.2, before, "finished trial {} was run again", row.0);
        }
    }
    assert_eq!(
        expected_epochs(&rows),
        BTreeSet::from([3, 5]),
        "no duplicated or lost epochs"
    );
    assert!(integrity_ok(&db));
}

#[test]
fn four_processes_on_one_grid_run_every_trial_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    let axes = "learning_rate = [1e-3, 3e-3, 1e-2, 3e-2]\nunfreeze_depth = [0, 1]";
    let grid = write(
        &dir.path().join("four.toml"),
        &grid_text("four", (40, 10), axes),
    );
    let children: Vec<_> = (0..4)
        .map(|_| spawn(&db, &["run", "--jobs", "1", grid.to_str().unwrap()]))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("locked"), "{stderr}");
    }
    let rows = trial_rows(&db);
    assert_eq!(rows.len(), 8);
    assert!(
        rows.iter().all(|r| r.1 == "complete" && r.3 == 1),
        "each trial claimed once: {rows:?}"
    );
    let processes: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r.4.as_ref())
        .map(|w| w.rsplit_once('-').unwrap().0.to_string())
        .collect();
    assert!(processes.len() >= 2, "the work is spread: {processes:?}");
    assert!(integrity_ok(&db));
}

#[test]
fn ctrl_c_puts_running_trials_back_and_the_same_command_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    let grid = write(
        &dir.path().join("int.toml"),
        &grid_text("int", (60, 10), AXES),
    );
    let grid = grid.to_str().unwrap();
    let child = spawn(&db, &["run", "--jobs", "1", grid]);
    let started = Instant::now();
    while !running_in(&db, child.id()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no trial started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let interrupted = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        interrupted.elapsed() < Duration::from_secs(15),
        "exits promptly"
    );
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
    let rows = trial_rows(&db);
    assert!(
        rows.iter().all(|r| r.1 == "pending" || r.1 == "complete"),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r.1 == "pending"));
    let out = gridsearch(&db, &["run", grid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(trial_rows(&db).iter().all(|r| r.1 == "complete"));
}

#[test]
fn a_trial_whose_process_keeps_dying_is_failed_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    let grid = write(
        &dir.path().join("dies.toml"),
        &grid_text("dies", (60, 10), "unfreeze_depth = [2]"),
    );
    let grid = grid.to_str().unwrap();
    for _ in 0..2 {
        let mut child = spawn(&db, &["run", "--max-attempts", "2", grid]);
        let started = Instant::now();
        while !running_in(&db, child.id()) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no trial started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let out = gridsearch(&db, &["run", "--max-attempts", "2", grid]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 failed after 2 attempts"), "{stderr}");
    assert_eq!(out.status.code(), Some(3), "a trial failed");
    let rows = trial_rows(&db);
    assert_eq!(rows[0].1, "failed", "{rows:?}");
}

#[test]
fn a_full_disk_is_one_clear_line_and_keeps_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    let axes = |lrs: &str| format!("learning_rate = {lrs}\nunfreeze_depth = [0]");
    let grid = write(
        &dir.path().join("full.toml"),
        &grid_text("full", (10, 5), &axes("[1e-3]")),
    );
    assert!(gridsearch(&db, &["run", grid.to_str().unwrap()])
        .status
        .success());
    let stored = trial_rows(&db);
    // More trials, with the file size limit set just above the database's size: SQLite's
    // writes then fail as on a full disk (SIGXFSZ ignored, so write() returns EFBIG).
    write(
        &grid,
        &grid_text(
            "full",
            (10, 5),
            &axes("[1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3]"),
        ),
    );
    let blocks = std::fs::metadata(&db).unwrap().len() / 512 + 8;
    let script =
        format!("ulimit -f {blocks}; trap '' XFSZ; exec \"$0\" --db \"$1\" --quiet run \"$2\"");
    let out = std::process::Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_gridsearch")])
        .arg(&db)
        .arg(&grid)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A full disk is the machine's, not a bad input: its own exit code.
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("gs.db") && stderr.contains("disk full"),
        "{stderr}"
    );
    assert!(integrity_ok(&db));
    let now = trial_rows(&db);
    assert!(stored.iter().all(|row| now.contains(row)), "{now:?}");
    // With room again, the same command finishes every trial.
    let out = gridsearch(&db, &["run", grid.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(trial_rows(&db).iter().all(|r| r.1 == "complete"));
}
