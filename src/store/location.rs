//! Where `--db` points: a SQLite file (a plain path, the default) or a PostgreSQL server (a
//! `postgres://` or `postgresql://` URL). A URL is shown everywhere without its password: the
//! commands pass on the shown form, and opening it again finds the full URL remembered here.

use crate::error::InputError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The URL schemes of PostgreSQL.
const POSTGRES_SCHEMES: &[&str] = &["postgres", "postgresql"];

/// Full URLs given to this process, by their shown form (without password).
static FULL_URLS: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// A parsed `--db`.
pub(super) enum Location {
    Sqlite(PathBuf),
    Postgres(Box<PostgresTarget>),
}

/// A PostgreSQL server and database, with the URL as the user may read it.
pub(super) struct PostgresTarget {
    pub(super) config: postgres::Config,
    /// The URL without its password, for every message.
    pub(super) shown: String,
}

impl Location {
    /// A plain path is SQLite; `postgres://...` is PostgreSQL; any other `scheme://` (or a
    /// `postgres:` without `//`) is a typo, refused rather than taken for a file name.
    pub(super) fn parse(db: &Path) -> anyhow::Result<Location> {
        let Some(text) = db.to_str() else {
            return Ok(Location::Sqlite(db.to_path_buf()));
        };
        let Some(scheme) = url_scheme(text) else {
            return Ok(Location::Sqlite(db.to_path_buf()));
        };
        let shown = without_password(text);
        if !POSTGRES_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
            || !text.contains("://")
        {
            return Err(InputError::new(format!(
                "{shown}: not a database this gridsearch knows (write a file path for SQLite, \
                 or postgres://user@host[:port]/dbname for PostgreSQL)"
            ))
            .into());
        }
        let full = remembered(&shown).unwrap_or_else(|| text.to_string());
        let mut config: postgres::Config = full.parse().map_err(|e| {
            InputError::new(format!(
                "{shown}: not a valid PostgreSQL URL ({e}); write postgres://user@host[:port]/dbname"
            ))
        })?;
        if config.get_hosts().is_empty() {
            return Err(InputError::new(format!(
                "{shown}: the URL names no host; write postgres://user@host[:port]/dbname"
            ))
            .into());
        }
        if config.get_dbname().is_none() {
            return Err(InputError::new(format!(
                "{shown}: the URL names no database; write postgres://user@host[:port]/dbname"
            ))
            .into());
        }
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        Ok(Location::Postgres(Box::new(PostgresTarget {
            config,
            shown,
        })))
    }
}

/// `--db` as every message and every later open may show it: a URL without its password
/// (remembered, so that opening the shown form connects as the full one did); a path as is.
pub fn shown_location(db: &Path) -> PathBuf {
    let Some(text) = db.to_str().filter(|t| url_scheme(t).is_some()) else {
        return db.to_path_buf();
    };
    let shown = without_password(text);
    if shown != text {
        let mut urls = FULL_URLS.lock().expect("url lock");
        urls.get_or_insert_with(HashMap::new)
            .insert(shown.clone(), text.to_string());
    }
    PathBuf::from(shown)
}

/// Where the files kept beside the database go (checkpoints, the activation cache): the SQLite
/// file's folder, or `runs/` in the working directory when the database is a server.
pub fn local_folder(db: &Path) -> PathBuf {
    match is_url(db) {
        true => PathBuf::from("runs"),
        false => db.parent().unwrap_or(Path::new(".")).to_path_buf(),
    }
}

/// Whether `--db` is a URL (of any scheme) rather than a file path.
pub(super) fn is_url(db: &Path) -> bool {
    db.to_str().is_some_and(|t| url_scheme(t).is_some())
}

fn remembered(shown: &str) -> Option<String> {
    let urls = FULL_URLS.lock().expect("url lock");
    urls.as_ref().and_then(|u| u.get(shown).cloned())
}

/// The scheme of `text` when it looks like a URL (`name://...` or `postgres:...`).
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, rest) = text.split_once(':')?;
    let is_name = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic());
    let postgres_like = POSTGRES_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str());
    (is_name && (rest.starts_with("//") || postgres_like)).then_some(scheme)
}

/// The URL with the password left out of its user part and its query.
fn without_password(url: &str) -> String {
    let (before, after) = match url.split_once("://") {
        Some(parts) => parts,
        None => return url.to_string(),
    };
    let (authority, rest) = match after.find(['/', '?']) {
        Some(i) => after.split_at(i),
        None => (after, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|pair| !pair.to_ascii_lowercase().starts_with("password="))
                .collect();
            if kept.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => rest.to_string(),
    };
    format!("{before}://{authority}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_never_holds_the_password() {
        let cases = [
            (
                "postgres://u:secret@db.lan:5433/gs",
                "postgres://u@db.lan:5433/gs",
            ),
            ("postgresql://u@h/gs", "postgresql://u@h/gs"),
            (
                "postgres://u:secret@h/gs?password=x&sslmode=disable",
                "postgres://u@h/gs?sslmode=disable",
            ),
            ("postgres://u:secret@h", "postgres://u@h"),
            ("postgres://h/gs?password=x", "postgres://h/gs"),
        ];
        for (url, shown) in cases {
            assert_eq!(without_password(url), shown);
            assert_eq!(shown_location(Path::new(url)), PathBuf::from(shown));
        }
    }

    #[test]
    fn paths_stay_sqlite_and_url_typos_are_refused() {
        for path in ["runs/gs.db", "/tmp/a:b.db", "gs.db", "C:/x.db"] {
            let location = Location::parse(Path::new(path)).unwrap();
            assert!(matches!(location, Location::Sqlite(_)), "{path}");
        }
        let refused = |db: &str| match Location::parse(Path::new(db)) {
            Ok(_) => panic!("{db} accepted"),
            Err(e) => e
                .downcast::<InputError>()
                .expect("an input error")
                .to_string(),
        };
        assert!(refused("postgress://u:pw@h/gs").starts_with("postgress://u@h/gs: not a database"));
        assert!(refused("postgres:/h/gs").contains("not a database"));
        assert!(refused("postgres://u:pw@h:port/gs")
            .starts_with("postgres://u@h:port/gs: not a valid PostgreSQL URL"));
        assert!(!refused("postgres://u:pw@h:port/gs").contains("pw"));
        assert!(refused("postgres://u@h").contains("names no database"));
    }
}
