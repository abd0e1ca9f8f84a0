//! Samples turned into calls: one pass over a trace feeds any number of *targets* (one per
//! client workload), each with the nodes it replays and its own rules.
//!
//! - **Grouping** ([`Group`]): every reading is a call; or one call per node per timestamp;
//!   or one per node, timestamp and subsystem. Readings whose lambdas differ never share a call.
//! - **Lambda** ([`LambdaRule`]): the most specific rule matching the reading's subsystem,
//!   sensor or parameter (`chemsense`, `metsense.tsys01`, ...), else the target's default.
//! - **Payload** ([`Payload`]): the rows themselves (the call's input is their CSV text), a
//!   size drawn per call (fixed or uniform), or a number of bytes per reading.
//! - **Time**: a call made of readings at trace time `t` is due `(t - origin) / speedup`
//!   seconds after the client starts, `origin` being the window's start (by default the
//!   trace's first row), the same for every target of the pass.

use std::collections::HashMap;
use std::io::Read;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, TraceError};
use crate::reader::{Filter, ReadStats, Reader, Sample, SensorFilter};
use crate::time::{Timestamp, Window};

/// What one call carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// Every reading (row) is a call.
    Reading,
    /// The readings of one node at one timestamp make one call.
    Node,
    /// The readings of one subsystem of one node at one timestamp make one call.
    Subsystem,
}

impl Group {
    /// Every grouping, in the order of the documentation.
    pub const ALL: [Group; 3] = [Group::Reading, Group::Node, Group::Subsystem];

    /// Its keyword (`reading`, `node`, `subsystem`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Group::Reading => "reading",
            Group::Node => "node",
            Group::Subsystem => "subsystem",
        }
    }
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Group {
    type Err = TraceError;

    fn from_str(s: &str) -> Result<Self> {
        Group::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                TraceError::Setting(format!(
                    "unknown grouping `{s}`; expected one of `reading`, `node`, `subsystem`"
                ))
            })
    }
}

/// Readings that `selector` matches call `lambda`.
#[derive(Clone, Debug, PartialEq)]
pub struct LambdaRule {
    /// A subsystem, sensor or parameter (`chemsense`, `metsense.tsys01`, ...).
    pub selector: SensorFilter,
    /// The lambda those readings call.
    pub lambda: String,
}

/// The input of each call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Payload {
    /// The call's rows as `data.csv` text, one line each; its size is their length.
    Rows,
    /// A size drawn uniformly per call from `min` to `max` bytes (equal: fixed).
    Size {
        /// Smallest size, bytes.
        min: u64,
        /// Largest size, bytes (included).
        max: u64,
    },
    /// This many bytes per reading of the call.
    PerRow(u64),
}

/// How one target turns its nodes' samples into calls.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayConfig {
    /// Trace seconds per run second (60: an hour of data in a minute); > 0.
    pub speedup: f64,
    /// What one call carries.
    pub group: Group,
    /// The lambda of readings no rule matches.
    pub lambda: String,
    /// Lambda per subsystem, sensor or parameter; the most specific match wins (ties: first).
    pub lambdas: Vec<LambdaRule>,
    /// Readings kept; empty: all.
    pub sensors: Vec<SensorFilter>,
    /// The input of each call.
    pub payload: Payload,
    /// Seed of the sizes drawn ([`Payload::Size`]).
    pub seed: u64,
    /// Calls due this many run seconds after the start or later are not made; None: no limit.
    pub limit: Option<f64>,
}

impl ReplayConfig {
    /// Every reading of every sensor, one call per node per timestamp, in real time, inputs
    /// of 1,000 bytes, calling `lambda`.
    pub fn new(lambda: impl Into<String>) -> Self {
        ReplayConfig {
            speedup: 1.0,
            group: Group::Node,
            lambda: lambda.into(),
            lambdas: Vec::new(),
            sensors: Vec::new(),
            payload: Payload::Size {
                min: 1000,
                max: 1000,
            },
            seed: 1,
            limit: None,
        }
    }

    fn check(&self) -> Result<()> {
        if !(self.speedup.is_finite() && self.speedup > 0.0) {
            return Err(TraceError::Setting(format!(
                "speedup {}: expected a number > 0 (trace seconds per run second)",
                self.speedup
            )));
        }
        if let Payload::Size { min, max } = self.payload
            && min > max
        {
            return Err(TraceError::Setting(format!(
                "payload size {min}-{max}: the minimum exceeds the maximum"
            )));
        }
        Ok(())
    }

