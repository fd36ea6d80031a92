//! Names read from a database (a study's) made into one safe path component.

/// The most characters a name keeps as a file name (well under any file system's limit).
const MAX_NAME_CHARS: usize = 100;

/// A name read from a database (a study's) as one safe path component: every character but
/// ASCII letters, digits, `-`, `_` and `.` becomes `_`, a leading `.` gets a `_` before it
/// (so never `.`, `..` or hidden), an empty name becomes `_`, and it keeps at most 100
/// characters. `../../x` becomes `_.._.._x`, `/etc` becomes `_etc`: joined to a folder, it
/// always names an entry directly inside it. `export`, `report --html` and the checkpoint
/// folders use it.
pub fn path_safe_name(name: &str) -> String {
    let mut safe: String = name
        .chars()
        .take(MAX_NAME_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        safe.insert(0, '_');
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_path_safe_name_is_one_entry_inside_its_folder() {
        for (name, safe) in [
            ("heel", "heel"),
            ("heel height", "heel_height"),
            ("../../x", "_.._.._x"),
            ("/etc/passwd", "_etc_passwd"),
            ("..", "_.."),
            (".", "_."),
            ("", "_"),
            ("a\\b\0c", "a_b_c"),
        ] {
            assert_eq!(path_safe_name(name), safe, "{name:?}");
            let joined = Path::new("out").join(path_safe_name(name));
            assert_eq!(joined.parent(), Some(Path::new("out")), "{name:?}");
        }
        assert_eq!(path_safe_name(&"é".repeat(300)).len(), MAX_NAME_CHARS);
    }
}
