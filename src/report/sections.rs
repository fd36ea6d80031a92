//! A built `Report` as titled tables of formatted cells, shared by the terminal, markdown and CSV writers.

use super::schema::{
    AxisEffect, FailedRow, Importance, RankedRow, Report, SeedReport, Term, TwoWayTable, NOISE_F,
    SEED_AXIS,
};
use crate::trial::ParamValue;
use std::collections::BTreeMap;

/// Interactions shown one by one; the rest are summed in one row.
const SHOWN_INTERACTIONS: usize = 3;

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
    fn new(title: String, header: Vec<String>, numeric: Vec<bool>) -> Section {
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
    pub fn acc(self, value: f64) -> String {
        if self.precise {
            value.to_string()
        } else {
            format!("{value:.4}")
        }
    }

    /// A missing number: `-` for people, an empty field in CSV.
    fn opt(self, value: Option<f64>) -> String {
        let missing = if self.precise { "" } else { "-" };
        value.map_or(missing.to_string(), |v| self.acc(v))
    }

    fn share(self, value: f64) -> String {
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

/// Every section of the report, in reading order; empty analyses are left out.
pub(super) fn sections(report: &Report, style: Style) -> Vec<Section> {
    let mut out = vec![ranked_section(report, style)];
    out.extend(report.effects.iter().map(|e| effect_section(e, style)));
    if let Some(importance) = &report.importance {
        out.push(importance_section(importance, style));
    }
    if let Some(table) = &report.interaction {
        out.push(two_way_section(table, style));
    }
    if let Some(seeds) = &report.seeds {
        out.push(seeds_section(report, seeds, style));
    }
    if report.curves.iter().any(|c| !c.points.is_empty()) {
        out.push(curves_section(report, style));
    }
    if !report.failed.is_empty() {
        out.push(failed_section(report));
    }
    out
}

/// Columns of the ranked table, in every format.
pub(super) fn ranked_header(report: &Report) -> Vec<String> {
    let mut header = strings(&[
        "rank",
        "trial",
        "val_accuracy",
        "best_val_accuracy",
        "balanced_accuracy",
        "f1",
    ]);
    header.extend(report.axes.iter().cloned());
    header.extend(strings(&["epochs", "seconds"]));
    header
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn ranked_section(report: &Report, style: Style) -> Section {
    let title = if report.ranked.len() < report.ranked_total {
        format!(
            "Ranked trials (top {} of {})",
            report.ranked.len(),
            report.ranked_total
        )
    } else {
        "Ranked trials".to_string()
    };
    let header = ranked_header(report);
    let mut numeric = vec![true; 6];
    numeric.extend(report.axes.iter().map(|axis| axis_is_numeric(report, axis)));
    numeric.extend([true, true]);
    let mut section = Section::new(title, header, numeric);
    section.when_empty = "no complete trials yet";
    section.rows = report
        .ranked
        .iter()
        .map(|row| ranked_cells(row, &report.axes, style))
        .collect();
    section
}

fn ranked_cells(row: &RankedRow, axes: &[String], style: Style) -> Vec<String> {
    let mut cells = vec![
        row.rank.to_string(),
        row.trial.to_string(),
        style.acc(row.val_accuracy),
        style.acc(row.best_val_accuracy),
        style.acc(row.balanced_accuracy),
        style.acc(row.f1),
    ];
    cells.extend(param_cells(
        &row.params,
        axes,
        if style.precise { "" } else { "-" },
    ));
    let seconds = if style.precise {
        row.seconds.to_string()
    } else {
        format!("{:.1}", row.seconds)
    };
    cells.extend([row.epochs.to_string(), seconds]);
    cells
}

fn effect_section(effect: &AxisEffect, style: Style) -> Section {
    let header = strings(&[&effect.axis, "n", "mean", "sd", "min", "best"]);
    let value_numeric = effect.values.iter().all(|v| v.value.as_f64().is_some());
    let mut section = Section::new(
        format!("Effect of {} on val_accuracy", effect.axis),
        header,
        vec![value_numeric, true, true, true, true, true],
    );
    section.when_empty = "no values";
    section.rows = effect
        .values
        .iter()
        .map(|v| {
            vec![
                v.value.to_string(),
                v.n.to_string(),
                style.opt(v.mean_val_accuracy),
                style.opt(v.sd_val_accuracy),
                style.opt(v.min_val_accuracy),
                style.opt(v.best_val_accuracy),
            ]
        })
        .collect();
    if let Some(spread) = effect.spread {
        section.notes.push(format!(
            "spread (best mean - worst mean): {}",
            style.acc(spread)
        ));
    }
    section
}

fn importance_section(imp: &Importance, style: Style) -> Section {
    let noise = imp.noise_variance.is_some();
    let mut header = strings(&["source", "share", "sum of squares"]);
    if noise {
        header.push("F vs seed noise".into());
    }
    let numeric = vec![false, true, true, true][..header.len()].to_vec();
    let mut section = Section::new(
        "Importance: share of the variance of val_accuracy".to_string(),
        header,
        numeric,
    );
    let ss = |v: f64| {
        if style.precise {
            v.to_string()
        } else {
            format!("{v:.6}")
        }
    };
    let f = |v: Option<f64>| v.map_or("-".to_string(), |f| format!("{f:.1}"));
    let mut pairs_shown = 0;
    let (mut other_ss, mut other_share, mut others) = (0.0, 0.0, 0);
    for term in &imp.terms {
        if term.axes.len() == 2 {
            if pairs_shown == SHOWN_INTERACTIONS {
                other_ss += term.sum_of_squares;
                other_share += term.share;
                others += 1;
                continue;
            }
            pairs_shown += 1;
        }
        section.rows.push(vec![
            term.axes.join(" x "),
            style.share(term.share),
            ss(term.sum_of_squares),
            f(term.f_ratio),
        ]);
    }
    let total = imp.total_sum_of_squares;
    if others > 0 {
        let label = format!("{others} other two-way interactions");
        section.rows.push(vec![
            label,
            style.share(other_share),
            ss(other_ss),
            "-".into(),
        ]);
    }
    if imp.factors.len() > 2 || !imp.full_factorial {
        let label = if imp.full_factorial {
            "higher-order interactions"
        } else {
            "rest (higher-order and overlap)"
        };
        let share = imp.higher_order_share;
        section.rows.push(vec![
            label.into(),
            style.share(share),
            ss(share * total),
            "-".into(),
        ]);
    }
    if imp.noise_variance.is_some() {
        let share = imp.seed_noise_share;
        section.rows.push(vec![
            "seed-to-seed noise".into(),
            style.share(share),
            ss(share * total),
            "-".into(),
        ]);
    }
    if !noise {
        for row in &mut section.rows {
            row.truncate(3);
        }
    }
    section.notes = importance_notes(imp);
    section
}

fn importance_notes(imp: &Importance) -> Vec<String> {
    let mut notes =
        vec![format!(
        "Over the {} complete trials (pending, running and failed ones are left out); factors: {}.",
        imp.trials,
        if imp.factors.is_empty() { "none".to_string() } else { imp.factors.join(", ") }
    )];
    if imp.full_factorial {
        notes.push("A full factorial: the shares are an exact two-way ANOVA decomposition and add up to 100%.".into());
    } else {
        notes.push(format!(
            "A partial grid ({} of {} combinations, or unequal repeats): shares use the marginal means of the trials present; terms overlap and the rest row takes up the difference (it may be negative).",
            imp.configurations, imp.grid_cells
        ));
    }
    if imp.noise_variance.is_some() {
        notes.push(format!(
            "F = (sum of squares / degrees of freedom) / seed-to-seed variance; F >= {NOISE_F} means larger than the seed noise (about two standard errors)."
        ));
    }
    notes
}

fn two_way_section(table: &TwoWayTable, style: Style) -> Section {
    let mut header = vec![format!("{} \\ {}", table.row_axis, table.column_axis)];
    header.extend(table.column_values.iter().map(|v| v.to_string()));
    let numeric = vec![true; header.len()];
    let mut section = Section::new(
        format!(
            "Mean val_accuracy by {} and {}",
            table.row_axis, table.column_axis
        ),
        header,
        numeric,
    );
    section.rows = table
        .row_values
        .iter()
        .zip(&table.means)
        .map(|(value, means)| {
            let mut cells = vec![value.to_string()];
            cells.extend(means.iter().map(|m| style.opt(*m)));
            cells
        })
        .collect();
    section.notes.push("The pair of axes that together explain the most variance; '-' marks a combination with no complete trial.".into());
    section
}

fn seeds_section(report: &Report, seeds: &SeedReport, style: Style) -> Section {
    let axes: Vec<String> = report
        .axes
        .iter()
        .filter(|a| a.as_str() != SEED_AXIS)
        .cloned()
        .collect();
    let mut header = axes.clone();
    header.extend(strings(&["n", "mean", "sd", "min", "max"]));
    let mut numeric: Vec<bool> = axes.iter().map(|a| axis_is_numeric(report, a)).collect();
    numeric.extend([true; 5]);
    let mut section = Section::new(
        format!(
            "Seeds: val_accuracy per configuration over {} seeds",
            seeds.seeds
        ),
        header,
        numeric,
    );
    section.rows = seeds
        .configurations
        .iter()
        .map(|g| {
            let mut cells = param_cells(&g.params, &axes, "-");
            cells.extend([
                g.n.to_string(),
                style.acc(g.mean),
                style.opt(g.sd),
                style.acc(g.min),
                style.acc(g.max),
            ]);
            cells
        })
        .collect();
    section.notes = seed_notes(report, seeds, style);
    section
}

fn seed_notes(report: &Report, seeds: &SeedReport, style: Style) -> Vec<String> {
    let Some(sd) = seeds.noise_sd else {
        return vec![
            "Each configuration has one seed: no estimate of the seed-to-seed noise.".into(),
        ];
    };
    let mut notes = vec![format!(
        "Seed-to-seed noise: pooled sd {} ({} degrees of freedom).",
        style.acc(sd),
        seeds.noise_df
    )];
    if let Some(imp) = &report.importance {
        let (above, below): (Vec<_>, Vec<_>) = imp
            .terms
            .iter()
            .filter(|t| t.exceeds_seed_noise.is_some())
            .partition(|t| t.exceeds_seed_noise == Some(true));
        let names = |terms: &[&Term]| {
            if terms.is_empty() {
                "none".to_string()
            } else {
                terms
                    .iter()
                    .map(|t| t.axes.join(" x "))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        notes.push(format!(
            "Larger than the seed noise: {}.",
            names(&above[..])
        ));
        notes.push(format!("Within the seed noise: {}.", names(&below[..])));
    }
    notes
}

fn curves_section(report: &Report, style: Style) -> Section {
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

fn failed_section(report: &Report) -> Section {
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

/// Whether every value an axis takes is a number (its column is then right-aligned).
fn axis_is_numeric(report: &Report, axis: &str) -> bool {
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
