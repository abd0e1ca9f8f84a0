//! The e-table of a router (docs/policies.md): for each lambda, the destinations it may be sent to,
//! their weights (estimated latencies in seconds), and the policy that picks one per call.
//!
//! Two tables share the entries: table 0 "overall" holds every entry and serves calls from
//! clients; table 1 "final" holds only final entries (destinations that execute) and serves
//! calls that another router forwarded. An entry has one weight, updated in both tables.
//!
//! Each new entry is tried once before the policy ranks it, because its installed weight is a
//! placeholder (the controller's 1.0 s, say): per lambda and table, a FIFO holds the entries
//! never measured and not yet probed, and `select` hands out its front before asking the
//! policy. Without it least impedance would never try a destination installed slower than the
//! measured minimum, and random proportional would starve it. An entry counts as measured once
//! a latency sample reached its estimator; a `change` of an existing entry leaves that as is,
//! while a new entry (also one re-added after removal, or one coming back unmarked at its
//! installed weight) is unmeasured. Marked entries are not probed.
//!
//! Per lambda and per table there are two policy instances: one for the unmarked entries and
//! one for the entries marked by congestion steering, used only when the first is empty, so
//! marking costs nothing on the per-call path. While every entry of a lambda is final (the
//! common case) table 1 shares table 0's policies, so a weight update touches one policy. `select` and `complete` are a couple of hash
//! lookups plus one O(log n) (or O(1)) policy operation.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::clock::Time;
use crate::estimator::{Estimate, EstimatorKind};
use crate::policy::{Policy, PolicyKind, new_policy, prefetch};

/// Which of a router's two tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// Table 0: every entry; looked up for calls from clients.
    Overall = 0,
    /// Table 1: final entries only; looked up for calls forwarded by another router.
    Final = 1,
}

impl TableKind {
    /// Both tables, by id.
    pub const ALL: [TableKind; 2] = [TableKind::Overall, TableKind::Final];

    /// The table with wire id `id` (`TableId.value`), if any.
    pub fn from_id(id: u32) -> Option<TableKind> {
        match id {
            0 => Some(TableKind::Overall),
            1 => Some(TableKind::Final),
            _ => None,
        }
    }

    /// The wire id.
    pub fn id(self) -> u32 {
        self as u32
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One entry, as listed by [`ETable::entries`].
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The lambda the entry is for.
    pub lambda: String,
    /// Where calls go: a computer's or another router's lambda endpoint.
    pub destination: String,
    /// Estimated latency in seconds.
    pub weight: f64,
    /// The destination executes the lambda (a computer, in table 1 too) rather than forwarding it.
    pub is_final: bool,
    /// Marked by congestion steering: used only as a last resort.
    pub marked: bool,
    /// Calls handed out by [`ETable::choose`] for this entry and not completed yet.
    pub in_flight: u32,
}

/// An entry handed out by [`ETable::choose`] for one call, given back to
/// [`ETable::complete_choice`]: its slot and its installation number, so that a handle outlives
/// the entry safely (a removed entry's slot may be re-used by another). Like a FIB's adjacency
/// index, it spares the per-call path any work on the destination's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    slot: u32,
    seq: u64,
}

/// What went wrong with a table operation.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TableError {
    /// The table has no entry at all for the lambda.
    #[error("unknown lambda '{}': no entry in the table", crate::text::clip(.0))]
    UnknownLambda(String),
    /// The lambda is known, but the table looked up (e.g. final) has no entry for it.
    #[error("no destination available for lambda '{}'", crate::text::clip(.0))]
    Empty(String),
    /// A weight that is not an estimated latency: not finite, or not > 0 seconds.
    #[error(
        "invalid weight {weight} for lambda '{}' at '{}': weights are estimated latencies in seconds and must be finite and > 0",
        crate::text::clip(lambda),
        crate::text::clip(destination)
    )]
    InvalidWeight {
        /// The lambda of the entry.
        lambda: String,
        /// The destination of the entry.
        destination: String,
        /// The refused weight, seconds.
        weight: f64,
    },
    /// A lambda or destination name that is empty.
    #[error("empty lambda or destination name")]
    EmptyName,
}

