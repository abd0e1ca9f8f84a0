//! Weighted deficit round robin with stale timers.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::rngs::SmallRng;

use super::{Policy, ensure_slot, weight_key};
use crate::clock::Time;

/// The first stale timer of a destination that left the active set.
pub const STALE_TIMER_INITIAL: Duration = Duration::from_secs(1);
/// The longest stale timer: it doubles from [`STALE_TIMER_INITIAL`] up to this while probes stay bad.
pub const STALE_TIMER_MAX: Duration = Duration::from_secs(30);
/// A destination is active while its weight is at most this factor times the minimum weight.
pub const ACTIVE_FACTOR: f64 = 2.0;

/// Weighted deficit round robin: the active destinations (weight at most twice the minimum,
/// plus new ones) take turns, the one with the smallest deficit goes next and its weight is added
/// to its deficit, so each is chosen in proportion to 1/w, fairly in every short window and in
/// the long run.
///
/// A destination whose weight exceeds twice the minimum leaves the active set and gets a stale
/// timer; when it expires the destination is re-admitted for one probe, and the timer starts at
/// 1 s and doubles up to 30 s while probes stay bad (weight still above twice the minimum after
/// the probe's update), back to 1 s and into the active set after a good one. This is the round
/// robin policy of Cicconetti, Conti, Passarella (IEEE TNSM 2020, CloudCom 2018;
/// `serverlessonedge`'s `ForwardingTableRoundRobin`). The active set is a 4-ary min-heap keyed
/// by (deficit, seq) whose turn is a replace-top (one sift down through contiguous memory);
/// entries that left it are deleted lazily when they reach its top. Heaps and ordered sets
/// keyed by weight and by timer expiry make every operation amortised O(log n); entries of the
/// active set that became too slow are evicted lazily when they reach its front.
#[derive(Debug)]
pub struct RoundRobin {
    dest: Vec<Option<Dest>>,
    /// Every destination, by (weight key, seq): gives the minimum weight. An indexed binary
    /// heap rather than an ordered set: a weight update usually moves an entry by a level or
    /// two, touching far less memory than a tree path.
    by_weight: WeightHeap,
    /// Active destinations by (deficit key, seq), with lazily deleted stale items.
    active: ActiveHeap,
    /// Idle (outside the active set, not probing) destinations by (expiry, seq, slot).
    timers: BTreeSet<(Time, u64, usize)>,
    /// Idle destinations by (weight key, seq, slot): admitted when the minimum weight grows.
    idle_by_weight: BTreeSet<(u64, u64, usize)>,
    /// The smallest active deficit at the last selection (used when the active set is empty).
    floor: f64,
    next_seq: u64,
    selections_since_renormalise: usize,
}

#[derive(Clone, Copy, Debug)]
struct Dest {
    weight: f64,
    seq: u64,
    deficit: f64,
    state: State,
    /// The next stale timer.
    backoff: Duration,
    /// Inserted and not selected yet: exempt from eviction until its first turn.
    fresh: bool,
    /// Changes at every activation and turn: the heap item carrying the current ticket is the
    /// live one, the others are stale.
    ticket: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Active,
    Idle { expiry: Time },
    Probing,
}

impl Default for RoundRobin {
    fn default() -> Self {
        Self::new()
    }
}

// ===== impl RoundRobin =====

impl RoundRobin {
    /// An empty policy.
    pub fn new() -> Self {
        RoundRobin {
            dest: Vec::new(),
            by_weight: WeightHeap::default(),
            active: ActiveHeap::default(),
            timers: BTreeSet::new(),
            idle_by_weight: BTreeSet::new(),
            floor: 0.0,
            next_seq: 0,
            selections_since_renormalise: 0,
        }
    }

    /// Whether `slot` is in the active set (an evicted destination may linger there until it
    /// reaches the front).
    pub fn is_active(&self, slot: usize) -> bool {
        matches!(self.get(slot), Some(d) if d.state == State::Active)
    }

    /// When the stale timer of `slot` expires, if it is idle.
    pub fn stale_timer(&self, slot: usize) -> Option<Time> {
        match self.get(slot)?.state {
            State::Idle { expiry } => Some(expiry),
            _ => None,
        }
    }

    fn get(&self, slot: usize) -> Option<&Dest> {
        self.dest.get(slot).and_then(Option::as_ref)
    }

