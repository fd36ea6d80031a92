//! The on-disk activation cache: reuse across runs, grids and processes, results bit for bit
//! equal to the uncached pass, damaged and foreign files recomputed, the lock, eviction, and a
//! folder that cannot be written. Real binary, real photos, real files.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// 2 trials (head only, and fine-tuning 1 block): the pooled features and one boundary.
const AXES: &str = "learning_rate = [1e-3]\nunfreeze_depth = [0, 1]";
/// 8 + 4 photos per class.
const PER_CLASS: (usize, usize) = (8, 4);
const IMAGES: usize = 36;

/// Every stored number of every trial and epoch, as exact bits, by trial key: two runs that
/// trained alike give equal values.
fn stored_numbers(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT t.trial_key, t.val_loss, t.val_accuracy, e.phase, e.epoch, e.train_loss, \
             e.train_accuracy, e.val_loss, e.val_accuracy, e.val_f1 \
             FROM trials t JOIN epochs e ON e.trial_id = t.id ORDER BY t.trial_key, e.phase, e.epoch",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let mut line: String = r.get(0)?;
            for i in 1..10 {
                let value: rusqlite::types::Value = r.get(i)?;
                line.push_str(&match value {
                    rusqlite::types::Value::Real(v) => format!(" {:016x}", v.to_bits()),
                    other => format!(" {other:?}"),
                });
            }
            Ok(line)
        })
        .unwrap();
    let rows: Vec<String> = rows.map(Result::unwrap).collect();
    assert!(!rows.is_empty(), "{} holds trained epochs", db.display());
    rows
}

/// The (images, from the cache) of each `backbone pass:` line of a run's stderr.
fn passes(out: &Output) -> Vec<(usize, usize)> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("backbone pass: "))
        .map(|l| {
            let images = l.split(' ').next().unwrap().parse().unwrap();
            let cached = l.split(" (").nth(1).unwrap().split(' ').next().unwrap();
            (images, cached.parse().unwrap())
        })
        .collect()
}

fn cache_warnings(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("warning: cache: "))
        .map(str::to_string)
        .collect()
}

/// `gridsearch --db DB ARGS`, not quiet: its `backbone pass:` lines are read.
fn talking(db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridsearch"));
    cmd.arg("--db").arg(db).args(args);
    cmd
}

/// Run `grid` into `db` with `extra` arguments; it must succeed.
fn run(db: &Path, grid: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", grid.to_str().unwrap()];
    args.extend(extra);
    let out = talking(db, &args).output().unwrap();
    ok(&out);
    out
}

/// The segment files of the one pass folder under `cache`.
fn segments(cache: &Path) -> Vec<PathBuf> {
    let folders: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 1, "one pass: {folders:?}");
    files_with_extension(&folders[0], "safetensors")
}

#[test]
fn reruns_new_axis_values_and_other_databases_read_the_cache_and_train_bit_for_bit_alike() {
    let dir = tempfile::tempdir().unwrap();
    let grid = write(&dir.path().join("c.toml"), &grid_text("c", PER_CLASS, AXES));
    let cache = dir.path().join("cache");
    let first = dir.path().join("first.db");
    assert_eq!(passes(&run(&first, &grid, &[])), [(IMAGES, 0)]);
    assert_eq!(segments(&cache).len(), 2, "pooled + block 15's input");
    let expected = stored_numbers(&first);

    // Another database, the same cache: no backbone work, the same numbers.
    let second = dir.path().join("second.db");
    let out = run(&second, &grid, &["--cache-dir", cache.to_str().unwrap()]);
    assert_eq!(passes(&out), [(IMAGES, IMAGES)]);
    assert_eq!(stored_numbers(&second), expected);
    // Without the cache at all: the same numbers again.
    let uncached = dir.path().join("uncached.db");
    let out = run(&uncached, &grid, &["--no-cache"]);
    assert_eq!(passes(&out), [(IMAGES, 0)]);
    assert_eq!(stored_numbers(&uncached), expected);

    // The same grid with one more learning rate: its new trials read the cache.
    let wider = write(
        &dir.path().join("c.toml"),
        &grid_text("c", PER_CLASS, &AXES.replace("[1e-3]", "[1e-3, 3e-3]")),
    );
    assert_eq!(passes(&run(&first, &wider, &[])), [(IMAGES, IMAGES)]);
    assert_eq!(segments(&cache).len(), 2, "nothing added");

    // More photos: only the new ones are computed, into one more segment per recording.
    let more = write(
        &dir.path().join("more.toml"),
        &grid_text("more", (10, 4), AXES),
    );
    let (images, cached) = passes(&run(&first, &more, &[]))[0];
    assert!(
        cached >= IMAGES - 6 && cached < images,
        "{cached} of {images} cached"
    );
    assert_eq!(segments(&cache).len(), 4);
    let again = run(&dir.path().join("again.db"), &more, &[]);
    assert_eq!(passes(&again), [(images, images)]);
}

