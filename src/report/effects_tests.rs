//! Hand-computed grids checking main effects, the variance decomposition and seed grouping.

use super::*;

fn p(pairs: &[(&str, ParamValue)]) -> BTreeMap<String, ParamValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn int(i: i64) -> ParamValue {
    ParamValue::Int(i)
}

fn s(text: &str) -> ParamValue {
    ParamValue::Str(text.to_string())
}

fn close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "{actual} != {expected} (diff {})",
        actual - expected
    );
}

/// lr in {1, 2} x drop in {a, b} x seed in {0, 1}; cell means .52 .62 / .72 .84, each seed +-.02.
fn seeded_grid() -> Vec<(BTreeMap<String, ParamValue>, f64)> {
    let cells = [
        (1, "a", 0.52),
        (1, "b", 0.62),
        (2, "a", 0.72),
        (2, "b", 0.84),
    ];
    let mut rows = Vec::new();
    for (lr, drop, mean) in cells {
        for (seed, delta) in [(0, -0.02), (1, 0.02)] {
            let params = p(&[("lr", int(lr)), ("drop", s(drop)), ("seed", int(seed))]);
            rows.push((params, mean + delta));
        }
    }
    rows
}

fn obs(rows: &[(BTreeMap<String, ParamValue>, f64)]) -> Vec<Obs<'_>> {
    rows.iter()
        .map(|(params, y)| Obs { params, y: *y })
        .collect()
}

fn term<'a>(imp: &'a Importance, axes: &[&str]) -> &'a Term {
    imp.terms
        .iter()
        .find(|t| t.axes.iter().map(String::as_str).eq(axes.iter().copied()))
        .expect("term present")
}

#[test]
fn summary_of_three_values() {
    let s = summarize(&[0.9, 0.5, 0.7]);
    assert_eq!(s.n, 3);
    close(s.mean.unwrap(), 0.7);
    close(s.sd.unwrap(), 0.2); // sqrt((.04 + 0 + .04) / 2)
    assert_eq!((s.min, s.max), (Some(0.5), Some(0.9)));
    assert_eq!(summarize(&[0.4]).sd, None);
    assert_eq!(summarize(&[]), Summary::default());
}

#[test]
fn full_factorial_with_seeds_decomposes_exactly() {
    let rows = seeded_grid();
    let obs = obs(&rows);
    let axes = vec!["drop".to_string(), "lr".to_string(), "seed".to_string()];
    let factors = factors(&axes, &obs);
    assert_eq!(factors, ["drop", "lr"], "seed is not a factor");
    let imp = importance(&factors, &obs).unwrap();
    // grand mean .675; lr means .57/.78; drop means .62/.73; interaction +-.005; seeds +-.02
    close(imp.total_sum_of_squares, 0.1158);
    close(term(&imp, &["lr"]).sum_of_squares, 0.0882);
    close(term(&imp, &["drop"]).sum_of_squares, 0.0242);
    close(term(&imp, &["drop", "lr"]).sum_of_squares, 0.0002);
    close(term(&imp, &["lr"]).share, 0.0882 / 0.1158);
    close(imp.seed_noise_share, 0.0032 / 0.1158);
    close(imp.higher_order_share, 0.0);
    let shares: f64 = imp.terms.iter().map(|t| t.share).sum::<f64>() + imp.seed_noise_share;
    close(shares, 1.0);
    assert!(imp.full_factorial);
    assert_eq!((imp.trials, imp.configurations, imp.grid_cells), (8, 4, 4));
    // noise variance .0032 / (8 - 4) = .0008
    close(imp.noise_variance.unwrap(), 0.0008);
    close(term(&imp, &["lr"]).f_ratio.unwrap(), 110.25);
    close(term(&imp, &["drop"]).f_ratio.unwrap(), 30.25);
    close(term(&imp, &["drop", "lr"]).f_ratio.unwrap(), 0.25);
    assert_eq!(term(&imp, &["lr"]).exceeds_seed_noise, Some(true));
    assert_eq!(term(&imp, &["drop", "lr"]).exceeds_seed_noise, Some(false));
    let order: Vec<String> = imp.terms.iter().map(|t| t.axes.join(" x ")).collect();
    assert_eq!(order, ["lr", "drop", "drop x lr"], "largest first");
    assert_eq!(strongest_pair(&imp), Some(("drop".into(), "lr".into())));
}

