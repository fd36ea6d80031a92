//! Where the images come from: class folders, the train/validation split, decoding (no candle).

pub mod decode;
pub mod source;
pub mod split;

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
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
}

/// List and split the files a data config names (no decoding yet).
pub fn load_dataset(config: &DataConfig, seed: u64) -> anyhow::Result<Dataset> {
    match &config.source {
        DataSource::Folder { root } => {
            let classes = source::class_folders(root)?;
            let names = classes.iter().map(|c| c.name.clone()).collect();
            let (train, val) = split::split(&classes, config, seed);
            Ok(Dataset {
                classes: names,
                train,
                val,
            })
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
            })
        }
    }
}
