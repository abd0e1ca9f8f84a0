//! The papers' topologies (docs/scenario.md, "Generators") and an importer of BRITE files.
//!
//! Each generator lays out switches (named `s1`, `s2`, ..., with positions for drawing) and links,
//! then places roles: routers (`r<i>`), clients (`u<i>`, each with a workload towards one router),
//! computers (`c<i>`), one controller (`ctl`) and, where the paper has them, a NAT gateway
//! (`nat`) and background traffic hosts (`tx<i>` -> `rx<i>`). The default placement follows the
//! papers; [`Placement`] overrides it.

use std::collections::HashMap;

use crate::error::{Result, ScenarioError};
use crate::model::*;
use crate::network::components;

/// Where roles go, overriding a generator's defaults. Switches are named as the generator names them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placement {
    /// Switches that get a router (and its clients).
    pub routers: Option<Vec<String>>,
    /// Switches that get computers.
    pub computers: Option<Vec<String>>,
    /// The switch of the controller.
    pub controller: Option<String>,
    /// The preset of every computer (default: the paper's, per switch).
    pub preset: Option<Preset>,
    /// Clients per router (default 1).
    pub clients_per_router: Option<u32>,
    /// Computers per chosen switch (default 1).
    pub computers_per_switch: Option<u32>,
    /// Endpoints each computer host serves (`computer: {endpoints: N}`, default 1): N
    /// computers on consecutive ports of one process.
    pub endpoints_per_computer: Option<u32>,
}

/// A generator's default placement.
struct Defaults {
    routers: Vec<usize>,
    computers: Vec<(usize, Preset)>,
    controller: usize,
    /// Switch of each router's clients, when not the router's own.
    client_switch: HashMap<usize, Vec<usize>>,
    pattern: Pattern,
}

fn sw_name(i: usize) -> String {
    format!("s{}", i + 1)
}

fn new_scenario(name: &str, description: String, n: usize, positions: Vec<[f64; 2]>) -> Scenario {
    let mut sc = Scenario::new(name);
    sc.description = description;
    sc.switches = (0..n)
        .map(|i| Switch {
            name: sw_name(i),
            position: positions.get(i).copied(),
        })
        .collect();
    sc
}

fn link(sc: &mut Scenario, a: usize, b: usize, params: &LinkParams) {
    sc.links.push(Link {
        a: sw_name(a),
        b: sw_name(b),
        params: params.clone(),
    });
}

fn ring(sc: &mut Scenario, members: &[usize], params: &LinkParams) {
    let k = members.len();
    if k < 2 {
        return;
    }
    let closing = if k > 2 { k } else { k - 1 };
    for i in 0..closing {
        link(sc, members[i], members[(i + 1) % k], params);
    }
}

fn add_host(sc: &mut Scenario, name: String, switch: usize, role: Role) {
    sc.hosts.push(Host {
        name,
        switch: sw_name(switch),
        role,
        ip: None,
        mac: None,
        link: LinkParams::default(),
    });
}

fn resolve(sc: &Scenario, names: &[String], what: &str) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            sc.switch_index(n).ok_or_else(|| {
                ScenarioError::Generator(format!(
                    "placement of {what}: unknown switch `{n}` (this topology has s1..s{})",
                    sc.switches.len()
                ))
            })
        })
        .collect()
}

