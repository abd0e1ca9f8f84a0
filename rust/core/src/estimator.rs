//! Latency estimators ("optimizers" upstream): how a router turns the latencies it measures for
//! a (lambda, destination) into that entry's weight (docs/policies.md).
//!
//! [`EstimatorKind`] names the estimator and its parameters; [`Estimate`] is the O(1) state one
//! entry carries. The table drives both: a sample per successful call, and for the periodic
//! estimator a `tick` that closes periods.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::clock::Time;

/// The async EWMA restarts from the sample when the previous one is at least this old.
pub const EWMA_STALE_AFTER: Duration = Duration::from_secs(5);
/// The EWMA's default smoothing factor (upstream experiments).
pub const DEFAULT_ALPHA: f64 = 0.95;
/// The periodic estimator's default period (upstream experiments).
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(5);
/// The peak EWMA's default decay time constant (Finagle's and tower's default).
pub const DEFAULT_PEAK_DECAY: Duration = Duration::from_secs(10);
/// Latency samples are clamped to at least this many seconds, so that weights stay > 0.
pub const MIN_SAMPLE_SECS: f64 = 1e-6;

/// Which statistic of a period's samples the periodic estimator keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stat {
    /// The smallest sample.
    Min,
    /// The arithmetic mean.
    Mean,
    /// The largest sample.
    Max,
}

impl Stat {
    /// Every statistic, in a stable order.
    pub const ALL: [Stat; 3] = [Stat::Min, Stat::Mean, Stat::Max];

    /// The statistic's name: `min`, `mean` or `max`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stat::Min => "min",
            Stat::Mean => "mean",
            Stat::Max => "max",
        }
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A statistic name that [`Stat::from_str`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown statistic '{0}': expected one of min, mean, max")]
pub struct UnknownStat(pub String);

impl FromStr for Stat {
    type Err = UnknownStat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        Stat::ALL
            .into_iter()
            .find(|stat| stat.as_str() == name)
            .ok_or_else(|| UnknownStat(s.to_string()))
    }
}

/// How a table estimates weights from measured latencies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EstimatorKind {
    /// Asynchronous EWMA (upstream's `OptimizerEwma`): on every sample s,
    /// `w = alpha * w + (1 - alpha) * s` if the previous sample is less than 5 s old, else
    /// `w = s` (also for the first sample), so a weight never mixes in stale history.
    /// Upstream experiments used alpha = 0.95.
    Ewma {
        /// Weight of the old estimate, in [0, 1].
        alpha: f64,
    },
    /// Periodic (upstream's `OptimizerPeriodic`): every `period`, set w to the min, mean or max
    /// of that period's samples, and keep w where there were none. Upstream experiments used a
    /// 5 s period and the min, which tracks the unloaded latency and ignores queueing spikes.
    Periodic {
        /// Length of a period; periods are aligned on the clock's origin.
        period: Duration,
        /// The statistic kept.
        stat: Stat,
    },
    /// Peak EWMA (Finagle's `PeakEwma`, tower's `load::PeakEwma`): a sample above the weight
    /// replaces it at once; a sample below is averaged in with a weight that decays with the
    /// time since the previous sample, `w = w * d + s * (1 - d)`, `d = exp(-elapsed / decay)`.
    /// It reacts to a slowdown at the first slow call and forgets it within a few `decay`s,
    /// which suits power of two choices (its default): a spike steers calls away at once.
    PeakEwma {
        /// Time constant of the decay toward lower samples.
        decay: Duration,
    },
}

impl EstimatorKind {
    /// The estimators' names (without parameters), in a stable order.
    pub const NAMES: [&'static str; 3] = ["ewma", "periodic", "peak-ewma"];

    /// This estimator's name without its parameters: one of [`EstimatorKind::NAMES`]. Its
    /// full text (with parameters, as [`EstimatorKind::from_str`] reads it) is `Display`.
    pub const fn name(&self) -> &'static str {
        match self {
            EstimatorKind::Ewma { .. } => "ewma",
            EstimatorKind::Periodic { .. } => "periodic",
            EstimatorKind::PeakEwma { .. } => "peak-ewma",
        }
    }
}

impl Default for EstimatorKind {
    fn default() -> Self {
        EstimatorKind::Ewma {
            alpha: DEFAULT_ALPHA,
        }
    }
}

impl fmt::Display for EstimatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EstimatorKind::Ewma { alpha } => write!(f, "ewma:{alpha}"),
            EstimatorKind::Periodic { period, stat } => {
                write!(f, "periodic:{}:{}", period.as_secs_f64(), stat)
            }
            EstimatorKind::PeakEwma { decay } => write!(f, "peak-ewma:{}", decay.as_secs_f64()),
        }
    }
}

