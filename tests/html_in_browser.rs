//! The HTML report rendered by a real headless Chromium: the plots and their labels are in the DOM, legibly sized.

use gridsearch::report::{build_with_epochs, html};
use gridsearch::trial::{
    EpochMetrics, ParamValue, Phase, StudyRecord, TrainSettings, TrialOutcome, TrialRecord,
    TrialState,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A 2 x 2 x 2-seed grid with curves: every section of the page has something to draw.
fn report_page() -> String {
    let study = StudyRecord {
        id: 1,
        name: "browser".into(),
        grid_toml: String::new(),
        created_at: "2024-01-01T00:00:00Z".into(),
    };
    let (mut trials, mut epochs) = (Vec::new(), BTreeMap::new());
    for (i, (lr, head, seed)) in [1e-3, 3e-3]
        .iter()
        .flat_map(|lr| [0i64, 256].map(move |h| (lr, h)))
        .flat_map(|(lr, h)| [0i64, 1].map(move |s| (*lr, h, s)))
        .enumerate()
    {
        let lr_gain = if lr > 2e-3 { 0.1 } else { 0.0 };
        let head_gain = if head > 0 { 0.05 } else { 0.0 };
        let acc = 0.6 + lr_gain + head_gain + 0.01 * seed as f64;
        let id = i as i64 + 1;
        let params = BTreeMap::from([
            ("learning_rate".to_string(), ParamValue::Float(lr)),
            ("head_size".to_string(), ParamValue::Int(head)),
            ("seed".to_string(), ParamValue::Int(seed)),
        ]);
        trials.push(TrialRecord {
            id,
            study_id: 1,
            key: format!("k{id}"),
            params,
            settings: TrainSettings::default(),
            state: TrialState::Complete,
            outcome: Some(TrialOutcome {
                val_accuracy: acc,
                best_val_accuracy: acc,
                val_loss: 0.5,
                balanced_accuracy: acc,
                f1: acc,
                best_objective: acc,
                epochs: 5,
                seconds: 3.0,
                ..TrialOutcome::default()
            }),
            error: None,
            started_at: None,
            finished_at: None,
        });
        let curve: Vec<EpochMetrics> = (1..=5)
            .map(|e| EpochMetrics {
                fold: 0,
                phase: if e <= 3 { Phase::Head } else { Phase::Finetune },
                epoch: if e <= 3 { e } else { e - 3 },
                train_loss: 1.0,
                train_accuracy: 0.5,
                val_loss: 1.0,
                val_accuracy: acc - 0.05 * (5 - e) as f64,
                val_balanced_accuracy: acc,
                val_f1: acc,
                seconds: 1.0,
            })
            .collect();
        epochs.insert(id, curve);
    }
    html::page(&build_with_epochs(&study, &trials, &epochs, None))
}

fn run_chromium(chromium: &Path, profile: &Path, args: &[&str], page: &Path) -> Vec<u8> {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromium is missing under CI: .ci/run installs it (apt-get install chromium)");
        }
        eprintln!("\n!!!!!!!! SKIPPED html_report_renders_in_headless_chromium: no /usr/bin/chromium (apt-get install chromium) !!!!!!!!\n");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, report_page()).unwrap();
    let profile = dir.path().join("profile");

    let dom = String::from_utf8(run_chromium(&chromium, &profile, &["--dump-dom"], &page)).unwrap();
    assert_eq!(
        dom.matches("class=\"effect-plot\"").count(),
        3,
        "one plot per axis"
    );
    for needle in [
        "class=\"importance\"",
        "class=\"heatmap\"",
        "class=\"curves\"",
        "id=\"ranked-table\"",
        "id=\"seed-table\"",
        "learning_rate (spread",
        ">head_size<",
        "seed-to-seed noise",
        "epoch (head phase, then fine-tune)",
        "#1 trial",
    ] {
        assert!(
            dom.contains(needle),
            "{needle:?} missing from the rendered DOM"
        );
    }
    assert!(dom.matches("class=\"curve\"").count() >= 2);
    assert_eq!(dom.matches("class=\"cell\"").count(), 4, "2 x 2 heat map");
    assert!(!dom.contains("<script"), "no scripts");
    // Legible: no text in the plots smaller than 12 px.
    for size in dom.split("font-size=\"").skip(1) {
        let px: f64 = size.split('"').next().unwrap().parse().unwrap();
        assert!(px >= 12.0, "text of {px}px");
    }

    let shot = dir.path().join("shot.png");
    let arg = format!("--screenshot={}", shot.display());
    run_chromium(
        &chromium,
        &profile,
        &[&arg, "--window-size=1200,2400"],
        &page,
    );
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("GRIDSEARCH_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
