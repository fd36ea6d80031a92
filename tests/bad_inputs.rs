//! Every bad input: one line naming the file (and line:column in a grid), exit code 2, and the
//! study already in the database untouched. Table-driven over the real binary.

mod common;

use common::*;
use std::path::Path;

/// The base grid every case edits: valid, and already run once into the database.
fn base() -> String {
    grid_text(
        "base",
        (10, 5),
        "learning_rate = [1e-3]\nunfreeze_depth = [0]",
    )
}

/// One case: how to break the input, which command, what the one-line error must contain.
struct Case {
    name: &'static str,
    /// Edits the grid text; may also create files under the case's folder.
    setup: fn(&Path, String) -> String,
    /// Arguments after `--db DB`; `GRID` stands for the case's grid file.
    args: &'static [&'static str],
    /// Fragments of the error line (the grid file's path is checked separately where `at_grid`).
    expect: &'static [&'static str],
    /// Whether the error names the grid file.
    at_grid: bool,
}

fn replace(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "case edits a missing line: {from}");
    text.replace(from, to)
}

fn folder_grid(dir: &Path, text: String) -> String {
    let root = repo().join("data/footwear").display().to_string();
    replace(text, &root, &dir.join("photos").display().to_string())
}

fn copy_photo(dir: &Path, to: &str) {
    let from = repo().join("data/footwear/boot/boot_0030.jpg");
    let to = dir.join("photos").join(to);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

const RUN: &[&str] = &["run", "GRID"];

/// The base grid reading the shipped manifest (heel labels) instead of class folders, with
/// `from` replaced by `to` (under its own study name: other data is another study).
fn manifest_grid(text: String, from: &str, to: &str) -> String {
    let root = format!("root = \"{}\"", repo().join("data/footwear").display());
    let manifest = format!(
        "manifest = \"{}\"\nlabel = \"heel\"",
        repo().join("data/footwear/attributes.csv").display()
    );
    let text = replace(
        replace(text, &root, &manifest),
        "name = \"base\"",
        "name = \"heel\"",
    );
    replace(text, from, to)
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "malformed TOML",
            setup: |_, t| replace(t, "[study]", "[study"),
            args: RUN,
            expect: &["invalid TOML"],
            at_grid: true,
        },
        Case {
            name: "unknown section",
            setup: |_, t| t + "[extra]\nx = 1\n",
            args: RUN,
            expect: &[":19:", "extra"],
            at_grid: true,
        },
        Case {
            name: "unknown key",
            setup: |_, t| replace(t, "patience = 0", "patiance = 0"),
            args: RUN,
            expect: &[":15:", "patiance"],
            at_grid: true,
        },
        Case {
            name: "wrong type",
            setup: |_, t| replace(t, "batch_size = 16", "batch_size = \"16\""),
            args: RUN,
            expect: &[":14:", "batch_size"],
            at_grid: true,
        },
        Case {
            name: "float for an integer",
            setup: |_, t| replace(t, "head_epochs = 3", "head_epochs = 2.5"),
            args: RUN,
            expect: &[":12:", "head_epochs"],
            at_grid: true,
        },
        Case {
            name: "empty axis",
            setup: |_, t| replace(t, "learning_rate = [1e-3]", "learning_rate = []"),
            args: RUN,
            expect: &[":17:", "learning_rate"],
            at_grid: true,
        },
        Case {
            name: "duplicate values",
            setup: |_, t| replace(t, "learning_rate = [1e-3]", "learning_rate = [1e-3, 0.001]"),
            args: RUN,
            expect: &[":17:", "learning_rate"],
            at_grid: true,
        },
        Case {
            name: "zero learning rate",
            setup: |_, t| replace(t, "learning_rate = [1e-3]", "learning_rate = [0.0]"),
            args: RUN,
            expect: &[":17:", "learning_rate"],
            at_grid: true,
        },
        Case {
            name: "negative learning rate",
            setup: |_, t| replace(t, "learning_rate = [1e-3]", "learning_rate = [-1e-3]"),
            args: RUN,
            expect: &[":17:", "learning_rate"],
            at_grid: true,
        },
        Case {
            name: "dropout 1",
            setup: |_, t| t.replace("[grid]\n", "[grid]\ndropout = [1.0]\n"),
            args: RUN,
            expect: &[":17:", "dropout"],
            at_grid: true,
        },
        Case {
            name: "negative dropout",
            setup: |_, t| t.replace("[grid]\n", "[grid]\ndropout = [-0.1]\n"),
            args: RUN,
            expect: &[":17:", "dropout"],
            at_grid: true,
        },
        Case {
            name: "unfreeze depth too deep",
            setup: |_, t| replace(t, "unfreeze_depth = [0]", "unfreeze_depth = [0, 17]"),
            args: RUN,
            expect: &[":18:", "unfreeze_depth"],
            at_grid: true,
        },
        Case {
            name: "image size too small",
            setup: |_, t| replace(t, "image_size = 64", "image_size = 8"),
            args: RUN,
            expect: &[":6:", "image_size"],
            at_grid: true,
        },
        Case {
            name: "image size too large",
            setup: |_, t| replace(t, "image_size = 64", "image_size = 4096"),
            args: RUN,
            expect: &[":6:", "image_size"],
            at_grid: true,
        },
        Case {
            name: "key in train and grid",
            setup: |_, t| t.replace("[grid]\n", "[grid]\nhead_epochs = [1, 2]\n"),
            args: RUN,
            expect: &["head_epochs"],
            at_grid: true,
        },
        Case {
            name: "unknown optimizer",
            setup: |_, t| t.replace("patience = 0", "patience = 0\noptimizer = \"lbfgs\""),
            args: RUN,
            expect: &[":16:", "lbfgs"],
            at_grid: true,
        },
        Case {
            name: "batch size zero",
            setup: |_, t| replace(t, "batch_size = 16", "batch_size = 0"),
            args: RUN,
            expect: &[":14:", "batch_size"],
            at_grid: true,
        },
        Case {
            name: "unknown backbone",
            setup: |_, t| t.replace("[model]\n", "[model]\nbackbone = \"resnet9000\"\n"),
            args: RUN,
            expect: &[":10:", "resnet9000"],
            at_grid: true,
        },
        Case {
            name: "negative seed",
            setup: |_, t| t.replace("[study]\n", "[study]\nseed = -1\n"),
            args: RUN,
            expect: &[":3:", "seed"],
            at_grid: true,
        },
        Case {
            name: "val_fraction out of range",
            setup: |_, t| t.replace("image_size = 64", "image_size = 64\nval_fraction = 1.5"),
            args: RUN,
            expect: &[":7:", "val_fraction"],
            at_grid: true,
        },
        Case {
            name: "two data sources",
            setup: |_, t| t.replace("image_size = 64", "image_size = 64\ntrain = \"x\""),
            args: RUN,
            expect: &["train"],
            at_grid: true,
        },
        Case {
            name: "study name with odd characters",
            setup: |_, t| replace(t, "name = \"base\"", "name = \"a b/c\\nrm -rf\""),
            args: RUN,
            expect: &[":3:", "name"],
            at_grid: true,
        },
        Case {
            name: "missing data folder",
            setup: |d, t| folder_grid(d, t),
            args: RUN,
            expect: &["photos"],
            at_grid: true,
        },
        Case {
            name: "empty class folder",
            setup: |d, t| {
                copy_photo(d, "a/1.jpg");
                std::fs::create_dir_all(d.join("photos/b")).unwrap();
                folder_grid(d, t)
            },
            args: RUN,
            expect: &["photos/b", "no image files"],
            at_grid: false,
        },
        Case {
            name: "a single class",
            setup: |d, t| {
                copy_photo(d, "a/1.jpg");
                folder_grid(d, t)
            },
            args: RUN,
            expect: &["photos", "at least two class folders, found 1"],
            at_grid: false,
        },
        Case {
            name: "a class of corrupt images only",
            setup: |d, t| {
                for i in 0..4 {
                    copy_photo(d, &format!("a/{i}.jpg"));
                    write(&d.join(format!("photos/b/{i}.jpg")), "not a JPEG but text");
                }
                // A new study name: other data under `base` would be refused earlier.
                folder_grid(d, replace(t, "name = \"base\"", "name = \"corrupt\""))
            },
            args: RUN,
            expect: &["fewer than two classes have readable images"],
            at_grid: true,
        },
        Case {
            name: "weights file missing",
            setup: |d, t| {
                let w = repo()
                    .join("models/efficientnet_lite0.safetensors")
                    .display()
                    .to_string();
                replace(t, &w, &d.join("none.safetensors").display().to_string())
            },
            args: RUN,
            expect: &["none.safetensors"],
            at_grid: true,
        },
        Case {
            name: "weights not safetensors",
            setup: |d, t| {
                write(&d.join("w.safetensors"), "definitely not safetensors");
                let w = repo()
                    .join("models/efficientnet_lite0.safetensors")
                    .display()
                    .to_string();
                replace(t, &w, &d.join("w.safetensors").display().to_string())
            },
            args: RUN,
            expect: &["w.safetensors", "not a readable safetensors file"],
            at_grid: false,
        },
        Case {
            name: "weights of another model",
            setup: |d, t| {
                let tensor = candle_core::Tensor::zeros(
                    (2, 2),
                    candle_core::DType::F32,
                    &candle_core::Device::Cpu,
                )
                .unwrap();
                candle_core::safetensors::save(
                    &std::collections::HashMap::from([("fc.weight".to_string(), tensor)]),
                    d.join("other.safetensors"),
                )
                .unwrap();
                let w = repo()
                    .join("models/efficientnet_lite0.safetensors")
                    .display()
                    .to_string();
                replace(t, &w, &d.join("other.safetensors").display().to_string())
            },
            args: RUN,
            expect: &[
                "other.safetensors",
                "not EfficientNet-Lite0 weights",
                "_conv_stem.weight",
            ],
            at_grid: false,
        },
        Case {
            name: "manifest without a label column",
            setup: |_, t| manifest_grid(t, "label = \"heel\"", "label = \"colour\""),
            args: RUN,
            expect: &["attributes.csv", "no column `colour`"],
            at_grid: false,
        },
        Case {
            name: "manifest naming a missing photo",
            setup: |d, t| {
                write(&d.join("labels.csv"), "path,heel\nnone.jpg,1\n");
                let labels = d.join("labels.csv").display().to_string();
                let shipped = repo()
                    .join("data/footwear/attributes.csv")
                    .display()
                    .to_string();
                manifest_grid(t, &shipped, &labels)
            },
            args: RUN,
            expect: &["labels.csv:2: image", "none.jpg", "not found"],
            at_grid: false,
        },
        Case {
            name: "manifest label with a single value",
            setup: |_, t| {
                manifest_grid(t, "label = \"heel\"", "label = \"heel\"\nignore = [\"1\"]")
            },
            args: RUN,
            expect: &["attributes.csv", "column `heel` needs at least two classes"],
            at_grid: false,
        },
        Case {
            name: "grid file missing",
            setup: |_, t| t,
            args: &["run", "no-such-grid.toml"],
            expect: &["no-such-grid.toml"],
            at_grid: false,
        },
        Case {
            name: "database is not SQLite",
            setup: |_, t| t,
            args: &["--db", "NOTSQLITE", "run", "GRID"],
            expect: &["not a SQLite database"],
            at_grid: false,
        },
        Case {
            name: "database is a folder",
            setup: |_, t| t,
            args: &["--db", "FOLDER", "run", "GRID"],
            expect: &["folder.db", "is a folder"],
            at_grid: false,
        },
        Case {
            name: "report of an unknown study",
            setup: |_, t| t,
            args: &["report", "--study", "nope"],
            expect: &["no study named `nope`"],
            at_grid: false,
        },
        Case {
            name: "report in an unknown format",
            setup: |_, t| t,
            args: &["report", "--format", "xml"],
            expect: &["xml"],
            at_grid: false,
        },
        Case {
            name: "export of an unknown study",
            setup: |_, t| t,
            args: &["export", "nope", "--out", "CASE/models"],
            expect: &["no study named `nope`"],
            at_grid: false,
        },
        Case {
            name: "predict from a missing models folder",
            setup: |_, t| t,
            args: &[
                "predict",
                "--models",
                "CASE/none",
                "data/footwear/boot/boot_1927.jpg",
            ],
            expect: &["none", "cannot read the models folder"],
            at_grid: false,
        },
        Case {
            name: "predict from a folder without models",
            setup: |_, t| t,
            args: &[
                "predict",
                "--models",
                "CASE/",
                "data/footwear/boot/boot_1927.jpg",
            ],
            expect: &["no exported models here", "gridsearch export"],
            at_grid: false,
        },
        Case {
            name: "predict with a broken model card",
            setup: |d, t| {
                write(&d.join("models/heel/model.json"), "{\"format\": ");
                t
            },
            args: &[
                "predict",
                "--models",
                "CASE/models",
                "data/footwear/boot/boot_1927.jpg",
            ],
            expect: &["heel/model.json", "not a model card"],
            at_grid: false,
        },
        Case {
            name: "index of a missing catalogue",
            setup: |_, t| t,
            args: &["index", "CASE/none", "--index", "CASE/i.safetensors"],
            expect: &["none", "cannot read the catalogue"],
            at_grid: false,
        },
        Case {
            name: "index of a folder without images",
            setup: |_, t| t,
            args: &["index", "CASE/", "--index", "CASE/i.safetensors"],
            expect: &["no images in the catalogue"],
            at_grid: false,
        },
        Case {
            name: "index with an unknown backbone",
            setup: |_, t| t,
            args: &[
                "index",
                "data/footwear",
                "--backbone",
                "vgg16",
                "--index",
                "CASE/i",
            ],
            expect: &["--backbone vgg16: unknown"],
            at_grid: false,
        },
        Case {
            name: "index at a too small image size",
            setup: |_, t| t,
            args: &[
                "index",
                "data/footwear",
                "--image-size",
                "8",
                "--index",
                "CASE/i",
            ],
            expect: &["--image-size 8", "at least 32"],
            at_grid: false,
        },
        Case {
            name: "index with a missing model folder",
            setup: |_, t| t,
            args: &[
                "index",
                "data/footwear",
                "--model",
                "CASE/nomodel",
                "--index",
                "CASE/i",
            ],
            expect: &["nomodel", "model folder not found"],
            at_grid: false,
        },
        Case {
            name: "similar without an index",
            setup: |_, t| t,
            args: &[
                "similar",
                "--index",
                "CASE/none.safetensors",
                "data/footwear/boot/boot_1927.jpg",
            ],
            expect: &["none.safetensors", "no index here", "gridsearch index"],
            at_grid: false,
        },
        Case {
            name: "similar with a file that is not an index",
            setup: |_, t| t,
            args: &[
                "similar",
                "--index",
                "NOTSQLITE",
                "data/footwear/boot/boot_1927.jpg",
            ],
            expect: &["text.db", "not a readable safetensors file"],
            at_grid: false,
        },
        Case {
            // No GPU 99 anywhere: a CPU build has no CUDA, a CUDA build cannot open it.
            name: "run on a GPU that is not there",
            setup: |_, t| t,
            args: &["run", "GRID", "--device", "cuda:99"],
            expect: &["--device cuda:99: "],
            at_grid: false,
        },
        Case {
            name: "predict on an unknown device",
            setup: |_, t| t,
            args: &[
                "predict",
                "--device",
                "tpu",
                "data/footwear/boot/boot_1927.jpg",
            ],
            expect: &["--device tpu: unknown device", "cpu, cuda or cuda:N"],
            at_grid: false,
        },
    ]
}

