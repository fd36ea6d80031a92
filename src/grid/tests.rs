//! Tests of a whole grid: parsing the example, expanding trials, keys and fingerprints.
use super::*;
use crate::trial::Optimizer;

const EXAMPLE: &str = r#"[study]
name = "department"
seed = 0

[data]
root = "../data/footwear"
image_size = 112
split = "random"
val_fraction = 0.2
train_per_class = 600
val_per_class = 200

[model]
backbone = "efficientnet-lite0"
weights = "../models/efficientnet_lite0.safetensors"

[train]
batch_size = 32
head_epochs = 3
finetune_epochs = 2
patience = 2
finetune_lr_factor = 0.1
optimizer = "adamw"
weight_decay = 0.0

[grid]
learning_rate = [1e-3, 3e-3]
dropout = [0.0, 0.3]
head_size = [0, 256]
unfreeze_depth = [0, 2]
"#;

const MINIMAL: &str =
    "[data]\nroot = \"d\"\n[model]\nbackbone = \"efficientnet-lite0\"\nweights = \"w.st\"\n";

fn parse(path: &str, text: &str) -> Grid {
    Grid::parse(Path::new(path), text).expect("valid grid")
}

fn param(trial: &TrialSpec, name: &str) -> ParamValue {
    trial.params[name].clone()
}

#[test]
fn example_parses_with_its_values() {
    let grid = parse("exp/grids/g.toml", EXAMPLE);
    assert_eq!(grid.study_name, "department");
    assert_eq!(grid.text, EXAMPLE);
    assert_eq!(grid.data.image_size, 112);
    assert_eq!(grid.data.train_per_class, Some(600));
    assert_eq!(grid.data.val_per_class, Some(200));
    assert_eq!(grid.model.backbone.to_string(), "efficientnet-lite0");
    assert_eq!(grid.fixed.optimizer, Optimizer::AdamW);
    assert_eq!(grid.fixed.head_epochs, 3);
    let names: Vec<&str> = grid.axes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["learning_rate", "dropout", "head_size", "unfreeze_depth"]
    );
    assert_eq!(
        grid.axes[2].values,
        [ParamValue::Int(0), ParamValue::Int(256)]
    );
}

#[test]
fn trials_are_the_cartesian_product_first_axis_outermost() {
    let trials = parse("g.toml", EXAMPLE).trials();
    assert_eq!(trials.len(), 16);
    assert_eq!(param(&trials[0], "learning_rate"), ParamValue::Float(1e-3));
    assert_eq!(param(&trials[0], "unfreeze_depth"), ParamValue::Int(0));
    assert_eq!(param(&trials[1], "unfreeze_depth"), ParamValue::Int(2));
    assert_eq!(param(&trials[1], "head_size"), ParamValue::Int(0));
    assert_eq!(param(&trials[2], "head_size"), ParamValue::Int(256));
    assert_eq!(param(&trials[4], "dropout"), ParamValue::Float(0.3));
    assert_eq!(param(&trials[7], "learning_rate"), ParamValue::Float(1e-3));
    assert_eq!(param(&trials[8], "learning_rate"), ParamValue::Float(3e-3));
    let last = &trials[15];
    assert_eq!(last.params.len(), 4);
    assert_eq!(last.settings.learning_rate, 3e-3);
    assert_eq!(last.settings.dropout, 0.3);
    assert_eq!(last.settings.head_size, 256);
    assert_eq!(last.settings.unfreeze_depth, 2);
    assert_eq!(last.settings.batch_size, 32);
    assert_eq!(last.settings.finetune_epochs, 2);
    assert_eq!(last.settings.optimizer, Optimizer::AdamW);
    assert_eq!(last.settings.seed, 0);
}

#[test]
fn keys_are_short_unique_and_stable() {
    let trials = parse("g.toml", EXAMPLE).trials();
    let mut keys: Vec<&str> = trials.iter().map(|t| t.key.as_str()).collect();
    assert!(keys
        .iter()
        .all(|k| k.len() == 16 && k.chars().all(|c| c.is_ascii_hexdigit())));
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 16);
    assert_eq!(parse("other/g2.toml", EXAMPLE).trials(), trials);
    // Pinned (sha256 of the settings JSON, checked with sha256sum): changing how keys are
    // made would orphan every stored trial.
    assert_eq!(trial_key(&TrainSettings::default()), "f6cdfdfae34beb5e");
}