    fn lambda_of(&self, s: &Sample<'_>) -> &str {
        self.lambdas
            .iter()
            .filter(|r| r.selector.matches(s.subsystem, s.sensor, s.parameter))
            .fold(None::<&LambdaRule>, |best, r| match best {
                Some(b) if b.selector.depth() >= r.selector.depth() => Some(b),
                _ => Some(r),
            })
            .map_or(self.lambda.as_str(), |r| r.lambda.as_str())
    }
}

/// Which nodes a target replays.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeSet {
    /// Every node of the trace.
    All,
    /// These node ids.
    Only(Vec<String>),
}

/// One schedule to make: the nodes it replays and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The nodes whose samples it turns into calls.
    pub nodes: NodeSet,
    /// How.
    pub config: ReplayConfig,
}

/// One call of a schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// When it is due, seconds after the client's start.
    pub time: f64,
    /// The trace time of its readings.
    pub trace_time: Timestamp,
    /// The node whose readings it carries.
    pub node_id: String,
    /// The lambda it calls.
    pub lambda: String,
    /// Readings it carries.
    pub readings: u32,
    /// Size of its input, bytes.
    pub size: u64,
    /// Its rows as `data.csv` text ([`Payload::Rows`]); None otherwise.
    pub rows: Option<String>,
}

/// What one target got.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetStats {
    /// Calls made.
    pub calls: u64,
    /// Readings in them.
    pub readings: u64,
    /// Distinct nodes that gave at least one call.
    pub nodes: u64,
    /// Due time of the first and of the last call, s.
    pub span: Option<(f64, f64)>,
}

/// What a pass read and made.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayStats {
    /// The reader's counts (rows, unknown node ids, ...).
    pub read: ReadStats,
    /// The trace time of a due time of zero.
    pub origin: Option<Timestamp>,
    /// Per target, in order.
    pub targets: Vec<TargetStats>,
}

struct Open {
    node_id: String,
    subsystem: String,
    lambda: String,
    readings: u32,
    rows: String,
}

struct State<'a> {
    config: &'a ReplayConfig,
    rng: ChaCha8Rng,
    at: Option<Timestamp>,
    open: Vec<Open>,
    seen: std::collections::HashSet<String>,
    stats: TargetStats,
    finished: bool,
}

impl State<'_> {
    fn flush(
        &mut self,
        index: usize,
        origin: Timestamp,
        emit: &mut impl FnMut(usize, &Call) -> Result<()>,
    ) -> Result<()> {
        let Some(at) = self.at else {
            return Ok(());
        };
        let time = (at.unix() - origin.unix()) as f64 / self.config.speedup;
        for open in std::mem::take(&mut self.open) {
            let size = match self.config.payload {
                Payload::Rows => open.rows.len() as u64,
                Payload::Size { min, max } => self.rng.random_range(min..=max),
                Payload::PerRow(bytes) => bytes * u64::from(open.readings),
            };
            let call = Call {
                time,
                trace_time: at,
                lambda: open.lambda,
                readings: open.readings,
                size,
                rows: matches!(self.config.payload, Payload::Rows).then_some(open.rows),
                node_id: open.node_id,
            };
            if !self.seen.contains(&call.node_id) {
                self.seen.insert(call.node_id.clone());
                self.stats.nodes += 1;
            }
            self.stats.calls += 1;
            self.stats.readings += u64::from(call.readings);
            self.stats.span = Some(self.stats.span.map_or((time, time), |(a, _)| (a, time)));
            emit(index, &call)?;
        }
        Ok(())
    }

    fn add(&mut self, s: &Sample<'_>) {
        let lambda = self.config.lambda_of(s);
        let group = self.config.group;
        let found = match group {
            Group::Reading => None,
            _ => self.open.iter_mut().find(|o| {
                o.node_id == s.node_id
                    && o.lambda == lambda
                    && (group == Group::Node || o.subsystem == s.subsystem)
            }),
        };
        let open = match found {
            Some(open) => open,
            None => {
                self.open.push(Open {
                    node_id: s.node_id.to_owned(),
                    subsystem: s.subsystem.to_owned(),
                    lambda: lambda.to_owned(),
                    readings: 0,
                    rows: String::new(),
                });
                self.open.last_mut().expect("just pushed")
            }
        };
        open.readings += 1;
        if matches!(self.config.payload, Payload::Rows) {
            s.write_csv(&mut open.rows);
            open.rows.push('\n');
        }
    }
}

