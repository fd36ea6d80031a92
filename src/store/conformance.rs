//! The conformance suite: every store operation's meaning, checked against each backend
//! (SQLite always; PostgreSQL when GRIDSEARCH_TEST_PG_URL names a server, which CI must give).

use super::{Claimed, LeaseLost, Recovered, Store};
use crate::trial::{
    EpochMetrics, Optimizer, ParamValue, Phase, TrainSettings, TrialOutcome, TrialSpec, TrialState,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// The variable naming a PostgreSQL server (a URL whose user may create schemas) for the tests.
pub(super) const PG_URL_VARIABLE: &str = "GRIDSEARCH_TEST_PG_URL";

/// One empty database of one backend, for one test; dropped with the test.
pub(super) struct Fixture {
    pub(super) name: &'static str,
    pub(super) db: PathBuf,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
}

impl Fixture {
    pub(super) fn open(&self) -> Store {
        Store::open(&self.db).unwrap_or_else(|e| panic!("{}: {e:#}", self.name))
    }

    /// A handle whose claims are abandoned as soon as they are made: PostgreSQL leases that
    /// expire at once (SQLite: the stale age given to `recover_abandoned` decides).
    fn open_expiring(&self) -> Store {
        match self.schema {
            Some(_) => Store::open_with_lease(&self.db, Duration::ZERO).unwrap(),
            None => self.open(),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some((url, schema)) = &self.schema {
            if let Ok(mut client) = postgres::Client::connect(url, postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
            }
        }
    }
}

/// The PostgreSQL server for the tests, if any; under CI a missing one fails the test.
pub(super) fn postgres_url() -> Option<String> {
    match std::env::var(PG_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but {PG_URL_VARIABLE} is not set: the PostgreSQL backend must be tested"
            )
        }
        _ => {
            eprintln!("SKIPPING the PostgreSQL backend: {PG_URL_VARIABLE} is not set");
            None
        }
    }
}

/// A fresh PostgreSQL database for one test: a schema of its own on the test server.
pub(super) fn postgres_fixture(url: &str) -> Fixture {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let schema = format!(
        "gs_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("{PG_URL_VARIABLE}: {e}"));
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    Fixture {
        name: "postgres",
        db: PathBuf::from(format!("{url}{separator}options=-csearch_path%3D{schema}")),
        _dir: None,
        schema: Some((url.to_string(), schema)),
    }
}

/// An empty database of each backend under test.
fn fixtures() -> Vec<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![Fixture {
        name: "sqlite",
        db: dir.path().join("sub/dir/gs.db"),
        _dir: Some(dir),
        schema: None,
    }];
    all.extend(postgres_url().map(|url| postgres_fixture(&url)));
    all
}

