//! Augmentation with the real binary: seeded views are the same in every run, cached or not;
//! a view set is computed in one frozen pass however many grids and runs use it; and
//! validation is never augmented (an augmented trial's exported model gives, on the plain
//! validation photos, the very loss the trial stored).

mod common;

use common::{grid_text, gridsearch, ok, validation_csv, write};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The view set of these tests, as [train] lines.
const VIEW_SET: &str = "augment.hflip = true\naugment.crop = 0.6\naugment.colour = 0.3";

/// A study over 12 + 8 shipped photos per class at 64 px; `train` is added to [train].
fn grid(dir: &Path, name: &str, train: &str, axes: &str) -> PathBuf {
    let text =
        grid_text(name, (12, 8), axes).replace("patience = 0", &format!("patience = 0\n{train}"));
    assert!(text.contains(train));
    write(&dir.join(format!("{name}.toml")), &text)
}

/// `gridsearch --db DB run ARGS...` without --quiet; its stderr's `backbone pass:` lines
/// without their timing.
fn run_told(db: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_gridsearch"))
        .arg("--db")
        .arg(db)
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    ok(&out);
    let untimed = |line: &str| {
        let (what, rest) = line.split_once(" in ").unwrap();
        format!("{what} ({}", rest.split_once(" s (").unwrap().1)
    };
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("backbone pass:"))
        .map(untimed)
        .collect()
}

/// Every stored epoch (losses and accuracies, not timings) by trial key, in training order.
type Epochs = BTreeMap<String, Vec<(String, i64, [f64; 4])>>;

fn stored_epochs(db: &Path) -> Epochs {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT t.trial_key, e.phase, e.epoch, e.train_loss, e.train_accuracy, e.val_loss, \
             e.val_accuracy FROM epochs e JOIN trials t ON t.id = e.trial_id \
             ORDER BY t.trial_key, e.phase = 'finetune', e.epoch",
        )
        .unwrap();
    let mut epochs = Epochs::new();
    let rows = stmt
        .query_map([], |r| {
            let scores = [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?];
            Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, scores)))
        })
        .unwrap();
    for row in rows {
        let (key, epoch) = row.unwrap();
        epochs.entry(key).or_default().push(epoch);
    }
    epochs
}

/// The trial key of each value of `axis` in a study's report.
fn keys_by(db: &Path, study: &str, axis: &str) -> BTreeMap<String, Vec<String>> {
    let report: serde_json::Value =
        serde_json::from_str(&ok(&gridsearch(db, &["report", study, "--format", "json"]))).unwrap();
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in report["ranked"].as_array().unwrap() {
        let value = row["params"][axis].to_string();
        keys.entry(value)
            .or_default()
            .push(row["key"].as_str().unwrap().into());
    }
    keys
}