#[test]
fn every_bad_input_is_one_line_exit_2_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let base_grid = write(&dir.path().join("base.toml"), &base());
    let out = gridsearch(&db, &["run", base_grid.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = trial_rows(&db);
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for (i, case) in cases.iter().enumerate() {
        let case_dir = dir.path().join(format!("case{i}"));
        std::fs::create_dir_all(&case_dir).unwrap();
        let text = (case.setup)(&case_dir, base());
        let grid = write(&case_dir.join("grid.toml"), &text);
        let not_sqlite = write(&case_dir.join("text.db"), "some text, not SQLite");
        std::fs::create_dir_all(case_dir.join("folder.db")).unwrap();
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| match *a {
                "GRID" => grid.display().to_string(),
                "NOTSQLITE" => not_sqlite.display().to_string(),
                "FOLDER" => case_dir.join("folder.db").display().to_string(),
                other => match other.strip_prefix("CASE/") {
                    Some(rest) => case_dir.join(rest).display().to_string(),
                    None => other.to_string(),
                },
            })
            .collect();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gridsearch"));
        if !args.contains(&"--db".to_string()) {
            cmd.arg("--db").arg(&db);
        }
        let out = cmd.arg("--quiet").args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", case.name);
        // One error line; skipped files may be warned about before it.
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("warning: "))
            .collect();
        assert_eq!(errors.len(), 1, "{}: one line: {stderr}", case.name);
        let stderr = errors[0];
        for fragment in case.expect {
            assert!(
                stderr.contains(fragment),
                "{}: `{fragment}` in {stderr}",
                case.name
            );
        }
        if case.at_grid {
            assert!(
                stderr.contains(&grid.display().to_string()),
                "{}: names the grid: {stderr}",
                case.name
            );
        }
        let now = trial_rows(&db);
        let kept = stored.iter().all(|row| now.contains(row));
        assert!(
            kept,
            "{}: the stored study is untouched: {now:?}",
            case.name
        );
        assert_eq!(
            std::fs::read_to_string(&not_sqlite).unwrap(),
            "some text, not SQLite"
        );
    }
}

