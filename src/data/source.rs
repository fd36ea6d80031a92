//! A folder per class: list the classes and their image files, sorted by name.

use crate::error::InputError;
use std::fs;
use std::path::{Path, PathBuf};

/// File name extensions read as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"];

/// One class folder's name and image files, sorted by file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassFolder {
    pub name: String,
    pub files: Vec<PathBuf>,
}

/// The class folders under `root`, sorted by name; at least two, none empty.
pub fn class_folders(root: &Path) -> Result<Vec<ClassFolder>, InputError> {
    let entries = fs::read_dir(root).map_err(|e| {
        InputError::new(format!("{}: cannot read data folder: {e}", root.display()))
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !is_hidden(p))
        .collect();
    dirs.sort();
    let mut classes = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let files = image_files(&dir)?;
        if files.is_empty() {
            return Err(InputError::new(format!(
                "{}: class folder has no image files ({})",
                dir.display(),
                IMAGE_EXTENSIONS.join(", ")
            )));
        }
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        classes.push(ClassFolder { name, files });
    }
    if classes.len() < 2 {
        return Err(InputError::new(format!(
            "{}: needs at least two class folders, found {}",
            root.display(),
            classes.len()
        )));
    }
    Ok(classes)
}

/// Image files directly inside `dir`, sorted by name. Regular files only: a FIFO, socket or
/// device named `*.jpg` is never taken (so never opened). Class folders are one level deep, so
/// links cannot make the listing loop; a link to a regular file or to a class folder is
/// followed (folders of links are a common way to split a data set), unlike the catalogue
/// walk of `index`, whose photos `serve` shows and which follows no links.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let entries = fs::read_dir(dir).map_err(|e| {
        InputError::new(format!("{}: cannot read class folder: {e}", dir.display()))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !is_hidden(p) && has_image_extension(p))
        .collect();
    files.sort();
    Ok(files)
}

/// Whether a file name reads as an image (by its extension, case-insensitively).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Whether a file or folder name starts with a dot (never listed).
pub fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Pre-split folders must name the same classes.
pub fn check_same_classes(
    train_root: &Path,
    train: &[ClassFolder],
    val_root: &Path,
    val: &[ClassFolder],
) -> Result<(), InputError> {
    let names = |c: &[ClassFolder]| c.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    if names(train) != names(val) {
        return Err(InputError::new(format!(
            "{}: classes {:?} differ from those of {} {:?}",
            val_root.display(),
            names(val),
            train_root.display(),
            names(train)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"x").unwrap();
    }

    #[test]
    fn lists_classes_and_images_sorted_skipping_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "b/2.jpg",
            "b/1.PNG",
            "b/notes.txt",
            "a/z.jpeg",
            "a/.hidden.jpg",
        ] {
            touch(&dir.path().join(f));
        }
        let classes = class_folders(dir.path()).unwrap();
        assert_eq!(classes.len(), 2);
        assert_eq!(classes[0].name, "a");
        assert_eq!(classes[0].files, vec![dir.path().join("a/z.jpeg")]);
        assert_eq!(
            classes[1].files,
            vec![dir.path().join("b/1.PNG"), dir.path().join("b/2.jpg")]
        );
    }

    #[test]
    fn refuses_a_single_class_an_empty_class_and_a_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("only/1.jpg"));
        let err = class_folders(dir.path()).unwrap_err().to_string();
        assert!(err.contains("at least two class folders, found 1"), "{err}");
        fs::create_dir_all(dir.path().join("empty")).unwrap();
        let err = class_folders(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("empty") && err.contains("no image files"),
            "{err}"
        );
        let err = class_folders(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope") && err.contains("cannot read data folder"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn takes_regular_files_and_links_to_them_but_never_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("a/1.jpg"));
        touch(&dir.path().join("b/1.jpg"));
        std::os::unix::fs::symlink(dir.path().join("a/1.jpg"), dir.path().join("b/2.jpg")).unwrap();
        let fifo = dir.path().join("b/pipe.jpg");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let classes = class_folders(dir.path()).unwrap();
        assert_eq!(
            classes[1].files,
            vec![dir.path().join("b/1.jpg"), dir.path().join("b/2.jpg")]
        );
    }
}
