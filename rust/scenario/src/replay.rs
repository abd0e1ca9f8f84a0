//! The `pattern: aot` workloads of a scenario as replay passes over their traces.
//!
//! The AoT generator puts each site's switch at the position `[lon, lat]` of the node kept by
//! the 0.010-degree merge rule (`lambdaroute_trace::nodes::sites`). So a switch whose position is
//! a site's holds that site's nodes: the kept one and those merged into it. An `aot` workload
//! replays the nodes of its client's switch; its calls go from that client to its router.
//! Workloads on the same trace and window share one pass (the trace is read once for all of
//! them); each gets its own schedule.

use lambdaroute_trace::replay::{NodeSet, Payload, ReplayConfig, Target};
use lambdaroute_trace::{NodeList, Window, nodes};

use crate::error::{Result, ScenarioError};
use crate::model::{AotPayload, Pattern, Scenario, Size};

/// How close (degrees) a switch must be to a site's node to stand for it.
const SAME_PLACE: f64 = 1e-9;

/// The AoT nodes (ids) of each switch of `sc`, in switch order: a site's members where the
/// switch stands at the site's kept node, None elsewhere.
pub fn aot_sites(sc: &Scenario, list: &NodeList) -> Vec<Option<Vec<String>>> {
    let sites = nodes::sites(list);
    sc.switches
        .iter()
        .map(|sw| {
            let [lon, lat] = sw.position?;
            sites
                .iter()
                .find(|site| {
                    let n = &list.nodes[site.node];
                    (n.lon - lon).abs() < SAME_PLACE && (n.lat - lat).abs() < SAME_PLACE
                })
                .map(|site| {
                    site.members
                        .iter()
                        .map(|&m| list.nodes[m].node_id.clone())
                        .collect()
                })
        })
        .collect()
}

/// One read of a trace, feeding several workloads.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayPass {
    /// The trace, as the workloads name it (relative to the scenario file).
    pub trace: String,
    /// The window they share.
    pub window: Window,
    /// Indices of the workloads in [`Scenario::workloads`], one per target.
    pub workloads: Vec<usize>,
    /// What each of them replays and how, in the same order.
    pub targets: Vec<Target>,
}

/// The passes of every `aot` workload of `sc`, whose sites come from the node list `list`
/// (the shipped one for the shipped AoT scenario). Each workload's target replays the nodes of
/// its client's site, seeded with `seed * 1000 + index` (as the testbed seeds clients), limited
/// to its length (`stop` or the run's end, minus `start`).
pub fn replay_passes(sc: &Scenario, list: &NodeList) -> Result<Vec<ReplayPass>> {
    let sites = aot_sites(sc, list);
    let mut passes: Vec<ReplayPass> = Vec::new();
    for (i, w) in sc.workloads.iter().enumerate() {
        let Pattern::Aot(aot) = &w.pattern else {
            continue;
        };
        let client = sc.host(&w.client).ok_or_else(|| {
            ScenarioError::Replay(format!("workloads[{i}]: unknown client `{}`", w.client))
        })?;
        let switch = sc.switch_index(&client.switch).ok_or_else(|| {
            ScenarioError::Replay(format!(
                "workloads[{i}]: unknown switch `{}`",
                client.switch
            ))
        })?;
        let Some(members) = sites[switch].clone() else {
            let at = sc.switches[switch]
                .position
                .map_or("no position".to_string(), |[x, y]| format!("[{x}, {y}]"));
            return Err(ScenarioError::Replay(format!(
                "workloads[{i}]: pattern aot: client `{}` is on switch `{}` at {at}, which is no \
                 Array of Things site (no node of data/aot/nodes.csv kept by the 0.010-degree \
                 rule stands there); aot workloads run on the AoT scenario \
                 (topologies/aot-chicago.yaml, `topo aot-chicago`)",
                w.client, client.switch
            )));
        };
        let payload = match aot.payload {
            AotPayload::Rows => Payload::Rows,
            AotPayload::PerRow(bytes) => Payload::PerRow(bytes),
            AotPayload::Size => match w.size {
                Size::Fixed(s) => Payload::Size { min: s, max: s },
                Size::Uniform { min, max } => Payload::Size { min, max },
            },
        };
        let length = w.stop.unwrap_or(sc.duration) - w.start;
        let target = Target {
            nodes: NodeSet::Only(members),
            config: ReplayConfig {
                speedup: aot.speedup,
                group: aot.group,
                lambda: w.lambda.clone(),
                lambdas: aot.lambdas.clone(),
                sensors: aot.sensors.clone(),
                payload,
                seed: sc.seed.wrapping_mul(1000).wrapping_add(i as u64),
                limit: Some(length.max(0.0)),
            },
        };
        match passes
            .iter_mut()
            .find(|p| p.trace == aot.trace && p.window == aot.window)
        {
            Some(pass) => {
                pass.workloads.push(i);
                pass.targets.push(target);
            }
            None => passes.push(ReplayPass {
                trace: aot.trace.clone(),
                window: aot.window,
                workloads: vec![i],
                targets: vec![target],
            }),
        }
    }
    Ok(passes)
}

