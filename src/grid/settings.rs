//! Checking one grid-file value of a training setting against the setting's [`Range`].

use super::doc::{
    entries_in_file_order, expect_bool, expect_count, expect_float, expect_str, unknown_key, Issue,
    Key, Value,
};
use crate::trial::{list_choices, setting, ParamValue, Range, SETTINGS};
use toml::de::DeTable;

/// The keys `[grid]` accepts: every setting.
pub(super) fn grid_keys() -> Vec<&'static str> {
    SETTINGS.iter().map(|s| s.name).collect()
}

/// The keys `[train]` accepts (the seed comes from `[study]` or a `[grid]` axis).
pub(super) fn train_keys() -> Vec<&'static str> {
    SETTINGS
        .iter()
        .filter(|s| s.in_train_table)
        .map(|s| s.name)
        .collect()
}

/// The entries of a `[train]` or `[grid]` table by setting name, in file order: a setting
/// named `group.key` (e.g. `augment.views`) is written `augment.views = 4`, as `augment = { views
/// = 4 }` or under `[train.augment]`, all one nested table in TOML. Fails on the first key
/// that is not in `allowed`.
pub(super) fn setting_entries<'a, 'i>(
    table: &'a DeTable<'i>,
    section: &str,
    allowed: &[&str],
) -> Result<Vec<(String, &'a Key<'i>, &'a Value<'i>)>, Issue> {
    let mut entries = Vec::new();
    for (key, value) in entries_in_file_order(table) {
        let name = key.get_ref().as_ref();
        let group = format!("{name}.");
        let nested = value.get_ref().as_table();
        match nested.filter(|_| allowed.iter().any(|a| a.starts_with(&group))) {
            Some(nested) => {
                for (inner, value) in entries_in_file_order(nested) {
                    entries.push((format!("{group}{}", inner.get_ref()), inner, value));
                }
            }
            None => entries.push((name.to_string(), key, value)),
        }
    }
    if let Some((name, key, _)) = entries
        .iter()
        .find(|(n, ..)| !allowed.contains(&n.as_str()))
    {
        return Err(unknown_key(key, name, section, allowed));
    }
    Ok(entries)
}

/// Checks one value of setting `name` and returns it as the grid keeps it
/// (numbers as `Float`, counts as `Int`, names as `Str`).
pub(super) fn setting_value(
    name: &str,
    value: &Value<'_>,
    blocks: usize,
) -> Result<ParamValue, Issue> {
    let Some(setting) = setting(name) else {
        return Err(Issue::at(value.span(), format!("unknown setting `{name}`")));
    };
    let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    match setting.range {
        Range::Positive => number(name, value, |x| x > 0.0, "a finite number > 0"),
        Range::NonNegative => number(name, value, |x| x >= 0.0, "a finite number >= 0"),
        Range::Fraction => number(name, value, |x| (0.0..1.0).contains(&x), "in [0, 1)"),
        Range::Share => number(name, value, |x| x > 0.0 && x <= 1.0, "in (0, 1]"),
        Range::Flag => expect_bool(name, value).map(ParamValue::Bool),
        Range::Count { min, max } => count(name, value, to_i64(min), to_i64(max)),
        Range::Blocks => count(name, value, 0, to_i64(blocks as u64)),
        Range::Choice(names) => choice(name, value, names),
    }
}

fn count(name: &str, value: &Value<'_>, min: i64, max: i64) -> Result<ParamValue, Issue> {
    let number = expect_count(name, value, min, max)?;
    // expect_count bounds the value by an i64, so this conversion cannot fail.
    Ok(ParamValue::Int(i64::try_from(number).unwrap_or(i64::MAX)))
}

/// A finite number for which `accepts` holds; `must_be` says which in the error.
fn number(
    name: &str,
    value: &Value<'_>,
    accepts: fn(f64) -> bool,
    must_be: &str,
) -> Result<ParamValue, Issue> {
    let x = expect_float(name, value)?;
    if !(x.is_finite() && accepts(x)) {
        return Err(Issue::at(
            value.span(),
            format!("`{name}` must be {must_be}, not {x}"),
        ));
    }
    // -0.0 and 0.0 are the same setting; keep one spelling so keys agree.
    Ok(ParamValue::Float(x + 0.0))
}

fn choice(name: &str, value: &Value<'_>, names: &[&str]) -> Result<ParamValue, Issue> {
    let text = expect_str(name, value)?;
    if names.contains(&text) {
        Ok(ParamValue::Str(text.to_string()))
    } else {
        Err(Issue::at(
            value.span(),
            format!("unknown {name} {text:?}; choose {}", list_choices(names)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trial::{ClassWeights, Objective, Optimizer, TrainSettings};
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
        assert_eq!(check("label_smoothing", "0.1"), Ok(ParamValue::Float(0.1)));
        assert_eq!(
            check("lr_schedule", "\"cosine\""),
            Ok(ParamValue::Str("cosine".into()))
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
            ("label_smoothing", "1", "[0, 1)"),
            ("label_smoothing", "-0.1", "[0, 1)"),
            ("lr_schedule", "\"linear\"", "constant or cosine"),
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
        s.apply("learning_rate", &ParamValue::Float(0.5));
        s.apply("head_size", &ParamValue::Int(128));
        s.apply("optimizer", &ParamValue::Str("adamw".into()));
        s.apply("seed", &ParamValue::Int(7));
        s.apply("patience", &ParamValue::Int(0));
        s.apply("objective", &ParamValue::Str("f1".into()));
        s.apply("class_weights", &ParamValue::Str("balanced".into()));
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
        assert_eq!(keys.len(), grid_keys().len() - 1);
        assert!(!keys.contains(&"seed"));
    }
}
