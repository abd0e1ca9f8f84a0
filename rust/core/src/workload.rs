//! What a client sends and when: arrival processes (closed loop, Poisson, ON/OFF, trace replay)
//! and payload sizes. Pure: the caller supplies the random generator and the clock.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, Exp};

/// Errors in a workload description, naming the field or trace line at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorkloadError {
    /// Payload sizes that parse as none of a size, a range or a list (the text given).
    #[error(
        "invalid sizes '{0}': expected a size in bytes (100), a range (100-1000) or a list (100,200,400)"
    )]
    Sizes(String),
    /// A parameter of an arrival process out of its range.
    #[error("invalid {field} {value}: {expected}")]
    Value {
        /// The parameter, as the command line names it (e.g. `rate`, `on-mean`).
        field: &'static str,
        /// The refused value, as text.
        value: String,
        /// What the value must be.
        expected: &'static str,
    },
    /// A trace line that does not parse.
    #[error("{file}:{line}: {message}")]
    Trace {
        /// The trace file, as given.
        file: String,
        /// The line at fault, from 1.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
}

// ===== sizes =====

/// Payload sizes in bytes, drawn per call.
#[derive(Clone, Debug, PartialEq)]
pub enum Sizes {
    /// Always the same size, bytes.
    Fixed(usize),
    /// Uniform in `[min, max]`.
    Uniform {
        /// Smallest size, bytes.
        min: usize,
        /// Largest size, bytes (included).
        max: usize,
    },
    /// Uniform choice among the listed sizes.
    Choice(Vec<usize>),
}

impl Sizes {
    /// A payload size for one call, bytes.
    pub fn draw(&self, rng: &mut impl Rng) -> usize {
        match self {
            Sizes::Fixed(size) => *size,
            Sizes::Uniform { min, max } => rng.random_range(*min..=*max),
            Sizes::Choice(sizes) => sizes[rng.random_range(0..sizes.len())],
        }
    }
}

impl std::str::FromStr for Sizes {
    type Err = WorkloadError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || WorkloadError::Sizes(text.to_owned());
        let number = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
        if let Some((min, max)) = text.split_once('-') {
            let (min, max) = (number(min)?, number(max)?);
            if min > max {
                return Err(bad());
            }
            Ok(Sizes::Uniform { min, max })
        } else if text.contains(',') {
            let sizes = text.split(',').map(number).collect::<Result<Vec<_>, _>>()?;
            Ok(Sizes::Choice(sizes))
        } else {
            Ok(Sizes::Fixed(number(text)?))
        }
    }
}

// ===== arrivals =====

/// When calls start, as offsets from the start of the run.
#[derive(Clone, Debug, PartialEq)]
pub enum Arrivals {
    /// Calls as a Poisson process of `rate` calls per second.
    Poisson {
        /// Mean arrival rate, calls per second (> 0).
        rate: f64,
    },
    /// Exponential ON and OFF periods; inside ON, calls spaced `U[gap_min, gap_max]`.
    OnOff {
        /// Mean length of an ON period, during which calls are sent.
        on_mean: Duration,
        /// Mean length of an OFF period, during which no call is sent.
        off_mean: Duration,
        /// Shortest gap between two calls inside an ON period.
        gap_min: Duration,
        /// Longest gap between two calls inside an ON period.
        gap_max: Duration,
    },
}

/// One call of a replayed trace: `time lambda endpoint size`.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    /// When the call starts, from the start of the run.
    pub time: Duration,
    /// The lambda to call.
    pub lambda: String,
    /// Router to send to; `None` (written `-`) means the client's default router.
    pub endpoint: Option<String>,
    /// Payload size of the call, bytes.
    pub size: usize,
}

fn positive(field: &'static str, value: f64) -> Result<f64, WorkloadError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(WorkloadError::Value {
            field,
            value: value.to_string(),
            expected: "must be a finite number > 0",
        })
    }
}

impl Arrivals {
    /// A Poisson process of `rate` calls per second; refused unless `rate` is finite and > 0.
    pub fn poisson(rate: f64) -> Result<Self, WorkloadError> {
        Ok(Arrivals::Poisson {
            rate: positive("rate", rate)?,
        })
    }

    /// An ON/OFF process; refused unless both means are > 0 and `gap_min <= gap_max`.
    pub fn on_off(
        on_mean: Duration,
        off_mean: Duration,
        gap_min: Duration,
        gap_max: Duration,
    ) -> Result<Self, WorkloadError> {
        positive("on-mean", on_mean.as_secs_f64())?;
        positive("off-mean", off_mean.as_secs_f64())?;
        if gap_min > gap_max {
            return Err(WorkloadError::Value {
                field: "gap",
                value: format!("{gap_min:?}..{gap_max:?}"),
                expected: "the minimum gap must not exceed the maximum",
            });
        }
        Ok(Arrivals::OnOff {
            on_mean,
            off_mean,
            gap_min,
            gap_max,
        })
    }

    /// The arrival times, lazily, starting from offset zero.
    pub fn schedule<R: Rng>(&self, rng: R) -> Schedule<'_, R> {
        Schedule {
            arrivals: self,
            rng,
            now: Duration::ZERO,
            on_until: None,
        }
    }
}

/// Iterator over the arrival offsets of an [`Arrivals`] process.
pub struct Schedule<'a, R> {
    arrivals: &'a Arrivals,
    rng: R,
    now: Duration,
    /// ON/OFF: end of the current ON period.
    on_until: Option<Duration>,
}

