//! Random proportional dispatch over a Fenwick tree.

use rand::Rng;
use rand::rngs::SmallRng;

use super::{Policy, ensure_slot};
use crate::clock::Time;

/// Random proportional: each call goes to destination d with probability proportional to 1/w_d.
///
/// Faster destinations get more calls, slower ones still get some, so the router keeps learning
/// their latency; this is the "random proportional" policy of Cicconetti, Conti, Passarella
/// (IEEE TNSM 2020, CloudCom 2018; `serverlessonedge`'s `ForwardingTableProportional`).
/// The inverse weights live in a Fenwick (binary indexed) tree indexed by slot, so a draw
/// descends the tree and an update climbs it: both O(log n). Floating-point drift in the
/// partial sums is bounded by rebuilding the tree from the exact values every `capacity`
/// updates (amortised O(1)).
#[derive(Debug, Default)]
pub struct RandomProportional {
    /// Fenwick tree over `value`, 1-based, `tree.len() == capacity + 1`, capacity a power of 2.
    tree: Vec<f64>,
    /// 1/w per slot, 0 where the slot is absent.
    value: Vec<f64>,
    present: Vec<bool>,
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
        self.tree.len().saturating_sub(1)
    }

    /// Make room for `slot`, doubling the capacity (amortised O(1)).
    fn reserve(&mut self, slot: usize) {
        if slot < self.capacity() {
            return;
        }
        let cap = (slot + 1).next_power_of_two().max(8);
        ensure_slot(&mut self.value, cap - 1, 0.0);
        ensure_slot(&mut self.present, cap - 1, false);
        self.rebuild_with(cap);
    }

    fn rebuild_with(&mut self, cap: usize) {
        self.tree.clear();
        self.tree.resize(cap + 1, 0.0);
        self.tree[1..].copy_from_slice(&self.value[..cap]);
        for i in 1..=cap {
            let parent = i + (i & i.wrapping_neg());
            if parent <= cap {
                self.tree[parent] += self.tree[i];
            }
        }
        self.updates = 0;
    }

    fn add(&mut self, slot: usize, delta: f64) {
        let cap = self.capacity();
        let mut i = slot + 1;
        while i <= cap {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
        self.updates += 1;
        if self.updates >= cap.max(64) {
            self.rebuild_with(cap);
        }
    }

    fn set_value(&mut self, slot: usize, value: f64) {
        let delta = value - self.value[slot];
        self.value[slot] = value;
        self.add(slot, delta);
    }

    /// Total of the inverse weights (the root of the tree).
    fn total(&self) -> f64 {
        self.tree.last().copied().unwrap_or(0.0)
    }

    /// The slot at which the prefix sum of inverse weights first exceeds `u`.
    fn descend(&self, mut u: f64) -> usize {
        let cap = self.capacity();
        let mut pos = 0;
        let mut step = cap;
        while step > 0 {
            let next = pos + step;
            if next <= cap && self.tree[next] <= u {
                u -= self.tree[next];
                pos = next;
            }
            step >>= 1;
        }
        // `pos` is the 1-based index of the last prefix <= u, i.e. the 0-based slot after it.
        pos
    }
}

impl Policy for RandomProportional {
    fn insert(&mut self, slot: usize, weight: f64, _now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        self.reserve(slot);
        debug_assert!(!self.present[slot], "slot {slot} inserted twice");
        if self.present[slot] {
            return;
        }
        self.present[slot] = true;
        self.len += 1;
        self.set_value(slot, 1.0 / weight);
    }

    fn remove(&mut self, slot: usize) {
        if !self.present.get(slot).copied().unwrap_or(false) {
            return;
        }
        self.present[slot] = false;
        self.len -= 1;
        self.set_value(slot, 0.0);
        if self.len == 0 {
            // Exact zeros everywhere: no drift carried over to the next destinations.
            let cap = self.capacity();
            self.rebuild_with(cap);
        }
    }

    fn set_weight(&mut self, slot: usize, weight: f64, _now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        if self.present.get(slot).copied().unwrap_or(false) {
            self.set_value(slot, 1.0 / weight);
        }
    }

    fn select(&mut self, _now: Time, rng: &mut SmallRng) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        // Rounding can make the descent land on an empty slot or past the end, with a
        // vanishing probability: draw again, then rebuild the sums exactly and draw again.
        for attempt in 0..8 {
            if attempt == 4 {
                let cap = self.capacity();
                self.rebuild_with(cap);
            }
            let total = self.total();
            if total > 0.0 && total.is_finite() {
                let slot = self.descend(rng.random::<f64>() * total);
                if self.present.get(slot).copied().unwrap_or(false) {
                    return Some(slot);
                }
            }
        }
        // Unreachable in practice; stay correct anyway.
        self.present.iter().position(|&p| p)
    }

    fn len(&self) -> usize {
        self.len
    }
}
