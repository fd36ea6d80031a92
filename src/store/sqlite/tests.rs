//! The SQLite backend's own tests: its file checks, WAL, migrations from older files, and the
//! refusals that leave a file byte-identical. What both backends share is in `conformance`.

use super::errors::open_error;
use super::schema::{schema_version, SCHEMA_V1, SCHEMA_V2};
use super::Sqlite;
use crate::error::InputError;
use crate::store::backend::Backend;
use crate::store::conformance::{epoch, keys, spec};
use crate::store::Store;
use crate::trial::{Phase, TrainSettings, TrialSpec};
use rusqlite::Connection;
use std::path::Path;

/// A fresh SQLite database in a temporary folder with one study holding the given trial keys.
fn store_with_trials(dir: &tempfile::TempDir, keys: &[String]) -> (Sqlite, i64) {
    let mut store = Sqlite::open(&dir.path().join("sub/dir/gs.db")).unwrap();
    let study = store.ensure_study("s", "[grid]\n", "fp1").unwrap();
    let specs: Vec<TrialSpec> = keys.iter().map(|k| spec(k, 1e-3)).collect();
    store.add_trials(study.id, &specs).unwrap();
    (store, study.id)
}

fn input_error_message(error: anyhow::Error) -> String {
    error
        .downcast_ref::<InputError>()
        .unwrap_or_else(|| panic!("not an InputError: {error:#}"))
        .to_string()
}

#[test]
fn reopening_keeps_everything_at_schema_version_three_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, study_id) = store_with_trials(&dir, &keys(2));
    let lease = store.claim(study_id, &keys(1), "w").unwrap()[0].lease;
    let id = lease.trial_id;
    store
        .record_epoch(&lease, &epoch(Phase::Head, 1, 0.4))
        .unwrap();
    let trials = store.trials(study_id).unwrap();
    let path = store.path.clone();
    drop(store);

    for reopened in [
        Sqlite::open(&path).unwrap(),
        Sqlite::open_read_only(&path).unwrap(),
    ] {
        assert_eq!(reopened.trials(study_id).unwrap(), trials);
        assert_eq!(
            reopened.epochs(id).unwrap(),
            vec![epoch(Phase::Head, 1, 0.4)]
        );
        assert_eq!(schema_version(&reopened.conn).unwrap(), 3);
        let mode: String = reopened
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    let store = Sqlite::open(&path).unwrap();
    let foreign_keys: i64 = store
        .conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(foreign_keys, 1);
}

#[test]
fn a_version_one_database_migrates_and_keeps_its_trials() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(
            "INSERT INTO studies VALUES (1, 's', '', 'fp', '2024-01-01T00:00:00Z');
             INSERT INTO trials (id, study_id, trial_key, params_json, settings_json, state,
                 val_accuracy, best_val_accuracy, val_loss, epochs, seconds)
             VALUES (1, 1, 'k', '{}', '{\"learning_rate\":0.001,\"dropout\":0.0,
                 \"head_size\":0,\"unfreeze_depth\":0,\"batch_size\":32,\"head_epochs\":5,
                 \"finetune_epochs\":3,\"patience\":2,\"finetune_lr_factor\":0.1,
                 \"optimizer\":\"adam\",\"weight_decay\":0.0,\"seed\":0}',
                 'complete', 0.9, 0.95, 0.2, 1, 3.0);
             INSERT INTO epochs VALUES (1, 'head', 1, 0.5, 0.8, 0.2, 0.9, 3.0);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let refused = Store::open_read_only(&path).err().expect("old schema");
    assert!(input_error_message(refused).contains("older than 3"));

    let store = Sqlite::open(&path).unwrap();
    assert_eq!(schema_version(&store.conn).unwrap(), 3);
    let trials = store.trials(1).unwrap();
    assert_eq!(trials[0].settings, TrainSettings::default());
    let outcome = trials[0].outcome.clone().unwrap();
    assert_eq!(outcome.val_accuracy, 0.9);
    assert!(outcome.balanced_accuracy.is_nan() && outcome.f1.is_nan());
    assert!(outcome.best_objective.is_nan());
    let epochs = store.epochs(1).unwrap();
    assert_eq!(epochs[0].val_accuracy, 0.9);
    assert!(epochs[0].val_balanced_accuracy.is_nan() && epochs[0].val_f1.is_nan());
}