#[test]
fn views_are_the_same_in_every_run_cached_or_not_and_change_training() {
    let dir = tempfile::tempdir().unwrap();
    let axes = "augment.views = [0, 3]\nunfreeze_depth = [0, 1]";
    let augmented = grid(dir.path(), "aug", VIEW_SET, axes);
    let (cold, uncached) = (dir.path().join("a/gs.db"), dir.path().join("b/gs.db"));
    let cache = dir.path().join("cache");
    let cached = [
        augmented.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    let told = run_told(&cold, &cached);
    // 36 training photos x 3 views; the 24 validation photos get none.
    assert_eq!(
        told,
        ["backbone pass: 60 images and 108 augmented views at 64 px (0 from the cache), shared by 1 studies"]
    );
    run_told(&uncached, &[augmented.to_str().unwrap(), "--no-cache"]);
    let again = dir.path().join("c/gs.db");
    let warm = run_told(&again, &cached);
    assert!(warm[0].contains("(168 from the cache)"), "{warm:?}");
    let epochs = stored_epochs(&cold);
    assert_eq!(epochs.len(), 4);
    assert_eq!(
        epochs,
        stored_epochs(&uncached),
        "cached and uncached views"
    );
    assert_eq!(
        epochs,
        stored_epochs(&again),
        "views read back from the cache"
    );

    // Without views a trial is the trial a grid without augmentation has, epoch for epoch;
    // with them its training differs.
    let plain = grid(dir.path(), "aug-none", "", "unfreeze_depth = [0, 1]");
    let plain_db = dir.path().join("d/gs.db");
    run_told(&plain_db, &[plain.to_str().unwrap()]);
    let plain_epochs = stored_epochs(&plain_db);
    let by_views = keys_by(&cold, "aug", "augment.views");
    for key in &by_views["0"] {
        assert_eq!(epochs[key], plain_epochs[key], "{key}");
    }
    let head_losses = |key: &String| -> Vec<f64> {
        let phase = epochs[key].iter().filter(|e| e.0 == "head");
        phase.map(|e| e.2[0]).collect()
    };
    let plain_losses: Vec<Vec<f64>> = by_views["0"].iter().map(head_losses).collect();
    for key in &by_views["3"] {
        assert!(
            !plain_losses.contains(&head_losses(key)),
            "{key} trained as without views"
        );
    }
}

#[test]
fn a_view_set_is_computed_once_for_every_grid_and_run_that_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let two = format!("{VIEW_SET}\naugment.views = 2");
    let first = grid(dir.path(), "first", &two, "learning_rate = [0.003]");
    let second = grid(dir.path(), "second", &two, "learning_rate = [0.01]");
    let told = run_told(&db, &[first.to_str().unwrap(), second.to_str().unwrap()]);
    assert_eq!(
        told,
        ["backbone pass: 60 images and 72 augmented views at 64 px (0 from the cache), shared by 2 studies"]
    );
    // Three views of the same set: the first two are read, only the third is computed.
    let three = format!("{VIEW_SET}\naugment.views = 3");
    let more = grid(dir.path(), "more", &three, "learning_rate = [0.003]");
    let told = run_told(&db, &[more.to_str().unwrap()]);
    assert_eq!(
        told,
        ["backbone pass: 60 images and 108 augmented views at 64 px (132 from the cache), shared by 1 studies"]
    );
    // Another view set is other pixels: its views are computed, the images are read.
    let other = grid(
        dir.path(),
        "other",
        "augment.views = 2\naugment.crop = 0.8",
        "learning_rate = [0.003]",
    );
    let told = run_told(&db, &[other.to_str().unwrap()]);
    assert_eq!(
        told,
        ["backbone pass: 60 images and 72 augmented views at 64 px (60 from the cache), shared by 1 studies"]
    );
}

#[test]
fn validation_is_never_augmented() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let train = format!("{VIEW_SET}\naugment.views = 3\nobjective = \"val_loss\"");
    let study = grid(
        dir.path(),
        "valplain",
        &train,
        "learning_rate = [0.003]\nunfreeze_depth = [1]",
    );
    run_told(&db, &[study.to_str().unwrap()]);
    let models = dir.path().join("models");
    ok(&gridsearch(
        &db,
        &["export", "--out", models.to_str().unwrap()],
    ));
    let report: serde_json::Value = serde_json::from_str(&ok(&gridsearch(
        &db,
        &["report", "valplain", "--format", "json"],
    )))
    .unwrap();
    let trial = &report["ranked"][0];
    let rows: Vec<_> = validation_csv(&models.join("valplain"))
        .into_values()
        .collect();
    assert_eq!(rows.len(), 24);
    let labels = ["boot", "sandal", "shoe"];
    let loss = rows
        .iter()
        .map(|r| -r.probabilities[labels.iter().position(|l| *l == r.label).unwrap()].ln())
        .sum::<f64>()
        / rows.len() as f64;
    let stored = trial["val_loss"].as_f64().unwrap();
    assert!(
        (loss - stored).abs() < 1e-4 * stored.max(1.0),
        "the plain validation photos give loss {loss}, the trial stored {stored}"
    );
    let hits = rows.iter().filter(|r| {
        let p = &r.probabilities;
        let top = (0..p.len())
            .reduce(|b, i| if p[i] > p[b] { i } else { b })
            .unwrap();
        labels[top] == r.label
    });
    assert_eq!(
        hits.count() as f64 / rows.len() as f64,
        trial["val_accuracy"].as_f64().unwrap()
    );
}
