//! Same grid, same data, same seed: two runs export byte-identical weights and report the same
//! numbers, even when their trials' recorded times differ and they ran with different workers.

mod common;

use common::{grid_text, gridsearch, ok, write};
use serde_json::Value;
use std::path::Path;

/// A grid whose 12 validation photos leave exact ties in accuracy among its 6 trials.
fn tied_grid(dir: &Path) -> std::path::PathBuf {
    let axes = "learning_rate = [1e-3, 3e-3, 1e-2]\ndropout = [0.0, 0.3]";
    write(&dir.join("ties.toml"), &grid_text("ties", (10, 4), axes))
}

/// Each complete trial's recorded seconds set by `seconds(id)`, as a busier or idler machine
/// would have recorded them.
fn force_seconds(db: &Path, seconds: impl Fn(i64) -> f64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM trials WHERE state = 'complete'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for id in ids {
        conn.execute(
            "UPDATE trials SET seconds = ?1 WHERE id = ?2",
            rusqlite::params![seconds(id), id],
        )
        .unwrap();
    }
}

/// `value` without the fields that may differ between two runs: wall times and timestamps.
fn without_timings(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !(k.contains("seconds") || k.ends_with("_at")))
                .map(|(k, v)| (k.clone(), without_timings(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_timings).collect()),
        other => other.clone(),
    }
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn two_runs_export_the_same_model_whatever_their_timings() {
    let dir = tempfile::tempdir().unwrap();
    let grid = tied_grid(dir.path());
    let runs = [("a", "1", 1.0), ("b", "2", -1.0)];
    let mut reports = Vec::new();
    for (name, jobs, sign) in runs {
        let db = dir.path().join(name).join("gs.db");
        ok(&gridsearch(
            &db,
            &["run", grid.to_str().unwrap(), "--jobs", jobs],
        ));
        // Run a: the first trials were the fastest; run b: the slowest.
        force_seconds(&db, |id| 100.0 + sign * id as f64);
        let out = dir.path().join(name).join("models");
        ok(&gridsearch(
            &db,
            &["export", "--out", out.to_str().unwrap()],
        ));
        let report = ok(&gridsearch(&db, &["report", "--format", "json"]));
        reports.push(serde_json::from_str::<Value>(&report).unwrap());
    }
    // The grid must have ties at the top, or this test would not test the tie-breaks.
    let ranked = reports[0]["ranked"].as_array().unwrap();
    let tied = ranked.iter().filter(|t| t["rank"] == 1).count();
    assert!(tied >= 2, "no tie at rank 1: {ranked:#?}");
    assert_eq!(without_timings(&reports[0]), without_timings(&reports[1]));
    let (a, b) = (
        dir.path().join("a/models/ties"),
        dir.path().join("b/models/ties"),
    );
    for file in ["weights.safetensors", "validation.csv"] {
        let (fa, fb) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(fa == fb, "{file} differs between the two runs");
    }
    assert_eq!(
        without_timings(&json_file(&a.join("model.json"))),
        without_timings(&json_file(&b.join("model.json")))
    );
}
