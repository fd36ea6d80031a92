//! The sections with one row per trial: ranked trials, learning curves, failed trials.

use super::cells::{
    axis_is_numeric, param_cells, ranked_cells, ranked_header, ranked_numeric, strings, Section,
    Style,
};
use super::schema::{FailedRow, Report};
use crate::trial::Vocabulary;

pub(super) fn ranked_section(report: &Report, style: Style) -> Section {
    let title = if report.ranked.len() < report.ranked_total {
        format!(
            "Ranked trials (top {} of {})",
            report.ranked.len(),
            report.ranked_total
        )
    } else {
        "Ranked trials".to_string()
    };
    let mut section = Section::new(title, ranked_header(report), ranked_numeric(report));
    section.when_empty = "no complete trials yet";
    section.rows = report
        .ranked
        .iter()
        .map(|row| ranked_cells(row, report, style))
        .collect();
    section
}

pub(super) fn curves_section(report: &Report, style: Style) -> Section {
    if style.precise {
        let header = strings(&[
            "rank",
            "trial",
            "step",
            "phase",
            "epoch",
            "train_accuracy",
            "val_accuracy",
            "val_loss",
        ]);
        let mut section = Section::new(
            "Learning curves".into(),
            header,
            vec![true, true, true, false, true, true, true, true],
        );
        for curve in &report.curves {
            for p in &curve.points {
                section.rows.push(vec![
                    curve.rank.to_string(),
                    curve.trial.to_string(),
                    p.step.to_string(),
                    p.phase.as_str().to_string(),
                    p.epoch.to_string(),
                    p.train_accuracy.to_string(),
                    p.val_accuracy.to_string(),
                    p.val_loss.to_string(),
                ]);
            }
        }
        return section;
    }
    let header = strings(&["rank", "trial", "head phase", "fine-tune phase"]);
    let mut section = Section::new(
        "Learning curves: val_accuracy by epoch".into(),
        header,
        vec![true, true, false, false],
    );
    for curve in &report.curves {
        let phase = |name: &str| {
            curve
                .points
                .iter()
                .filter(|p| p.phase.as_str() == name)
                .map(|p| format!("{:.3}", p.val_accuracy))
                .collect::<Vec<_>>()
                .join(" ")
        };
        section.rows.push(vec![
            curve.rank.to_string(),
            curve.trial.to_string(),
            phase("head"),
            phase("finetune"),
        ]);
    }
    section
}

pub(super) fn failed_section(report: &Report) -> Section {
    let mut header = vec!["trial".to_string()];
    header.extend(report.axes.iter().cloned());
    header.push("error".to_string());
    let mut numeric = vec![true];
    numeric.extend(report.axes.iter().map(|axis| axis_is_numeric(report, axis)));
    numeric.push(false);
    let mut section = Section::new("Failed trials".into(), header, numeric);
    section.rows = report
        .failed
        .iter()
        .map(|row| failed_cells(row, &report.axes))
        .collect();
    section
}

fn failed_cells(row: &FailedRow, axes: &[String]) -> Vec<String> {
    let mut cells = vec![row.trial.to_string()];
    cells.extend(param_cells(&row.params, axes, "-"));
    cells.push(row.error.clone());
    cells
}
