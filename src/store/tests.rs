//! Unit tests of the store: round trips, state moves, recovery, migrations, refusals, concurrency.

use super::errors::open_error;
use super::schema::{schema_version, SCHEMA_V1};
use super::{Recovered, Store};
use crate::error::InputError;
use crate::trial::{
    EpochMetrics, Optimizer, ParamValue, Phase, TrainSettings, TrialOutcome, TrialSpec, TrialState,
};
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

fn spec(key: &str, learning_rate: f64) -> TrialSpec {
    let mut params = BTreeMap::new();
    params.insert(
        "learning_rate".to_string(),
        ParamValue::Float(learning_rate),
    );
    params.insert("head_size".to_string(), ParamValue::Int(64));
    params.insert("optimizer".to_string(), ParamValue::Str("sgd".into()));
    params.insert("augment".to_string(), ParamValue::Bool(true));
    let settings = TrainSettings {
        learning_rate,
        head_size: 64,
        optimizer: Optimizer::Sgd,
        ..TrainSettings::default()
    };
    TrialSpec {
        key: key.to_string(),
        params,
        settings,
    }
}

fn epoch(phase: Phase, epoch: usize, val_accuracy: f64) -> EpochMetrics {
    EpochMetrics {
        phase,
        epoch,
        train_loss: 1.0 / epoch as f64,
        train_accuracy: 0.5,
        val_loss: 0.75,
        val_accuracy,
        val_balanced_accuracy: val_accuracy - 0.1,
        val_f1: val_accuracy / 2.0,
        seconds: 2.5,
    }
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("k{i:03}")).collect()
}

/// A fresh store in a temporary folder with one study holding the given trial keys.
fn store_with_trials(dir: &tempfile::TempDir, keys: &[String]) -> (Store, i64) {
    let mut store = Store::open(&dir.path().join("sub/dir/gs.db")).unwrap();
    let study = store.ensure_study("s", "[grid]\n", "fp1").unwrap();
    let specs: Vec<TrialSpec> = keys.iter().map(|k| spec(k, 1e-3)).collect();
    store.add_trials(study.id, &specs).unwrap();
    (store, study.id)
}

fn state_of(store: &Store, study_id: i64, key: &str) -> TrialState {
    let trials = store.trials(study_id).unwrap();
    trials.iter().find(|t| t.key == key).unwrap().state
}

fn input_error_message(error: anyhow::Error) -> String {
    error
        .downcast_ref::<InputError>()
        .unwrap_or_else(|| panic!("not an InputError: {error:#}"))
        .to_string()
}

#[test]
fn round_trip_of_study_trials_epochs_outcome_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("gs.db")).unwrap();
    let study = store
        .ensure_study("flowers", "[train]\nx = 1\n", "fp")
        .unwrap();
    assert_eq!(study.name, "flowers");
    assert_eq!(study.grid_toml, "[train]\nx = 1\n");
    assert!(study.created_at.ends_with('Z') && study.created_at.contains('T'));
    // An awkward float that the default serde_json parser reads back 1 ULP off.
    let awkward = 4.390_000_732_824_144_4e-5;
    let specs = vec![spec("a", awkward), spec("b", 0.1 + 0.2)];
    assert_eq!(store.add_trials(study.id, &specs).unwrap(), 2);

    let claimed = store
        .claim(study.id, &["a".into(), "b".into()], "w1")
        .unwrap();
    let (a, b) = (claimed[0].id, claimed[1].id);
    store
        .record_epoch(a, &epoch(Phase::Finetune, 1, 0.8))
        .unwrap();
    store.record_epoch(a, &epoch(Phase::Head, 2, 0.7)).unwrap();
    store.record_epoch(a, &epoch(Phase::Head, 1, 0.6)).unwrap();
    let mut diverged = epoch(Phase::Head, 1, 0.1);
    diverged.train_loss = f64::NAN;
    store.record_epoch(b, &diverged).unwrap();
    let outcome = TrialOutcome {
        val_accuracy: 0.8,
        best_val_accuracy: 0.81,
        val_loss: 0.3,
        balanced_accuracy: 0.7,
        f1: 0.45,
        best_objective: 0.81,
        epochs: 3,
        seconds: 12.5,
    };
    store.complete_trial(a, &outcome).unwrap();
    store.fail_trial(b, "out of memory").unwrap();

    let trials = store.trials(study.id).unwrap();
    assert_eq!(trials.len(), 2);
    assert_eq!(trials[0].key, "a");
    assert_eq!(trials[0].params, specs[0].params);
    assert_eq!(trials[0].settings, specs[0].settings);
    assert_eq!(trials[0].state, TrialState::Complete);
    assert_eq!(trials[0].outcome, Some(outcome));
    assert_eq!(trials[0].error, None);
    assert!(trials[0].started_at.is_some() && trials[0].finished_at.is_some());
    assert_eq!(trials[1].settings, specs[1].settings);
    assert_eq!(trials[1].state, TrialState::Failed);
    assert_eq!(trials[1].outcome, None);
    assert_eq!(trials[1].error.as_deref(), Some("out of memory"));

    let epochs = store.epochs(a).unwrap();
    let order: Vec<(Phase, usize)> = epochs.iter().map(|e| (e.phase, e.epoch)).collect();
    assert_eq!(
        order,
        vec![(Phase::Head, 1), (Phase::Head, 2), (Phase::Finetune, 1)]
    );
    assert_eq!(epochs[1], epoch(Phase::Head, 2, 0.7));
    let of_study = store.epochs_of_study(study.id).unwrap();
    assert_eq!(of_study.len(), 2);
    assert_eq!(of_study[&a], epochs);
    assert!(of_study[&b][0].train_loss.is_nan());
    assert_eq!(of_study[&b][0].val_accuracy, 0.1);
}

