//! `[data] folds = k`: stratified k-fold cross-validation, and the keys it cannot go with.

use super::doc::{expect_count, Issue};
use toml::de::DeTable;

/// The fewest and most folds a study may have.
pub const FOLDS: std::ops::RangeInclusive<usize> = 2..=20;

/// Keys that choose a train/validation split themselves, which folds replace.
const SPLITTING_KEYS: &[&str] = &[
    "train",
    "val",
    "val_fraction",
    "train_per_class",
    "val_per_class",
];

/// `folds`, checked: a whole number in [`FOLDS`], only where the tool splits every image
/// itself (a `root` folder of classes or a `manifest`), with no key that sets the split's sizes
/// and no `split = "ordered"` (each fold is dealt from a seeded shuffle).
pub(super) fn read_folds(table: &DeTable<'_>) -> Result<Option<usize>, Issue> {
    let Some(value) = table.get("folds") else {
        return Ok(None);
    };
    let (min, max) = (*FOLDS.start() as i64, *FOLDS.end() as i64);
    let folds = expect_count("folds", value, min, max)?;
    for name in SPLITTING_KEYS {
        if let Some((key, _)) = table.get_key_value(*name) {
            return Err(Issue::at(
                key.span(),
                format!(
                    "`{name}` cannot go with `folds`: cross-validation splits every image of \
                     `root` or `manifest` into {folds} folds itself"
                ),
            ));
        }
    }
    if let Some(split) = table.get("split") {
        if split.get_ref().as_str() == Some("ordered") {
            return Err(Issue::at(
                split.span(),
                "`split = \"ordered\"` cannot go with `folds`: the folds are dealt from a seeded shuffle",
            ));
        }
    }
    Ok(Some(usize::try_from(folds).unwrap_or(usize::MAX)))
}
