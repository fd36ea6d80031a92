//! The real binary on the shipped photos and weights: run, resume, extend, report, bad input.

mod common;

use common::{gridsearch, repo};
use std::path::{Path, PathBuf};

/// A tiny grid over the shipped sample: 20 training and 10 validation photos per class.
fn write_grid(dir: &Path, learning_rates: &str) -> PathBuf {
    let text = format!(
        r#"
[study]
name = "tiny"
[data]
root = "{root}"
image_size = 64
train_per_class = 20
val_per_class = 10
[model]
weights = "{weights}"
[train]
head_epochs = 3
finetune_epochs = 1
batch_size = 16
[grid]
learning_rate = {learning_rates}
unfreeze_depth = [0, 1]
"#,
        root = repo().join("data/footwear").display(),
        weights = repo()
            .join("models/efficientnet_lite0.safetensors")
            .display(),
    );
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn report_json(db: &Path) -> serde_json::Value {
    let out = gridsearch(db, &["report", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn run_resume_extend_and_report_rank_real_accuracies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let grid = write_grid(dir.path(), "[1e-3, 1e-2]");
    let out = gridsearch(&db, &["run", grid.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let report = report_json(&db);
    assert_eq!(report["study"], "tiny");
    let ranked = report["ranked"].as_array().unwrap();
    assert_eq!(ranked.len(), 4);
    let accuracies: Vec<f64> = ranked
        .iter()
        .map(|r| r["val_accuracy"].as_f64().unwrap())
        .collect();
    assert!(
        accuracies.windows(2).all(|w| w[0] >= w[1]),
        "ranked best first: {accuracies:?}"
    );
    // 30 validation photos of 3 classes: chance is 1/3; pretrained features do far better.
    assert!(accuracies[0] >= 0.7, "best accuracy {accuracies:?}");
    for row in ranked {
        let acc = row["val_accuracy"].as_f64().unwrap();
        let hits = acc * 30.0;
        assert!(
            (hits - hits.round()).abs() < 1e-9,
            "an accuracy over 30 photos: {acc}"
        );
        let depth = row["params"]["unfreeze_depth"].as_i64().unwrap();
        assert_eq!(
            row["epochs"].as_u64().unwrap(),
            3 + depth as u64,
            "head epochs + fine-tune epochs"
        );
    }

    // Same grid again: nothing new, nothing re-run.
    let out = gridsearch(&db, &["run", grid.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("every trial is finished (0 new)"));
    assert_eq!(
        report_json(&db)["ranked"],
        report["ranked"],
        "finished trials untouched"
    );

    // One new learning rate: only its two trials run.
    write_grid(dir.path(), "[1e-3, 1e-2, 3e-3]");
    let out = gridsearch(&db, &["run", grid.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let extended = report_json(&db);
    assert_eq!(extended["counts"]["complete"], 6);
    for old in ranked {
        let again = extended["ranked"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == old["key"])
            .unwrap();
        assert_eq!(
            again["seconds"], old["seconds"],
            "old trial {} was not re-run",
            old["key"]
        );
    }

    // Other data under the same study name is refused, and nothing stored is lost.
    let text = std::fs::read_to_string(&grid)
        .unwrap()
        .replace("image_size = 64", "image_size = 72");
    std::fs::write(&grid, text).unwrap();
    let out = gridsearch(&db, &["run", grid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let names_change = stderr.contains("`tiny`") && stderr.contains("(data.image_size)");
    assert!(names_change, "{stderr}");
    assert_eq!(report_json(&db)["counts"]["complete"], 6);
    // ... unless asked for a new study: then it runs as `tiny-2`, beside the first.
    let out = gridsearch(&db, &["run", "--new-study", grid.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report_json(&db)["study"], "tiny-2");
    let first = gridsearch(&db, &["report", "--study", "tiny", "--format", "json"]);
    let first: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(first["counts"]["complete"], 6);

    // The same seed gives the same result: a second database, same grid, same accuracies.
    let db2 = dir.path().join("again.db");
    write_grid(dir.path(), "[1e-3, 1e-2]");
    assert!(gridsearch(&db2, &["run", grid.to_str().unwrap()])
        .status
        .success());
    let accuracies2: Vec<f64> = report_json(&db2)["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["val_accuracy"].as_f64().unwrap())
        .collect();
    assert_eq!(accuracies2, accuracies);
}

#[test]
fn a_diverging_trial_is_recorded_as_failed_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    // Adam's steps are as large as the learning rate: 1e38 overflows f32 at once.
    let grid = write_grid(dir.path(), "[1e-3, 1e38]");
    let out = gridsearch(&db, &["run", grid.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = report_json(&db);
    assert_eq!(report["counts"]["complete"], 2);
    assert_eq!(report["counts"]["failed"], 2);
    for failed in report["failed"].as_array().unwrap() {
        assert_eq!(failed["params"]["learning_rate"], 1e38);
        assert!(
            failed["error"].as_str().unwrap().contains("diverged"),
            "{failed}"
        );
    }
    assert!(report["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["params"]["learning_rate"] == 1e-3));
}

#[test]
fn bad_grid_exits_2_with_one_line_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let grid = dir.path().join("bad.toml");
    std::fs::write(
        &grid,
        "[data]\nroot = \"x\"\n[model]\nweights = \"w\"\n[grid]\ndropout = [0.0, 1.5]\n",
    )
    .unwrap();
    let db = dir.path().join("gs.db");
    let out = gridsearch(&db, &["run", grid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("{}:6:", grid.display())) && stderr.contains("dropout"),
        "{stderr}"
    );
    assert!(!db.exists(), "nothing is created before the grid is valid");
}

#[test]
fn report_of_a_missing_database_or_study_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none.db");
    let out = gridsearch(&db, &["report"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("none.db"));
}

#[test]
fn grids_over_one_photo_set_share_one_decode_and_backbone_pass() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    let grid = |label: &str, ignore: &str| {
        let text = format!(
            "[data]\nmanifest = \"{}\"\nlabel = \"{label}\"\n{ignore}\nimage_size = 64\n\
             [model]\nweights = \"{}\"\n[train]\nhead_epochs = 1\nfinetune_epochs = 0\n",
            repo().join("data/footwear/attributes.csv").display(),
            repo()
                .join("models/efficientnet_lite0.safetensors")
                .display(),
        );
        let path = dir.path().join(format!("{label}.toml"));
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (heel, gender) = (grid("heel", ""), grid("gender", "ignore = [\"u\"]"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridsearch"))
        .args(["--db", db.to_str().unwrap(), "run", &heel, &gender])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // heel labels all 480 photos, gender the 277 that are not "u": one pass over the 480.
    let passes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("backbone pass:"))
        .collect();
    assert_eq!(passes.len(), 1, "{stderr}");
    assert!(
        passes[0].contains("480 images at 64 px") && passes[0].ends_with("shared by 2 studies"),
        "{}",
        passes[0]
    );
    for study in ["heel", "gender"] {
        let out = gridsearch(&db, &["report", "--study", study, "--format", "json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["counts"]["complete"], 1, "{study}");
    }
}

#[test]
fn a_closed_standard_output_ends_quietly_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    let grid = repo().join("grids/department.toml");
    for args in [
        vec!["plan", grid.to_str().unwrap()],
        vec!["backbones"],
        vec!["report", "--format", "md"],
    ] {
        if args[0] == "report" {
            // A study to report on: one head-only trial.
            let tiny = write_grid(dir.path(), "[1e-3]");
            let out = gridsearch(&db, &["run", tiny.to_str().unwrap()]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The reader is gone before the command writes a byte (as `| head -0` would be).
        let mut child = common::command(&db, &args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
