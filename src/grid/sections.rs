//! Reading each section of a grid file into its checked configuration (no filesystem access).

use super::doc::{
    did_you_mean, entries_in_file_order, expect_array, expect_count, expect_float, expect_str,
    expect_table, reject_unknown_keys, syntax_issue, Issue, Key, Value,
};
use super::folds::read_folds;
use super::settings::{grid_keys, setting_entries, setting_value, train_keys};
use super::{Axis, DataConfig, DataSource, Grid, ModelConfig, SplitMode};
use crate::catalogue::{self, BackboneInfo, BackboneKind, MAX_IMAGE_SIZE};
use crate::trial::{ParamValue, TrainSettings, Vocabulary};
use std::ops::Range;
use std::path::{Path, PathBuf};
use strum::VariantNames;
use toml::de::DeTable;

const SECTIONS: &[&str] = &["study", "data", "model", "train", "grid"];
const STUDY_KEYS: &[&str] = &["name", "seed"];
const MODEL_KEYS: &[&str] = &["backbone", "weights"];
const DATA_KEYS: &[&str] = &[
    "root",
    "train",
    "val",
    "image_size",
    "split",
    "val_fraction",
    "train_per_class",
    "val_per_class",
    "manifest",
    "label",
    "path_column",
    "ignore",
    "folds",
];
const DEFAULT_VAL_FRACTION: f64 = 0.2;

/// A path the grid names that must exist before any work (checked by `Grid::load`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RequiredPath {
    /// "data folder" or "weights file".
    pub what: &'static str,
    pub path: PathBuf,
    pub is_dir: bool,
    /// Span of the key that names it.
    pub key_span: Range<usize>,
}

/// Parses and checks a whole grid file; also returns the paths `load` must find on disk.
pub(super) fn parse_document(path: &Path, text: &str) -> Result<(Grid, Vec<RequiredPath>), Issue> {
    let doc = DeTable::parse(text).map_err(|e| syntax_issue(&e))?;
    let top = doc.get_ref();
    reject_unknown_sections(top)?;
    let base = path.parent().unwrap_or(Path::new(""));
    let (study_name, seed) = read_study(path, section(top, "study")?)?;
    let model_section = required_section(top, "model")?;
    let (model, backbone, weights_span) = read_model(base, model_section)?;
    let (data, mut required) = read_data(base, required_section(top, "data")?, backbone)?;
    required.push(RequiredPath {
        what: "weights file",
        path: model.weights.clone(),
        is_dir: false,
        key_span: weights_span,
    });
    let mut fixed = TrainSettings {
        seed,
        ..TrainSettings::default()
    };
    let train_names = read_train(section(top, "train")?, backbone, &mut fixed)?;
    let axes = read_axes(section(top, "grid")?, backbone, &train_names)?;
    let grid = Grid {
        path: path.to_path_buf(),
        text: text.to_string(),
        study_name,
        seed,
        data,
        model,
        fixed,
        axes,
    };
    Ok((grid, required))
}

fn reject_unknown_sections(top: &DeTable<'_>) -> Result<(), Issue> {
    for (key, _) in entries_in_file_order(top) {
        let name = key.get_ref().as_ref();
        if !SECTIONS.contains(&name) {
            return Err(Issue::at(
                key.span(),
                format!(
                    "unknown section [{name}]{}; valid sections: [study], [data], [model], [train], [grid]",
                    did_you_mean(name, SECTIONS, |s| format!("[{s}]"))
                ),
            ));
        }
    }
    Ok(())
}

type Section<'a, 'i> = (&'a Key<'i>, &'a DeTable<'i>);

fn section<'a, 'i>(top: &'a DeTable<'i>, name: &str) -> Result<Option<Section<'a, 'i>>, Issue> {
    match top.get_key_value(name) {
        Some((key, value)) => Ok(Some((key, expect_table(key, value)?))),
        None => Ok(None),
    }
}

