//! The sections of grid statistics: each axis's effect, importance, the strongest interaction, seeds.

use super::cells::{axis_is_numeric, seed_group_cells, strings, Section, Style};
use super::schema::{
    AxisEffect, Importance, Report, SeedReport, Term, TwoWayTable, NOISE_F, SEED_AXIS,
};

/// Interactions shown one by one; the rest are summed in one row.
const SHOWN_INTERACTIONS: usize = 3;

pub(super) fn effect_section(report: &Report, effect: &AxisEffect, style: Style) -> Section {
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
    if let Some(k) = report.folds {
        section.notes.push(format!(
            "n counts trial x fold: each of the {k} folds of a trial is one value."
        ));
    }
    section
}

pub(super) fn importance_section(report: &Report, imp: &Importance, style: Style) -> Section {
    let noise = imp.noise_variance.is_some();
    let mut header = strings(&["source", "share", "sum of squares"]);
    if noise {
        let short = if report.folds.is_some() {
            "fold"
        } else {
            "seed"
        };
        header.push(format!("F vs {short} noise"));
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
            format!("{} noise", report.noise_name()),
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
    section.notes = importance_notes(report, imp);
    section.notes.extend(report.cross_validation_note());
    section
}

fn importance_notes(report: &Report, imp: &Importance) -> Vec<String> {
    let observed = if report.folds.is_some() {
        "trial x fold observations of complete trials"
    } else {
        "complete trials"
    };
    let mut notes = vec![format!(
        "Over the {} {observed} (pending, running and failed ones are left out); factors: {}.",
        imp.trials,
        if imp.factors.is_empty() {
            "none".to_string()
        } else {
            imp.factors.join(", ")
        }
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
            "F = (sum of squares / degrees of freedom) / {} variance; F >= {NOISE_F} means larger than the {} noise (about two standard errors).",
            report.noise_name(),
            if report.folds.is_some() { "fold" } else { "seed" }
        ));
    }
    notes
}

pub(super) fn two_way_section(table: &TwoWayTable, style: Style) -> Section {
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

pub(super) fn seeds_section(report: &Report, seeds: &SeedReport, style: Style) -> Section {
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
        .map(|g| seed_group_cells(g, &axes, style))
        .collect();
    section.notes = seed_notes(report, seeds, style);
    section.notes.extend(report.cross_validation_note());
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
