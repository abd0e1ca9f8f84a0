//! Per-lambda dispatch policies: how a router picks one destination among those its e-table
//! holds for a lambda (docs/policies.md).
//!
//! A [`Policy`] holds the state of one policy for one lambda and knows destinations only by a
//! small dense `slot` index that the table owns; the table does not know which policy it holds.
//! Every operation is O(1) or O(log n) in the number of destinations.
//!
//! A policy ranks only measured destinations: the table tries each new entry once before the
//! policy ranks it, because its installed weight is a placeholder (see [`crate::table`]).

mod least_impedance;
mod power_of_two;
mod proportional_fairness;
mod random_proportional;
mod round_robin;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::SmallRng;

use crate::clock::Time;
use crate::estimator::{DEFAULT_PEAK_DECAY, EstimatorKind};

pub use least_impedance::LeastImpedance;
pub use power_of_two::PowerOfTwo;
pub use proportional_fairness::ProportionalFairness;
pub use random_proportional::RandomProportional;
pub use round_robin::RoundRobin;

/// Which policy a table runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// [`RandomProportional`]: P(d) proportional to 1/w_d.
    RandomProportional,
    /// [`LeastImpedance`]: the smallest weight.
    LeastImpedance,
    /// [`RoundRobin`]: weighted deficit round robin.
    RoundRobin,
    /// [`PowerOfTwo`]: power of two choices over peak EWMA x (in-flight + 1).
    PowerOfTwo,
    /// [`ProportionalFairness`]: the largest (1/w)^alpha / (recent rate)^beta.
    ProportionalFairness(Fairness),
}

/// The exponents of [`ProportionalFairness`]: alpha weighs speed (1/w), beta the
/// destination's recent rate of served calls. Compared and hashed by their bits.
#[derive(Clone, Copy, Debug)]
pub struct Fairness {
    alpha: f64,
    beta: f64,
}

impl Fairness {
    /// alpha = beta = 1: upstream's "3G scheduler" setting.
    pub const DEFAULT: Fairness = Fairness {
        alpha: 1.0,
        beta: 1.0,
    };

    /// Exponents `alpha` and `beta`, finite and >= 0.
    pub fn new(alpha: f64, beta: f64) -> Result<Self, String> {
        for (name, v) in [("alpha", alpha), ("beta", beta)] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        Ok(Fairness { alpha, beta })
    }

    /// The exponent of 1/w.
    pub fn alpha(self) -> f64 {
        self.alpha
    }

    /// The exponent of the recent rate.
    pub fn beta(self) -> f64 {
        self.beta
    }
}

impl Default for Fairness {
    fn default() -> Self {
        Fairness::DEFAULT
    }
}

impl PartialEq for Fairness {
    fn eq(&self, other: &Self) -> bool {
        self.alpha.to_bits() == other.alpha.to_bits() && self.beta.to_bits() == other.beta.to_bits()
    }
}

impl Eq for Fairness {}

impl std::hash::Hash for Fairness {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.alpha.to_bits().hash(state);
        self.beta.to_bits().hash(state);
    }
}

impl PolicyKind {
    /// Every policy, in a stable order.
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::RandomProportional,
        PolicyKind::LeastImpedance,
        PolicyKind::RoundRobin,
        PolicyKind::PowerOfTwo,
        PolicyKind::ProportionalFairness(Fairness::DEFAULT),
    ];

    /// The policy's name, as printed by `Display`, written in scenario files and accepted
    /// (with the long aliases of [`PolicyKind::from_str`]) on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            PolicyKind::RandomProportional => "rp",
            PolicyKind::LeastImpedance => "li",
            PolicyKind::RoundRobin => "rr",
            PolicyKind::PowerOfTwo => "p2c",
            PolicyKind::ProportionalFairness(_) => "pf",
        }
    }

    /// The policy's long name, which [`PolicyKind::from_str`] accepts too.
    pub const fn long_name(self) -> &'static str {
        match self {
            PolicyKind::RandomProportional => "random-proportional",
            PolicyKind::LeastImpedance => "least-impedance",
            PolicyKind::RoundRobin => "round-robin",
            PolicyKind::PowerOfTwo => "power-of-two",
            PolicyKind::ProportionalFairness(_) => "proportional-fairness",
        }
    }

    /// The estimator a router runs with this policy unless told otherwise: peak EWMA for
    /// power of two choices (as Finagle and tower pair them), the async EWMA (alpha 0.95,
    /// upstream's experiments) for the others.
    pub fn default_estimator(self) -> EstimatorKind {
        match self {
            PolicyKind::PowerOfTwo => EstimatorKind::PeakEwma {
                decay: DEFAULT_PEAK_DECAY,
            },
            _ => EstimatorKind::default(),
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyKind::ProportionalFairness(x) if *x != Fairness::DEFAULT => {
                write!(f, "pf:{}:{}", x.alpha, x.beta)
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

/// A policy name that [`PolicyKind::from_str`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown policy '{0}': expected one of rp (random-proportional), li (least-impedance), \
     rr (round-robin), p2c (power-of-two), pf[:alpha:beta] (proportional-fairness, default 1:1)"
)]
pub struct UnknownPolicy(pub String);

impl FromStr for PolicyKind {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_ascii_lowercase();
        let mut parts = text.split(':');
        let name = parts.next().unwrap_or_default();
        let kind = PolicyKind::ALL
            .into_iter()
            .find(|p| p.as_str() == name || p.long_name() == name)
            .ok_or_else(|| UnknownPolicy(s.to_string()))?;
        let params: Vec<&str> = parts.collect();
        match (kind, params.as_slice()) {
            (_, []) => Ok(kind),
            (PolicyKind::ProportionalFairness(_), [a, b]) => {
                let num = |v: &str| {
                    v.trim()
                        .parse::<f64>()
                        .map_err(|_| UnknownPolicy(s.to_string()))
                };
                Fairness::new(num(a)?, num(b)?)
                    .map(PolicyKind::ProportionalFairness)
                    .map_err(|_| UnknownPolicy(s.to_string()))
            }
            _ => Err(UnknownPolicy(s.to_string())),
        }
    }
}