#[test]
fn record_epoch_replaces_the_same_phase_and_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, study_id) = store_with_trials(&dir, &keys(1));
    let id = store.trials(study_id).unwrap()[0].id;
    store.record_epoch(id, &epoch(Phase::Head, 1, 0.2)).unwrap();
    store.record_epoch(id, &epoch(Phase::Head, 1, 0.9)).unwrap();
    assert_eq!(store.epochs(id).unwrap(), vec![epoch(Phase::Head, 1, 0.9)]);
}

#[test]
fn ensure_study_returns_the_existing_study_with_the_latest_grid() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("gs.db")).unwrap();
    let first = store.ensure_study("one", "old", "fp-old").unwrap();
    let second = store.ensure_study("two", "g2", "fp2").unwrap();
    let again = store.ensure_study("one", "new", "fp-new").unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(again.created_at, first.created_at);
    assert_eq!(again.grid_toml, "new");
    assert_eq!(store.study("one").unwrap(), Some(again.clone()));
    assert_eq!(store.study("three").unwrap(), None);
    assert_eq!(
        store.study_fingerprint(first.id).unwrap().as_deref(),
        Some("fp-old")
    );
    assert_eq!(store.studies().unwrap(), vec![again, second.clone()]);
    assert_eq!(store.latest_study().unwrap(), Some(second));
}

#[test]
fn add_trials_twice_adds_only_new_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, study_id) = store_with_trials(&dir, &keys(3));
    let same: Vec<TrialSpec> = keys(3).iter().map(|k| spec(k, 1e-3)).collect();
    assert_eq!(store.add_trials(study_id, &same).unwrap(), 0);
    let grown: Vec<TrialSpec> = keys(4).iter().map(|k| spec(k, 1e-3)).collect();
    assert_eq!(store.add_trials(study_id, &grown).unwrap(), 1);
    assert_eq!(store.trials(study_id).unwrap().len(), 4);
}

#[test]
fn claim_takes_only_pending_trials_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, study_id) = store_with_trials(&dir, &keys(3));
    let first = store.claim(study_id, &keys(2), "w1").unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|t| t.state == TrialState::Running));
    assert!(store.claim(study_id, &keys(2), "w2").unwrap().is_empty());
    let rest = store.claim(study_id, &keys(3), "w2").unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].key, "k002");
    let unknown = store.claim(study_id, &["nope".to_string()], "w2").unwrap();
    assert!(unknown.is_empty());
}

#[test]
fn complete_fail_and_release_move_states() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, study_id) = store_with_trials(&dir, &keys(3));
    let claimed = store.claim(study_id, &keys(3), "w").unwrap();
    let ids: Vec<i64> = claimed.iter().map(|t| t.id).collect();
    let outcome = TrialOutcome {
        val_accuracy: 0.5,
        best_val_accuracy: 0.5,
        val_loss: 1.0,
        balanced_accuracy: 0.5,
        f1: 0.25,
        best_objective: 0.5,
        epochs: 1,
        seconds: 1.0,
    };
    store.complete_trial(ids[0], &outcome).unwrap();
    store.fail_trial(ids[1], "boom").unwrap();
    store
        .record_epoch(ids[2], &epoch(Phase::Head, 1, 0.3))
        .unwrap();
    store.release(&ids).unwrap();
    assert_eq!(state_of(&store, study_id, "k000"), TrialState::Complete);
    assert_eq!(state_of(&store, study_id, "k001"), TrialState::Failed);
    assert_eq!(state_of(&store, study_id, "k002"), TrialState::Pending);
    assert!(store.epochs(ids[2]).unwrap().is_empty());
    let again = store.claim(study_id, &keys(3), "w").unwrap();
    assert_eq!(again.len(), 1);
    let attempts: i64 = store
        .conn
        .query_row("SELECT attempts FROM trials WHERE id = ?1", [ids[2]], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(attempts, 2);
    assert!(store.complete_trial(9999, &outcome).is_err());
}

