//! Proportional fairness: the destination with the largest (1/w)^alpha / rate^beta.

use std::time::Duration;

use rand::rngs::SmallRng;

use super::{Fairness, Policy, ensure_slot};
use crate::clock::Time;

/// Proportional fairness, as serverlessonedge's `EntryProportionalFairness`: each call goes to
/// the destination with the largest priority
///
/// `P = (1 / w)^alpha / (served / (now - stamp))^beta`
///
/// where `w` is the table's weight (estimated latency, seconds), `served` counts the
/// destination's successful calls (1 at installation, +1 at each success) and `stamp` is the
/// time of its latest success (its installation time before the first). A destination that
/// has just answered has a high recent rate and yields to the others, the more so the larger
/// beta; alpha weighs speed. alpha = 0, beta = 1 behaves like round robin; alpha = 1,
/// beta = 0 is least impedance (maximum throughput, no fairness); alpha = beta = 1 (the
/// default) is the 3G-style scheduler. Failed calls change nothing, as upstream.
///
/// Computed in the log domain, `alpha ln(1/w) - beta ln(served) + beta ln(now - stamp)`, which
/// ranks as upstream's quotient does. A destination whose `now - stamp` is 0 has priority
/// zero (upstream's infinite rate). Ties, including all-zero priorities (upstream returned no
/// destination there), go to the destination installed first. Select is a scan of every
/// destination, O(n), as upstream's; the per-destination constant part is cached so that a
/// scan costs one logarithm per destination.
#[derive(Debug)]
pub struct ProportionalFairness {
    alpha: f64,
    beta: f64,
    /// The present destinations in installation order (ties go to the first).
    dests: Vec<Dest>,
    /// Per slot: its index in `dests`, `ABSENT` when absent.
    index: Vec<u32>,
}

const ABSENT: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Dest {
    slot: u32,
    /// Successful calls, 1 at installation.
    served: u64,
    /// Latest success (installation before the first).
    stamp: Time,
    /// The table's weight, seconds.
    weight: f64,
    /// `alpha ln(1/w) - beta ln(served)`: the part of the priority that does not move with
    /// the clock.
    constant: f64,
}

/// The priority of a destination in the log domain (`-inf` for priority zero).
#[inline]
fn log_priority(constant: f64, beta: f64, since: Duration) -> f64 {
    if beta == 0.0 {
        return constant;
    }
    let dt = since.as_secs_f64();
    if dt <= 0.0 {
        f64::NEG_INFINITY
    } else {
        constant + beta * dt.ln()
    }
}

// ===== impl ProportionalFairness =====

impl ProportionalFairness {
    /// An empty policy with exponents `alpha` (speed) and `beta` (fairness).
    pub fn new(fairness: Fairness) -> Self {
        Self {
            alpha: fairness.alpha(),
            beta: fairness.beta(),
            dests: Vec::new(),
            index: Vec::new(),
        }
    }

    /// Successful calls of `slot` counted so far (1 at installation).
    pub fn served(&self, slot: usize) -> Option<u64> {
        self.dest(slot).map(|d| d.served)
    }

    /// The priority of `slot` at `now`, `(1/w)^alpha / (served / (now - stamp))^beta`.
    pub fn priority(&self, slot: usize, now: Time) -> Option<f64> {
        self.dest(slot)
            .map(|d| log_priority(d.constant, self.beta, now.saturating_since(d.stamp)).exp())
    }

    fn dest(&self, slot: usize) -> Option<&Dest> {
        let i = *self.index.get(slot)?;
        self.dests.get(i as usize)
    }

    fn dest_mut(&mut self, slot: usize) -> Option<&mut Dest> {
        let i = *self.index.get(slot)?;
        self.dests.get_mut(i as usize)
    }

    fn constant(&self, weight: f64, served: u64) -> f64 {
        -self.alpha * weight.ln() - self.beta * (served as f64).ln()
    }
}

impl Policy for ProportionalFairness {
    fn insert(&mut self, slot: usize, weight: f64, now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        assert!(slot < ABSENT as usize, "slot {slot} out of range");
        ensure_slot(&mut self.index, slot, ABSENT);
        debug_assert_eq!(self.index[slot], ABSENT, "slot {slot} inserted twice");
        if self.index[slot] != ABSENT {
            return;
        }
        self.index[slot] = self.dests.len() as u32;
        let constant = self.constant(weight, 1);
        self.dests.push(Dest {
            slot: slot as u32,
            served: 1,
            stamp: now,
            weight,
            constant,
        });
    }

    fn remove(&mut self, slot: usize) {
        let Some(&i) = self.index.get(slot).filter(|&&i| i != ABSENT) else {
            return;
        };
        self.index[slot] = ABSENT;
        // Keep installation order (ties): shift the later ones down. Control plane only.
        self.dests.remove(i as usize);
        for d in &self.dests[i as usize..] {
            self.index[d.slot as usize] -= 1;
        }
    }

    fn set_weight(&mut self, slot: usize, weight: f64, _now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        let (alpha, beta) = (self.alpha, self.beta);
        if let Some(d) = self.dest_mut(slot) {
            d.weight = weight;
            d.constant = -alpha * weight.ln() - beta * (d.served as f64).ln();
        }
    }

    fn select(&mut self, now: Time, _rng: &mut SmallRng) -> Option<usize> {
        let beta = self.beta;
        let mut best: Option<(f64, u32)> = None;
        for d in &self.dests {
            let p = log_priority(d.constant, beta, now.saturating_since(d.stamp));
            match best {
                Some((b, _)) if p <= b => {}
                _ => best = Some((p, d.slot)),
            }
        }
        best.map(|(_, slot)| slot as usize)
    }

    fn on_complete(&mut self, slot: usize, latency: Option<Duration>, now: Time) {
        if latency.is_none() {
            return;
        }
        let (alpha, beta) = (self.alpha, self.beta);
        if let Some(d) = self.dest_mut(slot) {
            d.served = d.served.saturating_add(1);
            d.stamp = now;
            d.constant = -alpha * d.weight.ln() - beta * (d.served as f64).ln();
        }
    }

    fn len(&self) -> usize {
        self.dests.len()
    }
}
