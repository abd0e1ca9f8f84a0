//! The installers and congestion marks (docs/controller.md) as pure functions: from the announced
//! routers and computers to the entries each router should hold, and from what a router holds
//! to the operations that bring it there.
//!
//! - flat: every (lambda, computer) on every router, final, weight 1.0.
//! - two-tier: each computer gets a home router, the one minimising, over hop distances d,
//!   `W*(d_ic + max_j d_ji) + (N*d_ic + sum_j d_ji)` (min-max; min-avg puts W on the second
//!   term), `W = 1 + 2N^2`, N the nodes of the matrix, j over the announced routers. The
//!   computer is final on its home router; every other router gets `lambda -> home router`
//!   (the home router's lambda endpoint), non-final, so a call crosses at most two routers.
//!   A computer not in the matrix is installed as with flat (final on every router, a
//!   [`Placement::Fallback`]): it keeps working, tables grow. A computer of the matrix that no
//!   announced router of the matrix reaches yet (it announced before its routers) is final on
//!   every router only for now ([`Placement::Waiting`]): the next plan after its routers
//!   announce moves it to its home. Every plan places every computer afresh, so computers
//!   follow routers that arrive and leave; [`placement_changes`] says which moved.
//!
//! The controller owns a router's tables: [`diff`] changes what is wanted and missing, and
//! removes what is there but not wanted, changes before removals so that a lambda is never
//! left without a destination while its entries move.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use super::{Distances, Paths};

/// Weight of every entry the controller installs (seconds; the router learns from there).
pub const INITIAL_WEIGHT: f32 = 1.0;

/// Which term of the two-tier cost dominates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Objective {
    /// Minimise the longest path any router's call takes to the computer (ties: the average).
    #[default]
    MinMax,
    /// Minimise the average path (ties: the longest).
    MinAvg,
}

impl FromStr for Objective {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "min-max" => Ok(Objective::MinMax),
            "min-avg" => Ok(Objective::MinAvg),
            _ => Err(format!(
                "unknown objective '{s}': expected min-max or min-avg"
            )),
        }
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Objective::MinMax => "min-max",
            Objective::MinAvg => "min-avg",
        })
    }
}

/// How the controller places computers on routers.
#[derive(Clone, Debug, PartialEq)]
pub enum Installer {
    /// Every (lambda, computer) on every router, final.
    Flat,
    /// Each computer final on its home router; the other routers send its lambdas there.
    TwoTier {
        /// Hop distances among routers and computers, to choose the home routers.
        distances: Distances,
        /// Which term of the cost dominates the choice of a home router.
        objective: Objective,
    },
}

impl fmt::Display for Installer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Installer::Flat => f.write_str("flat"),
            Installer::TwoTier { objective, .. } => write!(f, "two-tier ({objective})"),
        }
    }
}

/// The announced routers and computers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Topology {
    /// Router lambda endpoint -> its table endpoint.
    pub routers: BTreeMap<String, String>,
    /// Computer endpoint -> the lambdas it runs.
    pub computers: BTreeMap<String, BTreeSet<String>>,
}

/// A router's entries: (lambda, destination) -> final.
pub type Table = BTreeMap<(String, String), bool>;

/// Where a computer's entries go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Final on this router (lambda endpoint); every other router forwards to it.
    Home(String),
    /// Final on every router: the flat installer.
    Flat,
    /// Final on every router, because two-tier cannot place it (the reason, in words): it is
    /// not in the distance matrix. Stays so until the controller restarts with another matrix.
    Fallback(String),
    /// Final on every router for now: it is in the distance matrix, but no announced router of
    /// the matrix reaches it yet (the reason, in words). It moves to its home router when one
    /// is announced.
    Waiting(String),
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Home(router) => write!(f, "home router {router}"),
            Placement::Flat => f.write_str("flat: every router"),
            Placement::Fallback(reason) => write!(f, "every router ({reason})"),
            Placement::Waiting(reason) => {
                write!(
                    f,
                    "every router until its home router is announced ({reason})"
                )
            }
        }
    }
}

/// What every router should hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Router lambda endpoint -> its wanted entries (every announced router has one).
    pub tables: BTreeMap<String, Table>,
    /// Computer endpoint -> its placement.
    pub placements: BTreeMap<String, Placement>,
}