/// The e-table of a router: table 0 "overall" holds every entry, table 1 "final" only final ones.
///
/// Each new entry is tried once before the policy ranks it, because its installed weight is a
/// placeholder: `select` hands out the entries never measured nor probed, oldest first, then
/// lets the policy decide (marked entries are never probed).
pub struct ETable {
    policy: PolicyKind,
    estimator: EstimatorKind,
    rng: SmallRng,
    lambdas: HashMap<Arc<str>, Lambda>,
    /// Destination -> the lambdas that have an entry for it.
    by_destination: HashMap<Arc<str>, HashSet<Arc<str>>>,
    /// Destinations marked by congestion steering (kept for entries installed later).
    marked: HashSet<Arc<str>>,
    len: [usize; 2],
    next_seq: u64,
    /// The latest time seen (used to stamp entries installed by `change`).
    now: Time,
    /// Periodic estimator: end of the current period.
    period_end: Time,
    /// Periodic estimator: the entries with samples in the current period, as
    /// (lambda, slot, entry sequence number).
    pending: Vec<(Arc<str>, usize, u64)>,
}

/// The entries of one lambda.
struct Lambda {
    name: Arc<str>,
    slots: HashMap<Arc<str>, usize>,
    /// Per slot, what the per-call path touches (about 56 bytes).
    records: Vec<Option<Record>>,
    /// Per slot, what only the control plane and the periodic estimator touch.
    cold: Vec<Cold>,
    free: Vec<usize>,
    policy: PolicyKind,
    /// Table 0's policies: the one of the unmarked entries and the one of the marked entries.
    overall: Instances,
    /// Table 1's own policies, only while the lambda has non-final entries; `None` while all
    /// its entries are final (the common case), when table 1 uses `overall`: one policy update
    /// per weight update instead of two.
    own_final: Option<Instances>,
    /// Number of non-final entries.
    nonfinal: usize,
    /// Per table: entries to probe once before the policy ranks them, as (slot, seq), oldest
    /// first; entries measured, probed, marked or removed meanwhile are skipped lazily.
    unprobed: [VecDeque<(usize, u64)>; 2],
}

struct Instances {
    unmarked: Box<dyn Policy>,
    marked: Box<dyn Policy>,
}

impl Instances {
    fn new(policy: PolicyKind) -> Self {
        Instances {
            unmarked: new_policy(policy),
            marked: new_policy(policy),
        }
    }

    fn get(&mut self, marked: bool) -> &mut dyn Policy {
        if marked {
            self.marked.as_mut()
        } else {
            self.unmarked.as_mut()
        }
    }
}

struct Record {
    weight: f64,
    /// When the last latency sample arrived (EWMA staleness).
    last_sample: Option<Time>,
    is_final: bool,
    marked: bool,
    /// Installation order, unique over the table's life.
    seq: u64,
    /// A latency sample reached the estimator since the entry was installed (or unmarked).
    measured: bool,
    /// Handed out by the probe FIFO (by either table) since the entry was installed.
    probed: bool,
    /// Calls chosen and not completed yet (both tables).
    in_flight: u32,
}

/// The per-slot data the per-call path does not touch (stale while the slot is free).
struct Cold {
    /// The destination's name, shared with the other lambdas' entries for it.
    destination: Arc<str>,
    /// The weight last installed by `change`: restored on unmark.
    installed: f64,
    /// Periodic estimator: the current period's samples.
    estimate: Estimate,
}

impl Record {
    fn in_table(&self, table: TableKind) -> bool {
        table == TableKind::Overall || self.is_final
    }

    /// Whether the probe FIFO of `table` should hand this entry out.
    fn wants_probe(&self, table: TableKind) -> bool {
        !self.measured && !self.probed && !self.marked && self.in_table(table)
    }
}

// ===== impl Lambda =====

impl Lambda {
    fn new(name: Arc<str>, policy: PolicyKind) -> Self {
        Lambda {
            name,
            slots: HashMap::new(),
            records: Vec::new(),
            cold: Vec::new(),
            free: Vec::new(),
            policy,
            overall: Instances::new(policy),
            own_final: None,
            nonfinal: 0,
            unprobed: [VecDeque::new(), VecDeque::new()],
        }
    }