/// Places routers, clients, computers and the controller, and gives every client a workload.
fn populate(sc: &mut Scenario, d: Defaults, p: &Placement) -> Result<()> {
    let routers = match &p.routers {
        Some(names) => resolve(sc, names, "routers")?,
        None => d.routers,
    };
    let computers: Vec<(usize, Preset)> = match &p.computers {
        Some(names) => resolve(sc, names, "computers")?
            .into_iter()
            .map(|s| (s, Preset::Raspberry))
            .collect(),
        None => d.computers,
    };
    let controller = match &p.controller {
        Some(name) => resolve(sc, std::slice::from_ref(name), "the controller")?[0],
        None => d.controller,
    };
    let clients_per_router = p.clients_per_router.unwrap_or(1) as usize;
    let per_switch = p.computers_per_switch.unwrap_or(1).max(1);
    let endpoints = p.endpoints_per_computer.unwrap_or(1);
    if !(1..=MAX_COMPUTER_ENDPOINTS).contains(&endpoints) {
        return Err(ScenarioError::Generator(format!(
            "placement: endpoints_per_computer is {endpoints}: give 1 to {MAX_COMPUTER_ENDPOINTS}"
        )));
    }
    if routers.is_empty() {
        return Err(ScenarioError::Generator(
            "placement: at least one router is needed".into(),
        ));
    }
    let mut client_no = 0;
    for (i, &r) in routers.iter().enumerate() {
        let router = format!("r{}", i + 1);
        add_host(sc, router.clone(), r, Role::Router);
        // One client per spot (the router's own switch when there is none), at least
        // `clients_per_router`.
        let spots = d.client_switch.get(&r).cloned().unwrap_or_else(|| vec![r]);
        for k in 0..clients_per_router.max(spots.len()) {
            client_no += 1;
            let client = format!("u{client_no}");
            add_host(sc, client.clone(), spots[k % spots.len()], Role::Client);
            sc.workloads.push(Workload {
                client,
                router: router.clone(),
                fallback: Vec::new(),
                lambda: "clambda0".into(),
                pattern: d.pattern.clone(),
                size: Size::Fixed(1000),
                start: 0.0,
                stop: None,
                images: Vec::new(),
                eyes: None,
                api: Api::Grpc,
            });
        }
    }
    let mut c = 0;
    for (s, preset) in computers {
        for _ in 0..per_switch {
            c += 1;
            add_host(
                sc,
                format!("c{c}"),
                s,
                Role::Computer(Computer {
                    endpoints,
                    ..Computer::preset(p.preset.unwrap_or(preset))
                }),
            );
        }
    }
    add_host(sc, "ctl".into(), controller, Role::Controller);
    Ok(())
}

fn need(cond: bool, msg: &str) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(ScenarioError::Generator(msg.to_string()))
    }
}

/// A chain of `n` switches: a router (and its client) at the far edge `s1`, a computer on every
/// switch along the line.
pub fn line(n: usize, link_params: &LinkParams, p: &Placement) -> Result<Scenario> {
    need(n >= 1, "line(n): n must be at least 1")?;
    let positions = (0..n).map(|i| [i as f64, 0.0]).collect();
    let mut sc = new_scenario(
        &format!("line-{n}"),
        format!("A line of {n} switches; router at the far edge, computers all along the line."),
        n,
        positions,
    );
    for i in 1..n {
        link(&mut sc, i - 1, i, link_params);
    }
    populate(
        &mut sc,
        Defaults {
            routers: vec![0],
            computers: (0..n).map(|i| (i, Preset::Raspberry)).collect(),
            controller: 0,
            client_switch: HashMap::new(),
            pattern: Pattern::ClosedLoop { threads: 1 },
        },
        p,
    )?;
    Ok(sc)
}

/// `n` pods, each a ring of `n` switches, joined by a middle ring of `n` core switches:
/// n(n+1) switches. Core switches are `s1..sn`; pod `i`'s ring follows, its first switch is the
/// pod's gateway to core switch `i`. Powerful computers (intel-server) in the core, constrained
/// ones (raspberry) on the pod switches near the users; a router on every pod gateway.
pub fn pods(n: usize, link_params: &LinkParams, p: &Placement) -> Result<Scenario> {
    need(n >= 1, "pods(n): n must be at least 1")?;
    let total = n * (n + 1);
    let mut positions = Vec::with_capacity(total);
    let tau = std::f64::consts::TAU;
    for i in 0..n {
        let a = tau * i as f64 / n as f64;
        positions.push([a.cos(), a.sin()]);
    }
    for i in 0..n {
        let a = tau * i as f64 / n as f64;
        let (cx, cy) = (3.0 * a.cos(), 3.0 * a.sin());
        for j in 0..n {
            // The gateway (j = 0) faces the core.
            let b = a + std::f64::consts::PI + tau * j as f64 / n as f64;
            positions.push([cx + 0.8 * b.cos(), cy + 0.8 * b.sin()]);
        }
    }
    let mut sc = new_scenario(
        &format!("pods-{n}"),
        format!(
            "{n} pods of {n} switches in rings, joined by a middle ring of {n}: {total} switches. Powerful computers in the core, constrained ones close to the users."
        ),
        total,
        positions,
    );
    let core: Vec<usize> = (0..n).collect();
    ring(&mut sc, &core, link_params);
    let pod = |i: usize| -> Vec<usize> { (0..n).map(|j| n + i * n + j).collect() };
    for i in 0..n {
        ring(&mut sc, &pod(i), link_params);
        link(&mut sc, i, pod(i)[0], link_params);
    }
    let mut computers: Vec<(usize, Preset)> =
        core.iter().map(|&c| (c, Preset::IntelServer)).collect();
    let mut client_switch = HashMap::new();
    for i in 0..n {
        let members = pod(i);
        let edge: Vec<usize> = if n > 1 {
            members[1..].to_vec()
        } else {
            members.clone()
        };
        computers.extend(edge.iter().map(|&s| (s, Preset::Raspberry)));
        client_switch.insert(members[0], edge);
    }
    populate(
        &mut sc,
        Defaults {
            routers: (0..n).map(|i| pod(i)[0]).collect(),
            computers,
            controller: 0,
            client_switch,
            pattern: Pattern::Poisson { rate: 10.0 },
        },
        p,
    )?;
    Ok(sc)
}

