//! The test PostgreSQL server (`.ci/postgres.sh` starts one; CI always does): its URL, a fresh
//! database (a schema of its own) per test, its rows, and restarting it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The server's URL, if any; under CI a missing one fails the test instead of skipping it.
pub fn url() -> Option<String> {
    match std::env::var("GRIDSEARCH_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but GRIDSEARCH_TEST_PG_URL is not set (.ci/postgres.sh sets it)")
        }
        _ => {
            eprintln!("SKIPPING: GRIDSEARCH_TEST_PG_URL is not set (see .ci/postgres.sh)");
            None
        }
    }
}

/// `host:port` of the URL (which names them as `@host:port/`).
pub fn host_port(url: &str) -> String {
    let after_at = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
    after_at.split('/').next().unwrap().to_string()
}

/// The URL with its user and password replaced.
pub fn url_as(url: &str, user_and_password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host_and_db = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    format!("{scheme}://{user_and_password}@{host_and_db}")
}

/// An empty database of one test: a fresh schema, dropped with it.
pub struct Database {
    base: String,
    schema: String,
    /// The `--db` URL that reaches the schema.
    pub url: PathBuf,
}

impl Database {
    pub fn new(base: &str) -> Database {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let schema = format!(
            "gs_it_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut client = postgres::Client::connect(base, postgres::NoTls).expect("test server");
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        Database {
            base: base.to_string(),
            url: PathBuf::from(format!("{base}?options=-csearch_path%3D{schema}")),
            schema,
        }
    }

    /// A connection to the schema (tried for half a minute: the server may be restarting).
    pub fn client(&self) -> postgres::Client {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut client = loop {
            match postgres::Client::connect(&self.base, postgres::NoTls) {
                Ok(client) => break client,
                Err(e) if std::time::Instant::now() > deadline => panic!("test server: {e}"),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        };
        client
            .batch_execute(&format!("SET search_path = {}", self.schema))
            .unwrap();
        client
    }

    /// How many tables the schema holds (0: nothing was created).
    pub fn table_count(&self) -> i64 {
        self.client()
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                &[],
            )
            .unwrap()
            .get(0)
    }

    /// (key, state, attempts, worker) of every trial, by key.
    pub fn trials(&self) -> Vec<(String, String, i64, Option<String>)> {
        self.client()
            .query(
                "SELECT trial_key, state, attempts, worker FROM trials ORDER BY trial_key",
                &[],
            )
            .map(|rows| {
                rows.iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
        }
    }
}

/// How many connections gridsearch processes hold on the server now.
pub fn gridsearch_connections(database: &Database) -> i64 {
    database
        .client()
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gridsearch'",
            &[],
        )
        .unwrap()
        .get(0)
}

/// Restart the test server (`pg_ctl restart`, as the owner of its data folder), waiting until
/// it accepts connections again.
pub fn restart_server() {
    let data = std::env::var("GRIDSEARCH_TEST_PG_DATA").expect("GRIDSEARCH_TEST_PG_DATA");
    let bin = std::env::var("GRIDSEARCH_TEST_PG_BIN").expect("GRIDSEARCH_TEST_PG_BIN");
    let pg_ctl = Path::new(&bin).join("pg_ctl");
    let as_root = unsafe { libc::geteuid() } == 0;
    let mut command = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
        c
    } else {
        Command::new(&pg_ctl)
    };
    let status = command
        .args(["-D", &data, "-m", "fast", "-w", "restart"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("pg_ctl runs");
    assert!(status.success(), "pg_ctl restart failed");
}
