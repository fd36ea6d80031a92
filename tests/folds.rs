//! Cross-validation with the real binary on copied shipped photos: `[data] folds = 3` trains
//! every trial on every fold from one frozen pass, stores each fold's epochs, scores a trial
//! by the mean of its folds' kept epochs with their sd, and exports the best fold's model with
//! that fold's validation photos; same seed, same numbers; bad `folds` grids are refused.

mod common;

use common::{copy_catalogue, gridsearch, ok, refused, repo, validation_csv, write};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Photos per class copied for the study: 60 in all, 20 per fold.
const PER_CLASS: usize = 20;
const FOLDS: usize = 3;

/// A grid over `photos` (a folder per class) at 64 px with `[data]` lines `data`, two trials
/// sharing one head phase (unfreeze_depth 0 and 1), trained without early stopping.
fn grid_text(name: &str, photos: &Path, data: &str) -> String {
    format!(
        r#"
[study]
name = "{name}"
seed = 7
[data]
root = "{root}"
image_size = 64
{data}
[model]
weights = "{weights}"
[train]
learning_rate = 0.003
head_epochs = 4
finetune_epochs = 2
batch_size = 16
patience = 0
[grid]
unfreeze_depth = [0, 1]
"#,
        root = photos.display(),
        weights = repo()
            .join("models/efficientnet_lite0.safetensors")
            .display(),
    )
}

/// `gridsearch --db DB run GRID` without --quiet: its stderr's `backbone pass:` lines.
fn run_told(db: &Path, grid: &Path) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_gridsearch"))
        .arg("--db")
        .arg(db)
        .arg("run")
        .arg(grid)
        .output()
        .unwrap();
    ok(&out);
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("backbone pass:"))
        .map(str::to_string)
        .collect()
}

/// One stored epoch: (fold, phase, epoch, val_accuracy, val_loss, train_loss).
type Epoch = (i64, String, i64, f64, f64, f64);

/// Every trial's stored epochs by trial key, by fold then training order (head phase first).
fn stored_epochs(db: &Path) -> BTreeMap<String, Vec<Epoch>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT t.trial_key, e.fold, e.phase, e.epoch, e.val_accuracy, e.val_loss, \
             e.train_loss FROM epochs e JOIN trials t ON t.id = e.trial_id \
             ORDER BY t.trial_key, e.fold, e.phase = 'finetune', e.epoch",
        )
        .unwrap();
    let mut epochs: BTreeMap<String, Vec<Epoch>> = BTreeMap::new();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ),
            ))
        })
        .unwrap();
    for row in rows {
        let (key, epoch) = row.unwrap();
        epochs.entry(key).or_default().push(epoch);
    }
    epochs
}