#[test]
fn recover_abandoned_requeues_stale_or_dead_and_fails_repeat_offenders() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, study_id) = store_with_trials(&dir, &keys(3));
    let claimed = store.claim(study_id, &keys(2), "alive").unwrap();
    store.heartbeat(&[claimed[0].id, claimed[1].id]).unwrap();
    store
        .record_epoch(claimed[0].id, &epoch(Phase::Head, 1, 0.3))
        .unwrap();
    let hour = Duration::from_secs(3600);
    let nobody_dead = |_: &str| false;
    let none = store
        .recover_abandoned(study_id, hour, 3, &nobody_dead)
        .unwrap();
    assert_eq!(none, Recovered::default());
    assert_eq!(state_of(&store, study_id, "k000"), TrialState::Running);
    // A dead worker is recovered at once, whatever its heartbeat.
    let all_dead = |w: &str| w == "alive";
    let back = store
        .recover_abandoned(study_id, hour, 3, &all_dead)
        .unwrap();
    assert_eq!(
        back,
        Recovered {
            requeued: 2,
            failed: 0
        }
    );
    for key in keys(3) {
        assert_eq!(state_of(&store, study_id, &key), TrialState::Pending);
    }
    assert!(store.epochs(claimed[0].id).unwrap().is_empty());
    // Claimed a second time and abandoned again: with max_attempts 2 it fails for good.
    store.claim(study_id, &keys(1), "w2").unwrap();
    let stale = store
        .recover_abandoned(study_id, Duration::ZERO, 2, &nobody_dead)
        .unwrap();
    assert_eq!(
        stale,
        Recovered {
            requeued: 0,
            failed: 1
        }
    );
    assert_eq!(state_of(&store, study_id, "k000"), TrialState::Failed);
    let failed = &store.trials(study_id).unwrap()[0];
    assert!(
        failed.error.as_deref().unwrap().contains("died 2 times"),
        "{failed:?}"
    );
}

#[test]
fn reopening_keeps_everything_at_schema_version_two_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, study_id) = store_with_trials(&dir, &keys(2));
    let id = store.claim(study_id, &keys(1), "w").unwrap()[0].id;
    store.record_epoch(id, &epoch(Phase::Head, 1, 0.4)).unwrap();
    let trials = store.trials(study_id).unwrap();
    let path = store.path().to_path_buf();
    drop(store);

    for reopened in [
        Store::open(&path).unwrap(),
        Store::open_read_only(&path).unwrap(),
    ] {
        assert_eq!(reopened.trials(study_id).unwrap(), trials);
        assert_eq!(
            reopened.epochs(id).unwrap(),
            vec![epoch(Phase::Head, 1, 0.4)]
        );
        assert_eq!(schema_version(&reopened.conn).unwrap(), 2);
        let mode: String = reopened
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    let store = Store::open(&path).unwrap();
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
    assert!(input_error_message(refused).contains("older than 2"));

    let store = Store::open(&path).unwrap();
    assert_eq!(schema_version(&store.conn).unwrap(), 2);
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
    let path = store.path().to_path_buf();
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

#[test]
fn two_handles_claiming_the_same_keys_concurrently_take_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let all = keys(50);
    let (store, study_id) = store_with_trials(&dir, &all);
    let path = store.path().to_path_buf();
    drop(store);
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = ["w1", "w2"]
        .into_iter()
        .enumerate()
        .map(|(n, worker)| {
            let (path, barrier, mut order) = (path.clone(), barrier.clone(), all.clone());
            if n == 1 {
                order.reverse();
            }
            std::thread::spawn(move || -> anyhow::Result<Vec<String>> {
                let mut store = Store::open(&path)?;
                barrier.wait();
                let mut taken = Vec::new();
                for key in order {
                    for trial in store.claim(study_id, &[key], worker)? {
                        store.heartbeat(&[trial.id])?;
                        taken.push(trial.key);
                    }
                }
                Ok(taken)
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.join().unwrap().unwrap());
    }
    assert_eq!(claimed.len(), 50, "every key claimed exactly once");
    let distinct: BTreeSet<String> = claimed.into_iter().collect();
    assert_eq!(distinct, all.into_iter().collect::<BTreeSet<_>>());
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
        ("newer.db", "PRAGMA user_version = 3", "version 3 is newer"),
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
