//! Other people's files, given where ours are expected: a catalogue with links out of it and a
//! FIFO, foreign SQLite files as `--db`, tampered model folders, and study names that are
//! paths. Each is a row: one `error: ` line naming the file, exit code 2, and the file
//! byte-identical afterwards (SHA-256 before and after); or, for the walk and the names, the
//! real work done inside its folder. Real binary, real files.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn weights() -> PathBuf {
    repo().join("models/efficientnet_lite0.safetensors")
}

/// `command` run to its end, killed (and the test failed) if it is still going after
/// `bound`: a hang fails the test instead of stalling it.
fn output_within(mut command: Command, bound: Duration, case: &str) -> std::process::Output {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts");
    let pid = child.id();
    let start = Instant::now();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() {
        if start.elapsed() > bound {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{case}: still running after {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    waiter.join().unwrap()
}

#[test]
fn the_catalogue_walk_stays_inside_its_root_and_takes_regular_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let catalogue = copy_catalogue(&dir.path().join("catalogue"), 2);
    let boot = catalogue.join("boot");
    std::os::unix::fs::symlink("..", boot.join("up")).unwrap();
    std::os::unix::fs::symlink("..", boot.join("again")).unwrap();
    std::os::unix::fs::symlink("/", catalogue.join("everything")).unwrap();
    let made = Command::new("mkfifo").arg(boot.join("x.jpg")).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let index = dir.path().join("index.safetensors");
    let mut index_command = command(
        &dir.path().join("gs.db"),
        &[
            "index",
            catalogue.to_str().unwrap(),
            "--index",
            index.to_str().unwrap(),
            "--weights",
            weights().to_str().unwrap(),
            "--image-size",
            "64",
        ],
    );
    index_command.current_dir(dir.path());
    // Before: two links to `..` never ended (exponential), and the FIFO blocked for ever.
    let out = output_within(index_command, Duration::from_secs(120), "index");
    let stdout = ok(&out);
    assert!(
        stdout.contains("indexed 6 photos"),
        "each photo once: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for skipped in ["boot/up", "boot/again", "everything", "boot/x.jpg"] {
        let line = format!("warning: {}: skipped", catalogue.join(skipped).display());
        assert_eq!(stderr.matches(&line).count(), 1, "{skipped}: {stderr}");
    }
}

/// A foreign file given as `--db`: how to make it, and what the error must say.
struct ForeignDb {
    name: &'static str,
    /// SQL run on a new SQLite file (None: the file holds text).
    sql: Option<&'static str>,
    expect: &'static str,
}

const FOREIGN_DBS: &[ForeignDb] = &[
    ForeignDb {
        name: "another program's tables",
        sql: Some(
            "CREATE TABLE photos (id INTEGER, name TEXT); INSERT INTO photos VALUES (1, 'a')",
        ),
        expect: "another program (it has tables",
    },
    ForeignDb {
        name: "user_version -1",
        sql: Some("PRAGMA user_version = -1"),
        expect: "user_version is -1",
    },
    ForeignDb {
        name: "user_version 1 without our tables",
        sql: Some("CREATE TABLE photos (id INTEGER); PRAGMA user_version = 1"),
        expect: "schema version 1 but no `studies` table",
    },
    ForeignDb {
        name: "an application id",
        sql: Some("PRAGMA application_id = 1234"),
        expect: "application id is 1234",
    },
    ForeignDb {
        name: "a newer schema",
        sql: Some("CREATE TABLE studies (id INTEGER); PRAGMA user_version = 9"),
        expect: "version 9 is newer",
    },
    ForeignDb {
        name: "not SQLite",
        sql: None,
        expect: "not a SQLite database",
    },
];

#[test]
fn a_database_that_is_not_ours_is_refused_and_left_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let grid = write(
        &dir.path().join("grid.toml"),
        &grid_text("s", (4, 2), "learning_rate = [1e-3]"),
    );
    for (i, case) in FOREIGN_DBS.iter().enumerate() {
        let folder = dir.path().join(format!("case{i}"));
        std::fs::create_dir_all(&folder).unwrap();
        let db = folder.join("theirs.db");
        match case.sql {
            Some(sql) => rusqlite::Connection::open(&db)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            None => std::fs::write(&db, "my notes, not a database\n".repeat(100)).unwrap(),
        }
        let before = sha256_of(&db);
        for args in [
            &["run", grid.to_str().unwrap()][..],
            &["report"],
            &["status"],
        ] {
            let what = format!("{} ({})", case.name, args[0]);
            let line = refused(&gridsearch(&db, args), &what);
            assert!(
                line.starts_with(&format!("error: {}: ", db.display())),
                "{what}: {line}"
            );
            assert!(line.contains(case.expect), "{what}: {line}");
            assert_eq!(sha256_of(&db), before, "{what}: byte-identical");
        }
        let files = std::fs::read_dir(&folder).unwrap().count();
        assert_eq!(files, 1, "{}: no -wal or -shm file beside it", case.name);
    }
}

/// The header of a safetensors file as JSON, and the bytes after it.
fn safetensors_parts(path: &Path) -> (serde_json::Value, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + length]).unwrap();
    (header, bytes[8 + length..].to_vec())
}

