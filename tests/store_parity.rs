//! The same grid run on SQLite and on PostgreSQL gives the same outputs: `report` (every
//! section, times aside), `status --json`, `export`; and a worker started once everything is
//! finished exits 0 on both. The real binary, the real test server.

mod common;

use common::postgres::{url, Database};
use common::*;
use std::path::Path;

/// The report's CSV with every `seconds` column left out (times differ from run to run).
fn without_times(csv: &str) -> String {
    let mut timed: Option<usize> = None;
    let mut kept = Vec::new();
    let mut header_next = false;
    for line in csv.lines() {
        if line.starts_with('#') || line.is_empty() {
            header_next = line.starts_with('#');
            kept.push(line.to_string());
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if header_next {
            timed = fields.iter().position(|f| *f == "seconds");
            header_next = false;
        }
        let fields: Vec<&str> = fields
            .into_iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != timed)
            .map(|(_, f)| f)
            .collect();
        kept.push(fields.join(","));
    }
    kept.join("\n")
}

/// `status --json` with the times left out.
fn status_without_times(text: &str) -> serde_json::Value {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.retain(|k, _| !k.contains("seconds") && !k.ends_with("_at"));
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
    strip(&mut value);
    value
}

/// Run the grid into `db` from `dir`; the outputs of report, status and export, and of a run
/// started once it is finished.
fn outputs(dir: &Path, db: &Path, grid: &Path) -> Vec<String> {
    let grid = grid.display().to_string();
    let run = |args: &[&str]| {
        let out = command(db, args).current_dir(dir).output().unwrap();
        ok(&out)
    };
    run(&["run", "--jobs", "1", &grid]);
    let again = run(&["run", "--jobs", "1", &grid]);
    let report = without_times(&run(&["report", "--format", "csv"]));
    let status = status_without_times(&run(&["status", "--json"])).to_string();
    let export = run(&["export", "--out", "models"]);
    vec![again, report, status, export]
}

#[test]
fn a_grid_on_postgres_reports_statuses_and_exports_as_on_sqlite() {
    let Some(base) = url() else { return };
    let database = Database::new(&base);
    let root = tempfile::tempdir().unwrap();
    let grid = write(
        &root.path().join("grid.toml"),
        &grid_text(
            "parity",
            (6, 3),
            "learning_rate = [1e-3, 3e-3]\nunfreeze_depth = [0, 1]",
        ),
    );
    let (sqlite_dir, postgres_dir) = (root.path().join("sqlite"), root.path().join("postgres"));
    std::fs::create_dir_all(&sqlite_dir).unwrap();
    std::fs::create_dir_all(&postgres_dir).unwrap();
    let on_sqlite = outputs(&sqlite_dir, &sqlite_dir.join("gs.db"), &grid);
    let on_postgres = outputs(&postgres_dir, &database.url, &grid);
    assert!(
        on_sqlite[0].contains("every trial is finished"),
        "{}",
        on_sqlite[0]
    );
    assert!(on_sqlite[1].contains("# Ranked trials"), "{}", on_sqlite[1]);
    assert!(
        on_sqlite[3].contains("-> models/parity"),
        "{}",
        on_sqlite[3]
    );
    for (what, (sqlite, postgres)) in ["rerun", "report", "status", "export"]
        .iter()
        .zip(on_sqlite.iter().zip(&on_postgres))
    {
        assert_eq!(sqlite, postgres, "{what} differs");
    }
    assert_eq!(database.trials().len(), 4);
}
