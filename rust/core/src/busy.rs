//! The load of a computer that runs real code (an HTTP function, the face detector) rather
//! than the simulated model: how busy its `workers` concurrent calls were.
//!
//! A [`BusyMeter`] counts the calls in flight over time. Each utilization sample (the node takes
//! one a second) is the busy worker-seconds since the previous sample divided by
//! `workers * elapsed`, in 0..=1, where a worker is busy while it holds a call; the loads are
//! those of the simulated model ([`crate::computer_model::Load`]): the last sample and the means
//! of the last 10 and 30.

use std::collections::VecDeque;

use crate::clock::Time;
use crate::computer_model::Load;

/// Samples kept for `load30`.
const HISTORY: usize = 30;

/// Busy time of `workers` workers (see the module documentation).
#[derive(Clone, Debug)]
pub struct BusyMeter {
    workers: u32,
    in_flight: u32,
    /// Time of the last change of `in_flight` or of the last sample.
    mark: Time,
    /// Worker-seconds busy since the last sample.
    busy: f64,
    last_sample: Time,
    history: VecDeque<f32>,
}

impl BusyMeter {
    /// A meter of `workers` workers (at least 1), idle since `now`.
    pub fn new(workers: u32, now: Time) -> Self {
        BusyMeter {
            workers: workers.max(1),
            in_flight: 0,
            mark: now,
            busy: 0.0,
            last_sample: now,
            history: VecDeque::with_capacity(HISTORY),
        }
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    fn account(&mut self, now: Time) {
        if now > self.mark {
            let busy_workers = self.in_flight.min(self.workers) as f64;
            self.busy += busy_workers * (now - self.mark).as_secs_f64();
            self.mark = now;
        }
    }

    /// A call starts at `now`.
    pub fn start(&mut self, now: Time) {
        self.account(now);
        self.in_flight += 1;
    }

    /// A call ends at `now`.
    pub fn finish(&mut self, now: Time) {
        self.account(now);
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Takes a utilization sample at `now` (0 to 1) and records it for the loads; a sample at the
    /// time of the previous one returns the previous value and records nothing.
    pub fn sample(&mut self, now: Time) -> f32 {
        self.account(now);
        let elapsed = (now - self.last_sample).as_secs_f64();
        if elapsed <= 0.0 {
            return self.history.back().copied().unwrap_or(0.0);
        }
        let u = (self.busy / (self.workers as f64 * elapsed)).clamp(0.0, 1.0) as f32;
        self.busy = 0.0;
        self.last_sample = now;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(u);
        u
    }

    /// The loads from the samples so far (0 before the first).
    pub fn load(&self) -> Load {
        let mean = |k: usize| {
            let k = k.min(self.history.len());
            if k == 0 {
                return 0;
            }
            let sum: f64 = self.history.iter().rev().take(k).map(|&u| u as f64).sum();
            ((sum / k as f64) * 100.0).round().clamp(0.0, 100.0) as u32
        };
        Load {
            load1: mean(1),
            load10: mean(10),
            load30: mean(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: f64) -> Time {
        Time::from_secs_f64(s)
    }

    #[test]
    fn one_call_of_half_a_second_on_two_workers_is_a_quarter() {
        let mut m = BusyMeter::new(2, t(0.0));
        m.start(t(0.25));
        m.finish(t(0.75));
        assert!((m.sample(t(1.0)) - 0.25).abs() < 1e-6);
        assert_eq!(m.load().load1, 25);
        assert_eq!(m.sample(t(2.0)), 0.0);
        assert_eq!(m.load().load1, 0);
        assert_eq!(m.load().load10, 13); // mean of 0.25 and 0 = 12.5, rounded
    }

    #[test]
    fn calls_beyond_the_workers_count_as_full_and_span_samples() {
        let mut m = BusyMeter::new(1, t(0.0));
        m.start(t(0.0));
        m.start(t(0.0));
        m.start(t(0.5));
        assert_eq!(m.in_flight(), 3);
        assert_eq!(m.sample(t(1.0)), 1.0);
        m.finish(t(1.5));
        m.finish(t(1.5));
        m.finish(t(1.5));
        assert!((m.sample(t(2.0)) - 0.5).abs() < 1e-6);
        assert_eq!(m.load().load1, 50);
        assert_eq!(m.load().load30, 75);
    }

    #[test]
    fn a_sample_at_the_same_time_records_nothing() {
        let mut m = BusyMeter::new(1, t(0.0));
        assert_eq!(m.load(), Load::default());
        m.start(t(0.0));
        assert_eq!(m.sample(t(1.0)), 1.0);
        assert_eq!(m.sample(t(1.0)), 1.0);
        assert_eq!(m.load().load10, 100);
    }
}
