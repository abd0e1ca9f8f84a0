//! The delay line: per queue, a FIFO of held packets, each released `delay` after it arrived,
//! unless the queue's loss draw dropped it on arrival.
//!
//! Time is a [`Duration`] since an origin the caller picks, passed into every call, so the
//! behaviour is deterministic under test. Losses come from one generator seeded by the caller:
//! the same seed and the same arrivals give the same drops.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// What to do with the packets of one NFQUEUE queue: hold them `delay`, lose a fraction `loss`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueueSpec {
    /// The NFQUEUE number (`iptables ... -j NFQUEUE --queue-num N`).
    pub queue: u16,
    /// How long every packet is held.
    pub delay: Duration,
    /// Probability in [0, 1] that a packet is dropped on arrival.
    pub loss: f64,
}

/// A queue specification that does not parse or does not make sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// Not two or three `:`-separated parts.
    #[error("`{spec}`: expected QUEUE:DELAY_MS[:LOSS_PERCENT], e.g. `1:20` or `1:20:0.5`")]
    Format {
        /// The specification, as given.
        spec: String,
    },
    /// One part out of its range.
    #[error("`{spec}`: {what} `{value}` is not {expected}")]
    Value {
        /// The specification, as given.
        spec: String,
        /// The part at fault: `queue`, `delay` or `loss`.
        what: &'static str,
        /// The part's text.
        value: String,
        /// What the part must be.
        expected: &'static str,
    },
    /// Two specifications for the same queue number.
    #[error("queue {queue} is given twice; give each queue number once")]
    Duplicate {
        /// The NFQUEUE number given twice.
        queue: u16,
    },
    /// No specification at all.
    #[error("no queue given; give at least one --queue QUEUE:DELAY_MS[:LOSS_PERCENT]")]
    Empty,
}

impl FromStr for QueueSpec {
    type Err = SpecError;

    /// Parses `QUEUE:DELAY_MS[:LOSS_PERCENT]`: `3:20` holds queue 3's packets 20 ms; `3:20:1.5`
    /// also drops 1.5 % of them.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = spec.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(SpecError::Format { spec: spec.into() });
        }
        let bad = |what, value: &str, expected| SpecError::Value {
            spec: spec.into(),
            what,
            value: value.into(),
            expected,
        };
        let queue = parts[0]
            .parse::<u16>()
            .map_err(|_| bad("queue", parts[0], "a queue number 0-65535"))?;
        let delay_ms = parts[1]
            .parse::<f64>()
            .ok()
            .filter(|d| d.is_finite() && *d >= 0.0 && *d < 3.6e6)
            .ok_or_else(|| bad("delay", parts[1], "a number of milliseconds >= 0"))?;
        let loss_pct = match parts.get(2) {
            None => 0.0,
            Some(l) => l
                .parse::<f64>()
                .ok()
                .filter(|l| (0.0..=100.0).contains(l))
                .ok_or_else(|| bad("loss", l, "a percentage from 0 to 100"))?,
        };
        Ok(QueueSpec {
            queue,
            delay: Duration::from_secs_f64(delay_ms / 1000.0),
            loss: loss_pct / 100.0,
        })
    }
}

impl fmt::Display for QueueSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.queue,
            self.delay.as_secs_f64() * 1000.0,
            self.loss * 100.0
        )
    }
}

/// What became of an arriving packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<T> {
    /// Held; it comes out of [`DelayLine::release_due`] at the given time.
    Held {
        /// When the packet is due, on the caller's clock.
        release: Duration,
    },
    /// Lost: the caller drops it now.
    Dropped(T),
    /// Not for any queue of this line: the caller lets it pass at once.
    Unknown(T),
}

/// Counters of one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// The NFQUEUE number.
    pub queue: u16,
    /// Packets held and released (or still held).
    pub held: u64,
    /// Packets dropped by the loss draw.
    pub dropped: u64,
}

struct Class<T> {
    spec: QueueSpec,
    fifo: VecDeque<(Duration, T)>,
    stats: QueueStats,
}

/// Held packets of every queue, in arrival order per queue.
pub struct DelayLine<T> {
    classes: Vec<Class<T>>,
    rng: SmallRng,
}

// ===== impl DelayLine =====

impl<T> DelayLine<T> {
    /// A line for `specs` (distinct queue numbers, at least one); `seed` drives the losses.
    pub fn new(specs: &[QueueSpec], seed: u64) -> Result<Self, SpecError> {
        if specs.is_empty() {
            return Err(SpecError::Empty);
        }
        let mut classes: Vec<Class<T>> = Vec::with_capacity(specs.len());
        for spec in specs {
            if classes.iter().any(|c| c.spec.queue == spec.queue) {
                return Err(SpecError::Duplicate { queue: spec.queue });
            }
            classes.push(Class {
                spec: *spec,
                fifo: VecDeque::new(),
                stats: QueueStats {
                    queue: spec.queue,
                    ..QueueStats::default()
                },
            });
        }
        Ok(DelayLine {
            classes,
            rng: SmallRng::seed_from_u64(seed),
        })
    }

    /// A packet of `queue` arrives at `now`: hold it or drop it.
    pub fn admit(&mut self, queue: u16, now: Duration, packet: T) -> Admission<T> {
        let Some(class) = self.classes.iter_mut().find(|c| c.spec.queue == queue) else {
            return Admission::Unknown(packet);
        };
        // Draw for every packet of a lossy queue, so the drops depend only on the seed and the
        // arrival order.
        if class.spec.loss > 0.0 && self.rng.random_bool(class.spec.loss.min(1.0)) {
            class.stats.dropped += 1;
            return Admission::Dropped(packet);
        }
        let release = now + class.spec.delay;
        debug_assert!(
            class.fifo.back().is_none_or(|(r, _)| *r <= release),
            "arrivals must come in time order"
        );
        class.fifo.push_back((release, packet));
        class.stats.held += 1;
        Admission::Held { release }
    }

    /// When the next held packet is due, if any is held.
    pub fn next_release(&self) -> Option<Duration> {
        self.classes
            .iter()
            .filter_map(|c| c.fifo.front().map(|(r, _)| *r))
            .min()
    }

    /// Moves every packet due at `now` into `out`, earliest first (arrival order within a queue).
    pub fn release_due(&mut self, now: Duration, out: &mut Vec<T>) {
        while let Some(i) = self.earliest() {
            if self.classes[i].fifo.front().is_some_and(|(r, _)| *r <= now) {
                let (_, packet) = self.classes[i].fifo.pop_front().expect("front checked");
                out.push(packet);
            } else {
                break;
            }
        }
    }

    /// Moves every held packet into `out`, earliest first (when the element stops).
    pub fn drain(&mut self, out: &mut Vec<T>) {
        self.release_due(Duration::MAX, out);
    }

    /// Packets held now.
    pub fn len(&self) -> usize {
        self.classes.iter().map(|c| c.fifo.len()).sum()
    }

    /// Whether no packet is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters per queue, in the order the queues were given.
    pub fn stats(&self) -> Vec<QueueStats> {
        self.classes.iter().map(|c| c.stats).collect()
    }

    /// The queues, in the order they were given.
    pub fn specs(&self) -> Vec<QueueSpec> {
        self.classes.iter().map(|c| c.spec).collect()
    }

    fn earliest(&self) -> Option<usize> {
        self.classes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.fifo.front().map(|(r, _)| (*r, i)))
            .min()
            .map(|(_, i)| i)
    }
}
