//! SQLite on one host only: a database file on a network filesystem (NFS, SMB/CIFS, FUSE, ...)
//! is refused, since WAL needs shared memory between its processes and many network servers
//! break fcntl locks. Several machines share a PostgreSQL server instead.

use crate::error::InputError;
use std::path::Path;

/// The filesystems (by `statfs` magic number) where SQLite's locks and WAL are not safe.
const NETWORK_FILESYSTEMS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x517B, "SMB"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    (0x6573_5546, "FUSE"),
    (0x00C3_6400, "Ceph"),
    (0x5346_414F, "AFS"),
    (0x7375_7245, "Coda"),
    (0x0102_1997, "9P"),
    (0x0BD0_0BD0, "Lustre"),
    (0x0116_1970, "GFS2"),
    (0x7461_636F, "OCFS2"),
    (0x564C, "NCP"),
    (0x4750_4653, "GPFS"),
];

/// The network filesystem of this `statfs` magic number, if it is one.
pub(super) fn network_filesystem_name(magic: i64) -> Option<&'static str> {
    NETWORK_FILESYSTEMS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

/// Refuse a SQLite database `db` (a file path; URLs pass) that lies on a network filesystem,
/// unless `allow` (the user's explicit `--allow-network-fs`). The filesystem is the one of the
/// file, or of its nearest existing folder when the file is not made yet.
pub fn refuse_network_filesystem(db: &Path, allow: bool) -> anyhow::Result<()> {
    if allow || super::location::is_url(db) {
        return Ok(());
    }
    let Some(magic) = db.ancestors().find_map(filesystem_magic) else {
        return Ok(());
    };
    match network_filesystem_name(magic) {
        Some(name) => Err(InputError::new(format!(
            "{}: on a network filesystem ({name}), where SQLite's locks are not safe: use a \
             PostgreSQL URL (--db postgres://user@host/dbname), or pass --allow-network-fs if \
             only this machine uses the file",
            db.display()
        ))
        .into()),
        None => Ok(()),
    }
}

/// The `statfs` magic number of the filesystem holding `path` (`None`: it does not exist).
fn filesystem_magic(path: &Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt;
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `name` is a NUL-terminated path and `stats` is writable memory of the right type.
    let status = unsafe { libc::statfs(name.as_ptr(), stats.as_mut_ptr()) };
    if status != 0 {
        return None;
    }
    // SAFETY: statfs succeeded, so it filled `stats`.
    let stats = unsafe { stats.assume_init() };
    #[allow(clippy::unnecessary_cast)] // f_type is i64 on some targets, u32 or i32 on others.
    Some(stats.f_type as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_filesystems_are_named_and_local_ones_are_not() {
        assert_eq!(network_filesystem_name(0x6969), Some("NFS"));
        assert_eq!(network_filesystem_name(0xFF53_4D42), Some("CIFS"));
        assert_eq!(network_filesystem_name(0x6573_5546), Some("FUSE"));
        for local in [0xEF53, 0x0102_1994, 0x5846_5342, 0x9123_683E, 0x794C_7630] {
            assert_eq!(network_filesystem_name(local), None, "{local:#x}");
        }
    }

    #[test]
    fn a_local_folder_is_accepted_and_its_magic_read() {
        let dir = tempfile::tempdir().unwrap();
        let not_made_yet = dir.path().join("sub/gs.db");
        assert!(filesystem_magic(dir.path()).is_some());
        assert!(filesystem_magic(&not_made_yet).is_none());
        let local = network_filesystem_name(filesystem_magic(dir.path()).unwrap()).is_none();
        assert_eq!(
            refuse_network_filesystem(&not_made_yet, false).is_ok(),
            local
        );
        assert!(refuse_network_filesystem(&not_made_yet, true).is_ok());
    }
}
