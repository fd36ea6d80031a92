//! Grid statistics over complete trials: per-axis effects, variance decomposition, two-way means, seed groups.
//!
//! Pure functions over `Obs` rows (axis values + validation accuracy). Sums of squares follow the
//! two-way ANOVA: over a full factorial (every combination of the factors' values, each the same
//! number of times) the main effects, the two-way interactions, the higher-order rest and the
//! seed-to-seed noise add up exactly to the total; over a partial grid the same formulas use the
//! marginal means of the trials present, the terms overlap and `higher_order_share` absorbs it.

use super::schema::{
    AxisEffect, Importance, SeedGroup, SeedReport, Term, TwoWayTable, ValueEffect, NOISE_F,
    SEED_AXIS,
};
use crate::trial::ParamValue;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One complete trial as the statistics see it.
#[derive(Debug, Clone, Copy)]
pub struct Obs<'a> {
    pub params: &'a BTreeMap<String, ParamValue>,
    pub y: f64,
}

/// n, mean, sample standard deviation, min and max of some accuracies.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    pub n: usize,
    pub mean: Option<f64>,
    /// Sample standard deviation (n - 1 in the denominator); None below two values.
    pub sd: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Summarises `ys` (any order).
pub fn summarize(ys: &[f64]) -> Summary {
    let n = ys.len();
    if n == 0 {
        return Summary::default();
    }
    let mean = ys.iter().sum::<f64>() / n as f64;
    let sd = (n > 1).then(|| {
        let ss: f64 = ys.iter().map(|y| (y - mean).powi(2)).sum();
        (ss / (n - 1) as f64).sqrt()
    });
    Summary {
        n,
        mean: Some(mean),
        sd,
        min: ys.iter().copied().reduce(f64::min),
        max: ys.iter().copied().reduce(f64::max),
    }
}

/// How one axis's values fared: each of `values` (those the axis takes in any trial, whatever its
/// state), with the statistics of the `obs` that have it.
pub fn axis_effect<'a>(
    axis: &str,
    values: impl Iterator<Item = &'a ParamValue>,
    obs: &[Obs],
) -> AxisEffect {
    let values = distinct_sorted(values)
        .into_iter()
        .map(|value| {
            let accuracies: Vec<f64> = obs
                .iter()
                .filter(|o| {
                    o.params
                        .get(axis)
                        .is_some_and(|v| compare_values(v, &value) == Ordering::Equal)
                })
                .map(|o| o.y)
                .collect();
            value_effect(value, &accuracies)
        })
        .collect::<Vec<ValueEffect>>();
    let means: Vec<f64> = values.iter().filter_map(|v| v.mean_val_accuracy).collect();
    let spread = (means.len() >= 2).then(|| {
        let max = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        max - means.iter().copied().fold(f64::INFINITY, f64::min)
    });
    AxisEffect {
        axis: axis.to_string(),
        spread,
        values,
    }
}

fn value_effect(value: ParamValue, accuracies: &[f64]) -> ValueEffect {
    let s = summarize(accuracies);
    ValueEffect {
        value,
        n: s.n,
        mean_val_accuracy: s.mean,
        sd_val_accuracy: s.sd,
        min_val_accuracy: s.min,
        best_val_accuracy: s.max,
    }
}

/// The distinct values of `axis` among `obs`, sorted.
pub fn levels(axis: &str, obs: &[Obs]) -> Vec<ParamValue> {
    distinct_sorted(obs.iter().filter_map(|o| o.params.get(axis)))
}

/// `values` without repeats, in `compare_values` order.
fn distinct_sorted<'a>(values: impl Iterator<Item = &'a ParamValue>) -> Vec<ParamValue> {
    let mut values: Vec<ParamValue> = values.cloned().collect();
    values.sort_by(compare_values);
    values.dedup_by(|a, b| compare_values(a, b) == Ordering::Equal);
    values
}

/// Order of axis values: booleans, then numbers ascending (an Int before an equal Float), then strings.
fn compare_values(a: &ParamValue, b: &ParamValue) -> Ordering {
    use ParamValue::*;
    match (a, b) {
        (Bool(x), Bool(y)) => x.cmp(y),
        (Str(x), Str(y)) => x.cmp(y),
        (Int(x), Int(y)) => x.cmp(y),
        (Int(_) | Float(_), Int(_) | Float(_)) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
                .then_with(|| kind_rank(a).cmp(&kind_rank(b)))
        }
        _ => kind_rank(a).cmp(&kind_rank(b)),
    }
}