    fn min_weight(&self) -> f64 {
        self.by_weight
            .first()
            .map_or(f64::INFINITY, |(w, _)| f64::from_bits(w))
    }

    /// Whether heap item `item` is the live one of an active destination.
    fn is_live(dest: &[Option<Dest>], item: &Item) -> bool {
        matches!(dest.get(item.slot as usize), Some(Some(d)) if d.state == State::Active && d.ticket == item.ticket)
    }

    /// Drop stale items from the top of the active heap; the live top, if any.
    fn live_top(&mut self) -> Option<Item> {
        while let Some(&top) = self.active.peek() {
            if Self::is_live(&self.dest, &top) {
                return Some(top);
            }
            self.active.pop();
        }
        None
    }

    fn min_deficit(&mut self) -> f64 {
        self.live_top()
            .map_or(self.floor, |item| f64::from_bits(item.key))
    }

    /// Push the live item of active `slot`; rebuild the heap when stale items outnumber the
    /// live ones (amortised O(1)).
    fn push_active(&mut self, slot: usize) {
        let d = self.dest[slot].as_ref().expect("slot present");
        self.active.push(Item {
            key: weight_key(d.deficit),
            seq: d.seq,
            slot: slot as u32,
            ticket: d.ticket,
        });
        if self.active.len() > 2 * self.by_weight.len() + 16 {
            let dest = &self.dest;
            self.active.retain(|item| Self::is_live(dest, item));
        }
    }

    fn is_good(&self, weight: f64) -> bool {
        weight <= ACTIVE_FACTOR * self.min_weight()
    }

    /// Put an idle or probing `slot` into the active set at the minimum deficit.
    fn activate(&mut self, slot: usize) {
        let deficit = self.min_deficit();
        let d = self.dest[slot].as_mut().expect("slot present");
        if let State::Idle { expiry } = d.state {
            self.timers.remove(&(expiry, d.seq, slot));
            self.idle_by_weight
                .remove(&(weight_key(d.weight), d.seq, slot));
        }
        debug_assert!(d.state != State::Active);
        d.state = State::Active;
        d.backoff = STALE_TIMER_INITIAL;
        d.deficit = deficit;
        d.ticket = d.ticket.wrapping_add(1);
        self.push_active(slot);
    }

    /// Take an active or probing `slot` out of the active set with a stale timer.
    fn deactivate(&mut self, slot: usize, now: Time) {
        // Its heap item, if any, goes stale with the state change.
        let d = self.dest[slot].as_mut().expect("slot present");
        debug_assert!(!matches!(d.state, State::Idle { .. }));
        let expiry = now + d.backoff;
        d.state = State::Idle { expiry };
        self.timers.insert((expiry, d.seq, slot));
        self.idle_by_weight
            .insert((weight_key(d.weight), d.seq, slot));
    }

    /// Admit every idle destination whose weight is now at most twice the minimum.
    fn admit_good(&mut self) {
        let limit = ACTIVE_FACTOR * self.min_weight();
        while let Some(&(w, _, slot)) = self.idle_by_weight.first() {
            if f64::from_bits(w) > limit {
                break;
            }
            self.activate(slot);
        }
    }

    /// Give `slot` (active, its live item at the top of the heap) its turn: add its weight to
    /// its deficit, and move its item down the heap.
    fn take_turn(&mut self, slot: usize) {
        let d = self.dest[slot].as_mut().expect("slot present");
        debug_assert_eq!(d.state, State::Active);
        debug_assert_eq!(self.active.peek().map(|i| i.slot as usize), Some(slot));
        self.floor = d.deficit;
        d.deficit += d.weight;
        d.fresh = false;
        d.ticket = d.ticket.wrapping_add(1);
        self.active.replace_top(Item {
            key: weight_key(d.deficit),
            seq: d.seq,
            slot: slot as u32,
            ticket: d.ticket,
        });
        self.selections_since_renormalise += 1;
        if self.selections_since_renormalise >= (4 * self.by_weight.len()).max(1 << 20) {
            self.renormalise();
        }
    }

    /// Subtract the smallest deficit from every active deficit, so they stay small (O(n),
    /// done every max(4n, 2^20) selections).
    fn renormalise(&mut self) {
        let base = self.min_deficit();
        let dest = &mut self.dest;
        self.active.retain(|item| Self::is_live(dest, item));
        for item in self.active.items_mut() {
            let d = dest[item.slot as usize].as_mut().expect("slot present");
            d.deficit = (d.deficit - base).max(0.0);
            item.key = weight_key(d.deficit);
        }
        // Subtracting one base keeps the order but rounding may merge keys: re-heapify.
        self.active.heapify();
        self.floor = 0.0;
        self.selections_since_renormalise = 0;
    }
}

