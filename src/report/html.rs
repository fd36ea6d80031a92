//! The report as one self-contained HTML page: tables and inline SVG plots, no scripts, nothing fetched.

use super::cells::{ranked_cells, ranked_header, seed_group_cells, summary_line, Style};
use super::plots::{curves_plot, effect_plot, heat_map, importance_plot};
use super::schema::Report;
use super::svg::escape;
use std::fmt::Write;

/// Ranked rows shown on the page (the JSON and text formats have them all).
const PAGE_ROWS: usize = 100;
/// Trials drawn in the learning-curve plot.
const PAGE_CURVES: usize = 8;
/// Seed groups listed on the page.
const PAGE_SEED_GROUPS: usize = 30;
/// Numbers on the page are rounded as in the terminal and markdown tables.
const ROUNDED: Style = Style { precise: false };

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;\
margin:24px auto;max-width:1100px;color:#222;padding:0 16px}\
h1{font-size:24px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}\
table{border-collapse:collapse;font-size:14px;margin:8px 0}\
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f6f8}\
td.text,th.text{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:12px}\
.note{color:#555;font-size:14px;max-width:900px}svg{background:#fff}";

/// The whole page; `report` is drawn as it is (its `top` cut included).
pub fn page(report: &Report) -> String {
    let mut out = String::new();
    let title = format!("gridsearch report: {}", report.study);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n<p>{}</p>\n",
        escape(&title),
        escape(&title),
        escape(&summary_line(report))
    );
    ranked(&mut out, report);
    effects(&mut out, report);
    importance(&mut out, report);
    seeds(&mut out, report);
    curves(&mut out, report);
    out.push_str("</body></html>\n");
    out
}

fn table(out: &mut String, id: &str, header: &[String], rows: &[Vec<String>]) {
    let _ = write!(out, "<table id=\"{id}\"><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let class = if cell.parse::<f64>().is_ok() || cell == "-" {
                ""
            } else {
                " class=\"text\""
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

fn note(out: &mut String, text: &str) {
    let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(text));
}

fn ranked(out: &mut String, report: &Report) {
    out.push_str("<h2 id=\"ranked\">Ranked trials</h2>\n");
    let header = ranked_header(report);
    let rows: Vec<Vec<String>> = report
        .ranked
        .iter()
        .take(PAGE_ROWS)
        .map(|r| ranked_cells(r, report, ROUNDED))
        .collect();
    if rows.is_empty() {
        note(out, "No complete trials yet.");
        return;
    }
    table(out, "ranked-table", &header, &rows);
    if report.ranked.len() > PAGE_ROWS || report.ranked.len() < report.ranked_total {
        note(
            out,
            &format!(
                "The best {} of {} complete trials.",
                rows.len(),
                report.ranked_total
            ),
        );
    }
}

fn effects(out: &mut String, report: &Report) {
    let values = report.effects.iter().flat_map(|e| &e.values);
    let lows = values.clone().filter_map(|v| {
        match (v.mean_val_accuracy, v.sd_val_accuracy, v.min_val_accuracy) {
            (Some(m), sd, Some(min)) => Some(min.min(m - sd.unwrap_or(0.0))),
            _ => None,
        }
    });
    let lo = lows.fold(f64::INFINITY, f64::min);
    let hi = values
        .filter_map(|v| {
            v.best_val_accuracy
                .zip(v.mean_val_accuracy)
                .map(|(b, m)| b.max(m + v.sd_val_accuracy.unwrap_or(0.0)))
        })
        .fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return;
    }
    out.push_str("<h2 id=\"effects\">Main effects</h2>\n");
    note(out, "Each axis's values: mean val_accuracy of the complete trials with that value (filled dot) with one standard deviation either way (bar), and the best such trial (red ring). All plots share one scale; spread = best mean - worst mean.");
    out.push_str("<div class=\"plots\">\n");
    for effect in &report.effects {
        out.push_str(&effect_plot(effect, (lo, hi)));
        out.push('\n');
    }
    out.push_str("</div>\n");
}