/// Each trial's stored outcome: (val_accuracy, best_objective, folds, objective_sd), by key.
fn stored_outcomes(db: &Path) -> BTreeMap<String, (f64, f64, i64, Option<f64>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT trial_key, val_accuracy, best_objective, folds, objective_sd FROM trials")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// The accuracy of the epoch each fold keeps (objective accuracy: its most accurate epoch,
/// the first in training order on a tie), in fold order.
fn kept_accuracy_per_fold(epochs: &[Epoch]) -> Vec<f64> {
    let folds: BTreeSet<i64> = epochs.iter().map(|e| e.0).collect();
    folds
        .into_iter()
        .map(|fold| {
            let of_fold = epochs.iter().filter(|e| e.0 == fold);
            of_fold.map(|e| e.3).reduce(f64::max).unwrap()
        })
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn sample_sd(values: &[f64]) -> f64 {
    let m = mean(values);
    let squares: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    (squares / (values.len() - 1) as f64).sqrt()
}

#[test]
fn every_trial_trains_every_fold_from_one_pass_and_is_scored_by_their_mean() {
    let dir = tempfile::tempdir().unwrap();
    let photos = copy_catalogue(&dir.path().join("photos"), PER_CLASS);
    let text = grid_text("cv", &photos, &format!("folds = {FOLDS}"));
    let grid = write(&dir.path().join("cv.toml"), &text);
    let db = dir.path().join("runs/gs.db");

    // One frozen pass over every photo once, not once per fold.
    let passes = run_told(&db, &grid);
    assert_eq!(passes.len(), 1, "{passes:?}");
    assert!(
        passes[0].starts_with("backbone pass: 60 images at 64 px"),
        "{passes:?}"
    );

    // Every trial stored every fold's epochs: 4 head epochs, and 2 fine-tune ones at depth 1.
    let epochs = stored_epochs(&db);
    let outcomes = stored_outcomes(&db);
    assert_eq!(epochs.len(), 2);
    for (key, trial) in &epochs {
        for fold in 0..FOLDS as i64 {
            let count = trial.iter().filter(|e| e.0 == fold).count();
            assert!(
                count == 4 || count == 6,
                "{key} fold {fold}: {count} epochs"
            );
        }
        assert_eq!(trial.iter().filter(|e| e.0 >= FOLDS as i64).count(), 0);
        // The outcome is the mean of the folds' kept scores; the sd is theirs.
        let kept = kept_accuracy_per_fold(trial);
        let (accuracy, objective, folds, sd) = outcomes[key];
        assert!((accuracy - mean(&kept)).abs() < 1e-12, "{key}: {kept:?}");
        assert!((objective - mean(&kept)).abs() < 1e-12, "{key}");
        assert_eq!(folds, FOLDS as i64);
        assert!((sd.unwrap() - sample_sd(&kept)).abs() < 1e-12, "{key}");
    }

    // The report ranks by the mean and shows the folds and the sd.
    let report: serde_json::Value =
        serde_json::from_str(&ok(&gridsearch(&db, &["report", "--format", "json"]))).unwrap();
    assert_eq!(report["folds"], FOLDS);
    let ranked = report["ranked"].as_array().unwrap();
    assert_eq!(ranked.len(), 2);
    let means: Vec<f64> = ranked
        .iter()
        .map(|r| r["val_accuracy"].as_f64().unwrap())
        .collect();
    assert!(means[0] >= means[1], "{means:?}");
    for row in ranked {
        let key = row["key"].as_str().unwrap();
        assert_eq!(row["folds"], FOLDS);
        assert_eq!(row["objective_sd"].as_f64(), outcomes[key].3);
        assert_eq!(row["kept_folds"].as_array().unwrap().len(), FOLDS);
    }
    let effect = &report["effects"][0]["values"][0];
    assert_eq!(
        effect["n"], FOLDS,
        "each fold of the one trial is an observation"
    );
    let table = ok(&gridsearch(&db, &["report"]));
    assert!(table.contains("fold-to-fold"), "{table}");

    // The export is the winner's best fold, with exactly that fold's validation photos, and
    // scores on them what that fold's kept epoch scored.
    let models = dir.path().join("models");
    let told = ok(&gridsearch(
        &db,
        &["export", "--out", models.to_str().unwrap()],
    ));
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(models.join("cv/model.json")).unwrap())
            .unwrap();
    let winner = ranked[0]["key"].as_str().unwrap();
    assert_eq!(card["trial"]["key"], winner);
    let kept = kept_accuracy_per_fold(&epochs[winner]);
    let best = (0..FOLDS)
        .reduce(|b, f| if kept[f] > kept[b] { f } else { b })
        .unwrap();
    assert_eq!(card["trial"]["fold"], best, "{kept:?}");
    assert_eq!(card["trial"]["outcome"]["folds"], FOLDS);
    assert!(
        told.contains(&format!("the model of fold {}", best + 1)),
        "{told}"
    );
    let validation = validation_csv(&models.join("cv"));
    assert_eq!(validation.len(), 60 / FOLDS, "one fold's photos");
    for class in ["boot", "sandal", "shoe"] {
        let n = validation.values().filter(|r| r.label == *class).count();
        assert!((6..=7).contains(&n), "{class}: {n} of the fold's 20");
    }
    assert!(validation.keys().all(|f| f.starts_with(&photos)));
    let hits = validation
        .values()
        .filter(|r| r.label == r.predicted)
        .count();
    assert_eq!(hits as f64 / validation.len() as f64, kept[best]);

    // Same seed, same folds, same numbers, bit for bit, in another database.
    let again = dir.path().join("again/gs.db");
    run_told(&again, &grid);
    let bits = |epochs: BTreeMap<String, Vec<Epoch>>| -> Vec<(String, Vec<[u64; 3]>)> {
        epochs
            .into_iter()
            .map(|(k, e)| {
                let numbers = e
                    .iter()
                    .map(|e| [e.3.to_bits(), e.4.to_bits(), e.5.to_bits()]);
                (k, numbers.collect())
            })
            .collect()
    };
    assert_eq!(bits(stored_epochs(&again)), bits(epochs));
    let outcome_bits = |o: BTreeMap<String, (f64, f64, i64, Option<f64>)>| -> Vec<_> {
        o.into_iter()
            .map(|(k, (a, b, f, sd))| (k, a.to_bits(), b.to_bits(), f, sd.map(f64::to_bits)))
            .collect()
    };
    assert_eq!(
        outcome_bits(stored_outcomes(&again)),
        outcome_bits(outcomes)
    );
}

#[test]
fn bad_folds_values_and_combinations_are_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    for class in ["boot", "shoe"] {
        write(
            &photos.join(class).join("a.jpg"),
            "not read before the check",
        );
    }
    let manifest = write(&dir.path().join("labels.csv"), "path,heel\nx.jpg,flat\n");
    let db = dir.path().join("runs/gs.db");
    let cases = [
        (
            "folds = 1",
            "8:9",
            "`folds` must be between 2 and 20, not 1",
        ),
        (
            "folds = 21",
            "8:9",
            "`folds` must be between 2 and 20, not 21",
        ),
        ("folds = 2.5", "8:9", "`folds` must be an integer"),
        ("folds = \"3\"", "8:9", "`folds` must be an integer"),
        (
            "folds = 3\nval_fraction = 0.25",
            "9:1",
            "`val_fraction` cannot go with `folds`",
        ),
        (
            "folds = 3\ntrain_per_class = 5",
            "9:1",
            "`train_per_class` cannot go with `folds`",
        ),
        (
            "folds = 3\nval_per_class = 5",
            "9:1",
            "`val_per_class` cannot go with `folds`",
        ),
        (
            "folds = 3\nsplit = \"ordered\"",
            "9:9",
            "`split = \"ordered\"` cannot go with",
        ),
    ];
    for (data, at, expected) in cases {
        let grid = write(
            &dir.path().join("bad.toml"),
            &grid_text("bad", &photos, data),
        );
        let line = refused(&gridsearch(&db, &["run", grid.to_str().unwrap()]), data);
        let place = format!("error: {}:{at}: ", grid.display());
        assert!(line.starts_with(&place), "{data}: {line}");
        assert!(line.contains(expected), "{data}: {line}");
    }
    // Pre-split folders, and a manifest with a split size, are refused too.
    let root = format!("root = \"{}\"", photos.display());
    let split_folders = format!("train = \"{0}\"\nval = \"{0}\"", photos.display());
    let text = grid_text("bad", &photos, "folds = 3").replace(&root, &split_folders);
    let grid = write(&dir.path().join("bad.toml"), &text);
    let line = refused(&gridsearch(&db, &["run", grid.to_str().unwrap()]), "train");
    assert!(
        line.starts_with(&format!("error: {}:6:1: ", grid.display())),
        "{line}"
    );
    assert!(line.contains("`train` cannot go with `folds`"), "{line}");
    let from_manifest = format!("manifest = \"{}\"\nlabel = \"heel\"", manifest.display());
    let text =
        grid_text("bad", &photos, "folds = 3\nval_per_class = 2").replace(&root, &from_manifest);
    let grid = write(&dir.path().join("bad.toml"), &text);
    let line = refused(
        &gridsearch(&db, &["run", grid.to_str().unwrap()]),
        "manifest",
    );
    assert!(
        line.contains(":10:1: `val_per_class` cannot go with `folds`"),
        "{line}"
    );
    assert!(!db.exists(), "nothing was stored");
}