/// An inner ring of `ring` switches, each the root of a tree of `fanout` children per switch and
/// `depth` levels (the outer spokes). Routers and computers on the ring, ON/OFF clients at the
/// leaves; background traffic between two leaves on opposite sides of the ring during the middle
/// third of the run.
pub fn ring_tree(
    ring_size: usize,
    fanout: usize,
    depth: usize,
    link_params: &LinkParams,
    p: &Placement,
) -> Result<Scenario> {
    need(
        ring_size >= 1,
        "ring_tree: the ring needs at least 1 switch",
    )?;
    need(
        fanout >= 1 || depth == 0,
        "ring_tree: fanout must be at least 1",
    )?;
    let per_tree: usize = (1..=depth).map(|k| fanout.pow(k as u32)).sum();
    let total = ring_size * (1 + per_tree);
    let tau = std::f64::consts::TAU;
    let mut positions = vec![[0.0, 0.0]; total];
    let mut sc_links: Vec<(usize, usize)> = Vec::new();
    let mut leaves: Vec<Vec<usize>> = vec![Vec::new(); ring_size];
    let mut next = ring_size;
    for r in 0..ring_size {
        let a = tau * r as f64 / ring_size as f64;
        positions[r] = [a.cos(), a.sin()];
        let mut level = vec![r];
        for k in 1..=depth {
            let width = fanout.pow(k as u32);
            let mut new_level = Vec::new();
            for (pi, &parent) in level.iter().enumerate() {
                for c in 0..fanout {
                    let idx = next;
                    next += 1;
                    let slot = (pi * fanout + c) as f64 + 0.5 - width as f64 / 2.0;
                    let spread = tau / ring_size as f64 * 0.8;
                    let b = a + spread * slot / width as f64;
                    let radius = 1.0 + 1.2 * k as f64;
                    positions[idx] = [radius * b.cos(), radius * b.sin()];
                    sc_links.push((parent, idx));
                    new_level.push(idx);
                }
            }
            level = new_level;
        }
        leaves[r] = if depth == 0 { vec![r] } else { level };
    }
    let mut sc = new_scenario(
        &format!("ring-tree-{ring_size}-{fanout}-{depth}"),
        format!(
            "An inner ring of {ring_size} switches with outer trees (fanout {fanout}, depth {depth}): {total} switches. ON/OFF clients at the leaves, background traffic across the ring."
        ),
        total,
        positions,
    );
    let inner: Vec<usize> = (0..ring_size).collect();
    ring(&mut sc, &inner, link_params);
    for (a, b) in sc_links {
        link(&mut sc, a, b, link_params);
    }
    let client_switch: HashMap<usize, Vec<usize>> =
        (0..ring_size).map(|r| (r, leaves[r].clone())).collect();
    populate(
        &mut sc,
        Defaults {
            routers: inner.clone(),
            computers: inner.iter().map(|&s| (s, Preset::Raspberry)).collect(),
            controller: 0,
            client_switch,
            // 1 call/s in ON, half the time: 0.5 calls/s per client on average, 8 calls/s
            // from the 16 leaves of ring-tree(4, 2, 2) against the 4 raspberries' ~16.
            pattern: Pattern::OnOff {
                on: 5.0,
                off: 5.0,
                rate: 1.0,
            },
        },
        p,
    )?;
    let (src, dst) = (
        leaves[0][0],
        leaves[ring_size / 2][leaves[ring_size / 2].len() - 1],
    );
    add_host(&mut sc, "tx1".into(), src, Role::TrafficSource);
    add_host(&mut sc, "rx1".into(), dst, Role::TrafficSink);
    sc.background.push(Background {
        source: "tx1".into(),
        sink: "rx1".into(),
        traffic: Traffic::Synthetic {
            rate: 5.0,
            on_off: None,
        },
        start: sc.duration / 3.0,
        stop: Some(2.0 * sc.duration / 3.0),
    });
    Ok(sc)
}

