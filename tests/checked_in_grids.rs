//! Every grid the repo ships (grids/ and bench/) plans cleanly into the trials its axes promise,
//! and bench/department-12k.toml is still the grid whose figures the README quotes.

mod common;

use common::{files_with_extension, gridsearch, repo};
use std::path::Path;

/// The product of the lengths of the grid's `[grid]` axes.
fn promised_trials(grid: &Path) -> usize {
    let doc: toml::Table = std::fs::read_to_string(grid).unwrap().parse().unwrap();
    let axes = doc["grid"].as_table().expect("a [grid] table");
    fn count(value: &toml::Value) -> usize {
        match value {
            toml::Value::Array(values) => values.len(),
            // dotted keys (augment.views = [...]) nest as tables
            toml::Value::Table(table) => table.values().map(count).product(),
            _ => 1,
        }
    }
    axes.values().map(count).product()
}

/// The trial keys `plan` prints for `grid` (the second column of its table).
fn planned_keys(db: &Path, grid: &Path) -> Vec<String> {
    let out = gridsearch(db, &["plan", grid.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}: {}",
        grid.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| {
            line.starts_with("│ ") && line.chars().nth(2).is_some_and(|c| c.is_ascii_digit())
        })
        .map(|line| line.split('┆').nth(1).unwrap().trim().to_string())
        .collect()
}

/// The shared photos the bench grids read, if they are beside the repo.
fn shared_photos_present() -> bool {
    repo().join("../shared/data/footwear").is_dir()
}

#[test]
fn every_shipped_grid_plans_into_the_trials_its_axes_promise() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    let mut grids = files_with_extension(&repo().join("grids"), "toml");
    assert!(grids.len() >= 7, "the seven attribute grids: {grids:?}");
    if shared_photos_present() {
        grids.extend(files_with_extension(&repo().join("bench"), "toml"));
    } else {
        eprintln!("SKIPPED: the bench/ grids: ../shared/data/footwear not found");
    }
    for grid in grids {
        let keys = planned_keys(&db, &grid);
        assert_eq!(keys.len(), promised_trials(&grid), "{}", grid.display());
    }
}

#[test]
fn the_department_12k_grid_is_the_one_measured() {
    if !shared_photos_present() {
        eprintln!("SKIPPED: bench/department-12k.toml: ../shared/data/footwear not found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The trial keys of the run in bench/results/models-2026-12-02.md ("unfreeze depth x hflip
    // views"): a changed setting changes a key, and the README's 0.9930 would no longer be this grid's.
    let keys = planned_keys(
        &dir.path().join("gs.db"),
        &repo().join("bench/department-12k.toml"),
    );
    assert_eq!(
        keys,
        [
            "e6c9674d6077a675",
            "fad832d54aea2ba6",
            "8b74dcf604920c49",
            "646e7cd7214368fd"
        ]
    );
}
