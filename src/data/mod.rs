//! Where the images come from: class folders, the train/validation split, decoding (no candle).

pub mod augment;
pub mod budget;
pub mod decode;
pub mod manifest;
pub mod pass_input;
pub mod reduced_jpeg;
pub mod source;
pub mod split;
pub mod stream;

use crate::grid::{DataConfig, DataSource};
use std::path::PathBuf;

/// One labelled image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub path: PathBuf,
    pub label: usize,
}

/// The labelled files of a study, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Class names; a sample's label indexes this.
    pub classes: Vec<String>,
    /// Every image the frozen pass must cover that trains: with folds, all of them.
    pub train: Vec<Sample>,
    /// Validation images; empty with folds (each fold validates on its own).
    pub val: Vec<Sample>,
    /// With `[data] folds = k`, the k validation folds (`split::folds`); empty without.
    pub folds: Vec<Vec<Sample>>,
}

impl Dataset {
    /// The train/validation splits a trial trains on: one per fold (fold f validates, the other
    /// folds train, in fold order), or the one split when there are no folds.
    pub fn splits(&self) -> Vec<(Vec<Sample>, &[Sample])> {
        if self.folds.is_empty() {
            return vec![(self.train.clone(), &self.val)];
        }
        (0..self.folds.len())
            .map(|f| {
                let train = self
                    .folds
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != f);
                let train = train.flat_map(|(_, fold)| fold.iter().cloned()).collect();
                (train, self.folds[f].as_slice())
            })
            .collect()
    }
}

/// Classes the tool splits itself (stratified, see `split::split`).
/// With `folds`, every image trains (in some fold) and `val` is empty.
fn split_classes(classes: Vec<source::ClassFolder>, config: &DataConfig, seed: u64) -> Dataset {
    let (train, val, folds) = match config.folds {
        Some(k) => {
            let folds = split::folds(&classes, k, seed);
            (folds.concat(), Vec::new(), folds)
        }
        None => {
            let (train, val) = split::split(&classes, config, seed);
            (train, val, Vec::new())
        }
    };
    Dataset {
        classes: classes.into_iter().map(|c| c.name).collect(),
        train,
        val,
        folds,
    }
}

/// List and split the files a data config names (no decoding yet).
pub fn load_dataset(config: &DataConfig, seed: u64) -> anyhow::Result<Dataset> {
    match &config.source {
        DataSource::Folder { root } => {
            Ok(split_classes(source::class_folders(root)?, config, seed))
        }
        DataSource::Manifest {
            path,
            label,
            path_column,
            ignore,
        } => {
            let classes = manifest::manifest_classes(path, label, path_column, ignore)?;
            Ok(split_classes(classes, config, seed))
        }
        DataSource::Split { train, val } => {
            let train_classes = source::class_folders(train)?;
            let val_classes = source::class_folders(val)?;
            source::check_same_classes(train, &train_classes, val, &val_classes)?;
            let names = train_classes.iter().map(|c| c.name.clone()).collect();
            Ok(Dataset {
                classes: names,
                train: split::take_per_class(&train_classes, config.train_per_class),
                val: split::take_per_class(&val_classes, config.val_per_class),
                folds: Vec::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::SplitMode;
    use std::path::Path;

    fn touch(root: &Path, files: &[&str]) {
        for f in files {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
    }

    fn config(source: DataSource, train_per_class: Option<usize>) -> DataConfig {
        DataConfig {
            source,
            image_size: 64,
            split: SplitMode::Random,
            val_fraction: 0.2,
            train_per_class,
            val_per_class: None,
            folds: None,
        }
    }

    #[test]
    fn pre_split_folders_keep_their_sides_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        touch(
            dir.path(),
            &[
                "train/a/1.jpg",
                "train/a/2.jpg",
                "train/b/3.jpg",
                "val/a/4.jpg",
                "val/b/5.jpg",
            ],
        );
        let source = DataSource::Split {
            train: dir.path().join("train"),
            val: dir.path().join("val"),
        };
        let data = load_dataset(&config(source.clone(), None), 0).unwrap();
        assert_eq!(data.classes, ["a", "b"]);
        let labels = |s: &[Sample]| s.iter().map(|s| s.label).collect::<Vec<_>>();
        assert_eq!(labels(&data.train), [0, 0, 1]);
        assert_eq!(labels(&data.val), [0, 1]);
        assert!(data.val[1].path.ends_with("val/b/5.jpg"));
        let capped = load_dataset(&config(source, Some(1)), 0).unwrap();
        assert_eq!(labels(&capped.train), [0, 1]);
    }

    #[test]
    fn pre_split_folders_must_name_the_same_classes() {
        let dir = tempfile::tempdir().unwrap();
        touch(
            dir.path(),
            &[
                "train/a/1.jpg",
                "train/b/2.jpg",
                "val/a/3.jpg",
                "val/c/4.jpg",
            ],
        );
        let source = DataSource::Split {
            train: dir.path().join("train"),
            val: dir.path().join("val"),
        };
        let err = load_dataset(&config(source, None), 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("val") && err.contains("differ"), "{err}");
    }
}
