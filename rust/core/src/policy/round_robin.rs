//! Weighted deficit round robin with stale timers.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::rngs::SmallRng;

use super::{Policy, prefetch, weight_key};
use crate::clock::Time;
use crate::estimator::Estimate;

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
/// 1 s and doubles up to 30 s while probes stay bad (the probe's latency above twice the minimum
/// weight, or the probe failed), back to 1 s and into the active set after a good one. The
/// probe's latency, not the weight it had when it left, decides: the weight is history from
/// before the destination went idle, and an averaging estimator (EWMA, alpha 0.95) would need
/// dozens of probes to forget one slow start. This is the round
/// robin policy of Cicconetti, Conti, Passarella (IEEE TNSM 2020, CloudCom 2018;
/// `serverlessonedge`'s `ForwardingTableRoundRobin`).
///
/// Cost: a turn is one sift down of a 4-ary heap of 16-byte items by (deficit, slot); items of
/// destinations that left the active set are deleted lazily when they reach the top. The
/// minimum weight comes from a lazy heap where each destination has one representative item
/// whose key is a lower bound of its weight: a weight that grows costs nothing until its item
/// reaches the top, one that falls below its item's key pushes a new item (usually O(1)). Per
/// turn the per-destination state touched is one 32-byte record. Idle destinations sit in
/// ordered sets by timer expiry and by weight.
#[derive(Debug)]
pub struct RoundRobin {
    /// Per slot: what a turn and a weight update touch.
    hot: Vec<Hot>,
    /// Per slot: what only state changes touch.
    cold: Vec<Cold>,
    len: usize,
    /// Lower bounds of the weights, one representative item per destination.
    min: MinHeap,
    /// Active destinations by (deficit key, slot), with lazily deleted stale items.
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
struct Hot {
    weight: f64,
    deficit: f64,
    /// Key of this destination's representative item in `min`: at most its weight's key.
    min_key: u64,
    /// Changes at every activation and turn: the active heap item carrying the current ticket
    /// is the live one, the others are stale. Kept across removal so that items of a slot's
    /// earlier occupant never look live.
    ticket: u32,
    state: State,
    /// Inserted and not selected yet: exempt from eviction until its first turn.
    fresh: bool,
}

impl Hot {
    const FREE: Hot = Hot {
        weight: 0.0,
        deficit: 0.0,
        min_key: 0,
        ticket: 0,
        state: State::Free,
        fresh: false,
    };
}

#[derive(Clone, Copy, Debug)]
struct Cold {
    seq: u64,
    /// When the stale timer expires, while idle.
    expiry: Time,
    /// The next stale timer.
    backoff: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    Active,
    Idle,
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
            hot: Vec::new(),
            cold: Vec::new(),
            len: 0,
            min: MinHeap::default(),
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
        self.state(slot) == State::Active
    }

    /// When the stale timer of `slot` expires, if it is idle.
    pub fn stale_timer(&self, slot: usize) -> Option<Time> {
        (self.state(slot) == State::Idle).then(|| self.cold[slot].expiry)
    }

    fn state(&self, slot: usize) -> State {
        self.hot.get(slot).map_or(State::Free, |h| h.state)
    }

    /// The destination with the smallest weight (ties: lowest slot) and that weight.
    fn min_entry(&mut self) -> Option<(usize, f64)> {
        loop {
            let (key, slot) = self.min.peek()?;
            let h = &mut self.hot[slot];
            if h.state == State::Free || h.min_key != key {
                self.min.pop();
                continue;
            }
            let current = weight_key(h.weight);
            if current == key {
                return Some((slot, h.weight));
            }
            // Its weight grew since the item was pushed: represent it at its weight now.
            h.min_key = current;
            self.min.replace_top((current, slot));
        }
    }

    fn min_weight(&mut self) -> f64 {
        self.min_entry().map_or(f64::INFINITY, |(_, w)| w)
    }

