//! Tests of reading each section of a grid file: accepted values and one-line errors.
use crate::grid::Grid;
use std::path::Path;

/// Marks where an error must point: removed before parsing.
const MARK: char = '‸';

const DATA: &str = "[data]\nroot = \"d\"\n";
const MODEL: &str = "[model]\nbackbone = \"efficientnet-lite0\"\nweights = \"w\"\n";

/// The text without its mark, and the mark's 1-based line and column.
fn unmark(marked: &str) -> (String, usize, usize) {
    let at = marked.find(MARK).expect("case has a mark");
    let before = &marked[..at];
    let line = before.lines().count() + usize::from(before.ends_with('\n') || before.is_empty());
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (marked.replace(MARK, ""), line, col)
}

#[test]
fn unmark_finds_line_and_column() {
    assert_eq!(unmark("‸a"), ("a".to_string(), 1, 1));
    assert_eq!(unmark("ab\ncd‸e"), ("ab\ncde".to_string(), 2, 3));
    assert_eq!(unmark("ab\n‸cd"), ("ab\ncd".to_string(), 2, 1));
}

#[test]
fn each_invalid_grid_gets_one_line_at_the_offending_spot() {
    let with = |rest: &str| format!("{DATA}{MODEL}{rest}");
    let cases: Vec<(String, &str)> = vec![
        // unknown sections and keys
        (with("[‸trian]\n"), "did you mean [train]"),
        (
            format!("‸name = \"x\"\n{DATA}{MODEL}"),
            "unknown section [name]",
        ),
        (
            format!("[data]\nroot = \"d\"\n‸image_sise = 64\n{MODEL}"),
            "did you mean `image_size`",
        ),
        (with("[study]\n‸nam = \"x\"\n"), "`name`"),
        (
            format!("{DATA}[model]\nbackbone = \"efficientnet-lite0\"\n‸weight = \"w\"\n"),
            "did you mean `weights`",
        ),
        (
            with("[train]\n‸lerning_rate = 0.1\n"),
            "did you mean `learning_rate`",
        ),
        (
            with("[grid]\n‸dropouts = [0.1]\n"),
            "did you mean `dropout`",
        ),
        (with("[train]\n‸seed = 1\n"), "[study]"),
        // wrong types
        (with("[train]\nbatch_size = ‸32.0\n"), "integer"),
        (with("[train]\nlearning_rate = ‸\"fast\"\n"), "number"),
        (with("[study]\nseed = ‸1.5\n"), "integer"),
        (with("[study]\nseed = ‸99999999999999999999\n"), "range"),
        (format!("‸train = 3\n{DATA}{MODEL}"), "table"),
        (with("[[‸grid]]\ndropout = [0.1]\n"), "table"),
        (with("[grid]\ndropout = ‸0.3\n"), "array"),
        // axes
        (with("[grid]\ndropout = ‸[]\n"), "empty"),
        (
            with("[grid]\nlearning_rate = [0.001, ‸1e-3]\n"),
            "duplicate",
        ),
        (with("[grid]\nlearning_rate = [1, ‸1.0]\n"), "duplicate"),
        (
            with("[train]\ndropout = 0.1\n[grid]\n‸dropout = [0.2]\n"),
            "both",
        ),
        // setting ranges
        (with("[grid]\nlearning_rate = [0.1, ‸0]\n"), "> 0"),
        (with("[train]\nlearning_rate = ‸-1e-3\n"), "> 0"),
        (with("[train]\nlearning_rate = ‸inf\n"), "finite"),
        (with("[train]\nlearning_rate = ‸nan\n"), "finite"),
        (with("[train]\ndropout = ‸1\n"), "[0, 1)"),
        (with("[grid]\ndropout = [‸-0.1]\n"), "[0, 1)"),
        (
            with("[grid]\nhead_size = [0, ‸65537]\n"),
            "between 0 and 65536",
        ),
        (
            with("[grid]\nunfreeze_depth = [0, ‸17]\n"),
            "between 0 and 16",
        ),
        (with("[train]\nbatch_size = ‸0\n"), "at least 1"),
        (with("[train]\nhead_epochs = ‸0\n"), "at least 1"),
        (with("[train]\npatience = ‸-1\n"), "at least 0"),
        (with("[train]\nfinetune_lr_factor = ‸0.0\n"), "> 0"),
        (with("[train]\nweight_decay = ‸-0.01\n"), ">= 0"),
        (with("[study]\nseed = ‸-3\n"), "at least 0"),
        (with("[grid]\nseed = [0, ‸-1]\n"), "at least 0"),
        (
            with("[train]\noptimizer = ‸\"lion\"\n"),
            "adam, adamw or sgd",
        ),
        // augmentation
        (
            with("[train]\naugment.‸flip = true\n"),
            "unknown key `augment.flip` in [train] (did you mean `augment.hflip`?)",
        ),
        (
            with("[train.augment]\n‸view = 2\n"),
            "did you mean `augment.views`",
        ),
        (with("[train]\naugment.hflip = ‸1\n"), "true or false"),
        (with("[train]\naugment.crop = ‸0\n"), "(0, 1]"),
        (with("[grid]\naugment.crop = [0.5, ‸1.5]\n"), "(0, 1]"),
        (with("[train]\naugment.colour = ‸1\n"), "[0, 1)"),
        (
            with("[grid]\naugment.views = [0, ‸65]\n"),
            "between 0 and 64",
        ),
        (with("[grid]\naugment.views = ‸4\n"), "array"),
        (
            with("[train]\naugment = { views = 2 }\n[grid]\naugment.‸views = [4]\n"),
            "both",
        ),
        // model
        (
            format!("{DATA}[model]\nbackbone = ‸\"resnet50\"\nweights = \"w\"\n"),
            "known backbones: efficientnet-lite0",
        ),
        (
            format!("{DATA}[‸model]\nbackbone = \"efficientnet-lite0\"\n"),
            "needs `weights`",
        ),
        // data
        (
            format!("[data]\nroot = \"d\"\nimage_size = ‸16\n{MODEL}"),
            "between 32 and 1024",
        ),
        (
            format!("[data]\nroot = \"d\"\nimage_size = ‸2048\n{MODEL}"),
            "between 32 and 1024",
        ),
        (
            format!("[data]\nroot = \"d\"\nval_fraction = ‸1.0\n{MODEL}"),
            "(0, 1)",
        ),
        (
            format!("[data]\nroot = \"d\"\nval_fraction = ‸0\n{MODEL}"),
            "(0, 1)",
        ),
        (
            format!("[data]\nroot = \"d\"\n‸train = \"t\"\nval = \"v\"\n{MODEL}"),
            "not both",
        ),
        (
            format!("[data]\nroot = \"d\"\n‸val = \"v\"\n{MODEL}"),
            "not both",
        ),
        (
            format!("[‸data]\nimage_size = 64\n{MODEL}"),
            "needs a source",
        ),
        (format!("[data]\n‸train = \"t\"\n{MODEL}"), "needs `val`"),
        (format!("[data]\n‸val = \"v\"\n{MODEL}"), "needs `train`"),
        (
            format!("[data]\ntrain = \"t\"\nval = \"v\"\nsplit = ‸\"random\"\n{MODEL}"),
            "only with `root`",
        ),
        (
            format!("[data]\ntrain = \"t\"\nval = \"v\"\nval_fraction = ‸0.1\n{MODEL}"),
            "only with `root`",
        ),
        (
            format!("[data]\nroot = \"d\"\nsplit = ‸\"shuffled\"\n{MODEL}"),
            "\"ordered\"",
        ),
        (
            format!("[data]\nroot = \"d\"\ntrain_per_class = ‸0\n{MODEL}"),
            "at least 1",
        ),
        (format!("[data]\nroot = ‸\"\"\n{MODEL}"), "empty"),
        // study name
        (with("[study]\nname = ‸\"-bad\"\n"), "invalid study name"),
        (
            with("[study]\nname = ‸\"has space\"\n"),
            "invalid study name",
        ),
        (
            with(&format!("[study]\nname = ‸\"{}\"\n", "a".repeat(65))),
            "invalid study name",
        ),
        // TOML syntax
        (with("[train]\nbatch_size = ‸\n"), "invalid TOML"),
        (
            with("[train]\nbatch_size = 1\n‸batch_size = 2\n"),
            "duplicate key",
        ),
    ];
    for (marked, keyword) in cases {
        let (text, line, col) = unmark(&marked);
        let err = Grid::parse(Path::new("grids/g.toml"), &text)
            .expect_err(&marked)
            .to_string();
        let prefix = format!("grids/g.toml:{line}:{col}: ");
        assert!(
            err.starts_with(&prefix),
            "want {prefix}, got {err}\n{marked}"
        );
        assert!(err.contains(keyword), "want `{keyword}` in {err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn errors_without_a_position_name_the_file() {
    let err = Grid::parse(Path::new("g.toml"), MODEL)
        .expect_err("no data")
        .to_string();
    assert_eq!(err, "g.toml: missing section [data]");
    let err = Grid::parse(Path::new("g.toml"), DATA)
        .expect_err("no model")
        .to_string();
    assert_eq!(err, "g.toml: missing section [model]");
    let text = format!("{DATA}{MODEL}");
    let err = Grid::parse(Path::new("dir/my grid.toml"), &text)
        .expect_err("bad stem")
        .to_string();
    assert!(
        err.starts_with("dir/my grid.toml: invalid study name \"my grid\""),
        "{err}"
    );
    assert!(err.contains("set `name` in [study]"), "{err}");
}

#[test]
fn valid_study_names() {
    for good in ["a", "Z9", "dep_1.2-x", &"a".repeat(64)] {
        assert!(super::is_valid_study_name(good), "{good}");
    }
    for bad in ["", "_a", ".a", "a b", "é", &"a".repeat(65)] {
        assert!(!super::is_valid_study_name(bad), "{bad}");
    }
}