impl Policy for RoundRobin {
    fn insert(&mut self, slot: usize, weight: f64, _now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        assert!(slot < u32::MAX as usize, "slot {slot} out of range");
        ensure_slot(&mut self.dest, slot, None);
        debug_assert!(self.dest[slot].is_none(), "slot {slot} inserted twice");
        if self.dest[slot].is_some() {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let deficit = self.min_deficit();
        self.dest[slot] = Some(Dest {
            weight,
            seq,
            deficit,
            state: State::Active,
            backoff: STALE_TIMER_INITIAL,
            fresh: true,
            ticket: 0,
        });
        self.by_weight.insert(slot, weight_key(weight), seq);
        self.push_active(slot);
    }

    fn remove(&mut self, slot: usize) {
        let Some(d) = self.dest.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.by_weight.remove(slot);
        match d.state {
            // Its heap item went stale with the slot.
            State::Active => {}
            State::Idle { expiry } => {
                self.timers.remove(&(expiry, d.seq, slot));
                self.idle_by_weight
                    .remove(&(weight_key(d.weight), d.seq, slot));
            }
            State::Probing => {}
        }
        self.admit_good();
    }

    fn set_weight(&mut self, slot: usize, weight: f64, _now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        let Some(Some(d)) = self.dest.get_mut(slot) else {
            return;
        };
        let (old, new) = (weight_key(d.weight), weight_key(weight));
        if old == new {
            return;
        }
        d.weight = weight;
        let seq = d.seq;
        let idle = matches!(d.state, State::Idle { .. });
        self.by_weight.update(slot, new);
        if idle {
            self.idle_by_weight.remove(&(old, seq, slot));
            self.idle_by_weight.insert((new, seq, slot));
        }
        self.admit_good();
    }

    fn select(&mut self, now: Time, _rng: &mut SmallRng) -> Option<usize> {
        // A destination whose stale timer expired gets its one probe.
        if let Some(&(expiry, _, slot)) = self.timers.first()
            && expiry <= now
        {
            let d = self.dest[slot].as_mut().expect("slot present");
            self.timers.remove(&(expiry, d.seq, slot));
            self.idle_by_weight
                .remove(&(weight_key(d.weight), d.seq, slot));
            d.state = State::Probing;
            return Some(slot);
        }
        let limit = ACTIVE_FACTOR * self.min_weight();
        while let Some(top) = self.live_top() {
            let slot = top.slot as usize;
            let d = self.dest[slot].as_ref().expect("slot present");
            if d.weight > limit && !d.fresh {
                self.deactivate(slot, now);
                continue;
            }
            self.take_turn(slot);
            return Some(slot);
        }
        // Nothing active: the minimum is probing (or idle); use it rather than nothing.
        let (_, slot) = self.by_weight.first()?;
        if matches!(self.get(slot)?.state, State::Idle { .. }) {
            self.activate(slot);
            self.take_turn(slot);
        }
        Some(slot)
    }

    fn on_complete(&mut self, slot: usize, latency: Option<Duration>, now: Time) {
        let Some(d) = self.get(slot) else {
            return;
        };
        if d.state != State::Probing {
            return;
        }
        if latency.is_some() && self.is_good(d.weight) {
            self.activate(slot);
        } else {
            let d = self.dest[slot].as_mut().expect("slot present");
            d.backoff = (d.backoff * 2).min(STALE_TIMER_MAX);
            self.deactivate(slot, now);
        }
    }

    fn len(&self) -> usize {
        self.by_weight.len()
    }
}

// ===== impl WeightHeap =====

/// An indexed binary min-heap of (weight key, seq) per slot.
#[derive(Debug, Default)]
struct WeightHeap {
    /// (weight key, seq, slot), heap-ordered on (weight key, seq).
    heap: Vec<(u64, u64, usize)>,
    /// Per slot: its index in `heap`, `usize::MAX` when absent.
    pos: Vec<usize>,
}

impl WeightHeap {
    fn len(&self) -> usize {
        self.heap.len()
    }