    /// Queue `slot` for its probe in `table` if it wants one. The queue is compacted when it
    /// holds more than twice the entries (stale items of removed entries), amortised O(1).
    fn queue_probe(&mut self, slot: usize, table: TableKind) {
        let r = self.record(slot);
        if !r.wants_probe(table) {
            return;
        }
        let seq = r.seq;
        let records = &self.records;
        let queue = &mut self.unprobed[table.index()];
        queue.push_back((slot, seq));
        if queue.len() > 2 * records.len() + 16 {
            queue.retain(|&(slot, seq)| {
                matches!(records.get(slot), Some(Some(r)) if r.seq == seq && r.wants_probe(table))
            });
        }
    }

    /// The oldest entry of `table` still waiting for its probe, marked as probed.
    fn next_probe(&mut self, table: TableKind) -> Option<usize> {
        let queue = &mut self.unprobed[table.index()];
        while let Some((slot, seq)) = queue.pop_front() {
            if let Some(Some(r)) = self.records.get_mut(slot)
                && r.seq == seq
                && r.wants_probe(table)
            {
                r.probed = true;
                return Some(slot);
            }
        }
        None
    }

    /// The slot of `choice` if its entry is still installed (not removed and re-used since).
    #[inline]
    fn slot_of(&self, choice: Choice) -> Option<usize> {
        let slot = choice.slot as usize;
        match self.records.get(slot) {
            Some(Some(r)) if r.seq == choice.seq => Some(slot),
            _ => None,
        }
    }

    fn record(&self, slot: usize) -> &Record {
        self.records[slot].as_ref().expect("slot in use")
    }

    fn record_mut(&mut self, slot: usize) -> &mut Record {
        self.records[slot].as_mut().expect("slot in use")
    }

    /// The policies serving `table`.
    fn instances(&mut self, table: TableKind) -> &mut Instances {
        match (table, &mut self.own_final) {
            (TableKind::Final, Some(own)) => own,
            _ => &mut self.overall,
        }
    }

    /// Set the weight of `slot` in the record and in every policy holding it.
    fn apply_weight(&mut self, slot: usize, weight: f64, now: Time) {
        debug_assert!(weight.is_finite() && weight > 0.0, "weight {weight}");
        let r = self.records[slot].as_mut().expect("slot in use");
        r.weight = weight;
        let (marked, is_final) = (r.marked, r.is_final);
        self.overall.get(marked).set_weight(slot, weight, now);
        if is_final && let Some(own) = &mut self.own_final {
            own.get(marked).set_weight(slot, weight, now);
        }
    }

    /// Count one more non-final entry (its record already says so); the first one gives
    /// table 1 its own policies, built from the final entries in installation order (O(n),
    /// control plane only).
    fn add_nonfinal(&mut self, now: Time) {
        self.nonfinal += 1;
        if self.nonfinal > 1 {
            return;
        }
        debug_assert!(self.own_final.is_none());
        let mut finals: Vec<(u64, usize)> = self
            .records
            .iter()
            .enumerate()
            .filter_map(|(slot, r)| r.as_ref().filter(|r| r.is_final).map(|r| (r.seq, slot)))
            .collect();
        finals.sort_unstable();
        let mut own = Instances::new(self.policy);
        for (_, slot) in finals {
            let r = self.record(slot);
            own.get(r.marked).insert(slot, r.weight, now);
        }
        self.own_final = Some(own);
    }

    /// Count one non-final entry less (removed or made final); the last one makes table 1
    /// share table 0's policies again.
    fn drop_nonfinal(&mut self) {
        self.nonfinal -= 1;
        if self.nonfinal == 0 {
            self.own_final = None;
        }
    }

    /// Remove `slot` from every policy and free it; the record removed.
    fn remove_slot(&mut self, slot: usize) -> Record {
        let r = self.records[slot].take().expect("slot in use");
        self.overall.get(r.marked).remove(slot);
        if !r.is_final {
            self.drop_nonfinal();
        } else if let Some(own) = &mut self.own_final {
            own.get(r.marked).remove(slot);
        }
        self.slots.remove(&self.cold[slot].destination);
        self.free.push(slot);
        r
    }
}

// ===== impl ETable =====

