//! Offered load against capacity: how busy a scenario's workloads keep its computers.
//!
//! A call of lambda `L` with a payload of `size` bytes costs `ops = op_offset + op_coeff × size`
//! operations ([`lambdaroute_core::computer_model`]); a computer endpoint runs at most
//! `min(workers, cores, memory / mem)` such calls at once on the processor of `L`'s container,
//! each at `speed` ops/s, so it serves at most `that × speed / ops` calls/s of `L`. The capacity
//! for `L` is the sum over every computer endpoint that runs `L`.
//!
//! Offered calls/s per workload: `rate` (Poisson), `rate × on / (on + off)` (ON/OFF, on
//! average), and for a closed loop its `threads` calls in flight at most, each served by one
//! core of the fastest computer running `L`: `threads × speed / ops` calls/s at most. Trace
//! replays and Array of Things replays are not counted (their rates are in files; this module
//! reads none), nor calls of a
//! lambda that only real computers run (a face computer, a computer outside the emulated
//! network); both are listed in [`OfferedLoad::uncounted`]. Sizes drawn from `{min, max}` count at their mean (ops are linear
//! in the size).
//!
//! The load is taken at its peak over the run (the workloads active at once, by their `start`
//! and `stop`): `utilization = Σ_L offered_L / capacity_L`, which is exact for one lambda and
//! for lambdas sharing the same processors. Events (`computer-stop`, `computer-speed`,
//! `computer-load`: a background load that takes part of a computer's cores) are not taken into
//! account: this is the scenario's load as its computers start.

use std::collections::BTreeMap;

use lambdaroute_core::computer_model::MainProcessor;

use crate::model::*;

/// The load of one lambda at the peak.
#[derive(Clone, Debug, PartialEq)]
pub struct LambdaLoad {
    /// The lambda's name.
    pub lambda: String,
    /// Offered calls/s at the peak.
    pub calls_per_s: f64,
    /// Mean operations per call.
    pub ops: f64,
    /// Mean work per call, s on one core of the computers running it (weighted by their cores).
    pub work_s: f64,
    /// Calls/s the computers running it serve at most.
    pub capacity_per_s: f64,
    /// Computer endpoints that run it.
    pub computers: usize,
}

/// Offered load against the computers' capacity ([module docs](self)).
#[derive(Clone, Debug, PartialEq)]
pub struct OfferedLoad {
    /// Offered calls/s at the peak, over the counted workloads.
    pub calls_per_s: f64,
    /// Mean work per call at the peak, s on one core (weighted by calls).
    pub work_s: f64,
    /// Calls/s of the peak's mix the computers serve at most (`calls_per_s / utilization`).
    pub capacity_per_s: f64,
    /// Computer endpoints of the scenario.
    pub computers: usize,
    /// Offered load over capacity at the peak; above 1 the computers saturate.
    pub utilization: f64,
    /// When the peak begins, s since the start of the run.
    pub peak_at: f64,
    /// Per lambda, at the peak.
    pub lambdas: Vec<LambdaLoad>,
    /// Workloads not counted, and why (`workloads[2] (u1): trace replay`).
    pub uncounted: Vec<String>,
}

impl OfferedLoad {
    /// Whether the peak load exceeds the capacity.
    pub fn saturated(&self) -> bool {
        self.utilization > 1.0
    }
}

impl std::fmt::Display for OfferedLoad {
    /// `offered load: 71.0 calls/s, 1.00 s of work each; capacity 284 calls/s across 71 computers: 25 %`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let capacity = if self.capacity_per_s.is_finite() {
            format!("{:.0} calls/s", self.capacity_per_s)
        } else {
            "unbounded".to_string()
        };
        let pct = if self.utilization.is_finite() {
            format!("{:.0} %", self.utilization * 100.0)
        } else {
            "no computer runs the lambda".to_string()
        };
        write!(
            f,
            "offered load: {:.1} calls/s, {:.2} s of work each; capacity {capacity} across {} computers: {pct}",
            self.calls_per_s, self.work_s, self.computers
        )?;
        // A line, not a page: an Array of Things replay has a workload per site.
        const SHOWN: usize = 3;
        match self.uncounted.len() {
            0 => {}
            n if n <= SHOWN => write!(f, " (not counted: {})", self.uncounted.join(", "))?,
            n => write!(
                f,
                " (not counted: {} and {} more)",
                self.uncounted[..SHOWN - 1].join(", "),
                n - (SHOWN - 1)
            )?,
        }
        Ok(())
    }
}