#[test]
fn reordering_values_keeps_each_trials_key() {
    let reordered = EXAMPLE
        .replace("[1e-3, 3e-3]", "[3e-3, 0.001]")
        .replace("[0, 256]", "[256, 0]");
    let key_by_params = |grid: &Grid| -> BTreeMap<String, String> {
        grid.trials()
            .into_iter()
            .map(|t| (format!("{:?}", t.params), t.key))
            .collect()
    };
    let original = key_by_params(&parse("g.toml", EXAMPLE));
    assert_eq!(key_by_params(&parse("g.toml", &reordered)), original);
    assert_ne!(
        parse("g.toml", &reordered).trials()[0].key,
        parse("g.toml", EXAMPLE).trials()[0].key
    );
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let grid = parse("grids/my-study.toml", MINIMAL);
    assert_eq!(grid.study_name, "my-study");
    assert_eq!(grid.seed, 0);
    assert_eq!(grid.data.image_size, 224);
    assert_eq!(grid.data.split, SplitMode::Random);
    assert_eq!(grid.data.val_fraction, 0.2);
    assert_eq!(grid.data.train_per_class, None);
    assert_eq!(grid.data.val_per_class, None);
    assert_eq!(grid.fixed, TrainSettings::default());
    assert!(grid.axes.is_empty());
    let trials = grid.trials();
    assert_eq!(trials.len(), 1);
    assert!(trials[0].params.is_empty());
    assert_eq!(trials[0].settings, TrainSettings::default());
}

#[test]
fn integers_count_as_floats_and_the_study_seed_reaches_settings() {
    let text = format!("[study]\nseed = 5\n{MINIMAL}[train]\nlearning_rate = 1\npatience = 0\n");
    let grid = parse("g.toml", &text);
    assert_eq!(grid.fixed.learning_rate, 1.0);
    assert_eq!(grid.fixed.patience, 0);
    assert_eq!(grid.fixed.seed, 5);
    assert_eq!(grid.trials()[0].settings.seed, 5);
}

#[test]
fn a_seed_axis_overrides_the_study_seed() {
    let text = format!("[study]\nseed = 5\n{MINIMAL}[grid]\nseed = [0, 1, 2]\n");
    let trials = parse("g.toml", &text).trials();
    let seeds: Vec<u64> = trials.iter().map(|t| t.settings.seed).collect();
    assert_eq!(seeds, [0, 1, 2]);
    assert_eq!(param(&trials[2], "seed"), ParamValue::Int(2));
}

#[test]
fn paths_resolve_against_the_grid_files_folder() {
    let grid = parse("exp/grids/g.toml", EXAMPLE);
    let root = PathBuf::from("exp/grids/../data/footwear");
    assert_eq!(grid.data.source, DataSource::Folder { root });
    assert_eq!(
        grid.model.weights,
        PathBuf::from("exp/grids/../models/efficientnet_lite0.safetensors")
    );
    let split = "[data]\ntrain = \"t\"\nval = \"/abs/v\"\n[model]\nbackbone = \"efficientnet-lite0\"\nweights = \"w\"\n";
    let grid = parse("g.toml", split);
    let expected = DataSource::Split {
        train: PathBuf::from("t"),
        val: PathBuf::from("/abs/v"),
    };
    assert_eq!(grid.data.source, expected);
}

#[test]
fn fingerprint_covers_data_and_model_but_not_axes_or_name() {
    let base = parse("g.toml", EXAMPLE).fingerprint();
    let same = [
        EXAMPLE.replace("department", "other"),
        EXAMPLE.replace("[0, 256]", "[0, 128, 512]"),
    ];
    for text in same {
        assert_eq!(parse("g.toml", &text).fingerprint(), base, "{text}");
    }
    let different = [
        EXAMPLE.replace("image_size = 112", "image_size = 128"),
        EXAMPLE.replace("efficientnet_lite0.safetensors", "other.safetensors"),
        EXAMPLE.replace("footwear", "shoes"),
        EXAMPLE.replace("val_per_class = 200", "val_per_class = 100"),
        EXAMPLE.replace("split = \"random\"", "split = \"ordered\""),
        EXAMPLE.replace("seed = 0", "seed = 1"),
        EXAMPLE.replace("optimizer = \"adamw\"", "optimizer = \"sgd\""),
    ];
    for text in different {
        assert_ne!(parse("g.toml", &text).fingerprint(), base, "{text}");
    }
    let changed = EXAMPLE
        .replace("image_size = 112", "image_size = 128")
        .replace("optimizer = \"adamw\"", "optimizer = \"sgd\"");
    let changes = fingerprint_changes(&base, &parse("g.toml", &changed).fingerprint());
    assert_eq!(changes, ["data.image_size", "train.optimizer"]);
    let ordered = EXAMPLE.replace("split = \"random\"", "split = \"ordered\"");
    assert_eq!(
        parse("g.toml", &ordered).fingerprint(),
        parse("g.toml", &ordered.replace("seed = 0", "seed = 1")).fingerprint()
    );
}