fn importance(out: &mut String, report: &Report) {
    let Some(imp) = &report.importance else {
        return;
    };
    out.push_str("<h2 id=\"importance\">Importance</h2>\n");
    out.push_str(&importance_plot(imp, 8, report.noise_name()));
    let observed = if report.folds.is_some() {
        "trial x fold observations of complete trials"
    } else {
        "complete trials"
    };
    let how = if imp.full_factorial {
        format!("Share of the variance of val_accuracy over the {} {observed}, an exact two-way ANOVA decomposition of a full factorial.", imp.trials)
    } else {
        format!("Share of the variance of val_accuracy over the {} {observed} of a partial grid ({} of {} combinations): marginal means of the trials present; terms overlap and the rest absorbs the difference.", imp.trials, imp.configurations, imp.grid_cells)
    };
    note(out, &how);
    if let Some(cross_validated) = report.cross_validation_note() {
        note(out, &cross_validated);
    }
    if let Some(table) = &report.interaction {
        let _ = writeln!(
            out,
            "<h2 id=\"interaction\">Interaction: {} and {}</h2>",
            escape(&table.row_axis),
            escape(&table.column_axis)
        );
        out.push_str(&heat_map(table));
        note(out, "Mean val_accuracy for each pair of values of the two axes that together explain the most variance (darker is better).");
    }
}

fn seeds(out: &mut String, report: &Report) {
    let Some(seeds) = &report.seeds else { return };
    out.push_str("<h2 id=\"seeds\">Seeds</h2>\n");
    let axes: Vec<String> = report
        .axes
        .iter()
        .filter(|a| a.as_str() != seeds.axis)
        .cloned()
        .collect();
    let mut header = axes.clone();
    header.extend(["n", "mean", "sd", "min", "max"].map(String::from));
    let rows: Vec<Vec<String>> = seeds
        .configurations
        .iter()
        .take(PAGE_SEED_GROUPS)
        .map(|g| seed_group_cells(g, &axes, ROUNDED))
        .collect();
    table(out, "seed-table", &header, &rows);
    if let (Some(sd), Some(imp)) = (seeds.noise_sd, &report.importance) {
        let above: Vec<String> = imp
            .terms
            .iter()
            .filter(|t| t.exceeds_seed_noise == Some(true))
            .map(|t| t.axes.join(" x "))
            .collect();
        let list = if above.is_empty() {
            "none".to_string()
        } else {
            above.join(", ")
        };
        let noise = report.noise_name();
        let noise = noise[..1].to_uppercase() + &noise[1..];
        note(out, &format!("{noise} noise: pooled sd {sd:.4} ({} degrees of freedom). Effects larger than the noise (F >= 4): {list}.", seeds.noise_df));
    }
}

fn curves(out: &mut String, report: &Report) {
    if !report.curves.iter().any(|c| !c.points.is_empty()) {
        return;
    }
    out.push_str("<h2 id=\"curves\">Learning curves</h2>\n");
    out.push_str(&curves_plot(&report.curves, PAGE_CURVES));
    note(out, &format!("Validation accuracy after each epoch of the best {PAGE_CURVES} trials: circles are head-phase epochs, squares fine-tune epochs."));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::fixtures;
    use crate::report::build;

    #[test]
    fn page_is_self_contained_with_plots() {
        let report = build(&fixtures::study(), &fixtures::trials(), None);
        let html = page(&report);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("<script") && !html.contains("https://"));
        let namespaces = html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
        assert_eq!(
            html.matches("http://").count(),
            namespaces,
            "no links but SVG's namespace"
        );
        assert_eq!(html.matches("class=\"effect-plot\"").count(), 3);
        assert!(html.contains("class=\"heatmap\""));
        assert!(html.contains("class=\"importance\""));
        assert!(html.contains("<table id=\"ranked-table\">"));
    }
}