/// What one computer endpoint offers one lambda: (calls at once, speed ops/s per core, cores).
fn slots(c: &Computer, lambda: &str, size: f64) -> Option<(f64, f64, u32)> {
    if c.executor != Executor::Simulated {
        return None;
    }
    let config = c.preset.config_with(
        c.lambdas.max(1) as usize,
        MainProcessor {
            speed: c.speed,
            cores: c.cores,
            memory: c.memory,
        },
    );
    let container = config.containers.iter().find(|k| k.lambda == lambda)?;
    let processor = config
        .processors
        .iter()
        .find(|p| p.name == container.processor)?;
    let l = config.lambda(lambda)?;
    let mem = l.mem_offset + l.mem_coeff * size;
    let by_memory = if mem > 0.0 {
        (processor.memory as f64 / mem).floor()
    } else {
        f64::INFINITY
    };
    let at_once = f64::from(container.num_workers.min(processor.cores)).min(by_memory);
    Some((at_once, processor.speed, processor.cores))
}

/// The operations of one call of `lambda` of `size` bytes, by the model of any computer that
/// runs it (the presets share the costs); None when no computer runs it.
fn ops_of(sc: &Scenario, lambda: &str, size: f64) -> Option<f64> {
    sc.hosts.iter().find_map(|h| match &h.role {
        Role::Computer(c) if c.executor == Executor::Simulated => {
            let config = c
                .preset
                .config_with(c.lambdas.max(1) as usize, MainProcessor::default());
            config
                .lambda(lambda)
                .map(|l| l.op_offset + l.op_coeff * size)
        }
        _ => None,
    })
}

/// Capacity for `lambda` at `size`: (calls/s at most, endpoints, fastest core ops/s,
/// core-weighted mean speed).
fn capacity(sc: &Scenario, lambda: &str, size: f64, ops: f64) -> (f64, usize, f64, f64) {
    let (mut calls, mut endpoints, mut fastest) = (0.0, 0usize, 0.0f64);
    let (mut speed_cores, mut cores_total) = (0.0, 0.0);
    for h in &sc.hosts {
        if let Role::Computer(c) = &h.role
            && let Some((at_once, speed, cores)) = slots(c, lambda, size)
        {
            let n = c.endpoints.max(1) as usize;
            endpoints += n;
            calls += n as f64 * at_once * speed / ops;
            fastest = fastest.max(speed);
            speed_cores += n as f64 * speed * f64::from(cores);
            cores_total += n as f64 * f64::from(cores);
        }
    }
    let mean_speed = if cores_total > 0.0 {
        speed_cores / cores_total
    } else {
        0.0
    };
    (calls, endpoints, fastest, mean_speed)
}

/// Lambdas of a real (face) computer.
const FACE_LAMBDAS: [&str; 3] = ["clambda0", "eyerec0", "facerec0"];

/// A computer that runs `lambda` for real (a face computer in a host, or any computer outside
/// the emulated network), which the load cannot model: its name.
fn real_computer<'a>(sc: &'a Scenario, lambda: &str) -> Option<&'a str> {
    let runs = |c: &Computer| match c.executor {
        Executor::Face => FACE_LAMBDAS.contains(&lambda),
        Executor::Simulated => c
            .preset
            .config_with(c.lambdas.max(1) as usize, MainProcessor::default())
            .lambda(lambda)
            .is_some(),
    };
    sc.hosts
        .iter()
        .find_map(|h| match &h.role {
            Role::Computer(c) if c.executor == Executor::Face && runs(c) => Some(h.name.as_str()),
            _ => None,
        })
        .or_else(|| {
            sc.external
                .iter()
                .find(|e| runs(&e.computer))
                .map(|e| e.name.as_str())
        })
}

fn mean_size(size: Size) -> f64 {
    match size {
        Size::Fixed(s) => s as f64,
        Size::Uniform { min, max } => (min as f64 + max as f64) / 2.0,
    }
}

/// What a replaying workload is called in [`OfferedLoad::uncounted`].
fn replay(w: &Workload) -> &'static str {
    match w.pattern {
        Pattern::Aot(_) => "Array of Things replay",
        _ => "trace replay",
    }
}