fn write_safetensors(path: &Path, header: &serde_json::Value, data: &[u8]) {
    let mut text = serde_json::to_vec(header).unwrap();
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend(text);
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

fn edit_card(folder: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = folder.join("model.json");
    let mut card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut card);
    std::fs::write(&path, serde_json::to_string_pretty(&card).unwrap()).unwrap();
}

/// A tampered model folder: which file is broken, how, and what the error must say.
struct Tampered {
    name: &'static str,
    file: &'static str,
    tamper: fn(&Path),
    expect: &'static str,
}

fn tampered_models() -> Vec<Tampered> {
    vec![
        Tampered {
            name: "image_size 0 (panicked: divide by zero)",
            file: "model.json",
            tamper: |f| edit_card(f, |c| c["image_size"] = 0.into()),
            expect: "image_size 0 is out of range (32 to 1024",
        },
        Tampered {
            name: "image_size 2^32+64 (panicked: wrapped)",
            file: "model.json",
            tamper: |f| edit_card(f, |c| c["image_size"] = 4_294_967_360u64.into()),
            expect: "image_size 4294967360 is out of range",
        },
        Tampered {
            name: "image_size 20000 (grew past 15 GB)",
            file: "model.json",
            tamper: |f| edit_card(f, |c| c["image_size"] = 20_000.into()),
            expect: "image_size 20000 is out of range",
        },
        Tampered {
            name: "a label dropped from the card",
            file: "weights.safetensors",
            tamper: |f| edit_card(f, |c| c["labels"] = serde_json::json!(["boot", "shoe"])),
            expect: "has shape [1280, 3], the card's head needs [1280, 2]",
        },
        Tampered {
            name: "a head tensor of the wrong shape (failed in matmul)",
            file: "weights.safetensors",
            tamper: |f| {
                let path = f.join("weights.safetensors");
                let (mut header, data) = safetensors_parts(&path);
                let shape = &mut header["head.layers.0.weight"]["shape"];
                let reversed: Vec<serde_json::Value> =
                    shape.as_array().unwrap().iter().rev().cloned().collect();
                *shape = reversed.into();
                write_safetensors(&path, &header, &data);
            },
            expect:
                "tensor `head.layers.0.weight` has shape [3, 1280], the card's head needs [1280, 3]",
        },
        Tampered {
            name: "a stray tensor",
            file: "weights.safetensors",
            tamper: |f| {
                let path = f.join("weights.safetensors");
                let (mut header, mut data) = safetensors_parts(&path);
                let start = data.len();
                data.extend([0u8; 4]);
                header["tail.0000"] = serde_json::json!({
                    "dtype": "F32", "shape": [1], "data_offsets": [start, start + 4]
                });
                write_safetensors(&path, &header, &data);
            },
            expect: "tensor `tail.0000` is not part of the model the card describes",
        },
        Tampered {
            name: "one byte of the backbone changed",
            file: "backbone.safetensors",
            tamper: |f| {
                let path = f.join("backbone.safetensors");
                let mut bytes = std::fs::read(&path).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 1;
                std::fs::write(&path, bytes).unwrap();
            },
            expect: "differs from the",
        },
    ]
}

fn folder_digests(folder: &Path) -> Vec<(PathBuf, String)> {
    let mut digests: Vec<(PathBuf, String)> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let digest = sha256_of(&path);
            (path, digest)
        })
        .collect();
    digests.sort();
    digests
}

#[test]
fn a_tampered_model_folder_is_refused_when_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let models = run_and_export(dir.path(), &db, "one", (6, 3), "learning_rate = [0.003]");
    let exported = models.join("one");
    let photo = repo().join("data/footwear/boot/boot_0030.jpg");
    for (i, case) in tampered_models().iter().enumerate() {
        let folder = dir.path().join(format!("case{i}"));
        std::fs::create_dir_all(&folder).unwrap();
        for file in std::fs::read_dir(&exported).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, folder.join(file.file_name().unwrap())).unwrap();
        }
        (case.tamper)(&folder);
        let before = folder_digests(&folder);
        let out = gridsearch(
            &db,
            &[
                "predict",
                "--models",
                folder.to_str().unwrap(),
                photo.to_str().unwrap(),
            ],
        );
        let line = refused(&out, case.name);
        let named = folder.join(case.file);
        assert!(
            line.starts_with(&format!("error: {}: ", named.display())),
            "{}: names {}: {line}",
            case.name,
            case.file
        );
        assert!(line.contains(case.expect), "{}: {line}", case.name);
        assert_eq!(folder_digests(&folder), before, "{}: untouched", case.name);
    }
}

