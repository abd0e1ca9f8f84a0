//! Least impedance dispatch over an ordered set.

use std::collections::BTreeSet;

use rand::rngs::SmallRng;

use super::{Policy, ensure_slot, weight_key};
use crate::clock::Time;

/// Least impedance: every call goes to the destination with the smallest weight (estimated
/// latency); ties go to the destination installed first.
///
/// It exploits the best-known destination greedily and relies on the estimator to move the
/// minimum when that destination slows down; this is the "least impedance" policy of
/// Cicconetti, Conti, Passarella (IEEE TNSM 2020, CloudCom 2018; `serverlessonedge`'s
/// `ForwardingTableLeastImpedance`). Destinations are kept in a `BTreeSet` ordered by
/// (weight, insertion sequence), so select is the first element and an update is O(log n).
#[derive(Debug, Default)]
pub struct LeastImpedance {
    /// (weight key, insertion sequence, slot).
    order: BTreeSet<(u64, u64, usize)>,
    /// Per slot: its key in `order`, `None` when absent.
    key: Vec<Option<(u64, u64)>>,
    next_seq: u64,
}

// ===== impl LeastImpedance =====

impl LeastImpedance {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Policy for LeastImpedance {
    fn insert(&mut self, slot: usize, weight: f64, _now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        ensure_slot(&mut self.key, slot, None);
        debug_assert!(self.key[slot].is_none(), "slot {slot} inserted twice");
        if self.key[slot].is_some() {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let w = weight_key(weight);
        self.key[slot] = Some((w, seq));
        self.order.insert((w, seq, slot));
    }

    fn remove(&mut self, slot: usize) {
        if let Some((w, seq)) = self.key.get_mut(slot).and_then(Option::take) {
            self.order.remove(&(w, seq, slot));
        }
    }

    fn set_weight(&mut self, slot: usize, weight: f64, _now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        let Some(Some((w, seq))) = self.key.get_mut(slot) else {
            return;
        };
        let new = weight_key(weight);
        if *w == new {
            return;
        }
        self.order.remove(&(*w, *seq, slot));
        *w = new;
        self.order.insert((new, *seq, slot));
    }

    fn select(&mut self, _now: Time, _rng: &mut SmallRng) -> Option<usize> {
        self.order.first().map(|&(_, _, slot)| slot)
    }

    fn len(&self) -> usize {
        self.order.len()
    }
}
