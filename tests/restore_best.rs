//! Restore-best with the real binary: each trial keeps the weights of its best epoch by the
//! objective, over both phases, and the ranking, the report's `kept` column, the exported
//! model's validation pass and `predict` all describe those same weights.

mod common;

use common::{grid_text, gridsearch, ok, validation_csv, write, ValidationRow};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Run study `name` over `axes` at 64 px on 12 + 8 shipped photos per class, trained long
/// enough, with patience 0 (never stop early), that the scores peak before the last epoch;
/// `train` is added to its [train] table. Exports it; returns the database, the exported
/// models' folder and the report's JSON.
fn run_study(
    dir: &Path,
    name: &str,
    train: &str,
    axes: &str,
) -> (PathBuf, PathBuf, serde_json::Value) {
    let text = grid_text(name, (12, 8), axes)
        .replace("head_epochs = 3", &format!("head_epochs = 8\n{train}"))
        .replace("finetune_epochs = 2", "finetune_epochs = 3");
    for setting in [
        "head_epochs = 8",
        "finetune_epochs = 3",
        "patience = 0",
        train,
    ] {
        assert!(text.contains(setting), "{setting} in {text}");
    }
    let db = dir.join("runs/gs.db");
    let grid = write(&dir.join(format!("{name}.toml")), &text);
    ok(&gridsearch(&db, &["run", grid.to_str().unwrap()]));
    let models = dir.join("models");
    ok(&gridsearch(
        &db,
        &["export", "--out", models.to_str().unwrap()],
    ));
    let report = ok(&gridsearch(&db, &["report", name, "--format", "json"]));
    (db, models, serde_json::from_str(&report).unwrap())
}

/// One stored epoch of one trial.
#[derive(Debug, Clone, PartialEq)]
struct Epoch {
    phase: String,
    /// 1-based within its phase.
    epoch: i64,
    val_accuracy: f64,
    val_loss: f64,
}

impl Epoch {
    /// How the report names it in `kept`.
    fn as_kept(&self) -> serde_json::Value {
        serde_json::json!({"phase": self.phase, "epoch": self.epoch})
    }
}

/// Every trial's stored epochs in training order (head phase first), by trial key.
fn stored_epochs(db: &Path) -> BTreeMap<String, Vec<Epoch>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT t.trial_key, e.phase, e.epoch, e.val_accuracy, e.val_loss FROM epochs e \
             JOIN trials t ON t.id = e.trial_id \
             ORDER BY t.trial_key, e.phase = 'finetune', e.epoch",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let epoch = Epoch {
                phase: r.get(1)?,
                epoch: r.get(2)?,
                val_accuracy: r.get(3)?,
                val_loss: r.get(4)?,
            };
            Ok((r.get::<_, String>(0)?, epoch))
        })
        .unwrap();
    let mut epochs: BTreeMap<String, Vec<Epoch>> = BTreeMap::new();
    for row in rows {
        let (key, epoch) = row.unwrap();
        epochs.entry(key).or_default().push(epoch);
    }
    epochs
}

/// The first epoch in training order with the highest `score`.
fn best_by(epochs: &[Epoch], score: impl Fn(&Epoch) -> f64) -> &Epoch {
    epochs
        .iter()
        .reduce(|best, e| if score(e) > score(best) { e } else { best })
        .unwrap()
}

fn lowest_loss(epochs: &[Epoch]) -> &Epoch {
    best_by(epochs, |e| -e.val_loss)
}

fn most_accurate(epochs: &[Epoch]) -> &Epoch {
    best_by(epochs, |e| e.val_accuracy)
}

fn card(folder: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(folder.join("model.json")).unwrap()).unwrap()
}

/// The share of hits, computed as the trial's own validation pass does (correct / total).
fn accuracy(hits: impl Iterator<Item = bool>) -> f64 {
    let (mut correct, mut total) = (0usize, 0usize);
    for hit in hits {
        correct += usize::from(hit);
        total += 1;
    }
    correct as f64 / total as f64
}