/// Sort position of a value's kind (Int and Float differ only to break exact ties).
fn kind_rank(value: &ParamValue) -> u8 {
    match value {
        ParamValue::Bool(_) => 0,
        ParamValue::Int(_) => 1,
        ParamValue::Float(_) => 2,
        ParamValue::Str(_) => 3,
    }
}

fn code_of(levels: &[ParamValue], value: &ParamValue) -> usize {
    levels
        .binary_search_by(|l| compare_values(l, value))
        .unwrap_or(0)
}

/// The observations coded as value indices per factor (rows lacking a factor are dropped).
struct Coded {
    levels: Vec<Vec<ParamValue>>,
    codes: Vec<Vec<usize>>,
    ys: Vec<f64>,
}

fn code(factors: &[String], obs: &[Obs]) -> Coded {
    let levels: Vec<Vec<ParamValue>> = factors.iter().map(|f| self::levels(f, obs)).collect();
    let (mut codes, mut ys) = (Vec::new(), Vec::new());
    for o in obs {
        let row: Option<Vec<usize>> = factors
            .iter()
            .zip(&levels)
            .map(|(f, l)| o.params.get(f).map(|v| code_of(l, v)))
            .collect();
        if let Some(row) = row {
            codes.push(row);
            ys.push(o.y);
        }
    }
    Coded { levels, codes, ys }
}

/// Mean of `ys` grouped by `key`, and each group's count. Ordered by key, so that sums over
/// the groups add in the same order in every process (a HashMap's order changes run to run,
/// and with it the last bits of the importance shares).
fn group_means<K: Ord>(keys: impl Iterator<Item = K>, ys: &[f64]) -> BTreeMap<K, (f64, usize)> {
    let mut groups: BTreeMap<K, (f64, usize)> = BTreeMap::new();
    for (key, y) in keys.zip(ys) {
        let entry = groups.entry(key).or_insert((0.0, 0));
        entry.0 += y;
        entry.1 += 1;
    }
    for entry in groups.values_mut() {
        entry.0 /= entry.1 as f64;
    }
    groups
}

/// The factors of a report: axes with at least two values among `obs`, `seed` excluded.
pub fn factors(axes: &[String], obs: &[Obs]) -> Vec<String> {
    axes.iter()
        .filter(|a| a.as_str() != SEED_AXIS && levels(a, obs).len() >= 2)
        .cloned()
        .collect()
}

/// Decomposes the variance of `obs`' accuracies over `factors`; None below two trials.
pub fn importance(factors: &[String], obs: &[Obs]) -> Option<Importance> {
    let c = code(factors, obs);
    let n = c.ys.len();
    if n < 2 {
        return None;
    }
    let mean = c.ys.iter().sum::<f64>() / n as f64;
    let total: f64 = c.ys.iter().map(|y| (y - mean).powi(2)).sum();
    let k = factors.len();
    let mains: Vec<BTreeMap<usize, (f64, usize)>> = (0..k)
        .map(|i| group_means(c.codes.iter().map(|r| r[i]), &c.ys))
        .collect();
    let configs = group_means(c.codes.iter().cloned(), &c.ys);
    let within: f64 = c
        .codes
        .iter()
        .zip(&c.ys)
        .map(|(r, y)| (y - configs[r].0).powi(2))
        .sum();
    let noise_df = n - configs.len();
    let noise_variance = (noise_df > 0).then(|| within / noise_df as f64);
    let share = |ss: f64| if total > 0.0 { ss / total } else { 0.0 };
    let term = |axes: Vec<String>, ss: f64, df: usize| {
        let f_ratio = noise_variance
            .filter(|v| *v > 0.0 && df > 0)
            .map(|v| ss / df as f64 / v);
        Term {
            axes,
            sum_of_squares: ss,
            share: share(ss),
            df,
            f_ratio,
            exceeds_seed_noise: f_ratio.map(|f| f >= NOISE_F),
        }
    };
    let mut terms = Vec::new();
    for (i, main) in mains.iter().enumerate() {
        let ss: f64 = main
            .values()
            .map(|(m, cnt)| *cnt as f64 * (m - mean).powi(2))
            .sum();
        terms.push(term(vec![factors[i].clone()], ss, c.levels[i].len() - 1));
    }
    let pairs = (0..k).flat_map(|i| (i + 1..k).map(move |j| (i, j)));
    for (i, j) in pairs {
        let cells = group_means(c.codes.iter().map(|r| (r[i], r[j])), &c.ys);
        let ss: f64 = cells
            .iter()
            .map(|((a, b), (m, cnt))| {
                let d = m - mains[i][a].0 - mains[j][b].0 + mean;
                *cnt as f64 * d * d
            })
            .sum();
        let df = (c.levels[i].len() - 1) * (c.levels[j].len() - 1);
        terms.push(term(vec![factors[i].clone(), factors[j].clone()], ss, df));
    }
    let explained: f64 = terms.iter().map(|t| t.sum_of_squares).sum();
    terms.sort_by(|a, b| b.sum_of_squares.total_cmp(&a.sum_of_squares));
    let grid_cells = c
        .levels
        .iter()
        .try_fold(1usize, |acc, l| acc.checked_mul(l.len()))
        .unwrap_or(usize::MAX);
    let counts: Vec<usize> = configs.values().map(|(_, cnt)| *cnt).collect();
    let balanced = counts.windows(2).all(|w| w[0] == w[1]);
    Some(Importance {
        trials: n,
        factors: factors.to_vec(),
        full_factorial: configs.len() == grid_cells && balanced,
        configurations: configs.len(),
        grid_cells,
        total_sum_of_squares: total,
        terms,
        higher_order_share: share(total - within - explained),
        seed_noise_share: share(within),
        noise_variance,
    })
}

