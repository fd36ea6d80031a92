//! Formatted cells: the titled `Section` table that the terminal, markdown and CSV writers draw,
//! the number `Style`, and the cells the HTML page shares with them.

use super::schema::{KeptEpoch, RankedRow, Report, SeedGroup};
use crate::trial::{Objective, ParamValue, Vocabulary};
use std::collections::BTreeMap;

/// A titled table of already formatted cells.
pub(super) struct Section {
    pub title: String,
    pub header: Vec<String>,
    /// Per column: whether it holds numbers (right-aligned).
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
    /// Shown instead of the table when there are no rows.
    pub when_empty: &'static str,
    /// Sentences printed under the table.
    pub notes: Vec<String>,
}

impl Section {
    pub(super) fn new(title: String, header: Vec<String>, numeric: Vec<bool>) -> Section {
        Section {
            title,
            header,
            numeric,
            rows: Vec::new(),
            when_empty: "none",
            notes: Vec::new(),
        }
    }
}

/// How numbers are written: rounded for people, or at full precision for CSV.
#[derive(Clone, Copy)]
pub(super) struct Style {
    pub precise: bool,
}

impl Style {
    pub(super) fn acc(self, value: f64) -> String {
        if self.precise {
            value.to_string()
        } else {
            format!("{value:.4}")
        }
    }

    /// A missing number: `-` for people, an empty field in CSV.
    pub(super) fn opt(self, value: Option<f64>) -> String {
        let missing = if self.precise { "" } else { "-" };
        value.map_or(missing.to_string(), |v| self.acc(v))
    }

    pub(super) fn share(self, value: f64) -> String {
        if self.precise {
            value.to_string()
        } else {
            format!("{:.1}%", value * 100.0)
        }
    }
}

pub(super) fn summary_line(report: &Report) -> String {
    let c = &report.counts;
    format!(
        "study {}: {} trials ({} complete, {} failed, {} pending, {} running)",
        report.study, c.total, c.complete, c.failed, c.pending, c.running
    )
}

/// Whether the ranked table has a `kept` column: only when the report was built from the
/// trials' stored epochs (`report` reads them; the summary `run` prints does not).
pub(super) fn shows_kept(report: &Report) -> bool {
    report
        .ranked
        .iter()
        .any(|row| row.kept.is_some() || !row.kept_folds.is_empty())
}

/// Where the cross-validation columns `sd` and `folds` go in the ranked table: right after the
/// objective's column (after `f1` for `val_loss`, which has none); None when no ranked trial
/// is cross-validated.
fn cross_validation_at(report: &Report) -> Option<usize> {
    report.ranked.iter().find(|row| row.folds.is_some())?;
    Some(match report.objective {
        Objective::Accuracy => 3,
        Objective::BalancedAccuracy => 5,
        Objective::F1 | Objective::ValLoss => 6,
    })
}

/// Columns of the ranked table, in every format: `sd` (of the objective over the folds) and
/// `folds` beside the objective's column when trials are cross-validated; `kept` (see
/// `shows_kept`) is the epoch whose weights the trial kept, as `head 4` or `finetune 2`, or for
/// a cross-validated trial each fold's, in fold order, joined by ` / `.
pub(super) fn ranked_header(report: &Report) -> Vec<String> {
    let mut header = strings(&[
        "rank",
        "trial",
        "val_accuracy",
        "best_val_accuracy",
        "balanced_accuracy",
        "f1",
    ]);
    if let Some(at) = cross_validation_at(report) {
        header.splice(at..at, strings(&["sd", "folds"]));
    }
    header.extend(report.axes.iter().cloned());
    if shows_kept(report) {
        header.push("kept".to_string());
    }
    header.extend(strings(&["epochs", "seconds"]));
    header
}

/// Which columns of `ranked_header` hold numbers (right-aligned).
pub(super) fn ranked_numeric(report: &Report) -> Vec<bool> {
    let mut numeric = vec![true; 6];
    if let Some(at) = cross_validation_at(report) {
        numeric.splice(at..at, [true, true]);
    }
    numeric.extend(report.axes.iter().map(|axis| axis_is_numeric(report, axis)));
    if shows_kept(report) {
        numeric.push(false);
    }
    numeric.extend([true, true]);
    numeric
}

/// One ranked trial of `report`, in the columns of `ranked_header` (`kept`: `-`, or empty in
/// CSV, for a trial without stored epochs).
pub(super) fn ranked_cells(row: &RankedRow, report: &Report, style: Style) -> Vec<String> {
    let missing = if style.precise { "" } else { "-" };
    let mut cells = vec![
        row.rank.to_string(),
        row.trial.to_string(),
        style.acc(row.val_accuracy),
        style.acc(row.best_val_accuracy),
        style.acc(row.balanced_accuracy),
        style.acc(row.f1),
    ];
    if let Some(at) = cross_validation_at(report) {
        let folds = row.folds.map_or(missing.to_string(), |k| k.to_string());
        cells.splice(at..at, [style.opt(row.objective_sd), folds]);
    }
    cells.extend(param_cells(&row.params, &report.axes, missing));
    if shows_kept(report) {
        let shown = |k: &KeptEpoch| format!("{} {}", k.phase.as_str(), k.epoch);
        cells.push(match (row.kept, row.kept_folds.as_slice()) {
            (Some(kept), _) => shown(&kept),
            (None, []) => missing.to_string(),
            (None, folds) => folds.iter().map(shown).collect::<Vec<_>>().join(" / "),
        });
    }
    let seconds = if style.precise {
        row.seconds.to_string()
    } else {
        format!("{:.1}", row.seconds)
    };
    cells.extend([row.epochs.to_string(), seconds]);
    cells
}

/// One seed group's row: its axis values (`-` when missing), n, mean, sd, min and max.
pub(super) fn seed_group_cells(group: &SeedGroup, axes: &[String], style: Style) -> Vec<String> {
    let mut cells = param_cells(&group.params, axes, "-");
    cells.extend([
        group.n.to_string(),
        style.acc(group.mean),
        style.opt(group.sd),
        style.acc(group.min),
        style.acc(group.max),
    ]);
    cells
}

pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Whether every value an axis takes is a number (its column is then right-aligned).
pub(super) fn axis_is_numeric(report: &Report, axis: &str) -> bool {
    report
        .effects
        .iter()
        .find(|e| e.axis == axis)
        .is_some_and(|e| e.values.iter().all(|v| v.value.as_f64().is_some()))
}

/// One cell per axis: the trial's value, or `missing` when the trial lacks that axis.
pub(super) fn param_cells(
    params: &BTreeMap<String, ParamValue>,
    axes: &[String],
    missing: &str,
) -> Vec<String> {
    axes.iter()
        .map(|axis| {
            params
                .get(axis)
                .map_or(missing.to_string(), |v| v.to_string())
        })
        .collect()
}
