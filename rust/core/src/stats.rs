//! Summaries of call latencies: count, errors and percentiles, overall and per responder.

use std::collections::BTreeMap;
use std::fmt;

/// Percentile by the nearest-rank method over sorted samples; `None` when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    debug_assert!((0.0..=100.0).contains(&p));
    debug_assert!(
        sorted.windows(2).all(|w| w[0] <= w[1]),
        "samples not sorted"
    );
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latency percentiles of a group of successful calls, in seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencySummary {
    /// Number of successful calls summarised.
    pub calls: usize,
    /// Median latency, seconds (0 with no calls).
    pub p50: f64,
    /// 90th-percentile latency, seconds (0 with no calls).
    pub p90: f64,
    /// 95th-percentile latency, seconds (0 with no calls).
    pub p95: f64,
    /// 99th-percentile latency, seconds (0 with no calls).
    pub p99: f64,
    /// Mean latency, seconds (0 with no calls).
    pub mean: f64,
}

impl LatencySummary {
    /// Summarise the latencies of successful calls, in seconds, in any order.
    pub fn from_samples(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let at = |p| percentile(&samples, p).unwrap_or(0.0);
        let mean = if samples.is_empty() {
            0.0
        } else {
            samples.iter().sum::<f64>() / samples.len() as f64
        };
        LatencySummary {
            calls: samples.len(),
            p50: at(50.0),
            p90: at(90.0),
            p95: at(95.0),
            p99: at(99.0),
            mean,
        }
    }
}

/// Calls, errors and latency, overall and per responder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallSummary {
    /// Every call, successful or failed.
    pub calls: usize,
    /// Failed calls (not in the latencies).
    pub errors: usize,
    /// Latency of every successful call.
    pub overall: LatencySummary,
    /// Latency of the successful calls, per responder (the computer that executed them).
    pub by_responder: BTreeMap<String, LatencySummary>,
}

impl CallSummary {
    /// Summarise `(responder, latency in s, ok)` per call; failed calls count only as errors.
    pub fn from_calls<'a>(calls: impl IntoIterator<Item = (&'a str, f64, bool)>) -> Self {
        let mut all = Vec::new();
        let mut per_responder: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut errors = 0;
        for (responder, latency, ok) in calls {
            if ok {
                all.push(latency);
                per_responder
                    .entry(responder.to_owned())
                    .or_default()
                    .push(latency);
            } else {
                errors += 1;
            }
        }
        CallSummary {
            calls: all.len() + errors,
            errors,
            overall: LatencySummary::from_samples(all),
            by_responder: per_responder
                .into_iter()
                .map(|(responder, samples)| (responder, LatencySummary::from_samples(samples)))
                .collect(),
        }
    }
}

impl fmt::Display for CallSummary {
    /// A table a person reads at the end of a run; latencies in ms.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "calls {}  errors {}", self.calls, self.errors)?;
        writeln!(
            f,
            "{:<28} {:>8} {:>7} {:>10} {:>10} {:>10}",
            "responder", "calls", "share", "p50 ms", "p90 ms", "p99 ms"
        )?;
        let ok = self.overall.calls.max(1) as f64;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, s: &LatencySummary| {
            writeln!(
                f,
                "{:<28} {:>8} {:>6.1}% {:>10.2} {:>10.2} {:>10.2}",
                name,
                s.calls,
                100.0 * s.calls as f64 / ok,
                s.p50 * 1e3,
                s.p90 * 1e3,
                s.p99 * 1e3
            )
        };
        for (responder, summary) in &self.by_responder {
            row(f, responder, summary)?;
        }
        row(f, "all", &self.overall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50.0));
        assert_eq!(percentile(&samples, 99.0), Some(99.0));
        assert_eq!(percentile(&samples, 100.0), Some(100.0));
        assert_eq!(percentile(&samples, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summary_splits_by_responder_and_counts_errors() {
        let calls = [
            ("a", 0.1, true),
            ("a", 0.3, true),
            ("b", 0.2, true),
            ("", 9.0, false),
        ];
        let summary = CallSummary::from_calls(calls);
        assert_eq!(summary.calls, 4);
        assert_eq!(summary.errors, 1);
        assert_eq!(summary.overall.calls, 3);
        assert_eq!(summary.by_responder["a"].calls, 2);
        assert_eq!(summary.by_responder["a"].p50, 0.1);
        assert_eq!(summary.by_responder["b"].p99, 0.2);
        let text = summary.to_string();
        assert!(text.contains("errors 1"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("a ") && l.contains("66.7%")),
            "{text}"
        );
    }
}