/// A schedule file written for one workload.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleFile {
    /// Index of the workload in [`Scenario::workloads`].
    pub workload: usize,
    /// Its client.
    pub client: String,
    /// Where the schedule is.
    pub path: std::path::PathBuf,
    /// Its calls, readings, nodes and span.
    pub stats: lambdaroute_trace::replay::TargetStats,
}

/// A trace read for the schedules.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRead {
    /// The trace file, resolved.
    pub path: std::path::PathBuf,
    /// What the reader saw (rows, unknown node ids, ...).
    pub read: lambdaroute_trace::ReadStats,
    /// The trace time of time 0 of its workloads.
    pub origin: Option<lambdaroute_trace::Timestamp>,
}

/// Everything [`write_schedules`] wrote and read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedules {
    /// One per `aot` workload, in workload order.
    pub files: Vec<ScheduleFile>,
    /// One per pass (distinct trace and window).
    pub traces: Vec<TraceRead>,
}

/// Writes the schedule of every `aot` workload of `sc` to `out/<client>-<index>.csv`, reading
/// each trace once ([`replay_passes`], sites from the shipped node list). Trace paths are
/// relative to `base` (the scenario file's folder). This and [`crate::Scenario::load`] are the
/// crate's only file I/O.
pub fn write_schedules(
    sc: &Scenario,
    base: &std::path::Path,
    out: &std::path::Path,
) -> Result<Schedules> {
    use lambdaroute_trace::schedule::ScheduleWriter;
    use std::io::BufWriter;

    let list = std::sync::Arc::new(NodeList::shipped());
    let passes = replay_passes(sc, &list)?;
    let mut written = Schedules::default();
    if passes.is_empty() {
        return Ok(written);
    }
    let replay_err = |e: lambdaroute_trace::TraceError| ScenarioError::Replay(e.to_string());
    std::fs::create_dir_all(out).map_err(|e| ScenarioError::Io {
        file: out.display().to_string(),
        message: e.to_string(),
    })?;
    for pass in passes {
        let path = base.join(&pass.trace);
        let mut writers = Vec::new();
        let mut files = Vec::new();
        for &i in &pass.workloads {
            let client = sc.workloads[i].client.clone();
            let file = out.join(format!("{client}-{i}.csv"));
            let name = file.display().to_string();
            let sink = std::fs::File::create(&file).map_err(|e| ScenarioError::Io {
                file: name.clone(),
                message: e.to_string(),
            })?;
            writers.push(ScheduleWriter::new(BufWriter::new(sink), &name).map_err(replay_err)?);
            files.push((i, client, file));
        }
        let reader = lambdaroute_trace::Reader::open(&path)
            .and_then(|r| r.with_nodes(list.clone()))
            .map_err(replay_err)?;
        let stats =
            lambdaroute_trace::replay::replay(reader, pass.window, &pass.targets, |t, c| {
                writers[t].write(c)
            })
            .map_err(replay_err)?;
        for w in writers {
            w.finish().map_err(replay_err)?;
        }
        for ((workload, client, path), stats) in files.into_iter().zip(stats.targets) {
            written.files.push(ScheduleFile {
                workload,
                client,
                path,
                stats,
            });
        }
        written.traces.push(TraceRead {
            path,
            read: stats.read,
            origin: stats.origin,
        });
    }
    written.files.sort_by_key(|f| f.workload);
    Ok(written)
}