fn required_section<'a, 'i>(top: &'a DeTable<'i>, name: &str) -> Result<Section<'a, 'i>, Issue> {
    section(top, name)?.ok_or_else(|| Issue::general(format!("missing section [{name}]")))
}

fn read_study(path: &Path, study: Option<Section<'_, '_>>) -> Result<(String, u64), Issue> {
    let table = study.map(|(_, t)| t);
    if let Some(table) = table {
        reject_unknown_keys(table, "[study]", STUDY_KEYS)?;
    }
    let name = match table.and_then(|t| t.get("name")) {
        Some(value) => {
            let name = expect_str("name", value)?;
            if !is_valid_study_name(name) {
                return Err(Issue::at(value.span(), bad_name_message(name)));
            }
            name.to_string()
        }
        None => name_from_file(path)?,
    };
    let seed = match table.and_then(|t| t.get("seed")) {
        Some(value) => expect_count("seed", value, 0, i64::MAX)?,
        None => 0,
    };
    Ok((name, seed))
}

fn name_from_file(path: &Path) -> Result<String, Issue> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if is_valid_study_name(&stem) {
        Ok(stem)
    } else {
        Err(Issue::general(format!(
            "{} (taken from the file name); set `name` in [study]",
            bad_name_message(&stem)
        )))
    }
}

fn bad_name_message(name: &str) -> String {
    format!(
        "invalid study name {name:?}: use 1-64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit"
    )
}

/// `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`
fn is_valid_study_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn read_model(
    base: &Path,
    (section_key, table): Section<'_, '_>,
) -> Result<(ModelConfig, &'static BackboneInfo, Range<usize>), Issue> {
    reject_unknown_keys(table, "[model]", MODEL_KEYS)?;
    // EfficientNet-Lite0, the first catalogued backbone, is the default.
    let backbone = match table.get("backbone") {
        None => catalogue::BACKBONES[0].kind,
        Some(value) => {
            let name = expect_str("backbone", value)?;
            BackboneKind::parse(name).ok_or_else(|| {
                Issue::at(
                    value.span(),
                    format!(
                        "unknown backbone {name:?}; known backbones: {}",
                        BackboneKind::VARIANTS.join(", ")
                    ),
                )
            })?
        }
    };
    let (weights_key, weights_value) = require_entry(section_key, table, "weights")?;
    let weights = resolved_path(base, "weights", weights_value)?;
    let model = ModelConfig { backbone, weights };
    Ok((model, backbone.info(), weights_key.span()))
}

fn require_entry<'a, 'i>(
    section_key: &Key<'_>,
    table: &'a DeTable<'i>,
    name: &str,
) -> Result<(&'a Key<'i>, &'a Value<'i>), Issue> {
    table.get_key_value(name).ok_or_else(|| {
        Issue::at(
            section_key.span(),
            format!("[{}] needs `{name}`", section_key.get_ref()),
        )
    })
}

/// A path value, resolved against the grid file's folder.
fn resolved_path(base: &Path, name: &str, value: &Value<'_>) -> Result<PathBuf, Issue> {
    let text = expect_str(name, value)?;
    if text.is_empty() {
        return Err(Issue::at(
            value.span(),
            format!("`{name}` must not be empty"),
        ));
    }
    Ok(base.join(text))
}

fn read_data(
    base: &Path,
    (section_key, table): Section<'_, '_>,
    backbone: &BackboneInfo,
) -> Result<(DataConfig, Vec<RequiredPath>), Issue> {
    reject_unknown_keys(table, "[data]", DATA_KEYS)?;
    let (source, required) = read_source(base, section_key, table)?;
    let is_folder = source.is_split_by_the_tool();
    let split = match table.get("split") {
        Some(value) => split_mode(value, is_folder)?,
        None => SplitMode::Random,
    };
    let val_fraction = match table.get("val_fraction") {
        Some(value) => val_fraction(value, is_folder)?,
        None => DEFAULT_VAL_FRACTION,
    };
    let config = DataConfig {
        source,
        image_size: image_size(table.get("image_size"), backbone)?,
        split,
        val_fraction,
        train_per_class: optional_count(table, "train_per_class")?,
        val_per_class: optional_count(table, "val_per_class")?,
        folds: read_folds(table)?,
    };
    Ok((config, required))
}