#[test]
fn a_study_made_without_folds_refuses_its_grid_with_folds() {
    let dir = tempfile::tempdir().unwrap();
    let photos = copy_catalogue(&dir.path().join("photos"), 6);
    let db = dir.path().join("runs/gs.db");
    let plain = grid_text("shoes", &photos, "").replace("head_epochs = 4", "head_epochs = 1");
    let plain = plain.replace("unfreeze_depth = [0, 1]", "unfreeze_depth = [0]");
    let grid = write(&dir.path().join("shoes.toml"), &plain);
    ok(&gridsearch(&db, &["run", grid.to_str().unwrap()]));
    let before = stored_epochs(&db);
    let folded = plain.replace("image_size = 64\n", "image_size = 64\nfolds = 2\n");
    assert_ne!(folded, plain);
    write(&grid, &folded);
    let line = refused(&gridsearch(&db, &["run", grid.to_str().unwrap()]), "folds");
    assert!(line.contains("other settings (data.folds)"), "{line}");
    assert_eq!(stored_epochs(&db), before, "nothing stored was lost");
    assert!(
        before.values().flatten().all(|e| e.0 == 0),
        "fold 0 without folds"
    );
}

#[test]
fn with_augmentation_every_photo_gets_its_views_once_and_every_fold_trains_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let photos = copy_catalogue(&dir.path().join("photos"), 8);
    let db = dir.path().join("runs/gs.db");
    let text = grid_text("augmented", &photos, "folds = 2")
        .replace(
            "patience = 0",
            "patience = 0\naugment.views = 2\naugment.hflip = true\naugment.crop = 0.6",
        )
        .replace("head_epochs = 4", "head_epochs = 2");
    assert!(text.contains("augment.views = 2") && text.contains("head_epochs = 2"));
    let grid = write(&dir.path().join("augmented.toml"), &text);
    let passes = run_told(&db, &grid);
    // Each photo trains in one fold or the other: all 24 get their 2 views, made once.
    assert_eq!(passes.len(), 1, "{passes:?}");
    assert!(
        passes[0].starts_with("backbone pass: 24 images and 48 augmented views at 64 px"),
        "{passes:?}"
    );
    let outcomes = stored_outcomes(&db);
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes.values().all(|o| o.2 == 2 && o.3.is_some()),
        "{outcomes:?}"
    );
    for (key, epochs) in stored_epochs(&db) {
        let folds: BTreeSet<i64> = epochs.iter().map(|e| e.0).collect();
        assert_eq!(folds, BTreeSet::from([0, 1]), "{key}");
    }
}