/// The pair of factors that together explain most (both main effects plus their interaction).
pub fn strongest_pair(importance: &Importance) -> Option<(String, String)> {
    let ss_of = |axes: &[&str]| {
        importance
            .terms
            .iter()
            .find(|t| t.axes.iter().map(String::as_str).eq(axes.iter().copied()))
            .map_or(0.0, |t| t.sum_of_squares)
    };
    importance
        .terms
        .iter()
        .filter(|t| t.axes.len() == 2)
        .map(|t| {
            let (a, b) = (t.axes[0].as_str(), t.axes[1].as_str());
            (t.sum_of_squares + ss_of(&[a]) + ss_of(&[b]), a, b)
        })
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(_, a, b)| (a.to_string(), b.to_string()))
}

/// Mean accuracy for every pair of values of `rows` x `columns`.
pub fn two_way(rows: &str, columns: &str, obs: &[Obs]) -> TwoWayTable {
    let factors = [rows.to_string(), columns.to_string()];
    let c = code(&factors, obs);
    let cells = group_means(c.codes.iter().map(|r| (r[0], r[1])), &c.ys);
    let (nr, nc) = (c.levels[0].len(), c.levels[1].len());
    let mut means = vec![vec![None; nc]; nr];
    let mut counts = vec![vec![0; nc]; nr];
    for ((r, col), (m, cnt)) in cells {
        means[r][col] = Some(m);
        counts[r][col] = cnt;
    }
    let [row_values, column_values]: [Vec<ParamValue>; 2] =
        c.levels.try_into().expect("two factors");
    TwoWayTable {
        row_axis: rows.to_string(),
        column_axis: columns.to_string(),
        row_values,
        column_values,
        means,
        counts,
    }
}

/// Groups trials that differ only by `seed`; None when no trial has a seed value.
pub fn seed_groups(obs: &[Obs]) -> Option<SeedReport> {
    let seeds = levels(SEED_AXIS, obs).len();
    if seeds == 0 {
        return None;
    }
    let mut groups: BTreeMap<String, (BTreeMap<String, ParamValue>, Vec<f64>)> = BTreeMap::new();
    for o in obs {
        let mut params = o.params.clone();
        params.remove(SEED_AXIS);
        let key = serde_json::to_string(&params).unwrap_or_default();
        groups
            .entry(key)
            .or_insert((params, Vec::new()))
            .1
            .push(o.y);
    }
    let (mut within, mut df) = (0.0, 0);
    let mut configurations: Vec<SeedGroup> = groups
        .into_values()
        .map(|(params, ys)| {
            let s = summarize(&ys);
            let mean = s.mean.unwrap_or(f64::NAN);
            within += ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>();
            df += ys.len() - 1;
            SeedGroup {
                params,
                n: s.n,
                mean,
                sd: s.sd,
                min: s.min.unwrap_or(f64::NAN),
                max: s.max.unwrap_or(f64::NAN),
            }
        })
        .collect();
    configurations.sort_by(|a, b| b.mean.total_cmp(&a.mean));
    Some(SeedReport {
        axis: SEED_AXIS.to_string(),
        seeds,
        noise_sd: (df > 0).then(|| (within / df as f64).sqrt()),
        noise_df: df,
        configurations,
    })
}

#[cfg(test)]
#[path = "effects_tests.rs"]
mod tests;