fn read_source(
    base: &Path,
    section_key: &Key<'_>,
    table: &DeTable<'_>,
) -> Result<(DataSource, Vec<RequiredPath>), Issue> {
    let entry = |name: &str| table.get_key_value(name);
    if let Some(manifest) = entry("manifest") {
        return read_manifest(base, manifest, table);
    }
    for name in ["label", "path_column", "ignore"] {
        if let Some((key, _)) = entry(name) {
            return Err(Issue::at(
                key.span(),
                format!("`{name}` belongs to a `manifest` source"),
            ));
        }
    }
    let folder = |name: &'static str, (key, value): (&Key<'_>, &Value<'_>)| {
        resolved_path(base, name, value).map(|path| RequiredPath {
            what: "data folder",
            path,
            is_dir: true,
            key_span: key.span(),
        })
    };
    let exclusive = "give either `root` (a folder per class) or `train` + `val`, not both";
    match (entry("root"), entry("train"), entry("val")) {
        (Some(root), None, None) => {
            let root = folder("root", root)?;
            Ok((
                DataSource::Folder {
                    root: root.path.clone(),
                },
                vec![root],
            ))
        }
        (Some(_), Some((key, _)), _) | (Some(_), None, Some((key, _))) => {
            Err(Issue::at(key.span(), exclusive))
        }
        (None, Some(train), Some(val)) => {
            let (train, val) = (folder("train", train)?, folder("val", val)?);
            let source = DataSource::Split {
                train: train.path.clone(),
                val: val.path.clone(),
            };
            Ok((source, vec![train, val]))
        }
        (None, Some((key, _)), None) => Err(Issue::at(key.span(), "`train` needs `val` too")),
        (None, None, Some((key, _))) => Err(Issue::at(key.span(), "`val` needs `train` too")),
        (None, None, None) => Err(Issue::at(
            section_key.span(),
            "[data] needs a source: `root` (a folder per class) or `train` + `val`",
        )),
    }
}

/// `manifest = "file.csv"` with `label`, and optionally `path_column` and `ignore`.
fn read_manifest(
    base: &Path,
    (key, value): (&Key<'_>, &Value<'_>),
    table: &DeTable<'_>,
) -> Result<(DataSource, Vec<RequiredPath>), Issue> {
    for other in ["root", "train", "val"] {
        if let Some((other_key, _)) = table.get_key_value(other) {
            return Err(Issue::at(
                other_key.span(),
                "give one data source: `manifest`, `root`, or `train` + `val`",
            ));
        }
    }
    let path = resolved_path(base, "manifest", value)?;
    let label = match table.get("label") {
        Some(label) => expect_str("label", label)?.to_string(),
        None => {
            return Err(Issue::at(
                key.span(),
                "`manifest` needs `label`: the column that holds each image's class",
            ))
        }
    };
    let path_column = match table.get("path_column") {
        Some(column) => expect_str("path_column", column)?.to_string(),
        None => "path".to_string(),
    };
    let ignore = match table.get("ignore") {
        Some(list) => expect_array("ignore", list)?
            .iter()
            .map(|v| expect_str("ignore", v).map(str::to_string))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let required = RequiredPath {
        what: "manifest file",
        path: path.clone(),
        is_dir: false,
        key_span: key.span(),
    };
    let source = DataSource::Manifest {
        path,
        label,
        path_column,
        ignore,
    };
    Ok((source, vec![required]))
}

fn split_mode(value: &Value<'_>, is_folder: bool) -> Result<SplitMode, Issue> {
    if !is_folder {
        return Err(Issue::at(
            value.span(),
            "`split` applies only with `root`; `train` + `val` are already split",
        ));
    }
    match expect_str("split", value)? {
        "random" => Ok(SplitMode::Random),
        "ordered" => Ok(SplitMode::Ordered),
        other => Err(Issue::at(
            value.span(),
            format!("unknown split {other:?}; choose \"random\" or \"ordered\""),
        )),
    }
}

fn val_fraction(value: &Value<'_>, is_folder: bool) -> Result<f64, Issue> {
    if !is_folder {
        return Err(Issue::at(
            value.span(),
            "`val_fraction` applies only with `root`; `train` + `val` are already split",
        ));
    }
    let fraction = expect_float("val_fraction", value)?;
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Issue::at(
            value.span(),
            format!("`val_fraction` must be in (0, 1), not {fraction}"),
        ));
    }
    Ok(fraction)
}