    /// Give `slot` a representative item at its current weight.
    fn represent(&mut self, slot: usize) {
        let key = weight_key(self.hot[slot].weight);
        self.hot[slot].min_key = key;
        self.min.push((key, slot));
        if self.min.len() > 2 * self.len + 16 {
            // Stale items outnumber the live ones: rebuild (amortised O(1)).
            self.min.clear();
            for (slot, h) in self.hot.iter_mut().enumerate() {
                if h.state != State::Free {
                    h.min_key = weight_key(h.weight);
                    self.min.push((h.min_key, slot));
                }
            }
        }
    }

    /// Whether heap item `item` is the live one of an active destination.
    fn is_live(hot: &[Hot], item: &Item) -> bool {
        let h = &hot[item.slot as usize];
        h.state == State::Active && h.ticket == item.ticket
    }

    /// Drop stale items from the top of the active heap; the live top, if any.
    fn live_top(&mut self) -> Option<Item> {
        while let Some(top) = self.active.peek() {
            if Self::is_live(&self.hot, &top) {
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
        let h = &self.hot[slot];
        self.active.push(Item {
            key: weight_key(h.deficit),
            slot: slot as u32,
            ticket: h.ticket,
        });
        if self.active.len() > 2 * self.len + 16 {
            let hot = &self.hot;
            self.active.retain(|item| Self::is_live(hot, item));
        }
    }

    /// Take `slot` out of the idle sets.
    fn leave_idle(&mut self, slot: usize) {
        let c = self.cold[slot];
        self.timers.remove(&(c.expiry, c.seq, slot));
        self.idle_by_weight
            .remove(&(weight_key(self.hot[slot].weight), c.seq, slot));
    }

    /// Put an idle or probing `slot` into the active set at the minimum deficit.
    fn activate(&mut self, slot: usize) {
        let deficit = self.min_deficit();
        debug_assert!(matches!(self.hot[slot].state, State::Idle | State::Probing));
        if self.hot[slot].state == State::Idle {
            self.leave_idle(slot);
        }
        self.cold[slot].backoff = STALE_TIMER_INITIAL;
        let h = &mut self.hot[slot];
        h.state = State::Active;
        h.deficit = deficit;
        h.ticket = h.ticket.wrapping_add(1);
        self.push_active(slot);
    }

    /// Take an active or probing `slot` out of the active set with a stale timer.
    fn deactivate(&mut self, slot: usize, now: Time) {
        // Its heap item, if any, goes stale with the state change.
        debug_assert!(matches!(
            self.hot[slot].state,
            State::Active | State::Probing
        ));
        let c = &mut self.cold[slot];
        c.expiry = now + c.backoff;
        let (expiry, seq) = (c.expiry, c.seq);
        let h = &mut self.hot[slot];
        h.state = State::Idle;
        self.timers.insert((expiry, seq, slot));
        self.idle_by_weight
            .insert((weight_key(h.weight), seq, slot));
    }

    /// Admit every idle destination whose weight is now at most twice the minimum.
    fn admit_good(&mut self) {
        if self.idle_by_weight.is_empty() {
            return;
        }
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
        let h = &mut self.hot[slot];
        debug_assert_eq!(h.state, State::Active);
        debug_assert_eq!(self.active.peek().map(|i| i.slot as usize), Some(slot));
        self.floor = h.deficit;
        h.deficit += h.weight;
        h.fresh = false;
        h.ticket = h.ticket.wrapping_add(1);
        self.active.replace_top(Item {
            key: weight_key(h.deficit),
            slot: slot as u32,
            ticket: h.ticket,
        });
        self.selections_since_renormalise += 1;
        if self.selections_since_renormalise >= (4 * self.len).max(1 << 20) {
            self.renormalise();
        }
    }

    /// Subtract the smallest deficit from every active deficit, so they stay small (O(n),
    /// done every max(4n, 2^20) selections).
    fn renormalise(&mut self) {
        let base = self.min_deficit();
        let hot = &mut self.hot;
        // Subtracting one base keeps the order but rounding may merge keys: rebuild the heap.
        self.active.rebuild(|item| {
            if !Self::is_live(hot, item) {
                return false;
            }
            let h = &mut hot[item.slot as usize];
            h.deficit = (h.deficit - base).max(0.0);
            item.key = weight_key(h.deficit);
            true
        });
        self.floor = 0.0;
        self.selections_since_renormalise = 0;
    }
}

impl Policy for RoundRobin {
    fn insert(&mut self, slot: usize, weight: f64, _now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        assert!(slot < u32::MAX as usize, "slot {slot} out of range");
        if slot >= self.hot.len() {
            self.hot.resize(slot + 1, Hot::FREE);
            self.cold.resize(
                slot + 1,
                Cold {
                    seq: 0,
                    expiry: Time::ZERO,
                    backoff: STALE_TIMER_INITIAL,
                },
            );
        }
        debug_assert_eq!(
            self.hot[slot].state,
            State::Free,
            "slot {slot} inserted twice"
        );
        if self.hot[slot].state != State::Free {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let deficit = self.min_deficit();
        let ticket = self.hot[slot].ticket.wrapping_add(1);
        self.hot[slot] = Hot {
            weight,
            deficit,
            min_key: weight_key(weight),
            ticket,
            state: State::Active,
            fresh: true,
        };
        self.cold[slot] = Cold {
            seq,
            expiry: Time::ZERO,
            backoff: STALE_TIMER_INITIAL,
        };
        self.len += 1;
        self.represent(slot);
        self.push_active(slot);
    }

    fn remove(&mut self, slot: usize) {
        let state = self.state(slot);
        if state == State::Free {
            return;
        }
        if state == State::Idle {
            self.leave_idle(slot);
        }
        // Its items in both heaps go stale with the state.
        self.hot[slot].state = State::Free;
        self.len -= 1;
        self.admit_good();
    }

    fn set_weight(&mut self, slot: usize, weight: f64, _now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        let Some(h) = self.hot.get_mut(slot).filter(|h| h.state != State::Free) else {
            return;
        };
        let (old, new) = (weight_key(h.weight), weight_key(weight));
        if old == new {
            return;
        }
        h.weight = weight;
        let (state, below_bound) = (h.state, new < h.min_key);
        if below_bound {
            self.represent(slot);
        }
        if state == State::Idle {
            let seq = self.cold[slot].seq;
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
            self.leave_idle(slot);
            self.hot[slot].state = State::Probing;
            return Some(slot);
        }
        let limit = ACTIVE_FACTOR * self.min_weight();
        while let Some(top) = self.live_top() {
            let slot = top.slot as usize;
            let h = &self.hot[slot];
            if h.weight > limit && !h.fresh {
                self.deactivate(slot, now);
                continue;
            }
            self.take_turn(slot);
            // The next turn's record: its cache miss overlaps the rest of this call.
            if let Some(next) = self.active.peek() {
                prefetch(&self.hot[next.slot as usize]);
            }
            return Some(slot);
        }
        // Nothing active: the minimum is probing (or idle); use it rather than nothing.
        let (slot, _) = self.min_entry()?;
        if self.hot[slot].state == State::Idle {
            self.activate(slot);
            self.take_turn(slot);
        }
        Some(slot)
    }

    fn on_complete(&mut self, slot: usize, latency: Option<Duration>, now: Time) {
        if self.state(slot) != State::Probing {
            return;
        }
        let good =
            latency.is_some_and(|l| Estimate::sample_secs(l) <= ACTIVE_FACTOR * self.min_weight());
        if good {
            self.activate(slot);
        } else {
            let c = &mut self.cold[slot];
            c.backoff = (c.backoff * 2).min(STALE_TIMER_MAX);
            self.deactivate(slot, now);
        }
    }

    fn is_probing(&self, slot: usize) -> bool {
        self.state(slot) == State::Probing
    }

    fn next_hint(&self) -> Option<usize> {
        self.active.peek().map(|item| item.slot as usize)
    }

    fn len(&self) -> usize {
        self.len
    }
}

// ===== impl MinHeap =====

/// A binary min-heap of (weight key, slot) without an index: removal is lazy.
#[derive(Debug, Default)]
struct MinHeap {
    items: Vec<(u64, usize)>,
}

impl MinHeap {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn peek(&self) -> Option<(u64, usize)> {
        self.items.first().copied()
    }

    fn clear(&mut self) {
        self.items.clear();
    }

    fn push(&mut self, item: (u64, usize)) {
        self.items.push(item);
        let mut i = self.items.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.items[parent] <= item {
                break;
            }
            self.items[i] = self.items[parent];
            i = parent;
        }
        self.items[i] = item;
    }

    fn pop(&mut self) {
        let Some(last) = self.items.pop() else {
            return;
        };
        if !self.items.is_empty() {
            self.sift_down(last);
        }
    }

    fn replace_top(&mut self, item: (u64, usize)) {
        debug_assert!(!self.items.is_empty());
        self.sift_down(item);
    }

    /// Place `item` at the root hole or below it.
    fn sift_down(&mut self, item: (u64, usize)) {
        let n = self.items.len();
        let mut i = 0;
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let c = if l + 1 < n && self.items[l + 1] < self.items[l] {
                l + 1
            } else {
                l
            };
            if item <= self.items[c] {
                break;
            }
            self.items[i] = self.items[c];
            i = c;
        }
        self.items[i] = item;
    }
}

// ===== impl ActiveHeap =====

/// An item of the active heap: a destination's deficit key at the time it was pushed.
#[derive(Clone, Copy, Debug)]
struct Item {
    key: u64,
    slot: u32,
    ticket: u32,
}

impl Item {
    /// Ties between equal deficits go to the lower slot.
    #[inline]
    fn order(&self) -> (u64, u32) {
        (self.key, self.slot)
    }
}

/// Children per node of the active heap: four 16-byte items, one cache line.
const ARITY: usize = 4;

/// A cache line of the active heap.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct Line([Item; ARITY]);

const EMPTY_ITEM: Item = Item {
    key: 0,
    slot: 0,
    ticket: 0,
};

/// A 4-ary min-heap of [`Item`]s by (deficit key, slot), without an index: removal is lazy.
///
/// Item `i` lives at position `i + 3` of an array of 64-byte aligned lines, so the four
/// children of item `i` (`4i + 1 ..= 4i + 4`) are exactly line `i + 1`: a sift down reads one
/// cache line per level.
#[derive(Debug, Default)]
struct ActiveHeap {
    lines: Vec<Line>,
    len: usize,
}

impl ActiveHeap {
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn get(&self, i: usize) -> Item {
        let p = i + ARITY - 1;
        self.lines[p / ARITY].0[p % ARITY]
    }