/// An `n` x `m` grid of switches (2nm - n - m links). Clients and their routers on the external
/// nodes (the corners), computers in the core (the inner switches, or all when there is no
/// inside), a NAT gateway on `s1` so programs outside the emulated network reach in.
pub fn grid(n: usize, m: usize, link_params: &LinkParams, p: &Placement) -> Result<Scenario> {
    need(n >= 1 && m >= 1, "grid(n, m): n and m must be at least 1")?;
    let at = |r: usize, c: usize| r * m + c;
    let positions = (0..n * m)
        .map(|i| [(i % m) as f64, (n - 1 - i / m) as f64])
        .collect();
    let mut sc = new_scenario(
        &format!("grid-{n}x{m}"),
        format!(
            "A {n}x{m} grid: clients on the external nodes (corners), computation in the core, a NAT gateway for programs outside the emulated network."
        ),
        n * m,
        positions,
    );
    for r in 0..n {
        for c in 0..m {
            if c + 1 < m {
                link(&mut sc, at(r, c), at(r, c + 1), link_params);
            }
            if r + 1 < n {
                link(&mut sc, at(r, c), at(r + 1, c), link_params);
            }
        }
    }
    let mut corners = vec![at(0, 0), at(0, m - 1), at(n - 1, 0), at(n - 1, m - 1)];
    corners.dedup();
    corners.sort_unstable();
    corners.dedup();
    let inner: Vec<usize> = (1..n.saturating_sub(1))
        .flat_map(|r| (1..m.saturating_sub(1)).map(move |c| at(r, c)))
        .collect();
    let core = if inner.is_empty() {
        (0..n * m).collect()
    } else {
        inner
    };
    let controller = at(n / 2, m / 2);
    populate(
        &mut sc,
        Defaults {
            routers: corners,
            computers: core.iter().map(|&s| (s, Preset::Raspberry)).collect(),
            controller,
            client_switch: HashMap::new(),
            // 2 calls/s per client: 8 calls/s from the 4 corners of grid(4, 4) against the 4
            // raspberries in its core, ~16 calls/s of 1,000-byte calls (50 %).
            pattern: Pattern::Poisson { rate: 2.0 },
        },
        p,
    )?;
    add_host(&mut sc, "nat".into(), 0, Role::Nat);
    Ok(sc)
}

/// The shipped copy of the Array of Things node list (see `data/aot/SOURCE.md`).
pub const AOT_NODES_CSV: &str = lambdaroute_trace::nodes::NODES_CSV;