fn image_size(value: Option<&Value<'_>>, backbone: &BackboneInfo) -> Result<usize, Issue> {
    let Some(value) = value else {
        return Ok(backbone.default_image_size);
    };
    let min = i64::try_from(backbone.min_image_size).unwrap_or(i64::MAX);
    let size =
        expect_count("image_size", value, min, MAX_IMAGE_SIZE as i64).map_err(|mut issue| {
            issue.message = format!("{} (for {})", issue.message, backbone.name());
            issue
        })?;
    Ok(to_usize(size))
}

fn optional_count(table: &DeTable<'_>, name: &str) -> Result<Option<usize>, Issue> {
    table
        .get(name)
        .map(|value| expect_count(name, value, 1, i64::MAX).map(to_usize))
        .transpose()
}

fn to_usize(count: u64) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX)
}

/// Applies `[train]` to `fixed`; returns the names it set.
fn read_train(
    train: Option<Section<'_, '_>>,
    backbone: &BackboneInfo,
    fixed: &mut TrainSettings,
) -> Result<Vec<String>, Issue> {
    let Some((_, table)) = train else {
        return Ok(Vec::new());
    };
    if let Some((key, _)) = table.get_key_value("seed") {
        return Err(Issue::at(
            key.span(),
            "`seed` belongs in [study] (or as a [grid] axis), not in [train]",
        ));
    }
    let mut names = Vec::new();
    for (name, _, value) in setting_entries(table, "[train]", &train_keys())? {
        fixed.apply(&name, &setting_value(&name, value, backbone.blocks)?);
        names.push(name);
    }
    Ok(names)
}

fn read_axes(
    grid: Option<Section<'_, '_>>,
    backbone: &BackboneInfo,
    train_names: &[String],
) -> Result<Vec<Axis>, Issue> {
    let Some((_, table)) = grid else {
        return Ok(Vec::new());
    };
    let mut axes = Vec::new();
    for (name, key, value) in setting_entries(table, "[grid]", &grid_keys())? {
        if train_names.contains(&name) {
            return Err(Issue::at(
                key.span(),
                format!("`{name}` is set in both [train] and [grid]; keep one"),
            ));
        }
        axes.push(read_axis(&name, value, backbone)?);
    }
    Ok(axes)
}

fn read_axis(name: &str, value: &Value<'_>, backbone: &BackboneInfo) -> Result<Axis, Issue> {
    let array = expect_array(name, value)?;
    if array.is_empty() {
        return Err(Issue::at(
            value.span(),
            format!("axis `{name}` is empty; give at least one value"),
        ));
    }
    let mut values: Vec<ParamValue> = Vec::new();
    for element in array.iter() {
        let checked = setting_value(name, element, backbone.blocks)?;
        if values.contains(&checked) {
            return Err(Issue::at(
                element.span(),
                format!("duplicate value {checked} in axis `{name}`"),
            ));
        }
        values.push(checked);
    }
    Ok(Axis {
        name: name.to_string(),
        values,
    })
}

#[cfg(test)]
#[path = "sections_tests.rs"]
mod tests;