/// The accuracy of `predict` with the models of `models` on the photos of `validation`.
fn predict_accuracy(
    db: &Path,
    models: &Path,
    validation: &BTreeMap<PathBuf, ValidationRow>,
) -> f64 {
    let files: Vec<&PathBuf> = validation.keys().collect();
    let mut args = vec!["predict", "--json", "--models", models.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let predicted: serde_json::Value = serde_json::from_str(&ok(&gridsearch(db, &args))).unwrap();
    let results = predicted.as_array().unwrap();
    assert_eq!(results.len(), files.len());
    accuracy(files.iter().zip(results).map(|(file, result)| {
        let prediction = &result["predictions"][0];
        let p: Vec<f64> = prediction["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        let top = (0..p.len()).reduce(|b, i| if p[i] > p[b] { i } else { b });
        prediction["labels"][top.unwrap()] == validation[*file].label.as_str()
    }))
}

#[test]
fn the_exported_model_is_the_best_epoch_and_scores_what_the_ranking_says() {
    let dir = tempfile::tempdir().unwrap();
    let axes = "learning_rate = [0.003, 0.03]\nunfreeze_depth = [0, 1]";
    let (db, models, report) = run_study(dir.path(), "restore", "objective = \"val_loss\"", axes);
    let ranked = report["ranked"].as_array().unwrap();
    assert_eq!(ranked.len(), 4);
    let epochs = stored_epochs(&db);

    // Every trial reports the scores of its lowest-loss epoch and names it as the one it kept.
    let mut peaked_early = 0;
    for row in ranked {
        let key = row["key"].as_str().unwrap();
        let best = lowest_loss(&epochs[key]);
        assert_eq!(row["kept"], best.as_kept(), "{key}");
        assert_eq!(row["val_accuracy"].as_f64().unwrap(), best.val_accuracy);
        assert_eq!(row["val_loss"].as_f64().unwrap(), best.val_loss, "{key}");
        if epochs[key].last().unwrap().val_loss > best.val_loss {
            peaked_early += 1;
        }
    }
    assert!(
        peaked_early > 0,
        "the grid must have a trial whose last epoch is worse than its best: {epochs:?}"
    );

    // The winner kept a fine-tune epoch before its last one (so the fine-tune phase's weights
    // were put back) with a different accuracy from the last's (so last-epoch weights would
    // score otherwise); its validation pass and `predict` score exactly its ranked accuracy.
    let winner = ranked[0]["key"].as_str().unwrap();
    let (kept, last) = (lowest_loss(&epochs[winner]), epochs[winner].last().unwrap());
    assert_eq!(kept.phase, "finetune", "{:?}", epochs[winner]);
    assert_ne!(kept.val_accuracy, last.val_accuracy, "{:?}", epochs[winner]);
    let folder = models.join("restore");
    assert_eq!(card(&folder)["trial"]["key"], winner);
    assert_eq!(
        card(&folder)["unfreeze_depth"],
        1,
        "fine-tuned blocks exported"
    );
    let expected = ranked[0]["val_accuracy"].as_f64().unwrap();
    let validation = validation_csv(&folder);
    assert_eq!(validation.len(), 24, "8 validation photos per class");
    assert_eq!(
        accuracy(validation.values().map(|r| r.label == r.predicted)),
        expected
    );
    assert_eq!(predict_accuracy(&db, &models, &validation), expected);
}

#[test]
fn fine_tuning_starts_from_the_head_phases_best_and_keeps_it_unless_beaten() {
    let dir = tempfile::tempdir().unwrap();
    // A fine-tune learning rate so small that no weight moves: every fine-tune epoch scores
    // what its starting weights score, so it ties the head phase's best at most.
    let axes = "learning_rate = [0.003]\nunfreeze_depth = [1]\nfinetune_lr_factor = [1e-12]";
    let (db, models, report) = run_study(dir.path(), "start", "", axes);
    let row = &report["ranked"][0];
    let epochs = &stored_epochs(&db)[row["key"].as_str().unwrap()];
    let (head, tuned): (Vec<&Epoch>, Vec<&Epoch>) = epochs.iter().partition(|e| e.phase == "head");
    let best = most_accurate(epochs);
    assert_eq!(best.phase, "head");
    assert!(
        head.last().unwrap().val_accuracy < best.val_accuracy,
        "the head phase's last epoch must be worse than its best: {epochs:?}"
    );
    assert_eq!(tuned.len(), 3, "patience 0: every fine-tune epoch runs");
    for epoch in tuned {
        assert_eq!(epoch.val_accuracy, best.val_accuracy, "{epochs:?}");
    }
    // A tie keeps the earlier epoch: the head's weights, exported without fine-tuned blocks.
    assert_eq!(row["kept"], best.as_kept());
    assert_eq!(row["val_accuracy"].as_f64().unwrap(), best.val_accuracy);
    let folder = models.join("start");
    assert_eq!(card(&folder)["unfreeze_depth"], 0);
    let validation = validation_csv(&folder);
    assert_eq!(
        accuracy(validation.values().map(|r| r.label == r.predicted)),
        best.val_accuracy
    );
    assert_eq!(
        predict_accuracy(&db, &models, &validation),
        best.val_accuracy
    );
}
