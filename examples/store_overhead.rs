//! What the store costs per trial, apart from training: one claim, the epoch rows with the
//! heartbeat after each (as the scheduler writes them), and the result. Median and 90th
//! percentile over many tiny trials, on SQLite and, when a URL is given, on PostgreSQL.
//!
//! cargo run --release --example store_overhead -- [TRIALS] [postgres://...]

use gridsearch::store::Store;
use gridsearch::trial::{EpochMetrics, Phase, TrainSettings, TrialOutcome, TrialSpec};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Epoch rows per trial: a head phase of 3 epochs and a fine-tune of 2.
const EPOCHS: [(Phase, usize); 5] = [
    (Phase::Head, 1),
    (Phase::Head, 2),
    (Phase::Head, 3),
    (Phase::Finetune, 1),
    (Phase::Finetune, 2),
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let trials: usize = args.first().map_or(Ok(1000), |n| n.parse())?;
    let dir = tempfile::tempdir()?;
    let sqlite = dir.path().join("overhead.db");
    measure("sqlite", &sqlite, trials)?;
    if let Some(url) = args.get(1) {
        measure("postgres", Path::new(url), trials)?;
    }
    Ok(())
}

/// Time `trials` trials through a fresh study on `db` and print the figures.
fn measure(name: &str, db: &Path, trials: usize) -> anyhow::Result<()> {
    let mut store = Store::open(db)?;
    let study_name = format!("overhead-{}", std::process::id());
    let study = store.ensure_study(&study_name, "", "overhead")?;
    let specs: Vec<TrialSpec> = (0..trials).map(spec).collect();
    store.add_trials(study.id, &specs)?;
    let mut millis = Vec::with_capacity(trials);
    for spec in &specs {
        let started = Instant::now();
        let claimed = store.claim(study.id, std::slice::from_ref(&spec.key), "bench")?;
        let lease = claimed[0].lease;
        for (phase, epoch) in EPOCHS {
            store.record_epoch(&lease, &metrics(phase, epoch))?;
            store.heartbeat(&[lease])?;
        }
        store.complete_trial(&lease, &outcome())?;
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    millis.sort_by(f64::total_cmp);
    let at = |q: f64| millis[((millis.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: store overhead per trial (claim + {} epochs with heartbeats + result) over {trials} trials: median {:.3} ms, p90 {:.3} ms, max {:.3} ms",
        EPOCHS.len(),
        at(0.5),
        at(0.9),
        at(1.0)
    );
    Ok(())
}

fn spec(i: usize) -> TrialSpec {
    TrialSpec {
        key: format!("trial{i:05}"),
        params: BTreeMap::new(),
        settings: TrainSettings::default(),
    }
}

fn metrics(phase: Phase, epoch: usize) -> EpochMetrics {
    EpochMetrics {
        fold: 0,
        phase,
        epoch,
        train_loss: 0.5,
        train_accuracy: 0.8,
        val_loss: 0.6,
        val_accuracy: 0.75,
        val_balanced_accuracy: 0.74,
        val_f1: 0.7,
        seconds: 0.01,
    }
}

fn outcome() -> TrialOutcome {
    TrialOutcome {
        val_accuracy: 0.75,
        best_val_accuracy: 0.76,
        val_loss: 0.6,
        balanced_accuracy: 0.74,
        f1: 0.7,
        best_objective: 0.76,
        epochs: EPOCHS.len(),
        seconds: 0.05,
        ..TrialOutcome::default()
    }
}
