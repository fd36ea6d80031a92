//! A CSV manifest as a data source: one row per image, with its path and its label.

use super::source::ClassFolder;
use crate::error::InputError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The classes a manifest defines: one per distinct value of `label` (minus `ignore`), each
/// with its image files (paths relative to the manifest's folder), sorted by name.
pub fn manifest_classes(
    manifest: &Path,
    label: &str,
    path_column: &str,
    ignore: &[String],
) -> Result<Vec<ClassFolder>, InputError> {
    let fail = |message: String| InputError::new(format!("{}: {message}", manifest.display()));
    let mut reader =
        csv::Reader::from_path(manifest).map_err(|e| fail(format!("cannot read: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| fail(format!("bad CSV header: {e}")))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            let known: Vec<&str> = headers.iter().collect();
            fail(format!(
                "no column `{name}` (columns: {})",
                known.join(", ")
            ))
        })
    };
    let (path_at, label_at) = (column(path_column)?, column(label)?);
    let folder = manifest.parent().unwrap_or(Path::new("."));
    let mut classes: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| fail(format!("bad CSV row: {e}")))?;
        let line = record.position().map_or(0, |p| p.line());
        let value = record.get(label_at).unwrap_or_default().trim();
        if ignore.iter().any(|ignored| ignored == value) {
            continue;
        }
        let file = folder.join(record.get(path_at).unwrap_or_default().trim());
        if !file.is_file() {
            let problem = if file.exists() {
                "is not a regular file (a folder, FIFO, socket or device)"
            } else {
                "not found"
            };
            return Err(InputError::new(format!(
                "{}:{line}: image {} {problem}",
                manifest.display(),
                file.display()
            )));
        }
        classes.entry(value.to_string()).or_default().push(file);
    }
    if classes.len() < 2 {
        let values: Vec<&String> = classes.keys().collect();
        return Err(fail(format!(
            "column `{label}` needs at least two classes, found {values:?}"
        )));
    }
    Ok(classes
        .into_iter()
        .map(|(name, mut files)| {
            files.sort();
            ClassFolder { name, files }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(dir: &Path, text: &str) -> PathBuf {
        for name in ["a.jpg", "b.jpg", "c.jpg", "d.jpg"] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let path = dir.join("labels.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    const TEXT: &str = "file,heel,gender\nb.jpg,1,w\na.jpg,0,u\nc.jpg,0,m\nd.jpg,1,w\n";

    #[test]
    fn classes_are_the_label_values_with_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = manifest(dir.path(), TEXT);
        let classes = manifest_classes(&path, "heel", "file", &[]).unwrap();
        assert_eq!(classes.len(), 2);
        assert_eq!(
            (classes[0].name.as_str(), classes[1].name.as_str()),
            ("0", "1")
        );
        assert_eq!(
            classes[0].files,
            [dir.path().join("a.jpg"), dir.path().join("c.jpg")]
        );
        let gender = manifest_classes(&path, "gender", "file", &["u".to_string()]).unwrap();
        let names: Vec<&str> = gender.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["m", "w"], "rows labelled `u` are dropped");
    }

    #[test]
    fn missing_columns_unknown_paths_and_single_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = manifest(dir.path(), TEXT);
        let err = manifest_classes(&path, "laces", "file", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("labels.csv: no column `laces` (columns: file, heel, gender)"),
            "{err}"
        );
        let err = manifest_classes(&path, "heel", "path", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no column `path`"), "{err}");
        let missing = manifest(dir.path(), "file,heel\na.jpg,0\nnope.jpg,1\n");
        let err = manifest_classes(&missing, "heel", "file", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("labels.csv:3: image") && err.contains("nope.jpg"),
            "{err}"
        );
        let single = manifest(dir.path(), "file,heel\na.jpg,0\nb.jpg,0\n");
        let err = manifest_classes(&single, "heel", "file", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least two classes, found [\"0\"]"), "{err}");
    }
}