/// The scenario's offered load against its computers' capacity ([module docs](self)).
pub fn offered_load(sc: &Scenario) -> OfferedLoad {
    let computers = sc
        .hosts
        .iter()
        .map(|h| match &h.role {
            Role::Computer(c) => c.endpoints.max(1) as usize,
            _ => 0,
        })
        .sum();
    // Per counted workload: (start, stop, lambda, calls/s, ops).
    let mut counted: Vec<(f64, f64, &str, f64, f64)> = Vec::new();
    let mut uncounted = Vec::new();
    for (i, w) in sc.workloads.iter().enumerate() {
        let size = mean_size(w.size);
        let stop = w.stop.unwrap_or(sc.duration).min(sc.duration);
        let Some(ops) = ops_of(sc, &w.lambda, size) else {
            if let Some(real) = real_computer(sc, &w.lambda) {
                uncounted.push(format!(
                    "workloads[{i}] ({}): {} runs on {real}, which has no model",
                    w.client, w.lambda
                ));
                continue;
            }
            // No computer runs it: offered, with no capacity at all.
            let rate = match &w.pattern {
                Pattern::Poisson { rate } => *rate,
                Pattern::OnOff { on, off, rate } => rate * on / (on + off),
                Pattern::ClosedLoop { threads } => f64::from(*threads),
                Pattern::Trace { .. } | Pattern::Aot(_) => {
                    uncounted.push(format!("workloads[{i}] ({}): {}", w.client, replay(w)));
                    continue;
                }
            };
            counted.push((w.start, stop, &w.lambda, rate, f64::NAN));
            continue;
        };
        let rate = match &w.pattern {
            Pattern::Poisson { rate } => *rate,
            Pattern::OnOff { on, off, rate } => rate * on / (on + off),
            Pattern::ClosedLoop { threads } => {
                let (_, _, fastest, _) = capacity(sc, &w.lambda, size, ops);
                f64::from(*threads) * fastest / ops
            }
            Pattern::Trace { .. } | Pattern::Aot(_) => {
                uncounted.push(format!("workloads[{i}] ({}): {}", w.client, replay(w)));
                continue;
            }
        };
        counted.push((w.start, stop, &w.lambda, rate, ops));
    }
    // The peak: the load right after each start, over the workloads active then.
    let mut best: Option<OfferedLoad> = None;
    let mut starts: Vec<f64> = counted.iter().map(|c| c.0).collect();
    starts.sort_by(f64::total_cmp);
    starts.dedup();
    for t in starts {
        let mut by_lambda: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for &(start, stop, lambda, rate, ops) in &counted {
            if start <= t && t < stop {
                let e = by_lambda.entry(lambda).or_default();
                e.0 += rate;
                e.1 += rate * ops;
            }
        }
        let mut lambdas = Vec::new();
        let (mut calls, mut utilization, mut work) = (0.0, 0.0, 0.0);
        for (lambda, (rate, rate_ops)) in by_lambda {
            let ops = rate_ops / rate;
            let (cap, endpoints, _, mean_speed) = if ops.is_finite() {
                capacity(sc, lambda, ops_size(sc, lambda, ops), ops)
            } else {
                (0.0, 0, 0.0, 0.0)
            };
            let work_s = if mean_speed > 0.0 {
                ops / mean_speed
            } else {
                f64::NAN
            };
            calls += rate;
            utilization += if cap > 0.0 { rate / cap } else { f64::INFINITY };
            if work_s.is_finite() {
                work += rate * work_s;
            }
            lambdas.push(LambdaLoad {
                lambda: lambda.to_string(),
                calls_per_s: rate,
                ops,
                work_s,
                capacity_per_s: cap,
                computers: endpoints,
            });
        }
        let load = OfferedLoad {
            calls_per_s: calls,
            work_s: if calls > 0.0 { work / calls } else { 0.0 },
            capacity_per_s: if utilization > 0.0 {
                calls / utilization
            } else {
                f64::INFINITY
            },
            computers,
            utilization,
            peak_at: t,
            lambdas,
            uncounted: Vec::new(),
        };
        if best
            .as_ref()
            .is_none_or(|b| load.utilization > b.utilization)
        {
            best = Some(load);
        }
    }
    let mut load = best.unwrap_or_else(|| {
        let capacity_per_s = f64::INFINITY;
        OfferedLoad {
            calls_per_s: 0.0,
            work_s: 0.0,
            capacity_per_s,
            computers,
            utilization: 0.0,
            peak_at: 0.0,
            lambdas: Vec::new(),
            uncounted: Vec::new(),
        }
    });
    load.uncounted = uncounted;
    load
}

/// The payload size whose cost is `ops` for `lambda` (the inverse of `ops = offset + coeff ×
/// size`), for the memory limit of a mean call.
fn ops_size(sc: &Scenario, lambda: &str, ops: f64) -> f64 {
    let Some(at0) = ops_of(sc, lambda, 0.0) else {
        return 0.0;
    };
    let Some(at1) = ops_of(sc, lambda, 1.0) else {
        return 0.0;
    };
    let coeff = at1 - at0;
    if coeff > 0.0 {
        ((ops - at0) / coeff).max(0.0)
    } else {
        0.0
    }
}