pub(super) fn spec(key: &str, learning_rate: f64) -> TrialSpec {
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

pub(super) fn epoch(phase: Phase, epoch: usize, val_accuracy: f64) -> EpochMetrics {
    EpochMetrics {
        fold: 0,
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

pub(super) fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("k{i:03}")).collect()
}

fn outcome(val_accuracy: f64) -> TrialOutcome {
    TrialOutcome {
        val_accuracy,
        best_val_accuracy: val_accuracy,
        val_loss: 1.0,
        balanced_accuracy: val_accuracy,
        f1: val_accuracy / 2.0,
        best_objective: val_accuracy,
        epochs: 1,
        seconds: 1.0,
        ..TrialOutcome::default()
    }
}

/// One study holding the given trial keys, in a fresh handle on `fixture`.
pub(super) fn store_with_trials(fixture: &Fixture, keys: &[String]) -> (Store, i64) {
    let mut store = fixture.open();
    let study = store.ensure_study("s", "[grid]\n", "fp1").unwrap();
    let specs: Vec<TrialSpec> = keys.iter().map(|k| spec(k, 1e-3)).collect();
    store.add_trials(study.id, &specs).unwrap();
    (store, study.id)
}

fn state_of(store: &Store, study_id: i64, key: &str) -> TrialState {
    let trials = store.trials(study_id).unwrap();
    trials.iter().find(|t| t.key == key).unwrap().state
}

fn is_lease_lost(result: anyhow::Result<()>) -> bool {
    matches!(result, Err(e) if e.downcast_ref::<LeaseLost>().is_some())
}

#[test]
fn round_trip_of_study_trials_epochs_outcome_and_error() {
    for f in fixtures() {
        let mut store = f.open();
        let study = store
            .ensure_study("flowers", "[train]\nx = 1\n", "fp")
            .unwrap();
        assert_eq!(study.name, "flowers");
        assert_eq!(study.grid_toml, "[train]\nx = 1\n");
        assert!(study.created_at.ends_with('Z') && study.created_at.contains('T'));
        // An awkward float that the default serde_json parser reads back 1 ULP off.
        let awkward = 4.390_000_732_824_144_4e-5;
        let specs = vec![spec("a", awkward), spec("b", 0.1 + 0.2)];
        assert_eq!(store.add_trials(study.id, &specs).unwrap(), 2, "{}", f.name);

        let claimed = store
            .claim(study.id, &["a".into(), "b".into()], "w1")
            .unwrap();
        let (a, b) = (claimed[0].lease, claimed[1].lease);
        store
            .record_epoch(&a, &epoch(Phase::Finetune, 1, 0.8))
            .unwrap();
        store.record_epoch(&a, &epoch(Phase::Head, 2, 0.7)).unwrap();
        store.record_epoch(&a, &epoch(Phase::Head, 1, 0.6)).unwrap();
        let mut diverged = epoch(Phase::Head, 1, 0.1);
        diverged.train_loss = f64::NAN;
        store.record_epoch(&b, &diverged).unwrap();
        let outcome = TrialOutcome {
            val_accuracy: 0.8,
            best_val_accuracy: 0.81,
            val_loss: 0.3,
            balanced_accuracy: 0.7,
            f1: 0.45,
            best_objective: 0.81,
            epochs: 3,
            seconds: 12.5,
            ..TrialOutcome::default()
        };
        store.complete_trial(&a, &outcome).unwrap();
        store.fail_trial(&b, "out of memory").unwrap();

        let trials = store.trials(study.id).unwrap();
        assert_eq!(trials.len(), 2);
        assert_eq!(trials[0].key, "a");
        assert_eq!(trials[0].params, specs[0].params, "{}", f.name);
        assert_eq!(trials[0].settings, specs[0].settings, "{}", f.name);
        assert_eq!(trials[0].state, TrialState::Complete);
        assert_eq!(trials[0].outcome, Some(outcome));
        assert_eq!(trials[0].error, None);
        assert!(trials[0].started_at.is_some() && trials[0].finished_at.is_some());
        assert_eq!(trials[1].settings, specs[1].settings);
        assert_eq!(trials[1].state, TrialState::Failed);
        assert_eq!(trials[1].outcome, None);
        assert_eq!(trials[1].error.as_deref(), Some("out of memory"));

        let epochs = store.epochs(a.trial_id).unwrap();
        let order: Vec<(Phase, usize)> = epochs.iter().map(|e| (e.phase, e.epoch)).collect();
        assert_eq!(
            order,
            vec![(Phase::Head, 1), (Phase::Head, 2), (Phase::Finetune, 1)],
            "{}",
            f.name
        );
        assert_eq!(epochs[1], epoch(Phase::Head, 2, 0.7));
        let of_study = store.epochs_of_study(study.id).unwrap();
        assert_eq!(of_study.len(), 2);
        assert_eq!(of_study[&a.trial_id], epochs);
        assert!(of_study[&b.trial_id][0].train_loss.is_nan(), "{}", f.name);
        assert_eq!(of_study[&b.trial_id][0].val_accuracy, 0.1);
    }
}

#[test]
fn record_epoch_replaces_the_same_phase_and_epoch() {
    for f in fixtures() {
        let (mut store, study_id) = store_with_trials(&f, &keys(1));
        let lease = store.claim(study_id, &keys(1), "w").unwrap()[0].lease;
        store
            .record_epoch(&lease, &epoch(Phase::Head, 1, 0.2))
            .unwrap();
        store
            .record_epoch(&lease, &epoch(Phase::Head, 1, 0.9))
            .unwrap();
        assert_eq!(
            store.epochs(lease.trial_id).unwrap(),
            vec![epoch(Phase::Head, 1, 0.9)],
            "{}",
            f.name
        );
    }
}

#[test]
fn folds_keep_their_epochs_apart_in_fold_order_and_the_outcome_keeps_its_sd() {
    for f in fixtures() {
        let (mut store, study_id) = store_with_trials(&f, &keys(2));
        let claimed = store.claim(study_id, &keys(2), "w").unwrap();
        let (first, plain) = (claimed[0].lease, claimed[1].lease);
        let in_fold = |fold, phase, number, accuracy| EpochMetrics {
            fold,
            ..epoch(phase, number, accuracy)
        };
        let attempt = [
            (2, Phase::Head, 1, 0.5),
            (0, Phase::Finetune, 1, 0.9),
            (0, Phase::Head, 1, 0.6),
            (1, Phase::Head, 1, 0.7),
            (2, Phase::Head, 1, 0.55),
        ];
        for (fold, phase, number, accuracy) in attempt {
            store
                .record_epoch(&first, &in_fold(fold, phase, number, accuracy))
                .unwrap();
        }
        // Interrupted mid-folds: back to pending, the attempt's epochs of every fold gone.
        store.release(&[first]).unwrap();
        assert!(
            store.epochs(first.trial_id).unwrap().is_empty(),
            "{}",
            f.name
        );
        let lease = store.claim(study_id, &keys(1), "w").unwrap()[0].lease;
        // Recorded out of order; the same (phase, epoch) in two folds is two rows, and the
        // same (fold, phase, epoch) again replaces it.
        for (fold, phase, number, accuracy) in attempt {
            store
                .record_epoch(&lease, &in_fold(fold, phase, number, accuracy))
                .unwrap();
        }
        let expected = vec![
            in_fold(0, Phase::Head, 1, 0.6),
            in_fold(0, Phase::Finetune, 1, 0.9),
            in_fold(1, Phase::Head, 1, 0.7),
            in_fold(2, Phase::Head, 1, 0.55),
        ];
        assert_eq!(
            store.epochs(lease.trial_id).unwrap(),
            expected,
            "{}",
            f.name
        );
        let cross_validated = TrialOutcome {
            folds: 3,
            objective_sd: Some(0.125),
            ..outcome(0.65)
        };
        store.complete_trial(&lease, &cross_validated).unwrap();
        store.complete_trial(&plain, &outcome(0.5)).unwrap();
        let trials = store.trials(study_id).unwrap();
        assert_eq!(trials[0].outcome, Some(cross_validated), "{}", f.name);
        let reread = trials[1].outcome.clone().unwrap();
        assert_eq!((reread.folds, reread.objective_sd), (1, None), "{}", f.name);
        let by_trial = store.epochs_of_study(study_id).unwrap();
        assert_eq!(by_trial[&lease.trial_id], expected, "{}", f.name);
    }
}

#[test]
fn ensure_study_returns_the_existing_study_with_the_latest_grid() {
    for f in fixtures() {
        let mut store = f.open();
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
        assert_eq!(store.latest_study().unwrap(), Some(second), "{}", f.name);
    }
}

#[test]
fn add_trials_twice_adds_only_new_keys() {
    for f in fixtures() {
        let (mut store, study_id) = store_with_trials(&f, &keys(3));
        let same: Vec<TrialSpec> = keys(3).iter().map(|k| spec(k, 1e-3)).collect();
        assert_eq!(store.add_trials(study_id, &same).unwrap(), 0, "{}", f.name);
        let grown: Vec<TrialSpec> = keys(4).iter().map(|k| spec(k, 1e-3)).collect();
        assert_eq!(store.add_trials(study_id, &grown).unwrap(), 1);
        assert_eq!(store.trials(study_id).unwrap().len(), 4);
    }
}

#[test]
fn claim_takes_only_pending_trials_once_in_key_order() {
    for f in fixtures() {
        let (mut store, study_id) = store_with_trials(&f, &keys(3));
        let first = store.claim(study_id, &keys(2), "w1").unwrap();
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|c| c.trial.state == TrialState::Running));
        assert!(first.iter().all(|c| c.lease.attempt == 1), "{}", f.name);
        assert!(store.claim(study_id, &keys(2), "w2").unwrap().is_empty());
        let backwards: Vec<String> = keys(3).into_iter().rev().collect();
        let rest = store.claim(study_id, &backwards, "w2").unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].trial.key, "k002");
        let unknown = store.claim(study_id, &["nope".to_string()], "w2").unwrap();
        assert!(unknown.is_empty());
        let mut more = store_with_trials(&f, &keys(0)).0;
        let study = more.ensure_study("t", "", "fp").unwrap();
        more.add_trials(study.id, &[spec("x", 0.1), spec("y", 0.2)])
            .unwrap();
        let order: Vec<String> = more
            .claim(study.id, &["y".into(), "x".into()], "w")
            .unwrap()
            .into_iter()
            .map(|c| c.trial.key)
            .collect();
        assert_eq!(order, ["y", "x"], "{}: in the order asked", f.name);
    }
}

