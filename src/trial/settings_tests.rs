//! Tests of the settings table: it covers `TrainSettings` exactly, and it decides the head phase.

use super::*;

/// The settings with every field off its default.
fn changed() -> TrainSettings {
    TrainSettings {
        learning_rate: 0.5,
        dropout: 0.25,
        head_size: 7,
        unfreeze_depth: 3,
        batch_size: 9,
        head_epochs: 11,
        finetune_epochs: 13,
        patience: 4,
        finetune_lr_factor: 0.3,
        optimizer: Optimizer::Sgd,
        weight_decay: 1e-4,
        seed: 17,
        objective: Objective::F1,
        class_weights: ClassWeights::Balanced,
        label_smoothing: 0.1,
        lr_schedule: LrSchedule::Cosine,
        augment_views: 4,
        augment_hflip: true,
        augment_crop: 0.5,
        augment_colour: 0.2,
    }
}

/// Another valid value of the setting than the one `settings` has.
fn other_value(setting: &Setting, settings: &TrainSettings) -> ParamValue {
    let now = (setting.get)(settings);
    match (setting.range, &now) {
        (Range::Choice(names), ParamValue::Str(s)) => {
            let other = names.iter().find(|n| *n != s).expect("two choices");
            ParamValue::Str(other.to_string())
        }
        (Range::Fraction, ParamValue::Float(x)) => ParamValue::Float((x + 0.5) % 1.0),
        (_, ParamValue::Float(x)) => ParamValue::Float(x * 2.0 + 1.0),
        (_, ParamValue::Int(i)) => ParamValue::Int(i + 1),
        (_, ParamValue::Bool(b)) => ParamValue::Bool(!b),
        other => panic!("{}: unexpected {other:?}", setting.name),
    }
}

#[test]
fn the_table_covers_every_field_and_serde_agrees() {
    for settings in [TrainSettings::default(), changed()] {
        let serde = serde_json::to_value(&settings).expect("serialisable");
        let table = serde_json::Value::Object(settings.to_json_except(&[]));
        assert_eq!(table, serde);
    }
    let serde = serde_json::to_value(changed()).expect("serialisable");
    let fields: Vec<&String> = serde.as_object().expect("object").keys().collect();
    let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
    names.sort_unstable();
    assert_eq!(fields, names, "serde_json sorts keys; compare as sets");
}

#[test]
fn get_and_set_are_inverse_for_every_setting() {
    let target = changed();
    let mut settings = TrainSettings::default();
    for s in SETTINGS {
        settings.apply(s.name, &(s.get)(&target));
    }
    assert_eq!(settings, target);
}

#[test]
fn a_head_phase_setting_changes_the_head_key_and_a_finetune_one_does_not() {
    for base in [TrainSettings::default(), changed()] {
        for s in SETTINGS {
            let mut other = base.clone();
            other.apply(s.name, &other_value(s, &base));
            assert_ne!(other, base, "{} did not change", s.name);
            let same = other.head_phase_key() == base.head_phase_key();
            match s.affects {
                Affects::HeadPhase => assert!(!same, "{} left the head key as it was", s.name),
                Affects::FinetuneOnly => assert!(same, "{} changed the head key", s.name),
            }
        }
    }
}

#[test]
fn only_the_seed_stays_out_of_the_train_table() {
    let outside: Vec<&str> = SETTINGS
        .iter()
        .filter(|s| !s.in_train_table)
        .map(|s| s.name)
        .collect();
    assert_eq!(outside, ["seed"]);
}
