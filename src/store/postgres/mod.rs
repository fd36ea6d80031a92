//! The PostgreSQL backend: one connection per handle (a worker process holds its own and its
//! main one: ~2), connected again when the server restarts or the network drops, and the
//! lease of every claim timed by the server's clock. `queries` holds the SQL of every
//! operation, `schema` the schema and its migrations, `errors` the wording of failures.

use crate::error::InputError;
use crate::store::location::PostgresTarget;
use errors::{check_server_version, connect_error, connection_or_other, is_connection_lost};
use postgres::{Client, NoTls};
use std::cell::RefCell;
use std::time::{Duration, Instant};

mod columns;
mod errors;
mod queries;
mod schema;

/// How long a claim holds without a heartbeat, unless `GRIDSEARCH_LEASE_SECONDS` says otherwise.
const DEFAULT_LEASE: Duration = Duration::from_secs(600);

/// The environment variable that sets the lease (seconds), for small clusters and tests.
const LEASE_VARIABLE: &str = "GRIDSEARCH_LEASE_SECONDS";

/// How long a lost connection is tried again (a server restart takes seconds).
const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// How long connecting waits for an unreachable host.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to one gridsearch database on a PostgreSQL server.
pub(super) struct Postgres {
    client: RefCell<Client>,
    target: PostgresTarget,
    /// How long a claim holds without a heartbeat.
    lease: Duration,
    read_only: bool,
}

impl Postgres {
    /// Connect and create or migrate the schema.
    pub(super) fn open(target: PostgresTarget) -> anyhow::Result<Postgres> {
        let lease = lease_from_environment()?;
        Postgres::open_with_lease(target, lease)
    }

    pub(super) fn open_with_lease(
        target: PostgresTarget,
        lease: Duration,
    ) -> anyhow::Result<Postgres> {
        let mut client = connect(&target, false)?;
        schema::migrate(&mut client, &target)?;
        Ok(Postgres {
            client: RefCell::new(client),
            target,
            lease,
            read_only: false,
        })
    }

    /// Connect in read-only mode (every transaction refuses to write); the schema must be current.
    pub(super) fn open_read_only(target: PostgresTarget) -> anyhow::Result<Postgres> {
        let mut client = connect(&target, true)?;
        schema::check_readable(&mut client, &target)?;
        Ok(Postgres {
            client: RefCell::new(client),
            target,
            lease: DEFAULT_LEASE,
            read_only: true,
        })
    }

    /// Run `operation` on the connection; when the connection is lost (the server restarted),
    /// connect again and run it again, for up to [`RECONNECT_FOR`]. Each operation is one
    /// statement or one transaction, so running it again after a lost answer is safe: a lost
    /// claim's lease just expires, a repeated write under a lease changes nothing more.
    fn with_client<T>(
        &self,
        doing: &str,
        mut operation: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> anyhow::Result<T> {
        let started = Instant::now();
        loop {
            let error = {
                let mut client = self.client.borrow_mut();
                match operation(&mut client) {
                    Ok(value) => return Ok(value),
                    Err(e) => e,
                }
            };
            if !is_connection_lost(&error) || started.elapsed() > RECONNECT_FOR {
                return Err(connection_or_other(&self.target, error, doing));
            }
            self.reconnect(started)?;
        }
    }

    /// [`Postgres::with_client`] for a write that must be on disk when it returns (a claim, a
    /// result, a failure): one transaction that waits for its commit to be flushed.
    fn durably<T>(
        &self,
        doing: &str,
        mut operation: impl FnMut(&mut postgres::Transaction<'_>) -> Result<T, postgres::Error>,
    ) -> anyhow::Result<T> {
        self.with_client(doing, |client| {
            let mut tx = client.transaction()?;
            tx.batch_execute("SET LOCAL synchronous_commit = on")?;
            let value = operation(&mut tx)?;
            tx.commit()?;
            Ok(value)
        })
    }

    /// Connect again, every half second until [`RECONNECT_FOR`] after `started`.
    fn reconnect(&self, started: Instant) -> anyhow::Result<()> {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            match connect(&self.target, self.read_only) {
                Ok(client) => {
                    *self.client.borrow_mut() = client;
                    return Ok(());
                }
                Err(e) if started.elapsed() > RECONNECT_FOR => {
                    return Err(e.context("the connection was lost and could not be made again"))
                }
                Err(_) => continue,
            }
        }
    }
}

/// A new connection, checked: the server is new enough. Read-only: every transaction of the
/// session refuses to write.
fn connect(target: &PostgresTarget, read_only: bool) -> anyhow::Result<Client> {
    let mut config = target.config.clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("gridsearch");
    let mut client = config
        .connect(NoTls)
        .map_err(|e| connect_error(target, e))?;
    let version: String = client
        .query_one("SHOW server_version_num", &[])
        .map_err(|e| connect_error(target, e))?
        .get(0);
    check_server_version(target, version.trim().parse().unwrap_or(0))?;
    // Epoch rows and heartbeats do not wait for the disk (a server crash may lose the last
    // few, never corrupt anything); claims, results and failures do (see `durably`), and
    // their flush makes every earlier write of the session durable too.
    let session = if read_only {
        "SET default_transaction_read_only = on"
    } else {
        "SET synchronous_commit = off"
    };
    client
        .batch_execute(session)
        .map_err(|e| connect_error(target, e))?;
    Ok(client)
}

fn lease_from_environment() -> anyhow::Result<Duration> {
    let Ok(text) = std::env::var(LEASE_VARIABLE) else {
        return Ok(DEFAULT_LEASE);
    };
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(Duration::from_secs_f64(seconds)),
        _ => Err(InputError::new(format!(
            "{LEASE_VARIABLE}={text}: not a number of seconds > 0"
        ))
        .into()),
    }
}

#[cfg(test)]
mod tests;