/// One policy's state for one lambda: the table does not know which policy it holds.
///
/// Destinations are `slot`s: small dense indices owned by the table, reused after removal.
/// Weights are estimated latencies in seconds, finite and > 0 (the table checks them).
pub trait Policy: Send {
    /// Add destination `slot` with weight `weight`. The slot must not be present.
    fn insert(&mut self, slot: usize, weight: f64, now: Time);
    /// Remove destination `slot`; a slot that is not present is ignored.
    fn remove(&mut self, slot: usize);
    /// A new weight for `slot` (from the controller or the estimator); ignored if absent.
    fn set_weight(&mut self, slot: usize, weight: f64, now: Time);
    /// Pick a destination for one call; `None` only when the policy holds none.
    fn select(&mut self, now: Time, rng: &mut SmallRng) -> Option<usize>;
    /// The end of a call that `select` sent to `slot`: `Some(latency)` for a success, `None`
    /// for a failure. The table calls it after the estimator's `set_weight` for that call.
    fn on_complete(&mut self, slot: usize, latency: Option<Duration>, now: Time) {
        let _ = (slot, latency, now);
    }
    /// Whether the call in flight to `slot` is a probe of a destination that got no calls for
    /// a while (round robin's stale timer): its weight is then history, and the table restarts
    /// the estimate from the probe's sample instead of averaging it in.
    fn is_probing(&self, slot: usize) -> bool {
        let _ = slot;
        false
    }
    /// The destination the next `select` will most likely pick, if the policy can tell
    /// cheaply (round robin can): the table prefetches its data so that the next call finds
    /// it in cache.
    fn next_hint(&self) -> Option<usize> {
        None
    }
    /// Number of destinations held.
    fn len(&self) -> usize;
    /// Whether the policy holds no destination.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fresh, empty policy of kind `kind`.
pub fn new_policy(kind: PolicyKind) -> Box<dyn Policy> {
    match kind {
        PolicyKind::RandomProportional => Box::new(RandomProportional::new()),
        PolicyKind::LeastImpedance => Box::new(LeastImpedance::new()),
        PolicyKind::RoundRobin => Box::new(RoundRobin::new()),
        PolicyKind::PowerOfTwo => Box::new(PowerOfTwo::new()),
        PolicyKind::ProportionalFairness(x) => Box::new(ProportionalFairness::new(x)),
    }
}

/// Total order key of a weight: finite, non-negative floats order like their bit patterns.
#[inline]
pub(crate) fn weight_key(w: f64) -> u64 {
    debug_assert!(
        w.is_finite() && w >= 0.0,
        "weight {w} must be finite and >= 0"
    );
    // +0.0 and -0.0 both map to 0.
    if w == 0.0 { 0 } else { w.to_bits() }
}

/// Ask the CPU to bring `value`'s cache line in ahead of its use (a no-op off x86-64).
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SSE is part of the x86-64 baseline; a prefetch never faults.
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Grow `v` with `fill` so that index `slot` exists.
#[inline]
pub(crate) fn ensure_slot<T: Clone>(v: &mut Vec<T>, slot: usize, fill: T) {
    if slot >= v.len() {
        v.resize(slot + 1, fill);
    }
}