/// An estimator specification that [`EstimatorKind::from_str`] cannot parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid estimator '{spec}': {reason}; expected 'ewma[:<alpha in [0,1]>]', \
     'periodic[:<period in seconds>[:min|mean|max]]' or 'peak-ewma[:<decay in seconds>]' \
     (e.g. 'ewma:0.95', 'periodic:5:min', 'peak-ewma:10')"
)]
pub struct InvalidEstimator {
    /// The text given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for EstimatorKind {
    type Err = InvalidEstimator;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| InvalidEstimator {
            spec: s.to_string(),
            reason,
        };
        let mut parts = s.trim().split(':');
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        let args: Vec<&str> = parts.collect();
        match (name.as_str(), args.as_slice()) {
            ("ewma", []) => Ok(EstimatorKind::default()),
            ("ewma", [alpha]) => {
                let alpha: f64 = alpha
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("alpha '{alpha}' is not a number")))?;
                if !(0.0..=1.0).contains(&alpha) {
                    return Err(err(format!("alpha {alpha} is outside [0, 1]")));
                }
                Ok(EstimatorKind::Ewma { alpha })
            }
            ("periodic", []) => Ok(EstimatorKind::Periodic {
                period: DEFAULT_PERIOD,
                stat: Stat::Min,
            }),
            ("periodic", [period] | [period, _]) => {
                let period = parse_secs(period, "period").map_err(err)?;
                let stat = match args.get(1) {
                    None => Stat::Min,
                    Some(stat) => stat.parse().map_err(|e: UnknownStat| err(e.to_string()))?,
                };
                Ok(EstimatorKind::Periodic { period, stat })
            }
            ("peak-ewma", []) => Ok(EstimatorKind::PeakEwma {
                decay: DEFAULT_PEAK_DECAY,
            }),
            ("peak-ewma", [decay]) => Ok(EstimatorKind::PeakEwma {
                decay: parse_secs(decay, "decay").map_err(err)?,
            }),
            ("ewma" | "periodic" | "peak-ewma", _) => Err(err("too many ':' fields".to_string())),
            (other, _) => Err(err(format!("unknown estimator '{other}'"))),
        }
    }
}

/// A number of seconds > 0, finite, below 1e9 (what a period or a time constant may be).
fn parse_secs(text: &str, what: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{what} '{text}' is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        return Err(format!("{what} {secs} s must be > 0 and finite"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The periodic estimator's state of one entry, O(1); the EWMAs keep only the time of the
/// last sample, which the e-table stores beside the weight (see [`Estimate::ewma_step`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimate {
    /// The current period's samples (periodic): count, min, max, sum, in seconds.
    count: u32,
    min: f64,
    max: f64,
    sum: f64,
}

// ===== impl Estimate =====

impl Estimate {
    /// A latency as a sample in seconds, clamped to [`MIN_SAMPLE_SECS`].
    pub fn sample_secs(latency: Duration) -> f64 {
        latency.as_secs_f64().max(MIN_SAMPLE_SECS)
    }

    /// The EWMA step on a time of last sample kept apart (the e-table keeps it with the weight,
    /// in the small per-entry data its per-call path touches): the new weight after sample
    /// `sample` (seconds) at `now`; `last_sample` becomes `now`.
    pub fn ewma_step(
        last_sample: &mut Option<Time>,
        weight: f64,
        alpha: f64,
        sample: f64,
        now: Time,
    ) -> f64 {
        debug_assert!(sample > 0.0 && sample.is_finite(), "sample {sample}");
        let fresh = last_sample.is_some_and(|last| now.saturating_since(last) < EWMA_STALE_AFTER);
        *last_sample = Some(now);
        if fresh {
            alpha * weight + (1.0 - alpha) * sample
        } else {
            sample
        }
    }

    /// The peak EWMA step on a time of last sample kept apart: the new weight after sample
    /// `sample` (seconds) at `now`; `last_sample` becomes `now`. The first sample, or one above
    /// the weight, replaces it; a lower one is averaged in with the weight's share
    /// `exp(-elapsed / decay)`, so the longer since the previous sample, the more it counts.
    pub fn peak_ewma_step(
        last_sample: &mut Option<Time>,
        weight: f64,
        decay: Duration,
        sample: f64,
        now: Time,
    ) -> f64 {
        debug_assert!(sample > 0.0 && sample.is_finite(), "sample {sample}");
        let previous = last_sample.replace(now);
        match previous {
            Some(last) if sample <= weight => {
                let d = decay_factor(now.saturating_since(last), decay);
                weight * d + sample * (1.0 - d)
            }
            _ => sample,
        }
    }

    /// Record sample `sample` (seconds) in the current period; true if it is the period's first.
    pub fn record(&mut self, sample: f64) -> bool {
        debug_assert!(sample > 0.0 && sample.is_finite(), "sample {sample}");
        let first = self.count == 0;
        if first {
            self.min = sample;
            self.max = sample;
            self.sum = 0.0;
        } else {
            self.min = self.min.min(sample);
            self.max = self.max.max(sample);
        }
        self.count = self.count.saturating_add(1);
        self.sum += sample;
        first
    }

    /// Close the current period: the new weight (`weight` if there were no samples).
    pub fn close(&mut self, weight: f64, stat: Stat) -> f64 {
        if self.count == 0 {
            return weight;
        }
        let w = match stat {
            Stat::Min => self.min,
            Stat::Mean => self.sum / f64::from(self.count),
            Stat::Max => self.max,
        };
        self.count = 0;
        w
    }

    /// Forget every sample (e.g. when the entry is unmarked and restarts at its initial weight).
    pub fn reset(&mut self) {
        *self = Estimate::default();
    }
}

/// `exp(-elapsed / time_constant)`: the share of an old value after `elapsed` in an
/// exponential decay (1 when no time passed, toward 0 as time goes on).
pub fn decay_factor(elapsed: Duration, time_constant: Duration) -> f64 {
    let tau = time_constant.as_secs_f64();
    if tau <= 0.0 {
        return 0.0;
    }
    (-elapsed.as_secs_f64() / tau).exp()
}