impl ETable {
    /// An empty table running `policy` and `estimator`, its random draws seeded by `seed`.
    pub fn new(policy: PolicyKind, estimator: EstimatorKind, seed: u64) -> Self {
        let period_end = match estimator {
            EstimatorKind::Periodic { period, .. } => Time::ZERO + period,
            EstimatorKind::Ewma { .. } | EstimatorKind::PeakEwma { .. } => Time::ZERO,
        };
        ETable {
            policy,
            estimator,
            rng: SmallRng::seed_from_u64(seed),
            lambdas: HashMap::new(),
            by_destination: HashMap::new(),
            marked: HashSet::new(),
            len: [0, 0],
            next_seq: 0,
            now: Time::ZERO,
            period_end,
            pending: Vec::new(),
        }
    }

    /// The policy that chooses among a lambda's entries.
    pub fn policy(&self) -> PolicyKind {
        self.policy
    }

    /// The estimator that learns each entry's weight from the latencies of its calls.
    pub fn estimator(&self) -> EstimatorKind {
        self.estimator
    }

    /// Insert or update (controller's CHANGE). New entries start at `weight`; an existing entry
    /// gets `weight` and the final flag; changing final moves it into/out of the final table.
    /// `weight` also becomes the entry's initial weight, restored when it is unmarked.
    pub fn change(
        &mut self,
        lambda: &str,
        destination: &str,
        weight: f64,
        is_final: bool,
    ) -> Result<(), TableError> {
        if lambda.is_empty() || destination.is_empty() {
            return Err(TableError::EmptyName);
        }
        if !(weight.is_finite() && weight > 0.0) {
            return Err(TableError::InvalidWeight {
                lambda: lambda.to_string(),
                destination: destination.to_string(),
                weight,
            });
        }
        let now = self.now;
        let policy = self.policy;
        if !self.lambdas.contains_key(lambda) {
            let name: Arc<str> = Arc::from(lambda);
            self.lambdas.insert(name.clone(), Lambda::new(name, policy));
        }
        let l = self.lambdas.get_mut(lambda).expect("just inserted");

        if let Some(&slot) = l.slots.get(destination) {
            l.cold[slot].installed = weight;
            let r = l.record(slot);
            let (marked, was_final) = (r.marked, r.is_final);
            l.apply_weight(slot, weight, now);
            if was_final != is_final {
                l.record_mut(slot).is_final = is_final;
                if is_final {
                    l.drop_nonfinal();
                    if let Some(own) = &mut l.own_final {
                        own.get(marked).insert(slot, weight, now);
                    }
                    l.queue_probe(slot, TableKind::Final);
                    self.len[1] += 1;
                } else {
                    if let Some(own) = &mut l.own_final {
                        own.get(marked).remove(slot);
                    }
                    l.add_nonfinal(now);
                    self.len[1] -= 1;
                }
            }
            return Ok(());
        }

        // A new entry: share one `Arc<str>` per destination name.
        let dest: Arc<str> = match self.by_destination.get_key_value(destination) {
            Some((d, _)) => d.clone(),
            None => match self.marked.get(destination) {
                Some(d) => d.clone(),
                None => Arc::from(destination),
            },
        };
        let marked = self.marked.contains(destination);
        let seq = self.next_seq;
        self.next_seq += 1;
        let record = Record {
            weight,
            last_sample: None,
            is_final,
            marked,
            seq,
            measured: false,
            probed: false,
            in_flight: 0,
        };
        let cold = Cold {
            destination: dest.clone(),
            installed: weight,
            estimate: Estimate::default(),
        };
        let slot = match l.free.pop() {
            Some(slot) => {
                l.records[slot] = Some(record);
                l.cold[slot] = cold;
                slot
            }
            None => {
                l.records.push(Some(record));
                l.cold.push(cold);
                l.records.len() - 1
            }
        };
        l.slots.insert(dest.clone(), slot);
        l.overall.get(marked).insert(slot, weight, now);
        l.queue_probe(slot, TableKind::Overall);
        self.len[0] += 1;
        if is_final {
            if let Some(own) = &mut l.own_final {
                own.get(marked).insert(slot, weight, now);
            }
            l.queue_probe(slot, TableKind::Final);
            self.len[1] += 1;
        } else {
            l.add_nonfinal(now);
        }
        let lambda_name = l.name.clone();
        self.by_destination
            .entry(dest)
            .or_default()
            .insert(lambda_name);
        Ok(())
    }

