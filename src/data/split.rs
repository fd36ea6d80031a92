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

/// Stratified k-fold cross-validation: every class on its own is shuffled with the study seed
/// (as [`split`] does), then its files are dealt round-robin into `k` folds, the dealing going
/// on where the previous class stopped; so each fold holds every class within one file of its
/// proportion, and the folds' sizes differ by at most one. Fold f validates the models trained
/// on the other folds. Every file is in exactly one fold (byte-identical copies of one photo
/// under two names are two files, as in [`split`]).
pub fn folds(classes: &[ClassFolder], k: usize, seed: u64) -> Vec<Vec<Sample>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut folds = vec![Vec::new(); k];
    let mut next = 0;
    for (label, class) in classes.iter().enumerate() {
        let mut files = class.files.clone();
        files.shuffle(&mut rng);
        for path in files {
            folds[next % k].push(Sample { path, label });
            next += 1;
        }
    }
    folds
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
            folds: None,
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

    #[test]
    fn folds_are_stratified_disjoint_cover_every_file_and_are_seeded() {
        let cls = classes(&[20, 13, 7]);
        let dealt = folds(&cls, 3, 5);
        assert_eq!(dealt.len(), 3);
        for (label, class) in cls.iter().enumerate() {
            let n = class.files.len() as f64;
            for fold in &dealt {
                let share = count(fold, label) as f64;
                assert!(
                    (share - n / 3.0).abs() < 1.0,
                    "class {label}: {share} of {n} in one fold"
                );
            }
        }
        let sizes: Vec<usize> = dealt.iter().map(Vec::len).collect();
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
        let mut all: Vec<_> = dealt.iter().flatten().map(|s| s.path.clone()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 40, "every file in exactly one fold");
        assert_eq!(folds(&cls, 3, 5), dealt, "same seed, same folds");
        assert_ne!(folds(&cls, 3, 6), dealt, "another seed, other folds");
        let (_, val) = split(&cls, &config(SplitMode::Random, 0.2, None, None), 5);
        let first_of_class_0: Vec<_> = val.iter().filter(|s| s.label == 0).take(3).collect();
        let dealt_first: Vec<_> = (0..3).map(|f| &dealt[f][0]).collect();
        assert_eq!(
            first_of_class_0, dealt_first,
            "shuffled as the random split shuffles"
        );
    }
}