/// One AoT node kept by [`aot_chicago`]: a site, with the nodes merged into it.
#[derive(Clone, Debug, PartialEq)]
pub struct AotNode {
    /// The node's AoT name (`vsn` column, e.g. `004`).
    pub vsn: String,
    /// The node's id (`node_id` column, as in the digest's `data.csv`).
    pub node_id: String,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Ids of every node of the site: this one, then those merged into it (within 0.010
    /// degrees), in file order.
    pub members: Vec<String>,
}

/// Upstream rule: a node within this distance (degrees) of a kept one is dropped.
pub const AOT_MERGE_DEG: f64 = lambdaroute_trace::nodes::MERGE_DEG;
/// Upstream rule: nodes within this distance (degrees) are linked.
pub const AOT_LINK_DEG: f64 = 0.045;

/// Reads an AoT `nodes.csv` and applies the upstream merge rule, in file order
/// (`lambdaroute_trace::nodes::sites`).
pub fn aot_nodes(csv_text: &str) -> Result<Vec<AotNode>> {
    let list = lambdaroute_trace::NodeList::parse(csv_text, "AoT nodes.csv")
        .map_err(|e| ScenarioError::Generator(e.to_string()))?;
    Ok(lambdaroute_trace::nodes::sites(&list)
        .into_iter()
        .map(|site| {
            let node = &list.nodes[site.node];
            AotNode {
                vsn: node.vsn.clone(),
                node_id: node.node_id.clone(),
                lat: node.lat,
                lon: node.lon,
                members: site
                    .members
                    .iter()
                    .map(|&m| list.nodes[m].node_id.clone())
                    .collect(),
            }
        })
        .collect())
}

fn deg_dist(a: &AotNode, b: &AotNode) -> f64 {
    (a.lat - b.lat).hypot(a.lon - b.lon)
}

/// The Array of Things (Chicago) topology from `nodes.csv`: one switch per kept node at its map
/// position, links between nodes within 0.045 degrees, 10 Mbit/s and 10 ms. The node list has
/// disconnected parts: with `bridge`, each smaller part is joined to the rest by one link between
/// its closest pair of nodes; without it, only the largest part is kept. The description says
/// which. Every node gets a router with its client and a computer; the controller is on the
/// best-connected node.
pub fn aot_chicago(csv_text: &str, bridge: bool, p: &Placement) -> Result<Scenario> {
    let mut nodes = aot_nodes(csv_text)?;
    need(!nodes.is_empty(), "AoT nodes.csv has no nodes")?;
    let params = LinkParams::shaped(10.0, 10.0);
    let build = |nodes: &[AotNode]| -> (Scenario, Vec<(usize, usize)>) {
        let positions = nodes.iter().map(|n| [n.lon, n.lat]).collect();
        let mut sc = new_scenario("aot-chicago", String::new(), nodes.len(), positions);
        let mut pairs = Vec::new();
        for i in 0..nodes.len() {
            for j in i + 1..nodes.len() {
                if deg_dist(&nodes[i], &nodes[j]) < AOT_LINK_DEG {
                    link(&mut sc, i, j, &params);
                    pairs.push((i, j));
                }
            }
        }
        (sc, pairs)
    };
    let (mut sc, _) = build(&nodes);
    let parts = components(&sc);
    let sizes: Vec<String> = parts.iter().map(|c| c.len().to_string()).collect();
    let note = if parts.len() == 1 {
        "connected".to_string()
    } else if bridge {
        // Join every smaller part to the growing main part through its closest pair.
        let parts_idx: Vec<Vec<usize>> = parts
            .iter()
            .map(|p| {
                p.iter()
                    .map(|name| sc.switch_index(name).expect("known switch"))
                    .collect()
            })
            .collect();
        let mut main: Vec<usize> = parts_idx[0].clone();
        let mut added = 0;
        for part in &parts_idx[1..] {
            let part = part.clone();
            let (a, b) = part
                .iter()
                .flat_map(|&a| main.iter().map(move |&b| (a, b)))
                .min_by(|x, y| {
                    deg_dist(&nodes[x.0], &nodes[x.1])
                        .total_cmp(&deg_dist(&nodes[y.0], &nodes[y.1]))
                })
                .expect("both parts are non-empty");
            link(&mut sc, a.min(b), a.max(b), &params);
            added += 1;
            main.extend(part);
        }
        format!(
            "{} disconnected parts (sizes {}) joined by {added} bridge links between their closest nodes",
            parts.len(),
            sizes.join(", ")
        )
    } else {
        let keep: Vec<usize> = parts[0]
            .iter()
            .map(|n| sc.switch_index(n).expect("known"))
            .collect();
        let mut keep_sorted = keep.clone();
        keep_sorted.sort_unstable();
        nodes = keep_sorted.iter().map(|&i| nodes[i].clone()).collect();
        sc = build(&nodes).0;
        format!(
            "{} disconnected parts (sizes {}); only the largest is kept",
            parts.len(),
            sizes.join(", ")
        )
    };
    sc.coordinates = Coordinates::Geo;
    sc.description = format!(
        "Array of Things, Chicago: {} nodes from nodes.csv after dropping nodes within {AOT_MERGE_DEG} degrees of another; links between nodes within {AOT_LINK_DEG} degrees, 10 Mbit/s, 10 ms; {note}.",
        nodes.len()
    );
    let n = nodes.len();
    let mut degree = vec![0usize; n];
    for l in &sc.links {
        degree[sc.switch_index(&l.a).expect("known")] += 1;
        degree[sc.switch_index(&l.b).expect("known")] += 1;
    }
    let controller = (0..n)
        .max_by_key(|&i| (degree[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    sc.control.installer = Installer::TwoTier {
        objective: Objective::MinMax,
    };
    populate(
        &mut sc,
        Defaults {
            routers: (0..n).collect(),
            computers: (0..n).map(|i| (i, Preset::Raspberry)).collect(),
            controller,
            client_switch: HashMap::new(),
            pattern: Pattern::Poisson { rate: 1.0 },
        },
        p,
    )?;
    Ok(sc)
}

/// Imports a BRITE topology (`Nodes:` and `Edges:` sections; edge delay in ms and bandwidth in
/// Mbit/s). Node `i` becomes switch `s<i+1>` at its (x, y). Routers (with their clients) go on
/// the least-connected nodes (a quarter of them, at least one), a computer on every node, the
/// controller on the best-connected one. `file` names the input in error messages.
pub fn brite(text: &str, file: &str, p: &Placement) -> Result<Scenario> {
    let err = |line: usize, msg: String| ScenarioError::Generator(format!("{file}:{line}: {msg}"));
    let mut section = "";
    let mut ids: HashMap<i64, usize> = HashMap::new();
    let mut positions: Vec<[f64; 2]> = Vec::new();
    let mut edges: Vec<(usize, usize, f64, f64, usize)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("Nodes:") {
            section = "nodes";
            continue;
        }
        if line.starts_with("Edges:") {
            section = "edges";
            continue;
        }
        if line.starts_with("Topology:") || line.starts_with("Model") {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        match section {
            "nodes" => {
                if f.len() < 3 {
                    return Err(err(line_no, "a node line needs `id x y ...`".into()));
                }
                let id: i64 = f[0]
                    .parse()
                    .map_err(|_| err(line_no, format!("bad node id `{}`", f[0])))?;
                let x: f64 = f[1]
                    .parse()
                    .map_err(|_| err(line_no, format!("bad x `{}`", f[1])))?;
                let y: f64 = f[2]
                    .parse()
                    .map_err(|_| err(line_no, format!("bad y `{}`", f[2])))?;
                if ids.insert(id, positions.len()).is_some() {
                    return Err(err(line_no, format!("duplicate node id {id}")));
                }
                positions.push([x, y]);
            }
            "edges" => {
                if f.len() < 6 {
                    return Err(err(
                        line_no,
                        "an edge line needs `id from to length delay bandwidth ...`".into(),
                    ));
                }
                let end = |s: &str| -> Result<usize> {
                    let id: i64 = s
                        .parse()
                        .map_err(|_| err(line_no, format!("bad node id `{s}`")))?;
                    ids.get(&id)
                        .copied()
                        .ok_or_else(|| err(line_no, format!("edge to unknown node {id}")))
                };
                let (a, b) = (end(f[1])?, end(f[2])?);
                let delay: f64 = f[4]
                    .parse()
                    .map_err(|_| err(line_no, format!("bad delay `{}`", f[4])))?;
                let bw: f64 = f[5]
                    .parse()
                    .map_err(|_| err(line_no, format!("bad bandwidth `{}`", f[5])))?;
                if a != b {
                    edges.push((a, b, delay.max(0.0), bw, line_no));
                }
            }
            _ => return Err(err(line_no, "expected a `Nodes:` section first".into())),
        }
    }
    need(
        !positions.is_empty(),
        &format!("{file}: no nodes (expected `Nodes: ( n )` and node lines)"),
    )?;
    let n = positions.len();
    let stem = std::path::Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("brite");
    let mut sc = new_scenario(
        &format!("brite-{stem}"),
        format!(
            "Imported from the BRITE file {file}: {n} nodes, {} edges.",
            edges.len()
        ),
        n,
        positions,
    );
    let mut seen = std::collections::HashSet::new();
    let mut degree = vec![0usize; n];
    for (a, b, delay, bw, _) in edges {
        if !seen.insert((a.min(b), a.max(b))) {
            continue;
        }
        degree[a] += 1;
        degree[b] += 1;
        let params = LinkParams {
            bw: (bw > 0.0).then_some(bw),
            delay,
            ..LinkParams::default()
        };
        link(&mut sc, a, b, &params);
    }
    let parts = components(&sc);
    if parts.len() > 1 {
        return Err(ScenarioError::Generator(format!(
            "{file}: the topology has {} disconnected parts (e.g. {} cannot reach {})",
            parts.len(),
            parts[1][0],
            parts[0][0]
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (degree[i], i));
    let mut routers: Vec<usize> = order[..n.div_ceil(4)].to_vec();
    routers.sort_unstable();
    let controller = *order.last().expect("non-empty");
    populate(
        &mut sc,
        Defaults {
            routers,
            computers: (0..n).map(|i| (i, Preset::Raspberry)).collect(),
            controller,
            client_switch: HashMap::new(),
            pattern: Pattern::Poisson { rate: 10.0 },
        },
        p,
    )?;
    Ok(sc)
}
