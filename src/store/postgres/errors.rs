//! PostgreSQL's failures in words: what the user reads when the server, the URL, the password
//! or the rights are at fault (one line naming the host, never the password), and which
//! failures mean the connection was lost (the server restarted) rather than a refusal.

use crate::error::InputError;
use crate::store::location::PostgresTarget;
use postgres::error::SqlState;

/// The oldest server this gridsearch uses (`SKIP LOCKED`, `ON CONFLICT`, `make_interval`).
pub(super) const MIN_SERVER_VERSION: i32 = 110_000;

/// `host:port` (or the socket folder) of the target, for messages.
pub(super) fn host_of(target: &PostgresTarget) -> String {
    let host = match target.config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(name)) => name.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = target.config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// A failure to connect or to open, phrased as one input line where the user's setup is at
/// fault (the server is down or unreachable, the password or user is wrong, the database is
/// missing or forbidden, the server is overloaded), else kept as it is with the URL as context.
pub(super) fn connect_error(target: &PostgresTarget, error: postgres::Error) -> anyhow::Error {
    let shown = &target.shown;
    let host = host_of(target);
    let user = target.config.get_user().unwrap_or("(default user)");
    let dbname = target.config.get_dbname().unwrap_or("(default)");
    let Some(db_error) = error.as_db_error() else {
        let cause = source_text(&error);
        return InputError::new(format!(
            "{shown}: cannot connect to the PostgreSQL server at {host} ({cause})"
        ))
        .into();
    };
    let code = db_error.code();
    let why = if *code == SqlState::INVALID_PASSWORD {
        format!("the server at {host} refused the password of user `{user}`")
    } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
        format!(
            "the server at {host} refused user `{user}`: {}",
            db_error.message()
        )
    } else if *code == SqlState::INVALID_CATALOG_NAME {
        format!("no database `{dbname}` on the server at {host}")
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        format!(
            "user `{user}` has no right to use database `{dbname}` on {host}: {}",
            db_error.message()
        )
    } else if *code == SqlState::TOO_MANY_CONNECTIONS {
        format!(
            "the server at {host} has no free connection ({}); raise its max_connections or run fewer workers",
            db_error.message()
        )
    } else if code.code().starts_with("57P") || code.code().starts_with("08") {
        format!(
            "the server at {host} is not accepting connections ({})",
            db_error.message()
        )
    } else {
        return anyhow::Error::new(error).context(format!("{shown}: connecting to {host}"));
    };
    InputError::new(format!("{shown}: {why}")).into()
}

/// A statement refused for lack of rights (creating the tables), as one input line.
pub(super) fn rights_error(target: &PostgresTarget, error: postgres::Error) -> anyhow::Error {
    let user = target.config.get_user().unwrap_or("(default user)");
    match error.as_db_error() {
        Some(db) if *db.code() == SqlState::INSUFFICIENT_PRIVILEGE => InputError::new(format!(
            "{}: user `{user}` may not create gridsearch's tables on {} ({}); grant it CREATE \
             on the schema or give it a database of its own",
            target.shown,
            host_of(target),
            db.message()
        ))
        .into(),
        _ => connection_or_other(target, error, "creating gridsearch's tables"),
    }
}

/// A server older than [`MIN_SERVER_VERSION`], refused before anything is written.
pub(super) fn check_server_version(target: &PostgresTarget, version: i32) -> anyhow::Result<()> {
    if version < MIN_SERVER_VERSION {
        // From 10 on, `server_version_num` is major * 10000 + minor; before, 9.6.x is 906xx.
        let (major, minor) = match version {
            v if v >= 100_000 => (format!("{}", v / 10_000), v % 10_000),
            v => (format!("{}.{}", v / 10_000, v / 100 % 100), v % 100),
        };
        return Err(InputError::new(format!(
            "{}: the PostgreSQL server at {} is version {major}.{minor}, too old (gridsearch \
             needs {} or newer)",
            target.shown,
            host_of(target),
            MIN_SERVER_VERSION / 10_000
        ))
        .into());
    }
    Ok(())
}

/// Whether `error` means the connection is gone (the server restarted, the network dropped):
/// worth connecting again and retrying, unlike a refused statement.
pub(super) fn is_connection_lost(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P")
        }
        // No answer from the server at all: an I/O failure of the connection (not, say, a
        // value that does not convert, which no new connection would mend).
        None => std::error::Error::source(error).is_some_and(|cause| cause.is::<std::io::Error>()),
    }
}

/// Any other failure of a statement, with what was being done and where.
pub(super) fn connection_or_other(
    target: &PostgresTarget,
    error: postgres::Error,
    doing: &str,
) -> anyhow::Error {
    anyhow::Error::new(error).context(format!("{}: {doing}", target.shown))
}

/// The innermost cause of a connection failure, e.g. "Connection refused (os error 111)".
fn source_text(error: &postgres::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if text.is_empty() {
        error.to_string()
    } else {
        text
    }
}
