//! The training settings a grid file may set: checking one value and applying it to `TrainSettings`.

use super::doc::{expect_count, expect_float, expect_str, Issue, Value};
use crate::trial::{ClassWeights, Objective, Optimizer, ParamValue, TrainSettings};

/// Every setting name, in `TrainSettings` order; `[train]` takes all but `seed`, `[grid]` all.
pub(super) const SETTING_KEYS: &[&str] = &[
    "learning_rate",
    "dropout",
    "head_size",
    "unfreeze_depth",
    "batch_size",
    "head_epochs",
    "finetune_epochs",
    "patience",
    "finetune_lr_factor",
    "optimizer",
    "weight_decay",
    "seed",
    "objective",
    "class_weights",
];

/// The keys `[train]` accepts (the seed comes from `[study]` or a `[grid]` axis).
pub(super) fn train_keys() -> Vec<&'static str> {
    SETTING_KEYS
        .iter()
        .copied()
        .filter(|k| *k != "seed")
        .collect()
}

/// Largest hidden layer a head may have.
const MAX_HEAD_SIZE: i64 = 65536;

/// Checks one value of setting `name` and returns it as the grid keeps it
/// (floats as `Float`, counts as `Int`, the optimizer as `Str`).
pub(super) fn setting_value(
    name: &str,
    value: &Value<'_>,
    blocks: usize,
) -> Result<ParamValue, Issue> {
    let blocks = i64::try_from(blocks).unwrap_or(i64::MAX);
    match name {
        "learning_rate" | "finetune_lr_factor" => positive_float(name, value),
        "dropout" => dropout(value),
        "weight_decay" => non_negative_float(name, value),
        "head_size" => count(name, value, 0, MAX_HEAD_SIZE),
        "unfreeze_depth" => count(name, value, 0, blocks),
        "batch_size" | "head_epochs" => count(name, value, 1, i64::MAX),
        "finetune_epochs" | "patience" | "seed" => count(name, value, 0, i64::MAX),
        "optimizer" => optimizer(value),
        "objective" => choice(
            name,
            value,
            |s| Objective::parse(s).is_some(),
            "accuracy, balanced_accuracy, f1 or val_loss",
        ),
        "class_weights" => choice(
            name,
            value,
            |s| ClassWeights::parse(s).is_some(),
            "none or balanced",
        ),
        _ => Err(Issue::at(value.span(), format!("unknown setting `{name}`"))),
    }
}

fn count(name: &str, value: &Value<'_>, min: i64, max: i64) -> Result<ParamValue, Issue> {
    let number = expect_count(name, value, min, max)?;
    // expect_count bounds the value by an i64, so this conversion cannot fail.
    Ok(ParamValue::Int(i64::try_from(number).unwrap_or(i64::MAX)))
}

fn positive_float(name: &str, value: &Value<'_>) -> Result<ParamValue, Issue> {
    let x = expect_float(name, value)?;
    if !(x.is_finite() && x > 0.0) {
        return Err(Issue::at(
            value.span(),
            format!("`{name}` must be a finite number > 0, not {x}"),
        ));
    }
    Ok(ParamValue::Float(x))
}

fn non_negative_float(name: &str, value: &Value<'_>) -> Result<ParamValue, Issue> {
    let x = expect_float(name, value)?;
    if !(x.is_finite() && x >= 0.0) {
        return Err(Issue::at(
            value.span(),
            format!("`{name}` must be a finite number >= 0, not {x}"),
        ));
    }
    Ok(ParamValue::Float(x))
}

fn dropout(value: &Value<'_>) -> Result<ParamValue, Issue> {
    let x = expect_float("dropout", value)?;
    if !(0.0..1.0).contains(&x) {
        return Err(Issue::at(
            value.span(),
            format!("`dropout` must be in [0, 1), not {x}"),
        ));
    }
    // -0.0 and 0.0 are the same dropout; keep one spelling so keys agree.
    Ok(ParamValue::Float(x + 0.0))
}

fn optimizer(value: &Value<'_>) -> Result<ParamValue, Issue> {
    let name = expect_str("optimizer", value)?;
    match Optimizer::parse(name) {
        Some(_) => Ok(ParamValue::Str(name.to_string())),
        None => Err(Issue::at(
            value.span(),
            format!("unknown optimizer {name:?}; choose adam, adamw or sgd"),
        )),
    }
}

fn choice(
    name: &str,
    value: &Value<'_>,
    known: fn(&str) -> bool,
    choices: &str,
) -> Result<ParamValue, Issue> {
    let text = expect_str(name, value)?;
    if known(text) {
        Ok(ParamValue::Str(text.to_string()))
    } else {
        Err(Issue::at(
            value.span(),
            format!("unknown {name} {text:?}; choose {choices}"),
        ))
    }
}