    /// Remove the entry (lambda, destination) from both tables; false if there was none.
    pub fn remove(&mut self, lambda: &str, destination: &str) -> bool {
        let Some(l) = self.lambdas.get_mut(lambda) else {
            return false;
        };
        let Some(&slot) = l.slots.get(destination) else {
            return false;
        };
        let r = l.remove_slot(slot);
        self.len[0] -= 1;
        if r.is_final {
            self.len[1] -= 1;
        }
        if l.slots.is_empty() {
            self.lambdas.remove(lambda);
        }
        if let Some(lambdas) = self.by_destination.get_mut(destination) {
            lambdas.remove(lambda);
            if lambdas.is_empty() {
                self.by_destination.remove(destination);
            }
        }
        true
    }

    /// Remove every entry whose destination is `destination` (every lambda, both tables);
    /// returns the number of entries removed.
    pub fn remove_destination(&mut self, destination: &str) -> usize {
        let Some(lambdas) = self.by_destination.remove(destination) else {
            return 0;
        };
        let mut removed = 0;
        for lambda in lambdas {
            let Some(l) = self.lambdas.get_mut(&lambda) else {
                continue;
            };
            let Some(&slot) = l.slots.get(destination) else {
                continue;
            };
            let r = l.remove_slot(slot);
            removed += 1;
            self.len[0] -= 1;
            if r.is_final {
                self.len[1] -= 1;
            }
            if l.slots.is_empty() {
                self.lambdas.remove(&lambda);
            }
        }
        removed
    }

    /// Remove every entry (controller's FLUSH). Congestion marks of destinations stay.
    pub fn flush(&mut self) {
        self.lambdas.clear();
        self.by_destination.clear();
        self.pending.clear();
        self.len = [0, 0];
    }

    /// Per-call decision: the entry for one call to `lambda`, looked up in `table`: the oldest
    /// entry never measured nor probed yet, if any (see the module doc), else the policy's
    /// choice. Never linear in the number of destinations, and it touches neither the
    /// destination's name nor any per-name hash: the router's hot path is `choose`,
    /// [`ETable::destination_of`], [`ETable::complete_choice`].
    pub fn choose(
        &mut self,
        lambda: &str,
        table: TableKind,
        now: Time,
    ) -> Result<Choice, TableError> {
        self.advance(now);
        let Some(l) = self.lambdas.get_mut(lambda) else {
            return Err(TableError::UnknownLambda(lambda.to_string()));
        };
        let slot = match l.next_probe(table) {
            Some(slot) => slot,
            None => {
                let instances = l.instances(table);
                let slot = match instances.unmarked.select(now, &mut self.rng) {
                    Some(slot) => slot,
                    None => instances
                        .marked
                        .select(now, &mut self.rng)
                        .ok_or_else(|| TableError::Empty(lambda.to_string()))?,
                };
                if let Some(next) = instances.unmarked.next_hint()
                    && let Some(record) = l.records.get(next)
                {
                    prefetch(record);
                }
                slot
            }
        };
        let r = l.record_mut(slot);
        r.in_flight = r.in_flight.saturating_add(1);
        Ok(Choice {
            slot: slot as u32,
            seq: r.seq,
        })
    }

    /// The destination of an entry that [`ETable::choose`] returned, while it is installed.
    pub fn destination_of(&self, lambda: &str, choice: Choice) -> Option<&Arc<str>> {
        let l = self.lambdas.get(lambda)?;
        let slot = l.slot_of(choice)?;
        Some(&l.cold[slot].destination)
    }

    /// [`ETable::choose`], returning the destination's name: a convenience for tests, which
    /// name destinations; the router's per-call path uses [`Choice`] handles.
    #[doc(hidden)]
    pub fn select(
        &mut self,
        lambda: &str,
        table: TableKind,
        now: Time,
    ) -> Result<Arc<str>, TableError> {
        let choice = self.choose(lambda, table, now)?;
        Ok(self
            .destination_of(lambda, choice)
            .expect("just chosen")
            .clone())
    }