#[test]
fn corrupt_and_unreadable_images_are_reported_once_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    for class in ["boot", "shoe"] {
        for i in 1..=6 {
            let from = repo().join(format!("data/footwear/{class}"));
            let file = std::fs::read_dir(&from)
                .unwrap()
                .nth(i)
                .unwrap()
                .unwrap()
                .path();
            std::fs::create_dir_all(photos.join(class)).unwrap();
            std::fs::copy(file, photos.join(format!("{class}/{i}.jpg"))).unwrap();
        }
    }
    write(&photos.join("boot/text.jpg"), "a text file named .jpg");
    let jpeg = std::fs::read(photos.join("shoe/1.jpg")).unwrap();
    std::fs::write(photos.join("shoe/corrupt.jpg"), &jpeg[..20]).unwrap();
    std::fs::create_dir_all(photos.join("shoe/folder.jpg")).unwrap();
    let text = grid_text("skip", (20, 2), "learning_rate = [1e-3]").replace(
        &repo().join("data/footwear").display().to_string(),
        &photos.display().to_string(),
    );
    let grid = write(&dir.path().join("skip.toml"), &text);
    let db = dir.path().join("gs.db");
    let out = gridsearch(&db, &["run", grid.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for bad in ["text.jpg", "corrupt.jpg"] {
        assert_eq!(
            stderr.matches(bad).count(),
            1,
            "{bad} reported once: {stderr}"
        );
    }
    assert!(
        !stderr.contains("folder.jpg"),
        "a folder is not an image file: {stderr}"
    );
    assert_eq!(trial_rows(&db)[0].1, "complete");
}

/// Makes a file immutable (`chattr +i`, which binds root too) for as long as it lives.
struct Immutable<'a>(&'a Path);

impl<'a> Immutable<'a> {
    fn new(path: &'a Path) -> Self {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "chattr +i {}",
            path.display()
        );
        Immutable(path)
    }
}

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(self.0)
            .status();
    }
}

#[test]
fn a_read_only_database_is_one_line_exit_2_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    let grid = write(&dir.path().join("base.toml"), &base());
    assert!(gridsearch(&db, &["run", grid.to_str().unwrap()])
        .status
        .success());
    let before = std::fs::read(&db).unwrap();
    let more = base().replace("learning_rate = [1e-3]", "learning_rate = [1e-3, 2e-3]");
    write(&grid, &more);
    let out = {
        let _read_only = Immutable::new(&db);
        gridsearch(&db, &["run", grid.to_str().unwrap()])
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("gs.db") && stderr.contains("read-only"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), before, "not one byte changed");
}