#[test]
fn complete_fail_and_release_move_states() {
    for f in fixtures() {
        let (mut store, study_id) = store_with_trials(&f, &keys(3));
        let claimed = store.claim(study_id, &keys(3), "w").unwrap();
        let leases: Vec<_> = claimed.iter().map(|c| c.lease).collect();
        store.complete_trial(&leases[0], &outcome(0.5)).unwrap();
        store.fail_trial(&leases[1], "boom").unwrap();
        store
            .record_epoch(&leases[2], &epoch(Phase::Head, 1, 0.3))
            .unwrap();
        store.release(&leases).unwrap();
        assert_eq!(state_of(&store, study_id, "k000"), TrialState::Complete);
        assert_eq!(state_of(&store, study_id, "k001"), TrialState::Failed);
        assert_eq!(state_of(&store, study_id, "k002"), TrialState::Pending);
        assert!(store.epochs(leases[2].trial_id).unwrap().is_empty());
        let again = store.claim(study_id, &keys(3), "w").unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].lease.attempt, 2, "{}", f.name);
        let unknown = super::Lease {
            trial_id: 9999,
            attempt: 1,
        };
        assert!(is_lease_lost(store.complete_trial(&unknown, &outcome(0.5))));
    }
}

#[test]
fn abandoned_claims_go_back_to_pending_then_fail_after_max_attempts() {
    for f in fixtures() {
        let (mut store, study_id) = store_with_trials(&f, &keys(3));
        let live = store.claim(study_id, &keys(1), "alive").unwrap();
        let nobody_dead = |_: &str| false;
        let hour = Duration::from_secs(3600);
        let none = store
            .recover_abandoned(study_id, hour, 3, &nobody_dead)
            .unwrap();
        assert_eq!(none, Recovered::default(), "{}: a live claim stays", f.name);
        store.release(&[live[0].lease]).unwrap();

        let mut lost = f.open_expiring();
        let claimed = lost.claim(study_id, &keys(2), "lost").unwrap();
        lost.record_epoch(&claimed[0].lease, &epoch(Phase::Head, 1, 0.3))
            .unwrap();
        let back = store
            .recover_abandoned(study_id, Duration::ZERO, 3, &nobody_dead)
            .unwrap();
        assert_eq!(
            back,
            Recovered {
                requeued: 2,
                failed: 0
            },
            "{}",
            f.name
        );
        for key in keys(3) {
            assert_eq!(state_of(&store, study_id, &key), TrialState::Pending);
        }
        assert!(store.epochs(claimed[0].lease.trial_id).unwrap().is_empty());
        // Claimed a third time and abandoned again: with max_attempts 3 it fails for good.
        lost.claim(study_id, &keys(1), "lost").unwrap();
        let stale = store
            .recover_abandoned(study_id, Duration::ZERO, 3, &nobody_dead)
            .unwrap();
        assert_eq!(
            stale,
            Recovered {
                requeued: 0,
                failed: 1
            },
            "{}",
            f.name
        );
        assert_eq!(state_of(&store, study_id, "k000"), TrialState::Failed);
        let failed = &store.trials(study_id).unwrap()[0];
        let error = failed.error.as_deref().unwrap();
        assert!(
            error.contains("3 times") && error.contains("not retried"),
            "{error}"
        );
    }
}

