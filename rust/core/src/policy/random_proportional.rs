//! Random proportional dispatch over a wide (16-ary) sum tree.

use rand::Rng;
use rand::rngs::SmallRng;

use super::Policy;
use crate::clock::Time;

/// Children per node of the sum tree: 16 doubles, two cache lines.
const FANOUT: usize = 16;

/// Random proportional: each call goes to destination d with probability proportional to 1/w_d.
///
/// Faster destinations get more calls, slower ones still get some, so the router keeps learning
/// their latency; this is the "random proportional" policy of Cicconetti, Conti, Passarella
/// (IEEE TNSM 2020, CloudCom 2018; `serverlessonedge`'s `ForwardingTableProportional`).
/// The inverse weights are the leaves of a 16-ary sum tree indexed by slot: a draw descends it
/// scanning one node's 16 children per level, an update adds the difference to the ~log16(n)
/// ancestors (5 levels for 100,000 destinations instead of the 17 of a binary tree, so few cold
/// cache lines per call). Floating-point drift in the partial sums is bounded by rebuilding them
/// from the exact leaves every `capacity` updates (amortised O(1)).
#[derive(Debug, Default)]
pub struct RandomProportional {
    /// `levels[0]`: 1/w per slot, 0 where the slot is absent (exact values); `levels[k + 1][i]`:
    /// the sum of `levels[k][FANOUT * i..FANOUT * (i + 1)]`. The last level has one node, the
    /// total. Every level's length is a multiple of `FANOUT` except the last.
    levels: Vec<Vec<f64>>,
    len: usize,
    /// Updates since the last rebuild.
    updates: usize,
}

// ===== impl RandomProportional =====

impl RandomProportional {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    fn capacity(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    fn leaf(&self, slot: usize) -> f64 {
        self.levels
            .first()
            .and_then(|l| l.get(slot))
            .copied()
            .unwrap_or(0.0)
    }

    fn present(&self, slot: usize) -> bool {
        self.leaf(slot) > 0.0
    }

    /// Make room for `slot`, doubling the capacity (amortised O(1)).
    fn reserve(&mut self, slot: usize) {
        if slot < self.capacity() {
            return;
        }
        let cap = (slot + 1).next_power_of_two().max(FANOUT);
        let mut leaves = std::mem::take(&mut self.levels)
            .into_iter()
            .next()
            .unwrap_or_default();
        leaves.resize(cap, 0.0);
        self.levels = vec![leaves];
        self.rebuild();
    }

    /// Recompute every partial sum from the leaves (O(n)).
    fn rebuild(&mut self) {
        self.levels.truncate(1);
        loop {
            let below = self.levels.last().expect("leaves");
            if below.len() <= 1 {
                break;
            }
            let mut level: Vec<f64> = below.chunks(FANOUT).map(|c| c.iter().sum()).collect();
            if level.len() > 1 {
                level.resize(level.len().div_ceil(FANOUT) * FANOUT, 0.0);
            }
            self.levels.push(level);
        }
        self.updates = 0;
    }

    fn set_value(&mut self, slot: usize, value: f64) {
        let delta = value - self.levels[0][slot];
        self.levels[0][slot] = value;
        let mut i = slot;
        for level in &mut self.levels[1..] {
            i /= FANOUT;
            level[i] += delta;
        }
        self.updates += 1;
        if self.updates >= self.capacity().max(64) {
            self.rebuild();
        }
    }

    /// Total of the inverse weights (the root of the tree).
    fn total(&self) -> f64 {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(0.0)
    }

    /// The slot at which the running sum of inverse weights first exceeds `u`: per level, the
    /// child of the current node in which `u` falls (the last non-empty child when rounding
    /// carries `u` past them all).
    fn descend(&self, mut u: f64) -> usize {
        let mut node = 0;
        for level in self.levels[..self.levels.len() - 1].iter().rev() {
            let start = node * FANOUT;
            let children = &level[start..(start + FANOUT).min(level.len())];
            let mut chosen = None;
            for (k, &c) in children.iter().enumerate() {
                if c > 0.0 {
                    chosen = Some(k);
                    if u < c {
                        break;
                    }
                    u -= c;
                }
            }
            node = start + chosen.unwrap_or(0);
        }
        node
    }
}

impl Policy for RandomProportional {
    fn insert(&mut self, slot: usize, weight: f64, _now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        self.reserve(slot);
        debug_assert!(!self.present(slot), "slot {slot} inserted twice");
        if self.present(slot) {
            return;
        }
        self.len += 1;
        self.set_value(slot, 1.0 / weight);
    }

    fn remove(&mut self, slot: usize) {
        if !self.present(slot) {
            return;
        }
        self.len -= 1;
        self.set_value(slot, 0.0);
        if self.len == 0 {
            // Exact zeros everywhere: no drift carried over to the next destinations.
            self.rebuild();
        }
    }

    fn set_weight(&mut self, slot: usize, weight: f64, _now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        if self.present(slot) {
            self.set_value(slot, 1.0 / weight);
        }
    }

    fn select(&mut self, _now: Time, rng: &mut SmallRng) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        // Drifted partial sums can make the descent land on an empty slot, with a vanishing
        // probability: draw again, then rebuild the sums exactly and draw again.
        for attempt in 0..8 {
            if attempt == 4 {
                self.rebuild();
            }
            let total = self.total();
            if total > 0.0 && total.is_finite() {
                let slot = self.descend(rng.random::<f64>() * total);
                if self.present(slot) {
                    return Some(slot);
                }
            }
        }
        // Unreachable in practice; stay correct anyway.
        self.levels[0].iter().position(|&v| v > 0.0)
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The partial sums after many updates stay within rounding of the exact sums (the
    /// periodic rebuild bounds the drift).
    #[test]
    fn partial_sums_stay_exact_within_rounding_after_many_updates() {
        let mut p = RandomProportional::new();
        let n = 5_000;
        let mut rng = SmallRng::seed_from_u64(1);
        for slot in 0..n {
            p.insert(slot, rng.random_range(0.001..10.0), Time::ZERO);
        }
        for _ in 0..200_000 {
            let slot = rng.random_range(0..n);
            p.set_weight(slot, rng.random_range(0.001..10.0), Time::ZERO);
        }
        for k in 1..p.levels.len() {
            for (i, &sum) in p.levels[k].iter().enumerate() {
                let lo = (i * FANOUT).min(p.levels[k - 1].len());
                let hi = ((i + 1) * FANOUT).min(p.levels[k - 1].len());
                let exact: f64 = p.levels[k - 1][lo..hi].iter().sum();
                assert!(
                    (sum - exact).abs() <= 1e-9 * exact.max(1.0),
                    "level {k} node {i}: {sum} vs {exact}"
                );
            }
        }
        assert_eq!(p.levels.last().map(Vec::len), Some(1));
    }

    #[test]
    fn descend_lands_on_the_slot_whose_interval_holds_u() {
        let mut p = RandomProportional::new();
        // 40 slots over 3 leaf groups, every third present with 1/w = 1.
        for slot in (0..40).step_by(3) {
            p.insert(slot, 1.0, Time::ZERO);
        }
        let present: Vec<usize> = (0..40).step_by(3).collect();
        for (k, &slot) in present.iter().enumerate() {
            assert_eq!(p.descend(k as f64 + 0.5), slot);
        }
        // Past the total (rounding): the last present slot.
        assert_eq!(p.descend(1e9), *present.last().unwrap());
    }
}