#[test]
fn seed_groups_give_mean_and_sd_per_configuration() {
    let rows = seeded_grid();
    let seeds = seed_groups(&obs(&rows)).unwrap();
    assert_eq!((seeds.seeds, seeds.noise_df), (2, 4));
    close(seeds.noise_sd.unwrap(), 0.0008f64.sqrt());
    assert_eq!(seeds.configurations.len(), 4);
    let best = &seeds.configurations[0];
    assert_eq!(best.params, p(&[("lr", int(2)), ("drop", s("b"))]));
    assert_eq!(best.n, 2);
    close(best.mean, 0.84);
    close(best.sd.unwrap(), 0.0008f64.sqrt()); // sqrt((.02^2 * 2) / 1)
    close(best.min, 0.82);
    close(best.max, 0.86);
    close(seeds.configurations[3].mean, 0.52);
    let no_seed = [(p(&[("lr", int(1))]), 0.5)];
    assert_eq!(seed_groups(&obs(&no_seed)), None);
}

#[test]
fn two_way_table_holds_cell_means() {
    let rows = seeded_grid();
    let table = two_way("lr", "drop", &obs(&rows));
    assert_eq!(table.row_values, [int(1), int(2)]);
    assert_eq!(table.column_values, [s("a"), s("b")]);
    close(table.means[0][0].unwrap(), 0.52);
    close(table.means[0][1].unwrap(), 0.62);
    close(table.means[1][0].unwrap(), 0.72);
    close(table.means[1][1].unwrap(), 0.84);
    assert_eq!(table.counts, [[2, 2], [2, 2]]);
}

#[test]
fn pure_three_way_interaction_is_all_higher_order() {
    // y = .5 + .1 * (-1)^(a+b+c): every marginal and two-way mean is .5.
    let mut rows = Vec::new();
    for a in 0..2 {
        for b in 0..2 {
            for c in 0..2 {
                let sign = if (a + b + c) % 2 == 0 { 1.0 } else { -1.0 };
                rows.push((
                    p(&[("a", int(a)), ("b", int(b)), ("c", int(c))]),
                    0.5 + 0.1 * sign,
                ));
            }
        }
    }
    let obs = obs(&rows);
    let imp = importance(&["a".into(), "b".into(), "c".into()], &obs).unwrap();
    close(imp.total_sum_of_squares, 0.08);
    assert_eq!(imp.terms.len(), 6, "three mains and three pairs");
    for t in &imp.terms {
        close(t.share, 0.0);
        assert_eq!(t.f_ratio, None, "no seeds, no noise estimate");
    }
    close(imp.higher_order_share, 1.0);
    close(imp.seed_noise_share, 0.0);
}

#[test]
fn partial_grid_uses_marginal_means_of_the_trials_present() {
    // (1,a) .5, (1,b) .7, (2,a) .9; (2,b) missing. Mean .7; lr means .6 (2) / .9 (1).
    let rows = [
        (p(&[("lr", int(1)), ("drop", s("a"))]), 0.5),
        (p(&[("lr", int(1)), ("drop", s("b"))]), 0.7),
        (p(&[("lr", int(2)), ("drop", s("a"))]), 0.9),
    ];
    let obs = obs(&rows);
    let imp = importance(&["drop".into(), "lr".into()], &obs).unwrap();
    assert!(!imp.full_factorial);
    assert_eq!((imp.configurations, imp.grid_cells), (3, 4));
    close(imp.total_sum_of_squares, 0.08);
    close(term(&imp, &["lr"]).sum_of_squares, 0.06); // 2 * .1^2 + 1 * .2^2
    close(term(&imp, &["drop"]).sum_of_squares, 0.0); // both .7
    close(term(&imp, &["drop", "lr"]).sum_of_squares, 0.02); // (-.1)^2 + .1^2 + 0
    close(imp.higher_order_share, 0.0);
    assert_eq!(importance(&["lr".into()], &obs[..1]), None, "one trial");
}

#[test]
fn values_sort_by_kind_then_value() {
    let mut values = [
        ParamValue::Str("b".into()),
        ParamValue::Float(10.0),
        ParamValue::Int(2),
        ParamValue::Bool(true),
        ParamValue::Float(0.5),
        ParamValue::Str("a".into()),
        ParamValue::Bool(false),
    ];
    values.sort_by(compare_values);
    let shown: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    assert_eq!(shown, vec!["false", "true", "0.5", "2", "10", "a", "b"]);
}