#[test]
fn a_write_under_a_lost_lease_changes_nothing_and_the_new_attempt_counts() {
    for f in fixtures() {
        let (mut store, study_id) = store_with_trials(&f, &keys(1));
        let mut paused = f.open_expiring();
        let old: Claimed = paused
            .claim(study_id, &keys(1), "paused")
            .unwrap()
            .remove(0);
        paused
            .record_epoch(&old.lease, &epoch(Phase::Head, 1, 0.1))
            .unwrap();
        let nobody_dead = |_: &str| false;
        store
            .recover_abandoned(study_id, Duration::ZERO, 3, &nobody_dead)
            .unwrap();
        let new = store.claim(study_id, &keys(1), "other").unwrap().remove(0);
        assert_eq!(new.lease.attempt, old.lease.attempt + 1);
        store
            .record_epoch(&new.lease, &epoch(Phase::Head, 1, 0.7))
            .unwrap();
        // The paused worker wakes up: each of its writes is rejected.
        let name = f.name;
        assert!(
            is_lease_lost(paused.record_epoch(&old.lease, &epoch(Phase::Head, 2, 0.2))),
            "{name}"
        );
        assert!(is_lease_lost(paused.heartbeat(&[old.lease])), "{name}");
        assert!(
            is_lease_lost(paused.complete_trial(&old.lease, &outcome(0.2))),
            "{name}"
        );
        assert!(
            is_lease_lost(paused.fail_trial(&old.lease, "late")),
            "{name}"
        );
        paused.release(&[old.lease]).unwrap();
        assert_eq!(
            state_of(&store, study_id, "k000"),
            TrialState::Running,
            "{name}"
        );
        assert_eq!(
            store.epochs(new.lease.trial_id).unwrap(),
            vec![epoch(Phase::Head, 1, 0.7)],
            "{name}"
        );
        store.heartbeat(&[new.lease]).unwrap();
        store.complete_trial(&new.lease, &outcome(0.7)).unwrap();
        assert!(
            is_lease_lost(store.complete_trial(&new.lease, &outcome(0.1))),
            "{name}: once"
        );
        let trial = &store.trials(study_id).unwrap()[0];
        assert_eq!(trial.outcome.as_ref().unwrap().val_accuracy, 0.7, "{name}");
    }
}

