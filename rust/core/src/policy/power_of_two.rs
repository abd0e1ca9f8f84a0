//! Power of two choices over (weight, calls in flight).

use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;

use super::{Policy, ensure_slot, prefetch};
use crate::clock::Time;
use crate::estimator::decay_factor;

/// Time constant with which a destination's weight, as power of two choices reads it, decays
/// toward zero while no new weight arrives (tower's and Finagle's 10 s).
pub const IDLE_DECAY: Duration = Duration::from_secs(10);

/// Power of two choices: draw two distinct destinations uniformly at random and send the call to
/// the one with the lower cost = weight x (calls in flight + 1).
///
/// Two random choices avoid both the herd behaviour of always picking the minimum and the
/// imbalance of one random choice, and the in-flight factor spreads bursts at once, before any
/// latency is measured; this follows Finagle's `P2CPeakEwma` and tower's `p2c::Balance` (beyond
/// the upstream `serverlessonedge`). The weight is the table's, from whichever estimator it
/// runs (peak EWMA by default for this policy, as Finagle and tower pair them); the policy counts
/// the calls in flight itself, from `select` to `on_complete`. A weight is read decayed toward
/// zero while no new one arrives (10 s time constant), as tower's `PeakEwma` load does, so a
/// destination that was slow once is tried again after a while instead of never. Select is
/// O(1): a dense vector of loads plus a slot index map with swap-remove.
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
    /// The table's weight (estimated latency, seconds), as of `stamp`.
    weight: f64,
    /// When `weight` was last set.
    stamp: Time,
}

impl Load {
    fn cost(&self, now: Time) -> f64 {
        self.weight
            * decay_factor(now.saturating_since(self.stamp), IDLE_DECAY)
            * f64::from(self.in_flight.saturating_add(1))
    }
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

    /// The cost of `slot` at `now`: its weight (seconds, decayed while idle) x (in-flight + 1).
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
            weight,
            stamp: now,
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
        if let Some(l) = self.load_mut(slot) {
            l.weight = weight;
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

    fn on_complete(&mut self, slot: usize, _latency: Option<Duration>, _now: Time) {
        // The latency reached the weight through the table's estimator already. A call the
        // table handed out as a probe never passed `select`: saturate rather than wrap.
        if let Some(l) = self.load_mut(slot) {
            l.in_flight = l.in_flight.saturating_sub(1);
        }
    }

    fn len(&self) -> usize {
        self.loads.len()
    }
}
