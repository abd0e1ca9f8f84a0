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