    #[inline]
    fn set(&mut self, i: usize, item: Item) {
        let p = i + ARITY - 1;
        self.lines[p / ARITY].0[p % ARITY] = item;
    }

    fn peek(&self) -> Option<Item> {
        (self.len > 0).then(|| self.get(0))
    }

    fn push(&mut self, item: Item) {
        let p = self.len + ARITY - 1;
        if p / ARITY >= self.lines.len() {
            self.lines.push(Line([EMPTY_ITEM; ARITY]));
        }
        self.len += 1;
        let mut i = self.len - 1;
        while i > 0 {
            let parent = (i - 1) / ARITY;
            let above = self.get(parent);
            if above.order() <= item.order() {
                break;
            }
            self.set(i, above);
            i = parent;
        }
        self.set(i, item);
    }

    fn pop(&mut self) -> Option<Item> {
        if self.len == 0 {
            return None;
        }
        let top = self.get(0);
        self.len -= 1;
        if self.len > 0 {
            let last = self.get(self.len);
            self.sift_down(0, last);
        }
        Some(top)
    }

    /// Replace the top by `item` and restore the heap (one sift down).
    fn replace_top(&mut self, item: Item) {
        debug_assert!(self.len > 0);
        self.sift_down(0, item);
    }

    /// Place `item` at hole `i` or below it.
    fn sift_down(&mut self, mut i: usize, item: Item) {
        let n = self.len;
        loop {
            let first = ARITY * i + 1;
            if first >= n {
                break;
            }
            // The children are line i + 1.
            let children = &self.lines[i + 1].0;
            let count = (n - first).min(ARITY);
            let mut best = 0;
            for c in 1..count {
                if children[c].order() < children[best].order() {
                    best = c;
                }
            }
            let child = children[best];
            if item.order() <= child.order() {
                break;
            }
            self.set(i, child);
            i = first + best;
        }
        self.set(i, item);
    }