/// One pass over `reader`: the samples of each target's nodes within `window` become its calls,
/// handed to `emit(target index, call)` in due-time order per target. Stops at the window's end,
/// or once every target has reached its limit. The reader's own filter is replaced.
pub fn replay<R: Read>(
    reader: Reader<R>,
    window: Window,
    targets: &[Target],
    mut emit: impl FnMut(usize, &Call) -> Result<()>,
) -> Result<ReplayStats> {
    for t in targets {
        t.config.check()?;
    }
    let mut by_node: HashMap<String, Vec<usize>> = HashMap::new();
    let mut every: Vec<usize> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match &t.nodes {
            NodeSet::All => every.push(i),
            NodeSet::Only(ids) => {
                for id in ids {
                    let list = by_node.entry(id.clone()).or_default();
                    if !list.contains(&i) {
                        list.push(i);
                    }
                }
            }
        }
    }
    // Let the reader skip what no target wants.
    let nodes = every
        .is_empty()
        .then(|| by_node.keys().cloned().collect::<Vec<_>>());
    let sensors = if targets.iter().all(|t| !t.config.sensors.is_empty()) {
        let mut all: Vec<SensorFilter> = Vec::new();
        for f in targets.iter().flat_map(|t| &t.config.sensors) {
            if !all.contains(f) {
                all.push(f.clone());
            }
        }
        all
    } else {
        Vec::new()
    };
    // Past the largest limit no target wants anything: stop reading there.
    let span = targets
        .iter()
        .map(|t| t.config.limit.map(|l| l * t.config.speedup))
        .collect::<Option<Vec<f64>>>()
        .and_then(|spans| spans.into_iter().reduce(f64::max));
    let mut reader = reader.with_filter(Filter {
        window,
        nodes,
        sensors,
        span,
    })?;
    let mut states: Vec<State<'_>> = targets
        .iter()
        .map(|t| State {
            config: &t.config,
            rng: ChaCha8Rng::seed_from_u64(t.config.seed),
            at: None,
            open: Vec::new(),
            seen: Default::default(),
            stats: TargetStats::default(),
            finished: false,
        })
        .collect();
    let mut unfinished = states.len();
    let mut last: Option<Timestamp> = None;
    while unfinished > 0 && reader.step()? {
        let origin = reader
            .window_start()
            .expect("the window starts once a row is read");
        let sample = reader.current()?;
        if last != Some(sample.time) {
            // A new timestamp: targets past their limit are done.
            last = Some(sample.time);
            for (i, state) in states.iter_mut().enumerate() {
                let due = (sample.time.unix() - origin.unix()) as f64 / state.config.speedup;
                if !state.finished && state.config.limit.is_some_and(|limit| due >= limit) {
                    state.flush(i, origin, &mut emit)?;
                    state.finished = true;
                    unfinished -= 1;
                }
            }
        }
        let wanted = by_node
            .get(sample.node_id)
            .into_iter()
            .flatten()
            .chain(every.iter());
        for &i in wanted {
            let state = &mut states[i];
            if state.finished {
                continue;
            }
            if state.at.is_some_and(|at| sample.time > at) {
                state.flush(i, origin, &mut emit)?;
            }
            if !state.config.sensors.is_empty()
                && !state
                    .config
                    .sensors
                    .iter()
                    .any(|f| f.matches(sample.subsystem, sample.sensor, sample.parameter))
            {
                continue;
            }
            state.at = Some(sample.time);
            state.add(&sample);
        }
    }
    let origin = reader.window_start();
    if let Some(origin) = origin {
        for (i, state) in states.iter_mut().enumerate() {
            state.flush(i, origin, &mut emit)?;
        }
    }
    Ok(ReplayStats {
        read: reader.stats().clone(),
        origin,
        targets: states.into_iter().map(|s| s.stats).collect(),
    })
}
