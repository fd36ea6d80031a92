//! Helpers shared by the integration tests: the real binary, small grids on the shipped data.
#![allow(dead_code)]

pub mod http;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The largest absolute difference of two tensors (b is brought to a's device first).
pub fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    let b = b.to_device(a.device()).unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files directly in `dir` whose name ends in `.ext`, sorted.
pub fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
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

/// A command's stdout, after checking it succeeded (else its exit code and stderr).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// What the `serve` tests run against: two attributes of the shipped photos trained briefly
/// and exported, and a small catalogue with a photo that is not in it.
pub struct Shop {
    pub models: PathBuf,
    pub catalogue: PathBuf,
    pub index: PathBuf,
    /// A boot photo outside the catalogue.
    pub photo: PathBuf,
}

/// Under `dir`: department (class folders) and heel (the shipped manifest) trained at 64 px
/// on 15 photos per class and exported to `models/`; the first `per_department` photos of each
/// department copied to `catalogue/<department>/`. The index is left for `serve` to build.
pub fn tiny_shop(dir: &Path, per_department: usize) -> Shop {
    let db = dir.join("runs/gs.db");
    let axes = "learning_rate = [0.003]\nunfreeze_depth = [0, 1]";
    let root = format!("root = \"{}\"", repo().join("data/footwear").display());
    let manifest = format!(
        "manifest = \"{}\"\nlabel = \"heel\"",
        repo().join("data/footwear/attributes.csv").display()
    );
    let department = write(
        &dir.join("department.toml"),
        &grid_text("department", (15, 5), axes),
    );
    let heel = write(
        &dir.join("heel.toml"),
        &grid_text("heel", (15, 5), axes).replace(&root, &manifest),
    );
    let models = dir.join("models");
    let grids = [department.to_str().unwrap(), heel.to_str().unwrap()];
    ok(&gridsearch(&db, &["run", grids[0], grids[1]]));
    ok(&gridsearch(
        &db,
        &["export", "--out", models.to_str().unwrap()],
    ));
    let catalogue = copy_catalogue(&dir.join("catalogue"), per_department);
    Shop {
        models,
        catalogue,
        index: dir.join("runs/index.safetensors"),
        photo: shipped_photos("boot").pop().unwrap(),
    }
}

/// The shipped photos of one department, sorted by name.
pub fn shipped_photos(department: &str) -> Vec<PathBuf> {
    let from = repo().join("data/footwear").join(department);
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&from)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    photos.sort();
    photos
}

/// The first `per_department` shipped photos of each department, copied to
/// `dir/<department>/`: a small catalogue whose folders are its labels.
pub fn copy_catalogue(dir: &Path, per_department: usize) -> PathBuf {
    for department in ["boot", "sandal", "shoe"] {
        std::fs::create_dir_all(dir.join(department)).unwrap();
        for photo in &shipped_photos(department)[..per_department] {
            std::fs::copy(photo, dir.join(department).join(photo.file_name().unwrap())).unwrap();
        }
    }
    dir.to_path_buf()
}

/// Run a one-study grid over the shipped photos (see `grid_text`) into `db`, then export it
/// to `dir/models`; returns that folder.
pub fn run_and_export(
    dir: &Path,
    db: &Path,
    study: &str,
    per_class: (usize, usize),
    grid_axes: &str,
) -> PathBuf {
    let grid = write(
        &dir.join(format!("{study}.toml")),
        &grid_text(study, per_class, grid_axes),
    );
    ok(&gridsearch(db, &["run", grid.to_str().unwrap()]));
    let models = dir.join("models");
    ok(&gridsearch(
        db,
        &["export", study, "--out", models.to_str().unwrap()],
    ));
    models
}

impl Shop {
    /// `serve` options for this shop (the catalogue embedded at 64 px), without the port.
    pub fn serve_args(&self) -> Vec<String> {
        let weights = repo().join("models/efficientnet_lite0.safetensors");
        [
            "--models",
            self.models.to_str().unwrap(),
            "--catalogue",
            self.catalogue.to_str().unwrap(),
            "--index",
            self.index.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            "--image-size",
            "64",
        ]
        .map(String::from)
        .to_vec()
    }
}

/// A running `gridsearch serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, from the line the server prints once it listens.
    pub url: String,
}

impl Server {
    /// Start `gridsearch --quiet serve ARGS --port 0` in `cwd`, with its temporary folder
    /// `tmp` and its stderr in `stderr`; wait (up to two minutes) for its `listening on` line.
    pub fn start(cwd: &Path, tmp: &Path, stderr: &Path, args: &[String]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gridsearch"))
            .current_dir(cwd)
            .env("TMPDIR", tmp)
            .args(["--quiet", "serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .expect("binary starts");
        let stdout = child.stdout.take().unwrap();
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = send.send(line);
        });
        let mut server = Server {
            child,
            url: String::new(),
        };
        let line = receive
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_default();
        let Some(url) = line.trim_end().strip_prefix("listening on ") else {
            panic!(
                "no `listening on` line but {line:?}; stderr: {}",
                std::fs::read_to_string(stderr).unwrap_or_default()
            );
        };
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        server.url = url.to_string();
        server
    }

    /// The server's peak resident set size so far, in bytes (`VmHWM` of /proc).
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// SIGTERM, then the exit status (within ten seconds).
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the server did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SHA-256 of a file's bytes, in hex: how tests show a file was not written.
pub fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

/// The one `error: ` line of a command that refused its input with exit code 2 (any
/// `warning: ` lines before it aside); `case` names the check in failures.
pub fn refused(out: &Output, case: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    assert_eq!(errors.len(), 1, "{case}: one line: {stderr}");
    assert!(errors[0].starts_with("error: "), "{case}: {stderr}");
    errors[0].to_string()
}

/// One photo of an exported model's validation.csv: its true and predicted label and the
/// probability of each label (in the model card's order).
pub struct ValidationRow {
    pub label: String,
    pub predicted: String,
    pub probabilities: Vec<f64>,
}

/// validation.csv of an exported model folder, by photo.
pub fn validation_csv(folder: &Path) -> std::collections::BTreeMap<PathBuf, ValidationRow> {
    let mut reader = csv::Reader::from_path(folder.join("validation.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let first: Vec<&str> = header.iter().take(3).collect();
    assert_eq!(first, ["file", "label", "predicted"]);
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let row = ValidationRow {
                label: r[1].to_string(),
                predicted: r[2].to_string(),
                probabilities: r.iter().skip(3).map(|x| x.parse().unwrap()).collect(),
            };
            (PathBuf::from(&r[0]), row)
        })
        .collect()
}
