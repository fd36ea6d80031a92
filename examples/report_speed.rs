//! Times `report` on 10,000 synthetic trials (a benchmark, not a test): `cargo run --release --example report_speed`.

use gridsearch::report::{build_with_epochs, html, render, Format};
use gridsearch::trial::{
    EpochMetrics, ParamValue, Phase, StudyRecord, TrainSettings, TrialOutcome, TrialRecord,
    TrialState,
};
use std::collections::BTreeMap;
use std::time::Instant;

/// 10 learning rates x 10 dropouts x 5 head sizes x 4 depths x 5 seeds = 10,000 trials, 8 epochs each.
fn synthetic() -> (Vec<TrialRecord>, BTreeMap<i64, Vec<EpochMetrics>>) {
    let (mut trials, mut epochs) = (Vec::new(), BTreeMap::new());
    let mut id = 0;
    for lr in 0..10 {
        for drop in 0..10 {
            for head in 0..5 {
                for depth in 0..4 {
                    for seed in 0..5 {
                        id += 1;
                        let acc = 0.5 + 0.02 * lr as f64 - 0.01 * drop as f64
                            + 0.03 * (head * depth) as f64 / 12.0
                            + 0.005 * ((id * 7919) % 13) as f64 / 13.0;
                        let params = BTreeMap::from([
                            (
                                "learning_rate".into(),
                                ParamValue::Float(1e-4 * (lr + 1) as f64),
                            ),
                            ("dropout".into(), ParamValue::Float(drop as f64 / 20.0)),
                            ("head_size".into(), ParamValue::Int(64 * head)),
                            ("unfreeze_depth".into(), ParamValue::Int(depth)),
                            ("seed".into(), ParamValue::Int(seed)),
                        ]);
                        trials.push(TrialRecord {
                            id,
                            study_id: 1,
                            key: format!("{id:016x}"),
                            params,
                            settings: TrainSettings::default(),
                            state: TrialState::Complete,
                            outcome: Some(TrialOutcome {
                                val_accuracy: acc,
                                best_val_accuracy: acc + 0.01,
                                val_loss: 0.5,
                                balanced_accuracy: acc,
                                f1: acc,
                                best_objective: acc + 0.01,
                                epochs: 8,
                                seconds: 10.0,
                                ..TrialOutcome::default()
                            }),
                            error: None,
                            started_at: None,
                            finished_at: None,
                        });
                        let curve = (1..=8)
                            .map(|e| EpochMetrics {
                                fold: 0,
                                phase: if e <= 5 { Phase::Head } else { Phase::Finetune },
                                epoch: if e <= 5 { e } else { e - 5 },
                                train_loss: 1.0,
                                train_accuracy: acc,
                                val_loss: 1.0,
                                val_accuracy: acc - 0.01 * (8 - e) as f64,
                                val_balanced_accuracy: acc,
                                val_f1: acc,
                                seconds: 1.0,
                            })
                            .collect();
                        epochs.insert(id, curve);
                    }
                }
            }
        }
    }
    (trials, epochs)
}

fn main() {
    let study = StudyRecord {
        id: 1,
        name: "speed".into(),
        grid_toml: String::new(),
        created_at: "2024-01-01T00:00:00Z".into(),
    };
    let (trials, epochs) = synthetic();
    let start = Instant::now();
    let report = build_with_epochs(&study, &trials, &epochs, None);
    let built = start.elapsed();
    println!(
        "{} trials: build {:.3} s",
        trials.len(),
        built.as_secs_f64()
    );
    for format in Format::ALL {
        let start = Instant::now();
        let text = render(&report, format);
        let took = start.elapsed().as_secs_f64();
        println!("render {format}: {took:.3} s ({} bytes)", text.len());
    }
    let start = Instant::now();
    let page = html::page(&report);
    let took = start.elapsed().as_secs_f64();
    println!("render html: {took:.3} s ({} bytes)", page.len());
}
