//! `status`: a study's progress from its stored trials: state counts, elapsed and remaining time, best so far.

use super::build::{count_states, ranked_row};
use super::schema::{RankedRow, StateCounts};
use crate::ranking;
use crate::trial::{StudyRecord, TrialRecord};
use serde::{Deserialize, Serialize};

/// Progress of one study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub study: String,
    pub counts: StateCounts,
    /// Seconds from the first trial's start to now (while trials run) or to the last finish.
    pub elapsed_seconds: Option<f64>,
    /// Seconds left at the pace so far (elapsed / finished x unfinished); null while nothing
    /// runs or nothing has finished.
    pub remaining_seconds: Option<f64>,
    /// The best complete trial so far (its `kept` epoch null: status reads no epochs).
    pub best: Option<RankedRow>,
}

/// Seconds since 1970 of an RFC 3339 UTC time as the store writes it (`2024-01-31T12:00:00.123Z`).
pub fn parse_utc(text: &str) -> Option<f64> {
    let (date, time) = text.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (hh, mm) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let ss = t.next()?.parse::<f64>().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days as f64 * 86400.0 + hh * 3600.0 + mm * 60.0 + ss)
}

/// The status of `study` at `now` (seconds since 1970).
pub fn status(study: &StudyRecord, trials: &[TrialRecord], now: f64) -> Status {
    let c = count_states(trials);
    let start = trials
        .iter()
        .filter_map(|t| t.started_at.as_deref().and_then(parse_utc))
        .reduce(f64::min);
    let last_finish = trials
        .iter()
        .filter_map(|t| t.finished_at.as_deref().and_then(parse_utc))
        .reduce(f64::max);
    let end = if c.running > 0 {
        Some(now)
    } else {
        last_finish
    };
    let elapsed = start.zip(end).map(|(s, e)| (e - s).max(0.0));
    let finished = c.complete + c.failed;
    let unfinished = c.pending + c.running;
    let remaining = elapsed
        .filter(|_| c.running > 0 && finished > 0)
        .map(|e| e / finished as f64 * unfinished as f64);
    Status {
        study: study.name.clone(),
        counts: c,
        elapsed_seconds: elapsed,
        remaining_seconds: if unfinished == 0 {
            Some(0.0)
        } else {
            remaining
        },
        best: ranking::rank(trials).first().map(|r| ranked_row(r, None)),
    }
}

/// `1h 02m 03s`, `4m 05s` or `6s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m {sec:02}s"),
        (h, min, sec) => format!("{h}h {min:02}m {sec:02}s"),
    }
}

/// A few lines for the terminal.
pub fn render(status: &Status) -> String {
    let c = &status.counts;
    let mut out = format!(
        "study {}: {} trials: {} pending, {} running, {} complete, {} failed\n",
        status.study, c.total, c.pending, c.running, c.complete, c.failed
    );
    let elapsed = status.elapsed_seconds.map_or("-".to_string(), duration);
    let left = match status.remaining_seconds {
        Some(_) if c.pending + c.running == 0 => "0s (every trial is finished)".to_string(),
        Some(s) => format!("about {}", duration(s)),
        None if c.running == 0 => "- (no run in progress)".to_string(),
        None => "- (nothing finished yet)".to_string(),
    };
    out.push_str(&format!("elapsed {elapsed}, left {left}\n"));
    match &status.best {
        Some(best) => {
            let params: Vec<String> = best
                .params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push_str(&format!(
                "best so far: trial {} val_accuracy {:.4} ({})\n",
                best.trial,
                best.val_accuracy,
                params.join(", ")
            ));
        }
        None => out.push_str("best so far: - (no complete trial yet)\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::fixtures;
    use crate::trial::TrialState;

    #[test]
    fn parses_store_timestamps() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_utc("2000-03-01T00:00:01.500Z"), Some(951868801.5));
        assert_eq!(parse_utc("nonsense"), None);
    }

    #[test]
    fn counts_elapsed_remaining_and_best() {
        let mut trials = fixtures::trials();
        for t in &mut trials {
            if t.state != TrialState::Pending {
                t.started_at = Some("2024-01-01T00:00:00Z".into());
            }
            if t.state.is_finished() {
                t.finished_at = Some("2024-01-01T00:01:00Z".into());
            }
        }
        let now = parse_utc("2024-01-01T00:02:00Z").unwrap();
        let s = status(&fixtures::study(), &trials, now);
        assert_eq!(
            (
                s.counts.pending,
                s.counts.running,
                s.counts.complete,
                s.counts.failed
            ),
            (1, 1, 5, 1)
        );
        assert_eq!(
            s.elapsed_seconds,
            Some(120.0),
            "one trial still runs: up to now"
        );
        // 6 finished in 120 s, 2 left: 40 s.
        assert_eq!(s.remaining_seconds, Some(40.0));
        assert_eq!(s.best.as_ref().map(|b| b.trial), Some(2));
        let text = render(&s);
        assert!(
            text.contains("1 pending, 1 running, 5 complete, 1 failed"),
            "{text}"
        );
        assert!(text.contains("elapsed 2m 00s, left about 40s"), "{text}");
        assert!(
            text.contains("best so far: trial 2 val_accuracy 0.9000"),
            "{text}"
        );
        assert_eq!(duration(3723.0), "1h 02m 03s");
    }
}