#[test]
fn reopening_keeps_everything() {
    for f in fixtures() {
        let (mut store, study_id) = store_with_trials(&f, &keys(2));
        let lease = store.claim(study_id, &keys(1), "w").unwrap()[0].lease;
        store
            .record_epoch(&lease, &epoch(Phase::Head, 1, 0.4))
            .unwrap();
        let trials = store.trials(study_id).unwrap();
        drop(store);
        for reopened in [f.open(), Store::open_read_only(&f.db).unwrap()] {
            assert_eq!(reopened.trials(study_id).unwrap(), trials, "{}", f.name);
            assert_eq!(
                reopened.epochs(lease.trial_id).unwrap(),
                vec![epoch(Phase::Head, 1, 0.4)]
            );
        }
    }
}

#[test]
fn two_handles_claiming_the_same_keys_concurrently_take_each_once() {
    for f in fixtures() {
        let all = keys(50);
        let (store, study_id) = store_with_trials(&f, &all);
        drop(store);
        let barrier = Arc::new(Barrier::new(2));
        let workers: Vec<_> = ["w1", "w2"]
            .into_iter()
            .enumerate()
            .map(|(n, worker)| {
                let (db, barrier, mut order) = (f.db.clone(), barrier.clone(), all.clone());
                if n == 1 {
                    order.reverse();
                }
                std::thread::spawn(move || -> anyhow::Result<Vec<String>> {
                    let mut store = Store::open(&db)?;
                    barrier.wait();
                    let mut taken = Vec::new();
                    for key in order {
                        for claimed in store.claim(study_id, &[key], worker)? {
                            store.heartbeat(&[claimed.lease])?;
                            taken.push(claimed.trial.key);
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
        assert_eq!(
            claimed.len(),
            50,
            "{}: every key claimed exactly once",
            f.name
        );
        let distinct: BTreeSet<String> = claimed.into_iter().collect();
        assert_eq!(distinct, all.into_iter().collect::<BTreeSet<_>>());
    }
}