#[test]
fn a_version_two_database_migrates_to_three_and_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(SCHEMA_V2).unwrap();
        let settings = serde_json::to_string(&TrainSettings::default()).unwrap();
        conn.execute_batch(
            "INSERT INTO studies VALUES (1, 's', '[grid]', 'fp', '2024-01-01T00:00:00Z');",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO trials (id, study_id, trial_key, params_json, settings_json, state,
                 val_accuracy, best_val_accuracy, val_loss, epochs, seconds,
                 balanced_accuracy, f1, best_objective)
             VALUES (1, 1, 'k', '{\"learning_rate\":0.001}', ?1, 'complete',
                 0.75, 0.8, 0.4, 3, 2.5, 0.7, 0.6, 0.75),
                 (2, 1, 'p', '{}', ?1, 'pending',
                 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            [&settings],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO epochs VALUES (1, 'head', 1, 0.9, 0.6, 0.5, 0.7, 1.0, 0.65, 0.55);
             INSERT INTO epochs VALUES (1, 'head', 2, 0.7, 0.7, 0.4, 0.75, 1.0, 0.7, 0.6);
             INSERT INTO epochs VALUES (1, 'finetune', 1, 0.6, 0.8, 0.45, 0.7, 0.5, 0.6, 0.5);
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let refused = Store::open_read_only(&path).err().expect("old schema");
    assert!(input_error_message(refused).contains("version 2 is older than 3"));

    let store = Sqlite::open(&path).unwrap();
    assert_eq!(schema_version(&store.conn).unwrap(), 3);
    let trials = store.trials(1).unwrap();
    assert_eq!(trials.len(), 2);
    let outcome = trials[0].outcome.clone().unwrap();
    assert_eq!(
        outcome,
        crate::trial::TrialOutcome {
            val_accuracy: 0.75,
            best_val_accuracy: 0.8,
            val_loss: 0.4,
            balanced_accuracy: 0.7,
            f1: 0.6,
            best_objective: 0.75,
            epochs: 3,
            seconds: 2.5,
            folds: 1,
            objective_sd: None,
        }
    );
    assert!(trials[1].outcome.is_none());
    let epochs = store.epochs(1).unwrap();
    let read: Vec<(usize, Phase, usize, f64, f64, f64)> = epochs
        .iter()
        .map(|e| {
            (
                e.fold,
                e.phase,
                e.epoch,
                e.val_accuracy,
                e.val_f1,
                e.train_loss,
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            (0, Phase::Head, 1, 0.7, 0.55, 0.9),
            (0, Phase::Head, 2, 0.75, 0.6, 0.7),
            (0, Phase::Finetune, 1, 0.7, 0.5, 0.6),
        ]
    );
    assert_eq!(store.epochs_of_study(1).unwrap()[&1], epochs);
    let key: Vec<String> = store
        .conn
        .prepare("SELECT name FROM pragma_table_info('epochs') WHERE pk > 0 ORDER BY pk")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(key, ["trial_id", "fold", "phase", "epoch"]);
    drop(store);
    let reopened = Store::open_read_only(&path).unwrap();
    assert_eq!(reopened.epochs(1).unwrap(), epochs, "the migration is kept");
}

#[test]
fn a_text_file_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let text = b"these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let message = input_error_message(Store::open(&path).err().unwrap());
    assert!(message.starts_with(&format!("{}: not a SQLite database", path.display())));
    assert!(!message.contains('\n'));
    let message = input_error_message(Store::open_read_only(&path).err().unwrap());
    assert!(message.contains("not a SQLite database"));
    assert_eq!(std::fs::read(&path).unwrap(), text);
    let siblings = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(siblings, 1, "no -wal or -shm file was created");
}

#[test]
fn a_folder_and_a_missing_file_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let message = input_error_message(Store::open(dir.path()).err().unwrap());
    assert!(message.contains("is a folder"));
    let missing = dir.path().join("missing.db");
    let message = input_error_message(Store::open_read_only(&missing).err().unwrap());
    assert_eq!(
        message,
        format!(
            "{}: no such database (run `gridsearch run GRID` first)",
            missing.display()
        )
    );
    assert!(!missing.exists());
}

#[test]
fn newer_schema_and_foreign_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.db");
    Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 7)
        .unwrap();
    let message = input_error_message(Store::open(&newer).err().unwrap());
    assert!(message.contains("version 7 is newer"), "{message}");
    let message = input_error_message(Store::open_read_only(&newer).err().unwrap());
    assert!(message.contains("version 7 is newer"), "{message}");

    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE photos (id INTEGER)")
        .unwrap();
    let message = input_error_message(Store::open(&foreign).err().unwrap());
    assert!(message.contains("another program"), "{message}");
}

#[test]
fn read_only_failures_are_input_errors_naming_the_path() {
    let path = Path::new("/data/gs.db");
    let failure = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
        None,
    );
    let message = input_error_message(open_error(path, failure));
    assert!(message.starts_with("/data/gs.db: database is read-only"));
}

#[cfg(unix)]
#[test]
fn a_write_protected_file_is_refused_for_writing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_trials(&dir, &keys(1));
    let path = store.path.clone();
    drop(store);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let permissions_enforced = std::fs::OpenOptions::new().write(true).open(&path).is_err();
    if permissions_enforced {
        let message = input_error_message(Store::open(&path).err().unwrap());
        assert!(message.contains("read-only"), "{message}");
        assert!(message.contains(&path.display().to_string()));
    }
    assert_eq!(
        Store::open_read_only(&path)
            .unwrap()
            .studies()
            .unwrap()
            .len(),
        1
    );
}

fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn a_database_that_is_not_ours_is_refused_and_left_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "tables.db",
            "CREATE TABLE photos (id INTEGER)",
            "it has tables",
        ),
        ("minus.db", "PRAGMA user_version = -1", "user_version is -1"),
        (
            "v1.db",
            "CREATE TABLE photos (id INTEGER); PRAGMA user_version = 1",
            "no `studies` table",
        ),
        ("app.db", "PRAGMA application_id = 7", "application id is 7"),
        ("newer.db", "PRAGMA user_version = 4", "version 4 is newer"),
    ];
    for (name, sql, expected) in cases {
        let path = dir.path().join(name);
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        let before = sha256_of(&path);
        for refused in [Store::open(&path), Store::open_read_only(&path)] {
            let message = input_error_message(refused.err().expect(name));
            assert!(
                message.starts_with(&path.display().to_string()),
                "{message}"
            );
            assert!(message.contains(expected), "{name}: {message}");
        }
        assert_eq!(sha256_of(&path), before, "{name} is byte-identical");
    }
    let siblings = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(siblings, cases.len(), "no -wal or -shm file was left");
}
