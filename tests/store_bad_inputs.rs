//! Every bad PostgreSQL `--db`: one line naming the host (never the password), exit code 2,
//! nothing written (no table on the server, no file or folder where the command ran).
//! Table-driven over the real binary and the real test server.

mod common;

use common::postgres::{host_port, url, url_as};
use common::*;

/// One case: the `--db` URL made from the test server's, and what the line must contain.
struct Case {
    name: &'static str,
    db: fn(&str) -> String,
    expect: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "unreachable server",
            db: |u| u.replacen(&host_port(u), "127.0.0.1:1", 1),
            expect: &["cannot connect to the PostgreSQL server at 127.0.0.1:1"],
        },
        Case {
            name: "wrong password",
            db: |u| url_as(u, "gridsearch:not-the-password"),
            expect: &["refused the password of user `gridsearch`"],
        },
        Case {
            name: "missing database",
            db: |u| format!("{}/no_such_db", u.rsplit_once('/').unwrap().0),
            expect: &["no database `no_such_db` on the server"],
        },
        Case {
            name: "user without rights to the database",
            db: |u| url_as(u, "norights:norights"),
            expect: &["user `norights` has no right to use database"],
        },
        Case {
            name: "URL typo: a port that is not a number",
            db: |u| u.replacen(&host_port(u), "127.0.0.1:54x", 1),
            expect: &["not a valid PostgreSQL URL"],
        },
        Case {
            name: "URL typo: the scheme",
            db: |u| u.replacen("postgres://", "postgress://", 1),
            expect: &["postgress://", "not a database this gridsearch knows"],
        },
    ]
}

#[test]
fn each_bad_postgres_url_is_one_line_naming_the_host_with_exit_2_and_nothing_written() {
    let Some(base) = url() else { return };
    let database = common::postgres::Database::new(&base);
    let tables_before = database.table_count();
    let dir = tempfile::tempdir().unwrap();
    let grid = write(
        &dir.path().join("grid.toml"),
        &grid_text("bad", (4, 2), "learning_rate = [1e-3]"),
    );
    let grid = grid.display().to_string();
    for case in cases() {
        let db = (case.db)(&base);
        for args in [
            vec!["run", grid.as_str()],
            vec!["status"],
            vec!["report"],
            vec!["export"],
        ] {
            let label = format!("{} ({})", case.name, args[0]);
            let out = command(std::path::Path::new(&db), &args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            let line = refused(&out, &label);
            for fragment in case.expect {
                assert!(line.contains(fragment), "{label}: {line}");
            }
            let host = host_port(&db);
            assert!(
                line.contains(&host),
                "{label}: names the host {host}: {line}"
            );
            let authority = db.split_once("://").unwrap().1;
            if let Some((user_info, _)) = authority.rsplit_once('@') {
                if let Some((user, password)) = user_info.split_once(':') {
                    assert!(!line.contains(&format!(":{password}@")), "{label}: {line}");
                    if user != password {
                        assert!(
                            !line.contains(password),
                            "{label}: shows the password: {line}"
                        );
                    }
                }
            }
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["grid.toml"], "{}: nothing written here", case.name);
    }
    assert_eq!(
        database.table_count(),
        tables_before,
        "nothing written on the server"
    );
}

#[test]
fn a_lease_that_is_not_a_number_of_seconds_is_refused_before_anything_is_written() {
    let Some(base) = url() else { return };
    let database = common::postgres::Database::new(&base);
    let dir = tempfile::tempdir().unwrap();
    let grid = write(
        &dir.path().join("grid.toml"),
        &grid_text("lease", (4, 2), "learning_rate = [1e-3]"),
    );
    for bad in ["abc", "0", "-5", "inf"] {
        let out = command(&database.url, &["run", &grid.display().to_string()])
            .env("GRIDSEARCH_LEASE_SECONDS", bad)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let line = refused(&out, bad);
        assert_eq!(
            line,
            format!("error: GRIDSEARCH_LEASE_SECONDS={bad}: not a number of seconds > 0")
        );
    }
    assert_eq!(database.table_count(), 0, "nothing written on the server");
}
