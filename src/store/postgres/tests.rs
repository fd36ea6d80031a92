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