    /// Keep the items for which `keep` holds, after `update` may change each kept one.
    fn rebuild(&mut self, mut keep: impl FnMut(&mut Item) -> bool) {
        let mut items = Vec::with_capacity(self.len);
        for i in 0..self.len {
            let mut item = self.get(i);
            if keep(&mut item) {
                items.push(item);
            }
        }
        self.lines.clear();
        self.len = 0;
        for item in items {
            self.push(item);
        }
    }

    fn retain(&mut self, keep: impl Fn(&Item) -> bool) {
        self.rebuild(|item| keep(item));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(usize, u32),
        Remove(usize),
        SetWeight(usize, u32),
        Select,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..12usize, 1..100u32).prop_map(|(s, w)| Op::Insert(s, w)),
            (0..12usize).prop_map(Op::Remove),
            (0..12usize, 1..100u32).prop_map(|(s, w)| Op::SetWeight(s, w)),
            Just(Op::Select),
        ]
    }

    /// Renormalising the deficits (done every 2^20 turns) leaves the order of turns unchanged.
    #[test]
    fn renormalising_keeps_the_order_of_turns() {
        // Multiples of 1/4: every deficit is exact, so ties fall the same way in both.
        let weights = [1.0, 1.25, 1.5, 0.75, 1.75, 1.0];
        let build = || {
            let mut p = RoundRobin::new();
            for (slot, &w) in weights.iter().enumerate() {
                p.insert(slot, w, Time::ZERO);
            }
            p
        };
        let (mut a, mut b) = (build(), build());
        let mut rng = SmallRng::seed_from_u64(1);
        let mut turns = |p: &mut RoundRobin, n: usize| -> Vec<usize> {
            (0..n)
                .map(|_| p.select(Time::ZERO, &mut rng).unwrap())
                .collect()
        };
        assert_eq!(turns(&mut a, 37), turns(&mut b, 37));
        a.remove(3);
        b.remove(3);
        a.renormalise();
        assert!(a.min_deficit() < b.min_deficit());
        assert_eq!(turns(&mut a, 500), turns(&mut b, 500));
    }

    proptest! {
        /// The lazy minimum always equals the smallest weight held, through inserts, removals
        /// (slots re-used), weight changes both ways and selections.
        #[test]
        fn lazy_minimum_matches_the_smallest_weight(ops in prop::collection::vec(op(), 1..300)) {
            let mut p = RoundRobin::new();
            let mut model: std::collections::BTreeMap<usize, f64> = Default::default();
            let mut rng = SmallRng::seed_from_u64(1);
            let mut now = Time::ZERO;
            for op in ops {
                now = now + Duration::from_millis(100);
                match op {
                    Op::Insert(s, w) if !model.contains_key(&s) => {
                        p.insert(s, f64::from(w), now);
                        model.insert(s, f64::from(w));
                    }
                    Op::Insert(..) => {}
                    Op::Remove(s) => {
                        p.remove(s);
                        model.remove(&s);
                    }
                    Op::SetWeight(s, w) => {
                        p.set_weight(s, f64::from(w), now);
                        if let Some(v) = model.get_mut(&s) {
                            *v = f64::from(w);
                        }
                    }
                    Op::Select => {
                        let chosen = p.select(now, &mut rng);
                        prop_assert_eq!(chosen.is_some(), !model.is_empty());
                        if let Some(s) = chosen {
                            prop_assert!(model.contains_key(&s));
                            p.on_complete(s, Some(Duration::from_millis(1)), now);
                        }
                    }
                }
                let expected = model.values().copied().fold(f64::INFINITY, f64::min);
                prop_assert_eq!(p.min_weight(), expected);
                prop_assert_eq!(p.len(), model.len());
            }
        }
    }
}