/// The two-tier cost of router `i` as home of computer `c` (matrix indices), over the routers
/// `routers`: `(max, avg)` = `(d_ic + max_j d_ji, N*d_ic + sum_j d_ji)`; None if a distance
/// is unknown (unreachable).
pub fn two_tier_terms(
    distances: &Distances,
    routers: &[usize],
    i: usize,
    c: usize,
) -> Option<(u64, u64)> {
    let n = distances.len() as u64;
    let d_ic = u64::from(distances.hops(i, c)?);
    let mut max = 0u64;
    let mut sum = 0u64;
    for &j in routers {
        let d_ji = u64::from(distances.hops(j, i)?);
        max = max.max(d_ji);
        sum += d_ji;
    }
    Some((d_ic + max, n * d_ic + sum))
}

/// The home router of computer `c` among `routers` (matrix indices, in the order that breaks
/// ties: the first of equal cost wins), or None if no router has a known cost.
pub fn choose_home(
    distances: &Distances,
    objective: Objective,
    routers: &[usize],
    c: usize,
) -> Option<usize> {
    let n = distances.len() as u128;
    let w = 1 + 2 * n * n;
    let mut best: Option<(u128, usize)> = None;
    for &i in routers {
        let Some((max, avg)) = two_tier_terms(distances, routers, i, c) else {
            continue;
        };
        let (max, avg) = (u128::from(max), u128::from(avg));
        let score = match objective {
            Objective::MinMax => w * max + avg,
            Objective::MinAvg => max + w * avg,
        };
        if best.is_none_or(|(b, _)| score < b) {
            best = Some((score, i));
        }
    }
    best.map(|(_, i)| i)
}

/// The two-tier choice of home routers among the announced routers of the matrix: the
/// per-router terms computed once, the home of each matrix node computed once.
struct Homes<'a> {
    distances: &'a Distances,
    objective: Objective,
    /// (endpoint, matrix index, max_j d_ji, sum_j d_ji), in endpoint order; a router with an
    /// unknown distance to another announced router of the matrix is left out.
    routers: Vec<(&'a String, usize, u64, u64)>,
    /// Matrix index of a computer -> its home (position in `routers`).
    cache: BTreeMap<usize, Option<usize>>,
}

impl<'a> Homes<'a> {
    fn new(distances: &'a Distances, objective: Objective, topology: &'a Topology) -> Self {
        let placed: Vec<(&String, usize)> = topology
            .routers
            .keys()
            .filter_map(|r| Some((r, distances.lookup(r)?)))
            .collect();
        let routers = placed
            .iter()
            .filter_map(|&(r, i)| {
                let mut max = 0u64;
                let mut sum = 0u64;
                for &(_, j) in &placed {
                    let d = u64::from(distances.hops(j, i)?);
                    max = max.max(d);
                    sum += d;
                }
                Some((r, i, max, sum))
            })
            .collect();
        Homes {
            distances,
            objective,
            routers,
            cache: BTreeMap::new(),
        }
    }

    /// The placement of `computer`, as [`choose_home`] over the announced routers.
    fn place(&mut self, computer: &str) -> Placement {
        let Some(c) = self.distances.lookup(computer) else {
            return Placement::Fallback("not in the distance matrix".into());
        };
        if self.routers.is_empty() {
            return Placement::Waiting("no router of the distance matrix is announced yet".into());
        }
        let home = match self.cache.get(&c) {
            Some(home) => *home,
            None => {
                let home = self.choose(c);
                self.cache.insert(c, home);
                home
            }
        };
        match home {
            Some(k) => Placement::Home(self.routers[k].0.clone()),
            None => {
                Placement::Waiting("no announced router of the distance matrix reaches it".into())
            }
        }
    }

    fn choose(&self, c: usize) -> Option<usize> {
        let n = self.distances.len() as u128;
        let w = 1 + 2 * n * n;
        let mut best: Option<(u128, usize)> = None;
        for (k, &(_, i, max_j, sum_j)) in self.routers.iter().enumerate() {
            let Some(d_ic) = self.distances.hops(i, c) else {
                continue;
            };
            let d_ic = u64::from(d_ic);
            let max = u128::from(d_ic + max_j);
            let avg = u128::from(self.distances.len() as u64 * d_ic + sum_j);
            let score = match self.objective {
                Objective::MinMax => w * max + avg,
                Objective::MinAvg => max + w * avg,
            };
            if best.is_none_or(|(b, _)| score < b) {
                best = Some((score, k));
            }
        }
        best.map(|(_, k)| k)
    }
}

