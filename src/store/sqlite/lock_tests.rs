//! Opening a database never drops the POSIX locks other connections of this process hold on
//! it (closing any descriptor of a file drops them all, so the file is never opened outside
//! SQLite).

use super::Sqlite;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The POSIX locks this process holds on the file at `path`, as /proc/locks lists them.
fn posix_locks_held(path: &Path) -> usize {
    let inode = std::fs::metadata(path).unwrap().ino();
    let pid = std::process::id().to_string();
    let listed = std::fs::read_to_string("/proc/locks").unwrap();
    listed
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 5 && f[1] == "POSIX" && f[4] == pid)
        .filter(|f| f[5].ends_with(&format!(":{inode}")))
        .count()
}

#[test]
fn a_second_connection_keeps_the_first_ones_locks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gs.db");
    let first = Sqlite::open(&path).unwrap();
    // In WAL mode a connection holds a shared lock on the database file while it is open.
    assert_eq!(posix_locks_held(&path), 1, "the first connection's lock");
    let second = Sqlite::open(&path).unwrap();
    assert_eq!(posix_locks_held(&path), 1, "still held after a second open");
    let reader = Sqlite::open_read_only(&path).unwrap();
    assert_eq!(
        posix_locks_held(&path),
        1,
        "still held after a read-only open"
    );
    drop((first, second, reader));
}