    /// The smallest (weight key, slot).
    fn first(&self) -> Option<(u64, usize)> {
        self.heap.first().map(|&(w, _, slot)| (w, slot))
    }

    fn insert(&mut self, slot: usize, w: u64, seq: u64) {
        ensure_slot(&mut self.pos, slot, usize::MAX);
        debug_assert_eq!(self.pos[slot], usize::MAX, "slot {slot} inserted twice");
        self.heap.push((w, seq, slot));
        let i = self.heap.len() - 1;
        self.pos[slot] = i;
        self.sift_up(i);
    }

    fn remove(&mut self, slot: usize) {
        let Some(&i) = self.pos.get(slot).filter(|&&i| i != usize::MAX) else {
            return;
        };
        self.pos[slot] = usize::MAX;
        let last = self.heap.len() - 1;
        self.heap.swap(i, last);
        self.heap.pop();
        if i < self.heap.len() {
            self.pos[self.heap[i].2] = i;
            self.sift_up(i);
            self.sift_down(i);
        }
    }

    fn update(&mut self, slot: usize, w: u64) {
        let Some(&i) = self.pos.get(slot).filter(|&&i| i != usize::MAX) else {
            return;
        };
        let old = self.heap[i].0;
        self.heap[i].0 = w;
        if w < old {
            self.sift_up(i);
        } else {
            self.sift_down(i);
        }
    }

    fn key(&self, i: usize) -> (u64, u64) {
        (self.heap[i].0, self.heap[i].1)
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.heap.swap(i, j);
        self.pos[self.heap[i].2] = i;
        self.pos[self.heap[j].2] = j;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.key(i) >= self.key(parent) {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < n && self.key(l) < self.key(smallest) {
                smallest = l;
            }
            if r < n && self.key(r) < self.key(smallest) {
                smallest = r;
            }
            if smallest == i {
                break;
            }
            self.swap(i, smallest);
            i = smallest;
        }
    }
}

// ===== impl ActiveHeap =====

/// An item of the active heap: a destination's deficit key at the time it was pushed.
#[derive(Clone, Copy, Debug)]
struct Item {
    key: u64,
    seq: u64,
    slot: u32,
    ticket: u32,
}

impl Item {
    fn order(&self) -> (u64, u64) {
        (self.key, self.seq)
    }
}

/// Children per node of the active heap: four 24-byte items, about two cache lines.
const ARITY: usize = 4;

/// A 4-ary min-heap of [`Item`]s by (deficit key, seq), without an index: removal is lazy.
#[derive(Debug, Default)]
struct ActiveHeap {
    items: Vec<Item>,
}

impl ActiveHeap {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn peek(&self) -> Option<&Item> {
        self.items.first()
    }

    fn items_mut(&mut self) -> &mut [Item] {
        &mut self.items
    }

    fn push(&mut self, item: Item) {
        self.items.push(item);
        let mut i = self.items.len() - 1;
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if self.items[parent].order() <= item.order() {
                break;
            }
            self.items[i] = self.items[parent];
            i = parent;
        }
        self.items[i] = item;
    }

    fn pop(&mut self) -> Option<Item> {
        let last = self.items.pop()?;
        if self.items.is_empty() {
            return Some(last);
        }
        let top = self.items[0];
        self.sift_down(0, last);
        Some(top)
    }

    /// Replace the top by `item` and restore the heap (one sift down).
    fn replace_top(&mut self, item: Item) {
        debug_assert!(!self.items.is_empty());
        self.sift_down(0, item);
    }

    /// Place `item` at hole `i` or below it.
    fn sift_down(&mut self, mut i: usize, item: Item) {
        let n = self.items.len();
        loop {
            let first = ARITY * i + 1;
            if first >= n {
                break;
            }
            let mut best = first;
            for c in first + 1..(first + ARITY).min(n) {
                if self.items[c].order() < self.items[best].order() {
                    best = c;
                }
            }
            if item.order() <= self.items[best].order() {
                break;
            }
            self.items[i] = self.items[best];
            i = best;
        }
        self.items[i] = item;
    }

    fn retain(&mut self, keep: impl FnMut(&Item) -> bool) {
        self.items.retain(keep);
        self.heapify();
    }

    fn heapify(&mut self) {
        let n = self.items.len();
        if n < 2 {
            return;
        }
        for i in (0..=(n - 2) / ARITY).rev() {
            let item = self.items[i];
            self.sift_down(i, item);
        }
    }
}
