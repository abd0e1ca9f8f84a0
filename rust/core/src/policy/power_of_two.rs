//! Power of two choices over a peak-EWMA load estimate.

use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;

use super::{Policy, ensure_slot, prefetch};
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
/// sample of its own. Select is O(1): a dense vector of loads plus a slot index map with swap-remove.
#[derive(Debug, Default)]
pub struct PowerOfTwo {
    /// The present destinations, densely, in no particular order: a draw reads two of them
    /// and nothing else.
    loads: Vec<Load>,
    /// Per slot: its index in `loads`, `ABSENT` when absent.
    index: Vec<u32>,
    /// The two candidates of the next call, drawn one call ahead so that their loads are
    /// prefetched while this call goes on (in a large table each is a cache miss). Cleared
    /// whenever a destination comes or goes.
    next: Option<(usize, usize)>,
}

const ABSENT: u32 = u32::MAX;

/// Load of one destination.
#[derive(Clone, Copy, Debug)]
struct Load {
    slot: u32,
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
        let i = *self.index.get(slot)?;
        self.loads.get(i as usize)
    }

    /// Two distinct indices of `loads`, uniformly (n >= 2).
    fn draw_pair(n: usize, rng: &mut SmallRng) -> (usize, usize) {
        let i = rng.random_range(0..n);
        let mut j = rng.random_range(0..n - 1);
        if j >= i {
            j += 1;
        }
        (i, j)
    }

    fn load_mut(&mut self, slot: usize) -> Option<&mut Load> {
        let i = *self.index.get(slot)?;
        self.loads.get_mut(i as usize)
    }
}

impl Policy for PowerOfTwo {
    fn insert(&mut self, slot: usize, weight: f64, now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        assert!(slot < ABSENT as usize, "slot {slot} out of range");
        ensure_slot(&mut self.index, slot, ABSENT);
        debug_assert_eq!(self.index[slot], ABSENT, "slot {slot} inserted twice");
        if self.index[slot] != ABSENT {
            return;
        }
        self.next = None;
        self.index[slot] = self.loads.len() as u32;
        self.loads.push(Load {
            slot: slot as u32,
            in_flight: 0,
            estimate: weight,
            stamp: now,
            observed: false,
        });
    }

    fn remove(&mut self, slot: usize) {
        let Some(&i) = self.index.get(slot).filter(|&&i| i != ABSENT) else {
            return;
        };
        self.next = None;
        self.index[slot] = ABSENT;
        self.loads.swap_remove(i as usize);
        if let Some(moved) = self.loads.get(i as usize) {
            self.index[moved.slot as usize] = i;
        }
    }

    fn set_weight(&mut self, slot: usize, weight: f64, now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        if let Some(l) = self.load_mut(slot)
            && !l.observed
        {
            l.estimate = weight;
            l.stamp = now;
        }
    }

    fn select(&mut self, now: Time, rng: &mut SmallRng) -> Option<usize> {
        let n = self.loads.len();
        let chosen = match n {
            0 => return None,
            1 => 0,
            _ => {
                let (i, j) = match self.next.take() {
                    Some(pair) => pair,
                    None => Self::draw_pair(n, rng),
                };
                let next = Self::draw_pair(n, rng);
                prefetch(&self.loads[next.0]);
                prefetch(&self.loads[next.1]);
                self.next = Some(next);
                if self.loads[j].cost(now) < self.loads[i].cost(now) {
                    j
                } else {
                    i
                }
            }
        };
        let l = &mut self.loads[chosen];
        l.in_flight = l.in_flight.saturating_add(1);
        let slot = l.slot as usize;
        // `complete` finds the load through the index: start that miss now.
        prefetch(&self.index[slot]);
        Some(slot)
    }

    fn on_complete(&mut self, slot: usize, latency: Option<Duration>, now: Time) {
        let Some(l) = self.load_mut(slot) else {
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
        self.loads.len()
    }
}
