//! The train/validation split: stratified per class, seeded shuffle or file-name order.

use super::source::ClassFolder;
use super::Sample;
use crate::grid::{DataConfig, SplitMode};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Split every class on its own (so both sides keep the class balance).
///
/// Per class: the validation count is `val_per_class` or `round(n * val_fraction)`, clamped so
/// that both sides keep at least one file; training takes the rest, at most `train_per_class`.
/// `Random` shuffles each class with the study seed first; `Ordered` keeps file-name order and
/// puts the first files in training, the next ones in validation.
pub fn split(
    classes: &[ClassFolder],
    config: &DataConfig,
    seed: u64,
) -> (Vec<Sample>, Vec<Sample>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (label, class) in classes.iter().enumerate() {
        let mut files = class.files.clone();
        if config.split == SplitMode::Random {
            files.shuffle(&mut rng);
        }
        let n = files.len();
        let wanted_val = config
            .val_per_class
            .unwrap_or_else(|| (n as f64 * config.val_fraction).round() as usize);
        let n_val = wanted_val.clamp(1, n.saturating_sub(1).max(1));
        let n_train = config
            .train_per_class
            .unwrap_or(usize::MAX)
            .min(n.saturating_sub(n_val));
        let sample = |path: &std::path::PathBuf| Sample {
            path: path.clone(),
            label,
        };
        match config.split {
            SplitMode::Ordered => {
                train.extend(files[..n_train].iter().map(sample));
                val.extend(files[n_train..(n_train + n_val).min(n)].iter().map(sample));
            }
            SplitMode::Random => {
                val.extend(files[..n_val].iter().map(sample));
                train.extend(files[n_val..n_val + n_train].iter().map(sample));
            }
        }
    }
    (train, val)
}

/// All files of pre-split class folders, at most `limit` per class (in file-name order).
pub fn take_per_class(classes: &[ClassFolder], limit: Option<usize>) -> Vec<Sample> {
    classes
        .iter()
        .enumerate()
        .flat_map(|(label, class)| {
            class
                .files
                .iter()
                .take(limit.unwrap_or(usize::MAX))
                .map(move |path| Sample {
                    path: path.clone(),
                    label,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::DataSource;
    use std::path::PathBuf;

    fn classes(sizes: &[usize]) -> Vec<ClassFolder> {
        sizes
            .iter()
            .enumerate()
            .map(|(c, &n)| ClassFolder {
                name: format!("c{c}"),
                files: (0..n)
                    .map(|i| PathBuf::from(format!("c{c}/{i:04}.jpg")))
                    .collect(),
            })
            .collect()
    }

    fn config(
        split: SplitMode,
        val_fraction: f64,
        train: Option<usize>,
        val: Option<usize>,
    ) -> DataConfig {
        DataConfig {
            source: DataSource::Folder {
                root: PathBuf::from("."),
            },
            image_size: 112,
            split,
            val_fraction,
            train_per_class: train,
            val_per_class: val,
        }
    }

    fn count(samples: &[Sample], label: usize) -> usize {
        samples.iter().filter(|s| s.label == label).count()
    }

    #[test]
    fn random_split_is_stratified_disjoint_and_seeded() {
        let cls = classes(&[100, 40]);
        let cfg = config(SplitMode::Random, 0.2, None, None);
        let (train, val) = split(&cls, &cfg, 0);
        assert_eq!((count(&train, 0), count(&val, 0)), (80, 20));
        assert_eq!((count(&train, 1), count(&val, 1)), (32, 8));
        let mut all: Vec<_> = train.iter().chain(&val).map(|s| s.path.clone()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 140, "no file on both sides, none lost");
        assert_eq!(
            split(&cls, &cfg, 0),
            (train.clone(), val.clone()),
            "same seed, same split"
        );
        assert_ne!(split(&cls, &cfg, 1).1, val, "another seed, another split");
    }

    #[test]
    fn ordered_split_takes_the_first_files_for_training_then_the_next() {
        let cls = classes(&[10, 10]);
        let (train, val) = split(&cls, &config(SplitMode::Ordered, 0.2, Some(6), Some(3)), 0);
        let names = |s: &[Sample]| {
            s.iter()
                .filter(|s| s.label == 0)
                .map(|s| s.path.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&train),
            (0..6)
                .map(|i| PathBuf::from(format!("c0/{i:04}.jpg")))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            names(&val),
            (6..9)
                .map(|i| PathBuf::from(format!("c0/{i:04}.jpg")))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn tiny_classes_keep_one_file_on_each_side() {
        let (train, val) = split(
            &classes(&[2, 3]),
            &config(SplitMode::Random, 0.01, None, None),
            0,
        );
        assert_eq!((count(&train, 0), count(&val, 0)), (1, 1));
        assert_eq!((count(&train, 1), count(&val, 1)), (2, 1));
    }
}
