//! The report's plots as inline SVG: main effects with error bars, importance bars, the interaction heat map, learning curves.

use super::schema::{AxisEffect, Curve, Importance, TwoWayTable};
use super::svg::{heat_colour, ticks, Scale, Svg, PALETTE};
use crate::trial::Phase;

const AXIS: &str = r##"stroke="#333" stroke-width="1""##;
const GRID: &str = r##"stroke="#ddd" stroke-width="1""##;
const LABEL: &str = r##"font-size="13" fill="#222""##;
const SMALL: &str = r##"font-size="12" fill="#444""##;
const TITLE: &str = r##"font-size="14" font-weight="bold" fill="#111""##;

/// A vertical accuracy axis with grid lines from `x0` to `x1`; returns the scale.
fn y_axis(
    svg: &mut Svg,
    (lo, hi): (f64, f64),
    (top, bottom): (f64, f64),
    (x0, x1): (f64, f64),
) -> Scale {
    let (values, lo, hi) = ticks(lo, hi, 5);
    let scale = Scale {
        d0: lo,
        d1: hi,
        r0: bottom,
        r1: top,
    };
    for v in values {
        let y = scale.map(v);
        svg.line((x0, y), (x1, y), GRID);
        svg.text((x0 - 6.0, y + 4.0), "end", SMALL, &format!("{v:.2}"));
    }
    svg.line((x0, top), (x0, bottom), AXIS);
    svg.line((x0, bottom), (x1, bottom), AXIS);
    scale
}

/// One axis's values: mean val_accuracy with a +-sd error bar, and the best trial as a ring.
/// `range` is shared by all effect plots so that they compare at a glance.
pub fn effect_plot(effect: &AxisEffect, range: (f64, f64)) -> String {
    let (w, h, left, right, top, bottom) = (300.0, 230.0, 56.0, 12.0, 34.0, 186.0);
    let mut svg = Svg::new(
        w,
        h,
        "effect-plot",
        &format!("effect of {} on val_accuracy", effect.axis),
    );
    let title = match effect.spread {
        Some(s) => format!("{} (spread {s:.3})", effect.axis),
        None => effect.axis.clone(),
    };
    svg.text((w / 2.0, 18.0), "middle", TITLE, &title);
    let scale = y_axis(&mut svg, range, (top, bottom), (left, w - right));
    let band = (w - left - right) / effect.values.len().max(1) as f64;
    for (i, v) in effect.values.iter().enumerate() {
        let x = left + (i as f64 + 0.5) * band;
        svg.text((x, bottom + 18.0), "middle", LABEL, &v.value.to_string());
        svg.text((x, bottom + 34.0), "middle", SMALL, &format!("n={}", v.n));
        let Some(mean) = v.mean_val_accuracy else {
            continue;
        };
        if let Some(sd) = v.sd_val_accuracy {
            let (y0, y1) = (scale.map(mean - sd), scale.map(mean + sd));
            let bar = r##"stroke="#4e79a7" stroke-width="2""##;
            svg.line((x, y0), (x, y1), bar);
            svg.line((x - 7.0, y0), (x + 7.0, y0), bar);
            svg.line((x - 7.0, y1), (x + 7.0, y1), bar);
        }
        svg.circle(
            (x, scale.map(mean)),
            5.0,
            r##"class="mean" fill="#4e79a7""##,
        );
        if let Some(best) = v.best_val_accuracy {
            svg.circle(
                (x, scale.map(best)),
                4.0,
                r##"class="best" fill="none" stroke="#e15759" stroke-width="2""##,
            );
        }
    }
    svg.finish()
}

/// Horizontal bars: each term's share of the variance, then the rest and the noise (`noise`:
/// seed-to-seed, or fold-to-fold when cross-validated).
pub fn importance_plot(imp: &Importance, max_terms: usize, noise: &str) -> String {
    let mut rows: Vec<(String, f64)> = imp
        .terms
        .iter()
        .take(max_terms)
        .map(|t| (t.axes.join(" x "), t.share))
        .collect();
    if imp.factors.len() > 2 || !imp.full_factorial {
        rows.push(("higher-order / rest".into(), imp.higher_order_share));
    }
    if imp.noise_variance.is_some() {
        rows.push((format!("{noise} noise"), imp.seed_noise_share));
    }
    let (label_w, bar_w, row_h) = (230.0, 300.0, 26.0);
    let h = 16.0 + rows.len() as f64 * row_h;
    let mut svg = Svg::new(
        label_w + bar_w + 70.0,
        h,
        "importance",
        "share of the variance of val_accuracy",
    );
    for (i, (label, share)) in rows.iter().enumerate() {
        let y = 8.0 + i as f64 * row_h;
        svg.text((label_w - 8.0, y + 17.0), "end", LABEL, label);
        let len = share.clamp(0.0, 1.0) * bar_w;
        svg.rect(
            (label_w, y + 4.0),
            (len, row_h - 8.0),
            r##"fill="#4e79a7""##,
        );
        svg.text(
            (label_w + len + 6.0, y + 17.0),
            "start",
            LABEL,
            &format!("{:.1}%", share * 100.0),
        );
    }
    svg.finish()
}