fn exponential(rng: &mut impl Rng, mean_secs: f64) -> Duration {
    let exp = Exp::new(1.0 / mean_secs).expect("mean validated > 0");
    Duration::from_secs_f64(exp.sample(rng))
}

impl<R: Rng> Iterator for Schedule<'_, R> {
    type Item = Duration;

    fn next(&mut self) -> Option<Self::Item> {
        match self.arrivals {
            Arrivals::Poisson { rate } => {
                self.now += exponential(&mut self.rng, 1.0 / rate);
                Some(self.now)
            }
            Arrivals::OnOff {
                on_mean,
                off_mean,
                gap_min,
                gap_max,
            } => {
                let gap = Duration::from_secs_f64(
                    self.rng
                        .random_range(gap_min.as_secs_f64()..=gap_max.as_secs_f64()),
                );
                let mut next = self.now + gap;
                let on_until = match self.on_until {
                    Some(on_until) => on_until,
                    None => {
                        // The first ON period starts at once.
                        next = self.now;
                        self.now + exponential(&mut self.rng, on_mean.as_secs_f64())
                    }
                };
                let on_until = if next > on_until {
                    // OFF, then a new ON period whose first call starts it.
                    next = on_until + exponential(&mut self.rng, off_mean.as_secs_f64());
                    next + exponential(&mut self.rng, on_mean.as_secs_f64())
                } else {
                    on_until
                };
                self.on_until = Some(on_until);
                self.now = next;
                Some(next)
            }
        }
    }
}

/// Parse a trace: one call per line, `time lambda endpoint size` separated by blanks; time in
/// seconds from the start, endpoint `-` for the client's router; `#` starts a comment.
pub fn parse_trace(text: &str, file: &str) -> Result<Vec<TraceRow>, WorkloadError> {
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let error = |message: String| WorkloadError::Trace {
            file: file.to_owned(),
            line: index + 1,
            message,
        };
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [time, lambda, endpoint, size] = fields[..] else {
            return Err(error(format!(
                "expected 4 fields 'time lambda endpoint size', found {}",
                fields.len()
            )));
        };
        let time: f64 = time
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| error(format!("time '{time}' is not a number of seconds >= 0")))?;
        let size: usize = size
            .parse()
            .map_err(|_| error(format!("size '{size}' is not a number of bytes")))?;
        rows.push(TraceRow {
            time: Duration::from_secs_f64(time),
            lambda: lambda.to_owned(),
            endpoint: (endpoint != "-").then(|| endpoint.to_owned()),
            size,
        });
    }
    rows.sort_by_key(|row| row.time);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn sizes_parse_fixed_range_and_list() {
        assert_eq!("100".parse(), Ok(Sizes::Fixed(100)));
        assert_eq!("1-5".parse(), Ok(Sizes::Uniform { min: 1, max: 5 }));
        assert_eq!("1,2,3".parse(), Ok(Sizes::Choice(vec![1, 2, 3])));
        assert!("5-1".parse::<Sizes>().is_err());
        assert!("x".parse::<Sizes>().is_err());
    }

    #[test]
    fn poisson_mean_rate_matches() {
        let arrivals = Arrivals::poisson(50.0).unwrap();
        let last = arrivals
            .schedule(SmallRng::seed_from_u64(7))
            .take(20_000)
            .last()
            .unwrap();
        let rate = 20_000.0 / last.as_secs_f64();
        assert!((rate - 50.0).abs() < 2.0, "rate {rate}");
    }

    #[test]
    fn on_off_calls_are_spaced_by_the_gap_inside_on_periods() {
        let ms = Duration::from_millis;
        let arrivals = Arrivals::on_off(ms(1000), ms(1000), ms(10), ms(20)).unwrap();
        let times: Vec<Duration> = arrivals
            .schedule(SmallRng::seed_from_u64(3))
            .take(5000)
            .collect();
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| *g >= ms(10)),
            "a gap is below the minimum"
        );
        let inside = gaps.iter().filter(|g| **g <= ms(20)).count();
        let off = gaps.len() - inside;
        // About one OFF gap per ON period of ~1 s holding ~66 calls.
        assert!(
            off > 20 && off < 200,
            "{off} OFF periods among {} gaps",
            gaps.len()
        );
        // Half the time is OFF, so the run lasts about twice the ON time.
        let span = times.last().unwrap().as_secs_f64();
        let on_time = 5000.0 * 0.015;
        assert!(span > 1.5 * on_time && span < 2.6 * on_time, "span {span}");
    }

    #[test]
    fn trace_parses_and_names_bad_lines() {
        let rows = parse_trace(
            "# t lambda endpoint size\n0.5 f - 10\n0.1 g 1.2.3.4:6473 20\n",
            "t.txt",
        )
        .unwrap();
        assert_eq!(rows[0].lambda, "g");
        assert_eq!(rows[0].endpoint.as_deref(), Some("1.2.3.4:6473"));
        assert_eq!(rows[1].endpoint, None);
        let error = parse_trace("0 f - 10\n1 f -\n", "t.txt").unwrap_err();
        assert_eq!(
            error.to_string(),
            "t.txt:2: expected 4 fields 'time lambda endpoint size', found 3"
        );
        let error = parse_trace("x f - 10\n", "t.txt").unwrap_err();
        assert!(error.to_string().starts_with("t.txt:1: time 'x'"));
    }
}
