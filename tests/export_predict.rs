//! From a run to predictions: kept checkpoints, exported model folders, and `predict` giving
//! the very probabilities each trial's own validation pass gave.

mod common;

use common::{grid_text, gridsearch, ok, repo, run_and_export, validation_csv, write};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Trial keys of a study, best first, as `report` ranks them.
fn ranked_keys(db: &Path, study: &str) -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_str(&ok(&gridsearch(db, &["report", study, "--format", "json"]))).unwrap();
    json["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect()
}

fn checkpoint_files(db: &Path, study: &str) -> Vec<String> {
    let dir = db.parent().unwrap().join("checkpoints").join(study);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn checkpoints_export_and_predict_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let head_grid = write(
        &dir.path().join("head.toml"),
        &grid_text(
            "rt-head",
            (12, 8),
            "head_size = [0, 16]\nlearning_rate = [0.003, 0.01]",
        ),
    );
    // Ranked by val_loss, these trials keep a fine-tune epoch (by accuracy their fine-tune
    // epochs only tie the head phase's best, so they would keep the head's weights).
    let tuned_grid = write(
        &dir.path().join("tuned.toml"),
        &grid_text(
            "rt-tuned",
            (12, 8),
            "head_size = [16]\nlearning_rate = [0.003]\nunfreeze_depth = [1, 2]\n\
             objective = [\"val_loss\"]",
        ),
    );
    ok(&gridsearch(&db, &["run", head_grid.to_str().unwrap()]));
    ok(&gridsearch(
        &db,
        &[
            "run",
            tuned_grid.to_str().unwrap(),
            "--keep-checkpoints",
            "2",
        ],
    ));

    // Only the best (top 1 by default, top 2 when asked) keep their weights.
    let head_ranked = ranked_keys(&db, "rt-head");
    assert_eq!(head_ranked.len(), 4);
    assert_eq!(
        checkpoint_files(&db, "rt-head"),
        [format!("{}.safetensors", head_ranked[0])]
    );
    let tuned_ranked = ranked_keys(&db, "rt-tuned");
    let mut top2: Vec<String> = tuned_ranked[..2]
        .iter()
        .map(|k| format!("{k}.safetensors"))
        .collect();
    top2.sort();
    assert_eq!(checkpoint_files(&db, "rt-tuned"), top2);

    let out = dir.path().join("models");
    let printed = ok(&gridsearch(
        &db,
        &["export", "--out", out.to_str().unwrap()],
    ));
    assert_eq!(printed.lines().count(), 2, "{printed}");
    let report: serde_json::Value = serde_json::from_str(&ok(&gridsearch(
        &db,
        &["report", "rt-tuned", "--format", "json"],
    )))
    .unwrap();
    let mut validation = BTreeMap::new();
    for (study, ranked) in [("rt-head", &head_ranked), ("rt-tuned", &tuned_ranked)] {
        let folder = out.join(study);
        let card: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("model.json")).unwrap())
                .unwrap();
        assert_eq!(card["study"], study);
        assert_eq!(
            card["labels"],
            serde_json::json!(["boot", "sandal", "shoe"])
        );
        assert_eq!(card["image_size"], 64);
        assert_eq!(card["trial"]["key"].as_str().unwrap(), ranked[0]);
        assert_eq!(card["backbone_sha256"].as_str().unwrap().len(), 64);
        for file in [
            "weights.safetensors",
            "backbone.safetensors",
            "validation.csv",
        ] {
            assert!(folder.join(file).is_file(), "{study}: {file}");
        }
        let rows = validation_csv(&folder);
        assert_eq!(rows.len(), 24, "8 validation photos per class");
        // The stored score is the one these weights give on the validation split.
        let correct = rows
            .values()
            .filter(|r| {
                let p = &r.probabilities;
                let best = (0..3).fold(0, |b, i| if p[i] > p[b] { i } else { b });
                card["labels"][best] == r.label.as_str()
            })
            .count();
        let accuracy = card["trial"]["outcome"]["val_accuracy"].as_f64().unwrap();
        assert!((correct as f64 / 24.0 - accuracy).abs() < 1e-9, "{study}");
        validation.insert(study, rows);
    }
    let tuned_card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("rt-tuned/model.json")).unwrap())
            .unwrap();
    assert!(tuned_card["unfreeze_depth"].as_u64().unwrap() >= 1);
    assert_eq!(report["ranked"][0]["kept"]["phase"], "finetune");
    assert_eq!(
        tuned_card["trial"]["outcome"]["val_accuracy"],
        report["ranked"][0]["val_accuracy"]
    );

    // predict, on the validation photos, with both models at once, from the folders alone.
    let files: Vec<PathBuf> = validation["rt-head"].keys().cloned().collect();
    let mut args = vec!["predict", "--json", "--models", out.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let json: serde_json::Value = serde_json::from_str(&ok(&gridsearch(&db, &args))).unwrap();
    let mut worst = 0f32;
    for (file, result) in files.iter().zip(json.as_array().unwrap()) {
        let predictions = result["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), 2);
        for prediction in predictions {
            let study = prediction["attribute"].as_str().unwrap();
            let expected = &validation[study][file].probabilities;
            let got: Vec<f32> = prediction["probabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap() as f32)
                .collect();
            for (g, e) in got.iter().zip(expected) {
                worst = worst.max((g - *e as f32).abs());
            }
        }
    }
    assert!(
        worst < 1e-4,
        "predict differs from the validation pass by {worst}"
    );
}

#[test]
fn predict_reports_a_bad_image_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let models = run_and_export(dir.path(), &db, "one", (6, 3), "learning_rate = [0.003]");
    let text = write(&dir.path().join("notes.jpg"), "not a photo");
    let photo = repo().join("data/footwear/sandal/sandal_0045.jpg");
    let missing = dir.path().join("missing.png");
    let out = gridsearch(
        &db,
        &[
            "predict",
            "--models",
            models.to_str().unwrap(),
            text.to_str().unwrap(),
            photo.to_str().unwrap(),
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(errors[0].starts_with(&format!("error: {}: not a readable image", text.display())));
    assert!(errors[1].starts_with(&format!(
        "error: {}: not a readable image",
        missing.display()
    )));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sandal_0045.jpg"), "{stdout}");
    assert!(!stdout.contains("notes.jpg"), "{stdout}");
}
