//! The PostgreSQL backend's own tests, against the real test server: many workers creating the
//! schema at once, and the refusals (another program's tables, a newer schema, an empty
//! database for reading, a server too old) that leave the database as it was.

use super::errors::check_server_version;
use crate::error::InputError;
use crate::store::conformance::{postgres_fixture, postgres_url, Fixture};
use crate::store::location::Location;
use crate::store::Store;
use std::sync::{Arc, Barrier};

fn input_error_message(error: anyhow::Error) -> String {
    error
        .downcast_ref::<InputError>()
        .unwrap_or_else(|| panic!("not an InputError: {error:#}"))
        .to_string()
}

/// A plain connection to the fixture's schema, to look at (or prepare) its tables.
fn sql(fixture: &Fixture, text: &str) -> Vec<postgres::Row> {
    let Location::Postgres(target) = Location::parse(&fixture.db).unwrap() else {
        unreachable!()
    };
    let mut client = target.config.connect(postgres::NoTls).unwrap();
    let mut rows = Vec::new();
    for statement in text.split(';').filter(|s| !s.trim().is_empty()) {
        rows = client.query(statement, &[]).unwrap();
    }
    rows
}

fn table_count(fixture: &Fixture) -> i64 {
    sql(
        fixture,
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
    )[0]
    .get(0)
}

#[test]
fn eight_workers_creating_the_schema_at_once_make_it_once() {
    let Some(url) = postgres_url() else { return };
    let fixture = postgres_fixture(&url);
    let barrier = Arc::new(Barrier::new(8));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (db, barrier) = (fixture.db.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                Store::open(&db).map(|_| ())
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .unwrap()
            .expect("every worker opens the store");
    }
    let versions = sql(&fixture, "SELECT version FROM gridsearch_schema");
    assert_eq!(versions.len(), 1, "one version row");
    assert_eq!(versions[0].get::<_, i32>(0), super::schema::SCHEMA_VERSION);
    assert_eq!(table_count(&fixture), 4);
}

#[test]
fn another_programs_tables_and_a_newer_schema_are_refused_and_left_as_they_were() {
    let Some(url) = postgres_url() else { return };
    let foreign = postgres_fixture(&url);
    sql(
        &foreign,
        "CREATE TABLE trials (id INTEGER); INSERT INTO trials VALUES (7)",
    );
    let message = input_error_message(Store::open(&foreign.db).err().unwrap());
    assert!(
        message.contains("another program") && message.contains("`trials`"),
        "{message}"
    );
    assert!(
        !message.contains("gridsearch:gridsearch"),
        "no password: {message}"
    );
    assert_eq!(table_count(&foreign), 1, "nothing was created");
    assert_eq!(
        sql(&foreign, "SELECT id FROM trials")[0].get::<_, i32>(0),
        7
    );

    let newer = postgres_fixture(&url);
    Store::open(&newer.db).unwrap();
    sql(&newer, "UPDATE gridsearch_schema SET version = 9");
    for refused in [Store::open(&newer.db), Store::open_read_only(&newer.db)] {
        let message = input_error_message(refused.err().unwrap());
        assert!(message.contains("version 9 is newer"), "{message}");
    }
    assert_eq!(
        sql(&newer, "SELECT version FROM gridsearch_schema")[0].get::<_, i32>(0),
        9
    );
}

#[test]
fn a_version_one_database_migrates_to_two_and_reads_back_the_same() {
    let Some(url) = postgres_url() else { return };
    let old = postgres_fixture(&url);
    let settings = serde_json::to_string(&crate::trial::TrainSettings::default()).unwrap();
    sql(
        &old,
        &format!(
            "{}; CREATE TABLE gridsearch_schema (version INTEGER NOT NULL);
             INSERT INTO gridsearch_schema VALUES (1);
             INSERT INTO studies (id, name, grid_toml, fingerprint, created_at)
                 VALUES (1, 's', '[grid]', 'fp', '2024-01-01T00:00:00Z');
             INSERT INTO trials (id, study_id, trial_key, params_json, settings_json, state,
                 val_accuracy, best_val_accuracy, val_loss, epochs, seconds,
                 balanced_accuracy, f1, best_objective)
                 VALUES (1, 1, 'k', '{{}}', '{settings}', 'complete',
                 0.75, 0.8, 0.4, 2, 2.5, 0.7, 0.6, 0.75);
             INSERT INTO epochs VALUES (1, 'head', 1, 0.9, 0.6, 0.5, 0.7, 1.0, 0.65, 0.55);
             INSERT INTO epochs VALUES (1, 'finetune', 1, 0.6, 0.8, 0.45, 0.75, 0.5, 0.7, 0.6)",
            super::schema::SCHEMA_V1
        ),
    );
    let refused = input_error_message(Store::open_read_only(&old.db).err().unwrap());
    assert!(refused.contains("version 1 is older than 2"), "{refused}");
    let store = Store::open(&old.db).unwrap();
    let outcome = store.trials(1).unwrap()[0].outcome.clone().unwrap();
    assert_eq!(
        (outcome.val_accuracy, outcome.best_objective, outcome.epochs),
        (0.75, 0.75, 2)
    );
    assert_eq!((outcome.folds, outcome.objective_sd), (1, None));
    let epochs = store.epochs(1).unwrap();
    let read: Vec<(usize, f64, f64)> = epochs
        .iter()
        .map(|e| (e.fold, e.val_accuracy, e.val_f1))
        .collect();
    assert_eq!(read, [(0, 0.7, 0.55), (0, 0.75, 0.6)]);
    let key = sql(
        &old,
        "SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey, a.attnum)) \
         FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
         AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'epochs'::regclass AND i.indisprimary",
    );
    assert_eq!(key[0].get::<_, String>(0), "trial_id,fold,phase,epoch");
    let version = sql(&old, "SELECT version FROM gridsearch_schema");
    assert_eq!(version[0].get::<_, i32>(0), 2);
}

#[test]
fn reading_an_empty_database_is_refused_and_creates_nothing() {
    let Some(url) = postgres_url() else { return };
    let empty = postgres_fixture(&url);
    let message = input_error_message(Store::open_read_only(&empty.db).err().unwrap());
    assert!(message.contains("not a gridsearch database"), "{message}");
    assert_eq!(table_count(&empty), 0);
}

#[test]
fn a_server_older_than_eleven_is_refused_naming_the_host() {
    let db = std::path::Path::new("postgres://u:secret@db.lan:5433/gs");
    let Location::Postgres(target) = Location::parse(db).unwrap() else {
        unreachable!()
    };
    let message = input_error_message(check_server_version(&target, 100_012).err().unwrap());
    assert_eq!(
        message,
        "postgres://u@db.lan:5433/gs: the PostgreSQL server at db.lan:5433 is version 10.12, too \
         old (gridsearch needs 11 or newer)"
    );
    let message = input_error_message(check_server_version(&target, 90_624).err().unwrap());
    assert!(message.contains("version 9.6.24, too old"), "{message}");
    assert!(check_server_version(&target, 110_000).is_ok());
    assert!(check_server_version(&target, 150_004).is_ok());
}