#[test]
fn damaged_foreign_and_half_written_files_are_recomputed_with_one_warning_each() {
    let dir = tempfile::tempdir().unwrap();
    let grid = write(&dir.path().join("d.toml"), &grid_text("d", PER_CLASS, AXES));
    let cache = dir.path().join("cache");
    let first = dir.path().join("first.db");
    run(&first, &grid, &[]);
    let expected = stored_numbers(&first);
    let files = segments(&cache);
    let folder = files[0].parent().unwrap().to_path_buf();
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();

    type Spoil = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let cases: [(&str, Spoil, &str); 3] = [
        (
            "truncated",
            Box::new(|b| b[..b.len() - 100].to_vec()),
            "damaged",
        ),
        (
            "one bit flipped in a row",
            Box::new(|b| {
                let mut b = b.to_vec();
                b[5000] ^= 0x10;
                b
            }),
            "CRC-32",
        ),
        (
            "another format version",
            Box::new(|b| {
                let format = b"gridsearch-activations-1";
                let at = b.windows(format.len()).position(|w| w == format).unwrap();
                let mut b = b.to_vec();
                b[at + format.len() - 1] = b'9';
                b
            }),
            "written by another version",
        ),
    ];
    for (i, (case, spoil, says)) in cases.iter().enumerate() {
        // The first run's files, one of them spoilt, and a half-written file of a killed run.
        for file in segments(&cache) {
            std::fs::remove_file(file).unwrap();
        }
        for (file, original) in files.iter().zip(&bytes) {
            std::fs::write(file, original).unwrap();
        }
        std::fs::write(&files[i % 2], spoil(&bytes[i % 2])).unwrap();
        let partial = folder.join(".pooled.1-1.safetensors.partial");
        std::fs::write(&partial, b"half").unwrap();
        let db = dir.path().join(format!("case{i}.db"));
        let out = run(&db, &grid, &[]);
        let warnings = cache_warnings(&out);
        assert_eq!(warnings.len(), 1, "{case}: {warnings:?}");
        assert!(
            warnings[0].contains(says) && warnings[0].contains("computed again"),
            "{case}: {}",
            warnings[0]
        );
        assert_eq!(passes(&out), [(IMAGES, 0)], "{case}: recomputed");
        assert_eq!(stored_numbers(&db), expected, "{case}: the same numbers");
        assert!(!partial.exists(), "{case}: the half-written file is gone");
        // The spoilt file was replaced: the next run reads everything.
        let again = run(&dir.path().join(format!("again{i}.db")), &grid, &[]);
        assert_eq!(passes(&again), [(IMAGES, IMAGES)], "{case}");
        assert!(cache_warnings(&again).is_empty(), "{case}");
        assert_eq!(
            segments(&cache).len(),
            2,
            "{case}: the spoilt file replaced"
        );
    }
}