/// Sets field `name` of `settings` to a value checked by [`setting_value`]
/// (a value of another shape, impossible after checking, leaves the field as it was).
pub(super) fn apply_setting(settings: &mut TrainSettings, name: &str, value: &ParamValue) {
    let float = value.as_f64();
    let count = match value {
        ParamValue::Int(i) => u64::try_from(*i).ok(),
        _ => None,
    };
    let size = count.and_then(|c| usize::try_from(c).ok());
    match name {
        "learning_rate" => set(&mut settings.learning_rate, float),
        "dropout" => set(&mut settings.dropout, float),
        "finetune_lr_factor" => set(&mut settings.finetune_lr_factor, float),
        "weight_decay" => set(&mut settings.weight_decay, float),
        "head_size" => set(&mut settings.head_size, size),
        "unfreeze_depth" => set(&mut settings.unfreeze_depth, size),
        "batch_size" => set(&mut settings.batch_size, size),
        "head_epochs" => set(&mut settings.head_epochs, size),
        "finetune_epochs" => set(&mut settings.finetune_epochs, size),
        "patience" => set(&mut settings.patience, size),
        "seed" => set(&mut settings.seed, count),
        "optimizer" => {
            if let ParamValue::Str(s) = value {
                set(&mut settings.optimizer, Optimizer::parse(s));
            }
        }
        "objective" => {
            if let ParamValue::Str(s) = value {
                set(&mut settings.objective, Objective::parse(s));
            }
        }
        "class_weights" => {
            if let ParamValue::Str(s) = value {
                set(&mut settings.class_weights, ClassWeights::parse(s));
            }
        }
        _ => {}
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::de::DeTable;

    fn check(name: &str, literal: &str) -> Result<ParamValue, Issue> {
        let text = format!("x = {literal}");
        let doc = DeTable::parse(&text).expect("valid toml").into_inner();
        let (_, value) = doc.iter().next().expect("one entry");
        setting_value(name, value, 16)
    }

    #[test]
    fn accepted_values_become_the_grid_types() {
        assert_eq!(check("learning_rate", "1"), Ok(ParamValue::Float(1.0)));
        assert_eq!(check("dropout", "-0.0"), Ok(ParamValue::Float(0.0)));
        assert_eq!(check("weight_decay", "0"), Ok(ParamValue::Float(0.0)));
        assert_eq!(check("head_size", "65536"), Ok(ParamValue::Int(65536)));
        assert_eq!(check("unfreeze_depth", "16"), Ok(ParamValue::Int(16)));
        assert_eq!(check("patience", "0"), Ok(ParamValue::Int(0)));
        assert_eq!(
            check("optimizer", "\"sgd\""),
            Ok(ParamValue::Str("sgd".into()))
        );
        assert_eq!(
            check("objective", "\"balanced_accuracy\""),
            Ok(ParamValue::Str("balanced_accuracy".into()))
        );
        assert_eq!(
            check("class_weights", "\"balanced\""),
            Ok(ParamValue::Str("balanced".into()))
        );
    }

    #[test]
    fn rejected_values_say_why() {
        let cases = [
            ("learning_rate", "0", "> 0"),
            ("learning_rate", "nan", "finite"),
            ("learning_rate", "inf", "finite"),
            ("finetune_lr_factor", "-0.1", "> 0"),
            ("dropout", "1.0", "[0, 1)"),
            ("weight_decay", "-1e-4", ">= 0"),
            ("head_size", "65537", "between 0 and 65536"),
            ("unfreeze_depth", "17", "between 0 and 16"),
            ("batch_size", "0", "at least 1"),
            ("head_epochs", "0", "at least 1"),
            ("seed", "-1", "at least 0"),
            ("batch_size", "32.0", "integer"),
            ("optimizer", "\"lion\"", "unknown optimizer"),
            ("optimizer", "1", "string"),
            ("objective", "\"loss\"", "unknown objective"),
            ("objective", "1", "string"),
            ("class_weights", "\"auto\"", "unknown class_weights"),
        ];
        for (name, literal, keyword) in cases {
            let err = check(name, literal).expect_err(literal);
            assert!(
                err.message.contains(keyword),
                "{name} = {literal}: {}",
                err.message
            );
            assert_eq!(err.span, Some(4..4 + literal.len()));
        }
    }

    #[test]
    fn apply_sets_each_field() {
        let mut s = TrainSettings::default();
        apply_setting(&mut s, "learning_rate", &ParamValue::Float(0.5));
        apply_setting(&mut s, "head_size", &ParamValue::Int(128));
        apply_setting(&mut s, "optimizer", &ParamValue::Str("adamw".into()));
        apply_setting(&mut s, "seed", &ParamValue::Int(7));
        apply_setting(&mut s, "patience", &ParamValue::Int(0));
        apply_setting(&mut s, "objective", &ParamValue::Str("f1".into()));
        apply_setting(&mut s, "class_weights", &ParamValue::Str("balanced".into()));
        assert_eq!(s.learning_rate, 0.5);
        assert_eq!(s.head_size, 128);
        assert_eq!(s.optimizer, Optimizer::AdamW);
        assert_eq!(s.seed, 7);
        assert_eq!(s.patience, 0);
        assert_eq!(s.objective, Objective::F1);
        assert_eq!(s.class_weights, ClassWeights::Balanced);
        assert_eq!(s.batch_size, TrainSettings::default().batch_size);
    }

    #[test]
    fn train_keys_exclude_only_the_seed() {
        let keys = train_keys();
        assert_eq!(keys.len(), SETTING_KEYS.len() - 1);
        assert!(!keys.contains(&"seed"));
    }
}