    /// Report the end of a call that [`ETable::choose`] sent to `choice` from `table`.
    /// `latency` is Some for a success (feeds the estimator, which updates the weight of that
    /// (lambda, destination) in BOTH tables), None for a failure (no estimator update). An
    /// entry removed meanwhile is ignored (also when its slot was re-used since). O(1) plus
    /// the policy's update.
    pub fn complete_choice(
        &mut self,
        lambda: &str,
        choice: Choice,
        table: TableKind,
        latency: Option<Duration>,
        now: Time,
    ) {
        self.advance(now);
        let Some(l) = self.lambdas.get_mut(lambda) else {
            return;
        };
        let Some(slot) = l.slot_of(choice) else {
            return;
        };
        self.complete_slot(lambda, slot, table, latency, now);
    }

    /// [`ETable::complete_choice`] for the entry (lambda, destination), found by name: a
    /// convenience for tests, which name destinations.
    #[doc(hidden)]
    pub fn complete(
        &mut self,
        lambda: &str,
        destination: &str,
        table: TableKind,
        latency: Option<Duration>,
        now: Time,
    ) {
        self.advance(now);
        let Some(l) = self.lambdas.get_mut(lambda) else {
            return;
        };
        let Some(&slot) = l.slots.get(destination) else {
            return;
        };
        self.complete_slot(lambda, slot, table, latency, now);
    }

    fn complete_slot(
        &mut self,
        lambda: &str,
        slot: usize,
        table: TableKind,
        latency: Option<Duration>,
        now: Time,
    ) {
        let l = self.lambdas.get_mut(lambda).expect("caller found it");
        let (in_table, marked) = {
            let r = l.record_mut(slot);
            r.in_flight = r.in_flight.saturating_sub(1);
            (r.in_table(table), r.marked)
        };
        if let Some(latency) = latency {
            let sample = Estimate::sample_secs(latency);
            l.record_mut(slot).measured = true;
            match self.estimator {
                EstimatorKind::Ewma { alpha } => {
                    // A probe after an idle spell starts the estimate afresh (`Policy::is_probing`).
                    let probe = in_table && l.instances(table).get(marked).is_probing(slot);
                    let r = l.record_mut(slot);
                    if probe {
                        r.last_sample = None;
                    }
                    let w = Estimate::ewma_step(&mut r.last_sample, r.weight, alpha, sample, now);
                    l.apply_weight(slot, w, now);
                }
                EstimatorKind::PeakEwma { decay } => {
                    let r = l.record_mut(slot);
                    let w =
                        Estimate::peak_ewma_step(&mut r.last_sample, r.weight, decay, sample, now);
                    l.apply_weight(slot, w, now);
                }
                EstimatorKind::Periodic { .. } => {
                    if l.cold[slot].estimate.record(sample) {
                        let seq = l.record(slot).seq;
                        self.pending.push((l.name.clone(), slot, seq));
                    }
                }
            }
        }
        if in_table {
            l.instances(table)
                .get(marked)
                .on_complete(slot, latency, now);
        }
    }

    /// Periodic estimator: close the periods that ended by `now` (set weight to min/mean/max of
    /// the period's samples, keep w where there were none). Costs one comparison when no
    /// period ended, and O(entries with samples) when one did. No-op for EWMA.
    /// `select` and `complete` call it too, so samples always land in the right period.
    pub fn tick(&mut self, now: Time) {
        self.advance(now);
    }

