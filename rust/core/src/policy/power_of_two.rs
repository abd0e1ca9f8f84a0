//! Power of two choices over a peak-EWMA load estimate.

use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;

use super::{Policy, ensure_slot};
use crate::clock::Time;

/// Time constant of the peak EWMA's decay (tower's and Finagle's default is 10 s).
pub const PEAK_EWMA_DECAY: Duration = Duration::from_secs(10);

/// Power of two choices: draw two distinct destinations uniformly at random and send the call to
/// the one with the lower cost = peak EWMA latency x (in-flight calls + 1).
///
/// Two random choices avoid both the herd behaviour of always picking the minimum and the
/// imbalance of one random choice, and the in-flight factor spreads bursts at once, before any
/// latency is measured; this follows Finagle's `P2CPeakEwma` and tower's `p2c::Balance` over
/// `load::PeakEwma` (beyond the upstream `serverlessonedge`). The peak EWMA jumps up to a sample
/// above it at once and decays toward lower samples, and toward zero while idle, with a 10 s
/// time constant; it starts from the installed weight and follows `set_weight` until the first
/// sample of its own. Select is O(1): a vector of slots plus an index map with swap-remove.
#[derive(Debug, Default)]
pub struct PowerOfTwo {
    /// The present slots, in no particular order.
    members: Vec<usize>,
    /// Per slot: its state, `None` when absent.
    state: Vec<Option<Load>>,
}

/// Load of one destination.
#[derive(Clone, Copy, Debug)]
struct Load {
    /// Index in `members`.
    index: usize,
    in_flight: u32,
    /// Peak EWMA of the latency in seconds, as of `stamp`.
    estimate: f64,
    stamp: Time,
    /// Whether `estimate` comes from a latency sample (then `set_weight` no longer moves it).
    observed: bool,
}

impl Load {
    /// The estimate decayed toward zero for the time elapsed since it was last updated.
    fn estimate_at(&self, now: Time) -> f64 {
        self.estimate * decay(now - self.stamp)
    }

    fn cost(&self, now: Time) -> f64 {
        self.estimate_at(now) * f64::from(self.in_flight.saturating_add(1))
    }
}

fn decay(elapsed: Duration) -> f64 {
    (-elapsed.as_secs_f64() / PEAK_EWMA_DECAY.as_secs_f64()).exp()
}

// ===== impl PowerOfTwo =====

impl PowerOfTwo {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls sent to `slot` that have not completed yet.
    pub fn in_flight(&self, slot: usize) -> Option<u32> {
        self.load(slot).map(|l| l.in_flight)
    }

    /// The cost of `slot` at `now`: peak EWMA (seconds) x (in-flight + 1).
    pub fn cost(&self, slot: usize, now: Time) -> Option<f64> {
        self.load(slot).map(|l| l.cost(now))
    }

    fn load(&self, slot: usize) -> Option<&Load> {
        self.state.get(slot).and_then(Option::as_ref)
    }
}

impl Policy for PowerOfTwo {
    fn insert(&mut self, slot: usize, weight: f64, now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        ensure_slot(&mut self.state, slot, None);
        debug_assert!(self.state[slot].is_none(), "slot {slot} inserted twice");
        if self.state[slot].is_some() {
            return;
        }
        self.state[slot] = Some(Load {
            index: self.members.len(),
            in_flight: 0,
            estimate: weight,
            stamp: now,
            observed: false,
        });
        self.members.push(slot);
    }

    fn remove(&mut self, slot: usize) {
        let Some(load) = self.state.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.members.swap_remove(load.index);
        if let Some(&moved) = self.members.get(load.index)
            && let Some(l) = self.state[moved].as_mut()
        {
            l.index = load.index;
        }
    }

    fn set_weight(&mut self, slot: usize, weight: f64, now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        if let Some(Some(l)) = self.state.get_mut(slot)
            && !l.observed
        {
            l.estimate = weight;
            l.stamp = now;
        }
    }

    fn select(&mut self, now: Time, rng: &mut SmallRng) -> Option<usize> {
        let n = self.members.len();
        let chosen = match n {
            0 => return None,
            1 => self.members[0],
            _ => {
                let i = rng.random_range(0..n);
                let mut j = rng.random_range(0..n - 1);
                if j >= i {
                    j += 1;
                }
                let (a, b) = (self.members[i], self.members[j]);
                let cost = |s: usize| {
                    self.state[s]
                        .as_ref()
                        .map_or(f64::INFINITY, |l| l.cost(now))
                };
                if cost(b) < cost(a) { b } else { a }
            }
        };
        if let Some(l) = self.state[chosen].as_mut() {
            l.in_flight = l.in_flight.saturating_add(1);
        }
        Some(chosen)
    }

    fn on_complete(&mut self, slot: usize, latency: Option<Duration>, now: Time) {
        let Some(Some(l)) = self.state.get_mut(slot) else {
            return;
        };
        l.in_flight = l.in_flight.saturating_sub(1);
        if let Some(latency) = latency {
            let sample = latency.as_secs_f64();
            if sample > l.estimate {
                l.estimate = sample;
            } else {
                let d = decay(now - l.stamp);
                l.estimate = l.estimate * d + sample * (1.0 - d);
            }
            l.stamp = now;
            l.observed = true;
        }
    }

    fn len(&self) -> usize {
        self.members.len()
    }
}