#[test]
fn names_from_the_database_stay_inside_the_output_folders_and_export_copies() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("a/b");
    let db = work.join("runs/gs.db");
    let models = run_and_export(&work, &db, "one", (6, 3), "learning_rate = [0.003]");
    // A database edited by someone else: the study's name is a path out of every folder.
    let hostile = "../../x";
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE studies SET name = ?1", [hostile])
        .unwrap();
    drop(conn);
    let checkpoints = work.join("runs/checkpoints");
    std::fs::rename(checkpoints.join("one"), checkpoints.join("_.._.._x")).unwrap();
    let out = work.join("out");
    ok(&gridsearch(
        &db,
        &["export", "--out", out.to_str().unwrap()],
    ));
    assert!(out.join("_.._.._x/model.json").is_file());
    let mut report = command(&db, &["report", "--html"]);
    report.current_dir(&work);
    ok(&report.output().unwrap());
    assert!(work.join("reports/_.._.._x.html").is_file());
    for outside in ["x", "a/x", "x.html", "a/x.html"] {
        assert!(!dir.path().join(outside).exists(), "{outside} written");
    }

    // The exported backbone is a copy: writing to it leaves the original weights as they were.
    let original = sha256_of(&weights());
    let copy = models.join("one/backbone.safetensors");
    assert_eq!(sha256_of(&copy), original);
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[100] ^= 1;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&copy)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
        .unwrap();
    assert_eq!(sha256_of(&weights()), original, "the original is unchanged");

    // Two names that become one folder: refused, nothing exported.
    let grid = write(
        &work.join("two.toml"),
        &grid_text("two", (6, 3), "learning_rate = [0.003]"),
    );
    ok(&gridsearch(&db, &["run", grid.to_str().unwrap()]));
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE studies SET name = '.._.._x' WHERE name = 'two'", [])
        .unwrap();
    drop(conn);
    let again = work.join("again");
    let refused = gridsearch(&db, &["export", "--out", again.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("would both export to"), "{stderr}");
    assert!(!again.join("_.._.._x").exists(), "{stderr}");
}

#[test]
fn a_fifo_named_like_a_photo_is_never_opened_by_predict_or_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/gs.db");
    let models = run_and_export(dir.path(), &db, "one", (6, 3), "learning_rate = [0.003]");
    let fifo = dir.path().join("fifo.jpg");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let photo = shipped_photos("boot").remove(0);
    let predict = command(
        &db,
        &[
            "predict",
            "--models",
            models.to_str().unwrap(),
            fifo.to_str().unwrap(),
            photo.to_str().unwrap(),
        ],
    );
    let out = output_within(predict, Duration::from_secs(60), "predict on a FIFO");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(fifo.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");

    // A manifest row naming the FIFO: refused before any work, naming the row.
    let csv = std::fs::read_to_string(repo().join("data/footwear/attributes.csv")).unwrap();
    let mut lines: Vec<String> = csv
        .lines()
        .map(|l| match l.split_once(',') {
            Some((path, rest)) if path != "path" => {
                format!(
                    "{},{rest}",
                    repo().join("data/footwear").join(path).display()
                )
            }
            _ => l.to_string(),
        })
        .collect();
    lines.insert(1, format!("{},boot,1,0,0,0,0,w", fifo.display()));
    let manifest = write(
        &dir.path().join("with_fifo.csv"),
        &(lines.join("\n") + "\n"),
    );
    let root = format!("root = \"{}\"", repo().join("data/footwear").display());
    let text = grid_text("fifo", (40, 10), "learning_rate = [0.003]").replace(
        &root,
        &format!("manifest = \"{}\"\nlabel = \"heel\"", manifest.display()),
    );
    let grid = write(&dir.path().join("fifo.toml"), &text);
    let run = command(&db, &["run", grid.to_str().unwrap()]);
    let out = output_within(
        run,
        Duration::from_secs(60),
        "run over a manifest naming a FIFO",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let row = format!(
        "{}:2: image {} is not a regular file",
        manifest.display(),
        fifo.display()
    );
    assert!(stderr.starts_with(&format!("error: {row}")), "{stderr}");
}