    fn advance(&mut self, now: Time) {
        if now > self.now {
            self.now = now;
        }
        let EstimatorKind::Periodic { period, stat } = self.estimator else {
            return;
        };
        if now < self.period_end {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        for (lambda, slot, seq) in pending.drain(..) {
            let Some(l) = self.lambdas.get_mut(&lambda) else {
                continue;
            };
            let Some(Some(r)) = l.records.get(slot) else {
                continue;
            };
            if r.seq != seq {
                continue;
            }
            let w = l.cold[slot].estimate.close(r.weight, stat);
            l.apply_weight(slot, w, now);
        }
        self.pending = pending;
        // The next period boundary after `now`, periods aligned on the origin.
        let p = period.as_nanos().max(1);
        let next = (now.since_origin().as_nanos() / p + 1) * p;
        let next = Duration::new((next / 1_000_000_000) as u64, (next % 1_000_000_000) as u32);
        self.period_end = Time::from_duration(next);
    }

    /// Congestion steering: mark / unmark every entry whose destination is `destination` (all
    /// lambdas, both tables). A marked entry is not selected while an unmarked destination
    /// exists for that lambda, is used as a last resort when none does, and comes back at its
    /// initial weight (the weight last installed by `change`) when unmarked. Entries installed
    /// later for a marked destination start marked. Returns the number of entries changed.
    pub fn set_marked(&mut self, destination: &str, marked: bool) -> usize {
        if marked {
            if !self.marked.contains(destination) {
                let d = match self.by_destination.get_key_value(destination) {
                    Some((d, _)) => d.clone(),
                    None => Arc::from(destination),
                };
                self.marked.insert(d);
            }
        } else {
            self.marked.remove(destination);
        }
        let Some(lambdas) = self.by_destination.get(destination) else {
            return 0;
        };
        let now = self.now;
        let mut changed = 0;
        for lambda in lambdas {
            let Some(l) = self.lambdas.get_mut(lambda) else {
                continue;
            };
            let Some(&slot) = l.slots.get(destination) else {
                continue;
            };
            let installed = l.cold[slot].installed;
            let r = l.record_mut(slot);
            if r.marked == marked {
                continue;
            }
            r.marked = marked;
            if !marked {
                r.weight = installed;
                r.last_sample = None;
                // Back at a placeholder weight: probe it again.
                r.measured = false;
                r.probed = false;
            }
            let (weight, is_final) = (r.weight, r.is_final);
            if !marked {
                l.cold[slot].estimate.reset();
            }
            for t in TableKind::ALL {
                if t == TableKind::Final && !(is_final && l.own_final.is_some()) {
                    continue;
                }
                let instances = l.instances(t);
                instances.get(!marked).remove(slot);
                instances.get(marked).insert(slot, weight, now);
                if !marked {
                    l.queue_probe(slot, t);
                }
            }
            changed += 1;
        }
        changed
    }

    /// Whether `destination` is marked by congestion steering.
    pub fn is_marked(&self, destination: &str) -> bool {
        self.marked.contains(destination)
    }

    /// The entries of `table`, ordered by lambda, then installation order.
    pub fn entries(&self, table: TableKind) -> Vec<Entry> {
        let mut lambdas: Vec<&Lambda> = self.lambdas.values().collect();
        lambdas.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = Vec::with_capacity(self.len(table));
        for l in lambdas {
            let mut records: Vec<(usize, &Record)> = l
                .records
                .iter()
                .enumerate()
                .filter_map(|(slot, r)| r.as_ref().map(|r| (slot, r)))
                .filter(|(_, r)| r.in_table(table))
                .collect();
            records.sort_by_key(|(_, r)| r.seq);
            out.extend(records.into_iter().map(|(slot, r)| Entry {
                lambda: l.name.to_string(),
                destination: l.cold[slot].destination.to_string(),
                weight: r.weight,
                is_final: r.is_final,
                marked: r.marked,
                in_flight: r.in_flight,
            }));
        }
        out
    }

    /// The weight of (lambda, destination) in `table`, if that entry is there.
    pub fn weight(&self, lambda: &str, destination: &str, table: TableKind) -> Option<f64> {
        let l = self.lambdas.get(lambda)?;
        let r = l.record(*l.slots.get(destination)?);
        r.in_table(table).then_some(r.weight)
    }

    /// Number of entries in `table`.
    pub fn len(&self, table: TableKind) -> usize {
        self.len[table.index()]
    }

    /// Whether the table holds no entry at all.
    pub fn is_empty(&self) -> bool {
        self.len[0] == 0
    }

    /// The lambdas with at least one entry, sorted.
    pub fn lambdas(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lambdas.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    }
}

impl std::fmt::Debug for ETable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ETable")
            .field("policy", &self.policy)
            .field("estimator", &self.estimator)
            .field("overall", &self.len[0])
            .field("final", &self.len[1])
            .field("lambdas", &self.lambdas.len())
            .finish()
    }
}