/// A grid file in a fresh folder, with `data/` and `w.st` created as asked.
fn grid_on_disk(with_data: bool, with_weights: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    if with_data {
        std::fs::create_dir(dir.path().join("d")).expect("data dir");
    }
    if with_weights {
        std::fs::write(dir.path().join("w.st"), b"x").expect("weights");
    }
    let path = dir.path().join("g.toml");
    std::fs::write(&path, MINIMAL).expect("grid file");
    (dir, path)
}

#[test]
fn load_reads_and_checks_the_paths() {
    let (_dir, path) = grid_on_disk(true, true);
    let grid = Grid::load(&path).expect("loads");
    assert_eq!(grid.study_name, "g");
    assert_eq!(grid.model.weights, path.with_file_name("w.st"));
}

#[test]
fn load_names_a_missing_grid_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nope.toml");
    let err = Grid::load(&path).expect_err("missing").to_string();
    assert!(
        err.starts_with(&format!("{}: cannot read the grid file", path.display())),
        "{err}"
    );
}

#[test]
fn load_points_at_a_missing_data_folder() {
    let (dir, path) = grid_on_disk(false, true);
    let err = Grid::load(&path).expect_err("no data").to_string();
    let missing = dir.path().join("d");
    assert_eq!(
        err,
        format!(
            "{}:2:1: data folder {} does not exist",
            path.display(),
            missing.display()
        )
    );
}

#[test]
fn load_points_at_missing_or_wrong_weights() {
    let (dir, path) = grid_on_disk(true, false);
    let err = Grid::load(&path).expect_err("no weights").to_string();
    let weights = dir.path().join("w.st");
    assert_eq!(
        err,
        format!(
            "{}:5:1: weights file {} does not exist",
            path.display(),
            weights.display()
        )
    );
    std::fs::create_dir(&weights).expect("dir in the way");
    let err = Grid::load(&path)
        .expect_err("weights is a folder")
        .to_string();
    assert!(err.ends_with("is not a file"), "{err}");
}

/// xorshift64*: a tiny seeded generator for the fuzz test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

fn mutate(text: &str, rng: &mut Rng) -> String {
    const NOISE: &[char] = &[
        '[', ']', '"', '=', '.', ',', '\n', '#', '{', '}', '0', '9', '-', 'e', ' ', 'é', '\'',
    ];
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(chars.len());
        match rng.below(4) {
            0 if !chars.is_empty() => {
                chars.remove(at);
            }
            1 if !chars.is_empty() => {
                let c = chars[at];
                chars.insert(at, c);
            }
            2 if !chars.is_empty() => chars[at] = NOISE[rng.below(NOISE.len())],
            _ => {
                let end = (at + 1 + rng.below(20)).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                let to = rng.below(chars.len());
                chars.splice(to..to, copy);
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn mutated_grids_never_panic_and_errors_stay_one_line() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut failures = 0;
    for _ in 0..3000 {
        let text = mutate(EXAMPLE, &mut rng);
        if let Err(err) = Grid::parse(Path::new("fuzz.toml"), &text) {
            let err = err.to_string();
            assert!(err.starts_with("fuzz.toml:"), "{err}");
            assert!(!err.contains('\n'), "{err}");
            failures += 1;
        }
    }
    assert!(
        failures > 100,
        "mutations should break many grids, broke {failures}"
    );
}

#[test]
fn augment_settings_read_alike_in_every_toml_spelling_and_views_0_is_no_augmentation() {
    let head = "[data]\nroot = \"d\"\n[model]\nweights = \"w\"\n";
    let spellings = [
        "[train]\naugment.hflip = true\naugment.crop = 0.7\n",
        "[train]\naugment = { hflip = true, crop = 0.7 }\n",
        "[train.augment]\nhflip = true\ncrop = 0.7\n",
    ];
    let mut keys = Vec::new();
    for train in spellings {
        let grid = parse(
            "g.toml",
            &format!("{head}{train}[grid]\naugment.views = [0, 4]\n"),
        );
        let trials = grid.trials();
        let augment = trials[1].settings.augment().expect("views 4");
        assert_eq!(augment.views, 4);
        assert!(augment.set.hflip && augment.set.crop == 0.7 && augment.set.colour == 0.0);
        assert_eq!(param(&trials[1], "augment.views"), ParamValue::Int(4));
        keys.push(trials.iter().map(|t| t.key.clone()).collect::<Vec<_>>());
    }
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    // Views 0: the same trial, key and head phase as a grid that never names augmentation.
    let plain = parse(
        "g.toml",
        &format!("{head}[grid]\nlearning_rate = [0.001]\n"),
    );
    let views_0 = parse("g.toml", &format!("{head}{}", spellings[0]));
    let (plain, views_0) = (&plain.trials()[0], &views_0.trials()[0]);
    assert_eq!(views_0.settings.augment(), None);
    assert_eq!(views_0.key, plain.key);
    assert_eq!(views_0.settings, plain.settings);
}