#[test]
fn a_second_process_waits_for_the_first_and_reads_what_it_computed() {
    let dir = tempfile::tempdir().unwrap();
    let grid = write(&dir.path().join("l.toml"), &grid_text("l", (40, 8), AXES));
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap().to_string();
    let start = |name: &str| {
        let db = dir.path().join(name);
        talking(
            &db,
            &["run", grid.to_str().unwrap(), "--cache-dir", &cache_arg],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (start("a.db"), start("b.db"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (a_pass, b_pass) = (passes(&ok_output(a)), passes(&ok_output(b)));
    let mut both = [a_pass[0], b_pass[0]];
    both.sort();
    assert_eq!(
        both,
        [(144, 0), (144, 144)],
        "one computed, the other waited and read"
    );
    assert_eq!(
        segments(&cache).len(),
        2,
        "one segment per recording, not two"
    );
    assert_eq!(
        stored_numbers(&dir.path().join("a.db")),
        stored_numbers(&dir.path().join("b.db"))
    );
}

fn ok_output(out: Output) -> Output {
    ok(&out);
    out
}

#[test]
fn cache_lists_entries_and_evicts_the_least_recently_used_but_never_one_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gs.db");
    let small = write(&dir.path().join("s.toml"), &grid_text("s", PER_CLASS, AXES));
    run(&db, &small, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let larger = write(
        &dir.path().join("m.toml"),
        &grid_text("m", PER_CLASS, AXES).replace("image_size = 64", "image_size = 96"),
    );
    run(&db, &larger, &[]);
    let listing = ok(&gridsearch(&db, &["cache"]));
    let rows: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains("px-pixels"))
        .collect();
    assert_eq!(rows.len(), 4, "{listing}");
    assert!(
        rows[0].contains("96px") && rows[3].contains("64px"),
        "newest first: {listing}"
    );
    for row in &rows {
        assert!(row.contains(&format!(" {IMAGES} ")), "{row}");
    }
    assert!(listing.contains("4 entries"), "{listing}");

    // Keep about the 96 px pass only (it is the larger): the 64 px entries go.
    let sizes = |px: &str| -> u64 {
        let folder = std::fs::read_dir(dir.path().join("cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_str().unwrap().contains(px))
            .unwrap();
        std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    let keep = sizes("96px");
    let out = ok(&gridsearch(
        &db,
        &["cache", "--max-size", &keep.to_string()],
    ));
    assert!(out.starts_with("removed 2 entries"), "{out}");
    let listing = ok(&gridsearch(&db, &["cache"]));
    assert!(
        !listing.contains("64px") && listing.contains("96px"),
        "{listing}"
    );

    // While a run has the 96 px pass mapped, --clear leaves it.
    let slow = write(
        &dir.path().join("slow.toml"),
        &grid_text(
            "slow",
            PER_CLASS,
            "learning_rate = [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4]\nunfreeze_depth = [1]",
        )
        .replace("image_size = 64", "image_size = 96")
        .replace("finetune_epochs = 2", "finetune_epochs = 40"),
    );
    let stderr_path = dir.path().join("slow.stderr");
    let mut child = talking(
        &dir.path().join("slow.db"),
        &[
            "run",
            slow.to_str().unwrap(),
            "--cache-dir",
            dir.path().join("cache").to_str().unwrap(),
        ],
    )
    .stderr(std::fs::File::create(&stderr_path).unwrap())
    .spawn()
    .unwrap();
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&stderr_path)
        .unwrap()
        .contains("backbone pass:")
    {
        assert!(started.elapsed().as_secs() < 60, "the run reached training");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let cleared = gridsearch(&db, &["cache", "--clear"]);
    let still_running = child.try_wait().unwrap().is_none();
    assert!(still_running, "the run was still training during --clear");
    let said = ok(&cleared);
    assert!(said.starts_with("removed 0 entries"), "{said}");
    assert!(String::from_utf8_lossy(&cleared.stderr).contains("in use"));
    child.kill().unwrap();
    child.wait().unwrap();
    let said = ok(&gridsearch(&db, &["cache", "--clear"]));
    assert!(said.starts_with("removed 2 entries"), "{said}");
    assert!(std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .next()
        .is_none());

    let bad = gridsearch(&db, &["cache", "--max-size", "lots"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a size"));
}

/// `gridsearch ARGS` with `prepare` (a shell snippet, e.g. a mount) run first in its own mount
/// namespace; None when this machine does not allow one.
fn in_mount_namespace(db: &Path, prepare: &str, args: &[&str]) -> Option<Output> {
    let allowed = Command::new("unshare").args(["-m", "true"]).status();
    if !allowed.is_ok_and(|s| s.success()) {
        eprintln!(
            "SKIPPED: `unshare -m` is not allowed here: no read-only or full cache folder test"
        );
        return None;
    }
    let binary = env!("CARGO_BIN_EXE_gridsearch");
    let mut script = format!("{prepare} && exec {binary} --db {}", db.display());
    for a in args {
        script.push_str(&format!(" '{a}'"));
    }
    Some(
        Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .output()
            .unwrap(),
    )
}

#[test]
fn a_cache_folder_that_cannot_be_written_means_one_warning_and_a_run_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let grid = write(&dir.path().join("w.toml"), &grid_text("w", PER_CLASS, AXES));
    let expected = {
        let db = dir.path().join("expected.db");
        run(&db, &grid, &["--no-cache"]);
        stored_numbers(&db)
    };
    let grid_arg = grid.to_str().unwrap();
    // A file where the folder should be.
    let file = write(&dir.path().join("not-a-folder"), "x");
    let db = dir.path().join("file.db");
    let out = run(&db, &grid, &["--cache-dir", file.to_str().unwrap()]);
    let warnings = cache_warnings(&out);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("going on without caching"),
        "{}",
        warnings[0]
    );
    assert_eq!(stored_numbers(&db), expected);

    // A read-only folder holding everything: read; holding nothing: a warning, no cache.
    let cache = dir.path().join("ro");
    run(
        &dir.path().join("fill.db"),
        &grid,
        &["--cache-dir", cache.to_str().unwrap()],
    );
    let c = cache.display();
    let read_only = format!("mount --bind {c} {c} && mount -o remount,bind,ro {c}");
    let db = dir.path().join("ro.db");
    let args = ["run", grid_arg, "--cache-dir", cache.to_str().unwrap()];
    let Some(out) = in_mount_namespace(&db, &read_only, &args) else {
        return;
    };
    ok(&out);
    assert_eq!(passes(&out), [(IMAGES, IMAGES)]);
    assert!(
        cache_warnings(&out).is_empty(),
        "{:?}",
        cache_warnings(&out)
    );
    assert_eq!(stored_numbers(&db), expected);
    let empty = dir.path().join("ro-empty");
    std::fs::create_dir(&empty).unwrap();
    let e = empty.display();
    let db = dir.path().join("ro-empty.db");
    let args = ["run", grid_arg, "--cache-dir", empty.to_str().unwrap()];
    let read_only = format!("mount --bind {e} {e} && mount -o remount,bind,ro {e}");
    let out = in_mount_namespace(&db, &read_only, &args).unwrap();
    ok(&out);
    let warnings = cache_warnings(&out);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("Read-only file system") && warnings[0].contains("without caching"),
        "{}",
        warnings[0]
    );
    assert_eq!(stored_numbers(&db), expected);

    // A full disk: the first rows fit, the rest do not.
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    let f = full.display();
    let db = dir.path().join("full.db");
    let args = ["run", grid_arg, "--cache-dir", full.to_str().unwrap()];
    let small_disk = format!("mount -t tmpfs -o size=256k tmpfs {f}");
    let out = in_mount_namespace(&db, &small_disk, &args).unwrap();
    ok(&out);
    let warnings = cache_warnings(&out);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("No space left on device"),
        "{}",
        warnings[0]
    );
    assert_eq!(passes(&out), [(IMAGES, 0)]);
    assert_eq!(stored_numbers(&db), expected);
}