/// Mean val_accuracy over two axes as coloured cells with their values written in.
pub fn heat_map(table: &TwoWayTable) -> String {
    let (cell_w, cell_h, left, top) = (96.0, 44.0, 120.0, 62.0);
    let (nr, nc) = (table.row_values.len(), table.column_values.len());
    let (w, h) = (
        left + nc as f64 * cell_w + 12.0,
        top + nr as f64 * cell_h + 12.0,
    );
    let label = format!(
        "mean val_accuracy by {} and {}",
        table.row_axis, table.column_axis
    );
    let mut svg = Svg::new(w, h, "heatmap", &label);
    let all: Vec<f64> = table.means.iter().flatten().flatten().copied().collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    svg.text(
        (left + nc as f64 * cell_w / 2.0, 18.0),
        "middle",
        TITLE,
        &table.column_axis,
    );
    svg.text((left - 10.0, top - 10.0), "end", TITLE, &table.row_axis);
    for (c, value) in table.column_values.iter().enumerate() {
        svg.text(
            (left + (c as f64 + 0.5) * cell_w, top - 10.0),
            "middle",
            LABEL,
            &value.to_string(),
        );
    }
    for (r, value) in table.row_values.iter().enumerate() {
        let y = top + r as f64 * cell_h;
        svg.text(
            (left - 10.0, y + cell_h / 2.0 + 5.0),
            "end",
            LABEL,
            &value.to_string(),
        );
        for c in 0..nc {
            let x = left + c as f64 * cell_w;
            let Some(mean) = table.means[r][c] else {
                svg.rect(
                    (x, y),
                    (cell_w, cell_h),
                    r##"fill="#f4f4f4" stroke="#fff""##,
                );
                svg.text(
                    (x + cell_w / 2.0, y + cell_h / 2.0 + 5.0),
                    "middle",
                    SMALL,
                    "-",
                );
                continue;
            };
            let t = if hi > lo {
                (mean - lo) / (hi - lo)
            } else {
                0.5
            };
            let (fill, dark) = heat_colour(t);
            svg.rect(
                (x, y),
                (cell_w, cell_h),
                &format!(r##"class="cell" fill="{fill}" stroke="#fff""##),
            );
            let ink = if dark { "#fff" } else { "#111" };
            svg.text(
                (x + cell_w / 2.0, y + cell_h / 2.0 + 5.0),
                "middle",
                &format!(r##"font-size="14" fill="{ink}""##),
                &format!("{mean:.4}"),
            );
        }
    }
    svg.finish()
}

/// Validation accuracy by epoch of the first `max_curves` curves; fine-tune epochs are squares.
pub fn curves_plot(curves: &[Curve], max_curves: usize) -> String {
    let shown: Vec<&Curve> = curves
        .iter()
        .filter(|c| !c.points.is_empty())
        .take(max_curves)
        .collect();
    let (w, h, left, right, top, bottom) = (700.0, 320.0, 56.0, 190.0, 16.0, 270.0);
    let mut svg = Svg::new(
        w,
        h,
        "curves",
        "validation accuracy by epoch of the top trials",
    );
    let values = shown
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.val_accuracy));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let scale = y_axis(&mut svg, (lo, hi), (top, bottom), (left, w - right));
    let steps = shown.iter().map(|c| c.points.len()).max().unwrap_or(1);
    let x = Scale {
        d0: 1.0,
        d1: steps.max(2) as f64,
        r0: left + 12.0,
        r1: w - right - 12.0,
    };
    for step in 1..=steps {
        svg.text(
            (x.map(step as f64), bottom + 18.0),
            "middle",
            SMALL,
            &step.to_string(),
        );
    }
    svg.text(
        ((left + w - right) / 2.0, bottom + 40.0),
        "middle",
        LABEL,
        "epoch (head phase, then fine-tune)",
    );
    for (i, curve) in shown.iter().enumerate().rev() {
        let colour = PALETTE[i % PALETTE.len()];
        let points: Vec<(f64, f64)> = curve
            .points
            .iter()
            .map(|p| (x.map(p.step as f64), scale.map(p.val_accuracy)))
            .collect();
        svg.polyline(
            &points,
            &format!(r#"class="curve" stroke="{colour}" stroke-width="2""#),
        );
        for (p, (px, py)) in curve.points.iter().zip(&points) {
            if p.phase == Phase::Finetune {
                svg.rect(
                    (px - 4.0, py - 4.0),
                    (8.0, 8.0),
                    &format!(r#"fill="{colour}""#),
                );
            } else {
                svg.circle((*px, *py), 3.5, &format!(r#"fill="{colour}""#));
            }
        }
        let ly = top + 8.0 + i as f64 * 22.0;
        svg.line(
            (w - right + 14.0, ly),
            (w - right + 38.0, ly),
            &format!(r#"stroke="{colour}" stroke-width="3""#),
        );
        let best = curve
            .points
            .iter()
            .map(|p| p.val_accuracy)
            .fold(f64::NEG_INFINITY, f64::max);
        svg.text(
            (w - right + 44.0, ly + 4.0),
            "start",
            SMALL,
            &format!("#{} trial {} ({best:.3})", curve.rank, curve.trial),
        );
    }
    svg.finish()
}
