//! Helpers shared by the integration tests: the real binary, small grids on the shipped data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn command(db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridsearch"));
    cmd.arg("--db").arg(db).arg("--quiet").args(args);
    cmd
}

pub fn gridsearch(db: &Path, args: &[&str]) -> Output {
    command(db, args).output().expect("binary runs")
}

pub fn spawn(db: &Path, args: &[&str]) -> Child {
    command(db, args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

/// A grid over the shipped photos; `grid_axes` is the body of its [grid] table.
pub fn grid_text(name: &str, per_class: (usize, usize), grid_axes: &str) -> String {
    format!(
        r#"
[study]
name = "{name}"
[data]
root = "{root}"
image_size = 64
train_per_class = {train}
val_per_class = {val}
[model]
weights = "{weights}"
[train]
head_epochs = 3
finetune_epochs = 2
batch_size = 16
patience = 0
[grid]
{grid_axes}
"#,
        root = repo().join("data/footwear").display(),
        weights = repo()
            .join("models/efficientnet_lite0.safetensors")
            .display(),
        train = per_class.0,
        val = per_class.1,
    )
}

pub fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// One trial as the tests read it: (key, state, finished_at, attempts, worker, epochs stored).
pub type Row = (String, String, Option<String>, i64, Option<String>, i64);

/// Every trial, by key.
pub fn trial_rows(db: &Path) -> Vec<Row> {
    try_trial_rows(db).expect("a gridsearch database")
}

/// Every trial, or None while the database is not there yet (another process creating it).
pub fn try_trial_rows(db: &Path) -> Option<Vec<Row>> {
    let conn = rusqlite::Connection::open(db).ok()?;
    let mut stmt = conn
        .prepare(
            "SELECT trial_key, state, finished_at, attempts, worker, \
             (SELECT COUNT(*) FROM epochs e WHERE e.trial_id = t.id) FROM trials t ORDER BY trial_key",
        )
        .ok()?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .ok()?;
    rows.collect::<Result<_, _>>().ok()
}

/// Whether process `pid` is running a trial now (polled while it works).
pub fn running_in(db: &Path, pid: u32) -> bool {
    let mine = |r: &Row| {
        r.1 == "running"
            && r.4
                .as_ref()
                .is_some_and(|w| w.contains(&format!("-{pid}-")))
    };
    db.exists() && try_trial_rows(db).is_some_and(|rows| rows.iter().any(mine))
}

pub fn integrity_ok(db: &Path) -> bool {
    let conn = rusqlite::Connection::open(db).unwrap();
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    result == "ok"
}