/// The tables every router of `topology` should hold under `installer`. Every computer is
/// placed afresh: a plan depends only on the topology, not on earlier plans.
pub fn plan(installer: &Installer, topology: &Topology) -> Plan {
    let mut plan = Plan {
        tables: topology
            .routers
            .keys()
            .map(|r| (r.clone(), Table::new()))
            .collect(),
        placements: BTreeMap::new(),
    };
    let mut homes = match installer {
        Installer::Flat => None,
        Installer::TwoTier {
            distances,
            objective,
        } => Some(Homes::new(distances, *objective, topology)),
    };
    for (computer, lambdas) in &topology.computers {
        let placement = match homes.as_mut() {
            None => Placement::Flat,
            Some(homes) => homes.place(computer),
        };
        for (router, table) in plan.tables.iter_mut() {
            for lambda in lambdas {
                match &placement {
                    Placement::Home(home) if home != router => {
                        table.insert((lambda.clone(), home.clone()), false);
                    }
                    _ => {
                        table.insert((lambda.clone(), computer.clone()), true);
                    }
                }
            }
        }
        plan.placements.insert(computer.clone(), placement);
    }
    plan
}

/// A computer whose placement differs between two plans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementChange {
    /// The computer's endpoint.
    pub computer: String,
    /// Its placement in the earlier plan; None if it was not there (newly announced).
    pub before: Option<Placement>,
    /// Its placement now.
    pub after: Placement,
}

/// The computers of `after` placed otherwise than in `before` (new ones included), in
/// endpoint order: what the controller logs, once per change, after each plan.
pub fn placement_changes(
    before: &BTreeMap<String, Placement>,
    after: &BTreeMap<String, Placement>,
) -> Vec<PlacementChange> {
    after
        .iter()
        .filter(|(computer, placement)| before.get(*computer) != Some(*placement))
        .map(|(computer, placement)| PlacementChange {
            computer: computer.clone(),
            before: before.get(computer).cloned(),
            after: placement.clone(),
        })
        .collect()
}

/// One change to a router's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Install (or re-flag) an entry at [`INITIAL_WEIGHT`].
    Change {
        /// The lambda of the entry.
        lambda: String,
        /// The destination of the entry: a computer's or a router's lambda endpoint.
        destination: String,
        /// The destination executes the lambda (a computer) rather than forwarding it (a router).
        is_final: bool,
    },
    /// Remove the entry (lambda, destination).
    Remove {
        /// The lambda of the entry.
        lambda: String,
        /// The destination of the entry: a computer's or a router's lambda endpoint.
        destination: String,
    },
}

/// The operations that turn `installed` into `wanted`: changes (new entries, or a changed
/// final flag) first, then removals of entries not wanted for which `may_remove(destination)`
/// holds. An entry already installed with the same flag is left alone: its learned weight stays.
pub fn diff(installed: &Table, wanted: &Table, may_remove: impl Fn(&str) -> bool) -> Vec<Op> {
    // Both tables are sorted by (lambda, destination): one merge pass, no lookups.
    let mut changes = Vec::new();
    let mut removals = Vec::new();
    let mut remove = |lambda: &String, destination: &String| {
        if may_remove(destination) {
            removals.push(Op::Remove {
                lambda: lambda.clone(),
                destination: destination.clone(),
            });
        }
    };
    let mut have = installed.iter().peekable();
    for ((lambda, destination), &is_final) in wanted {
        while let Some(((l, d), _)) = have.peek()
            && (l, d) < (lambda, destination)
        {
            remove(l, d);
            have.next();
        }
        let in_place = match have.peek() {
            Some(&((l, d), &f)) if l == lambda && d == destination => {
                have.next();
                f == is_final
            }
            _ => false,
        };
        if !in_place {
            changes.push(Op::Change {
                lambda: lambda.clone(),
                destination: destination.clone(),
                is_final,
            });
        }
    }
    for ((l, d), _) in have {
        remove(l, d);
    }
    changes.extend(removals);
    changes
}

/// The destinations of `router`'s `table` to mark: those whose path (from `paths`) crosses a
/// congested link, each with the congested links of its path.
pub fn marks(
    paths: &Paths,
    router: &str,
    table: &Table,
    congested: &BTreeSet<String>,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    if congested.is_empty() {
        return out;
    }
    let destinations: BTreeSet<&String> = table.keys().map(|(_, d)| d).collect();
    for destination in destinations {
        let Some(links) = paths.links(router, destination) else {
            continue;
        };
        let hot: Vec<String> = links
            .iter()
            .filter(|l| congested.contains(*l))
            .cloned()
            .collect();
        if !hot.is_empty() {
            out.insert(destination.clone(), hot);
        }
    }
    out
}
