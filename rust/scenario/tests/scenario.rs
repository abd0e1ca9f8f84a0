//! Generators, flows, distances and the YAML round trip.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use lambdaroute_scenario::generators::{self, Placement};
use lambdaroute_scenario::*;

fn ideal() -> LinkParams {
    LinkParams::default()
}

fn all_generated() -> Vec<Scenario> {
    let p = Placement::default();
    let brite = include_str!("brite/small.brite");
    vec![
        generators::line(5, &LinkParams::shaped(10.0, 5.0), &p).unwrap(),
        generators::pods(3, &ideal(), &p).unwrap(),
        generators::ring_tree(4, 2, 2, &ideal(), &p).unwrap(),
        generators::grid(4, 4, &ideal(), &p).unwrap(),
        generators::aot_chicago(generators::AOT_NODES_CSV, true, &p).unwrap(),
        generators::brite(brite, "small.brite", &p).unwrap(),
        {
            let mut sc = generators::grid(3, 5, &LinkParams::shaped(10.0, 1.0), &p).unwrap();
            sc.links[0].params.delay = 50.0;
            sc.control.routing = Routing::Delay;
            sc
        },
    ]
}

#[test]
fn generators_have_the_papers_switch_and_link_counts() {
    let p = Placement::default();
    let line = generators::line(5, &ideal(), &p).unwrap();
    assert_eq!((line.switches.len(), line.links.len()), (5, 4));
    let pods = generators::pods(3, &ideal(), &p).unwrap();
    assert_eq!(pods.switches.len(), 12);
    assert_eq!(pods.links.len(), 3 * 3 + 3 + 3);
    assert_eq!(
        generators::pods(4, &ideal(), &p).unwrap().switches.len(),
        20
    );
    let grid = generators::grid(4, 4, &ideal(), &p).unwrap();
    assert_eq!((grid.switches.len(), grid.links.len()), (16, 24));
    assert_eq!(grid.hosts_with(RoleKind::Nat).count(), 1);
    assert_eq!(
        grid.hosts_with(RoleKind::Computer).count(),
        4,
        "computers in the 2x2 core"
    );
    let rt = generators::ring_tree(4, 2, 2, &ideal(), &p).unwrap();
    assert_eq!(rt.switches.len(), 4 * (1 + 2 + 4));
    assert_eq!(rt.links.len(), 4 + 4 * 6);
    assert_eq!(rt.background.len(), 1);
    let brite = generators::brite(include_str!("brite/small.brite"), "small.brite", &p).unwrap();
    assert_eq!((brite.switches.len(), brite.links.len()), (10, 18));
    assert_eq!(
        brite.links[0].params,
        LinkParams {
            bw: Some(10.0),
            delay: 0.93,
            ..LinkParams::default()
        }
    );
}

#[test]
fn placement_overrides_the_default_roles() {
    let p = Placement {
        routers: Some(vec!["s2".into()]),
        computers: Some(vec!["s3".into(), "s4".into()]),
        controller: Some("s1".into()),
        preset: Some(Preset::IntelServer),
        clients_per_router: Some(3),
        computers_per_switch: Some(2),
        endpoints_per_computer: Some(5),
    };
    let sc = generators::line(4, &ideal(), &p).unwrap();
    assert_eq!(
        sc.hosts_with(RoleKind::Router)
            .map(|h| h.switch.as_str())
            .collect::<Vec<_>>(),
        ["s2"]
    );
    assert_eq!(sc.hosts_with(RoleKind::Client).count(), 3);
    assert_eq!(sc.hosts_with(RoleKind::Computer).count(), 4);
    assert!(sc.hosts_with(RoleKind::Computer).all(|h| h.role
        == Role::Computer(Computer {
            endpoints: 5,
            ..Computer::preset(Preset::IntelServer)
        })));
    // Written and read back, the endpoints stay.
    let again = Scenario::from_yaml(&sc.to_yaml(), "again.yaml").unwrap();
    assert_eq!(again, sc);
    let bad = Placement {
        routers: Some(vec!["s99".into()]),
        ..Placement::default()
    };
    let err = generators::line(4, &ideal(), &bad).unwrap_err();
    assert!(err.to_string().contains("unknown switch `s99`"), "{err}");
}

#[test]
fn aot_components_are_reported_and_bridged_or_dropped() {
    let p = Placement::default();
    let nodes = generators::aot_nodes(generators::AOT_NODES_CSV).unwrap();
    assert_eq!(
        nodes.len(),
        71,
        "126 nodes, those within 0.010 degrees of another dropped"
    );
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            assert!((a.lat - b.lat).hypot(a.lon - b.lon) >= generators::AOT_MERGE_DEG);
        }
    }
    let bridged = generators::aot_chicago(generators::AOT_NODES_CSV, true, &p).unwrap();
    assert_eq!(network::components(&bridged).len(), 1);
    assert!(
        bridged.description.contains("3 disconnected parts"),
        "{}",
        bridged.description
    );
    assert_eq!(bridged.links.len(), 264 + 2);
    assert!(
        bridged
            .links
            .iter()
            .all(|l| l.params == LinkParams::shaped(10.0, 10.0))
    );
    assert_eq!(bridged.coordinates, Coordinates::Geo);
    let largest = generators::aot_chicago(generators::AOT_NODES_CSV, false, &p).unwrap();
    assert_eq!(largest.switches.len(), 68);
    assert_eq!(network::components(&largest).len(), 1);
}

/// Follows the flow entries from `src`'s switch; returns the host the packet is delivered to.
fn walk(
    sc: &Scenario,
    net: &Network,
    flows: &[Vec<FlowEntry>],
    src: usize,
    dst: usize,
) -> Result<String, String> {
    let ip = net.ips[dst];
    let mut s = net.host_switch(src);
    let mut visited = HashSet::new();
    loop {
        if !visited.insert(s) {
            return Err(format!("loop at {}", sc.switches[s].name));
        }
        for m in [Match::Ip(ip), Match::Arp(ip)] {
            assert!(
                flows[s].iter().any(|f| f.matches == m),
                "{} lacks {m:?}",
                sc.switches[s].name
            );
        }
        let entry = flows[s]
            .iter()
            .find(|f| f.matches == Match::Ip(ip))
            .unwrap();
        let arp = flows[s]
            .iter()
            .find(|f| f.matches == Match::Arp(ip))
            .unwrap();
        assert_eq!(entry.out_port, arp.out_port, "ARP follows IP");
        let port = net.ports[s]
            .iter()
            .find(|p| p.number == entry.out_port)
            .ok_or("no such port")?;
        match port.peer {
            Peer::Host { host } => return Ok(sc.hosts[host].name.clone()),
            Peer::Link { switch, .. } => s = switch,
        }
    }
}

#[test]
fn walking_the_static_flows_reaches_every_host_without_loops() {
    for sc in all_generated() {
        let net = sc.network();
        let flows: Vec<Vec<FlowEntry>> =
            (0..sc.switches.len()).map(|s| net.flows(&sc, s)).collect();
        for a in 0..sc.hosts.len() {
            for b in 0..sc.hosts.len() {
                let got = walk(&sc, &net, &flows, a, b).unwrap_or_else(|e| {
                    panic!(
                        "{}: {} -> {}: {e}",
                        sc.name, sc.hosts[a].name, sc.hosts[b].name
                    )
                });
                assert_eq!(got, sc.hosts[b].name, "{}", sc.name);
            }
        }
    }
}

#[test]
fn delay_routing_avoids_the_slow_link() {
    let mut sc =
        generators::grid(2, 2, &LinkParams::shaped(10.0, 1.0), &Placement::default()).unwrap();
    // s1-s2 is links[0]; make it slow, so s1 reaches s2 through s3 and s4.
    sc.links[0].params.delay = 50.0;
    let by = |sc: &Scenario| {
        let net = sc.network();
        let (a, b) = (sc.host_index("r1").unwrap(), sc.host_index("r2").unwrap());
        net.path(a, b).unwrap().len()
    };
    assert_eq!(by(&sc), 1);
    sc.control.routing = Routing::Delay;
    assert_eq!(by(&sc), 3);
}

fn bfs_hops(sc: &Scenario, from: &str) -> HashMap<String, u32> {
    let mut adj: HashMap<&str, Vec<&str>> = HashMap::new();
    for l in &sc.links {
        adj.entry(&l.a).or_default().push(&l.b);
        adj.entry(&l.b).or_default().push(&l.a);
    }
    for h in &sc.hosts {
        adj.entry(&h.name).or_default().push(&h.switch);
        adj.entry(&h.switch).or_default().push(&h.name);
    }
    let mut dist = HashMap::from([(from.to_string(), 0)]);
    let mut queue = VecDeque::from([from]);
    while let Some(u) = queue.pop_front() {
        let d = dist[u];
        for &v in adj.get(u).into_iter().flatten() {
            if !dist.contains_key(v) {
                dist.insert(v.to_string(), d + 1);
                queue.push_back(v);
            }
        }
    }
    dist
}

#[test]
fn distance_matrix_equals_bfs_hop_counts() {
    for sc in all_generated() {
        let net = sc.network();
        let m = net.distance_matrix(&sc);
        let expected: usize = sc
            .hosts
            .iter()
            .filter(|h| matches!(h.role, Role::Router | Role::Computer(_)))
            .count();
        assert_eq!(m.hosts.len(), expected);
        for (i, a) in m.hosts.iter().enumerate() {
            let bfs = bfs_hops(&sc, a);
            for (j, b) in m.hosts.iter().enumerate() {
                assert_eq!(m.hops[i][j], bfs[b], "{}: {a} -> {b}", sc.name);
            }
        }
    }
}

#[test]
fn router_computer_paths_follow_the_flows() {
    for sc in all_generated() {
        let net = sc.network();
        let paths = net.router_computer_paths(&sc);
        let routers = sc.hosts_with(RoleKind::Router).count();
        let computers = sc.hosts_with(RoleKind::Computer).count();
        assert_eq!(paths.len(), routers * computers);
        let names: HashSet<String> = sc.links.iter().map(Link::name).collect();
        for (r, c, links) in paths {
            let (ri, ci) = (sc.host_index(&r).unwrap(), sc.host_index(&c).unwrap());
            assert!(links.iter().all(|l| names.contains(l)));
            if sc.control.routing == Routing::Hops {
                let bfs = bfs_hops(&sc, &r);
                assert_eq!(links.len() as u32 + 2, bfs[&c], "{}: {r} -> {c}", sc.name);
            }
            assert_eq!(net.path(ri, ci).unwrap().len(), links.len());
        }
    }
}

#[test]
fn addresses_are_unique_and_fixed_ones_are_kept() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid/full.yaml"),
    )
    .unwrap();
    let sc = Scenario::from_yaml(&text, "full.yaml").unwrap();
    let net = sc.network();
    let c2 = sc.host_index("c2").unwrap();
    assert_eq!(net.ips[c2].to_string(), "10.0.1.2");
    assert_eq!(mac_to_string(&net.macs[c2]), "02:00:00:00:01:02");
    assert_eq!(net.ips[0].to_string(), "10.0.0.1");
    assert_eq!(mac_to_string(&net.macs[0]), "00:00:00:00:00:01");
    for sc in all_generated() {
        let net = sc.network();
        assert_eq!(net.ips.iter().collect::<HashSet<_>>().len(), sc.hosts.len());
        assert_eq!(
            net.macs.iter().collect::<HashSet<_>>().len(),
            sc.hosts.len()
        );
    }
}

#[test]
fn events_apply_in_time_order() {
    let text = "duration: 30\nswitches: [{name: s1}, {name: s2}]\nlinks: [{a: s1, b: s2}]\n\
                events:\n  - {at: 9, kind: link-up, link: s1-s2}\n  - {at: 3, kind: link-down, link: s2-s1}\n";
    let sc = Scenario::from_yaml(text, "order.yaml").unwrap();
    let kinds: Vec<(f64, &str)> = sc.events.iter().map(|e| (e.at, e.action.kind())).collect();
    assert_eq!(kinds, vec![(3.0, "link-down"), (9.0, "link-up")]);
    assert_eq!(sc.events[0].action.link(), Some("s1-s2"));
}

#[test]
fn computer_load_events_read_write_and_keep_their_place_in_time() {
    let text = "duration: 30\nswitches: [{name: s1}]\nhosts: [{name: c1, switch: s1, role: computer}]\n\
                events:\n  - {at: 9, kind: computer-load, host: c1, load: 0}\n  - {at: 3, kind: computer-load, host: c1, load: 0.5}\n";
    let sc = Scenario::from_yaml(text, "load.yaml").unwrap();
    assert_eq!(
        sc.events,
        vec![
            Event {
                at: 3.0,
                action: Action::ComputerLoad {
                    host: "c1".into(),
                    load: 0.5
                }
            },
            Event {
                at: 9.0,
                action: Action::ComputerLoad {
                    host: "c1".into(),
                    load: 0.0
                }
            },
        ]
    );
    assert!(Action::KINDS.contains(&"computer-load"));
    let written = sc.to_yaml();
    assert!(
        written.contains("kind: computer-load") && written.contains("load: 0.5"),
        "{written}"
    );
    assert_eq!(Scenario::from_yaml(&written, "again.yaml").unwrap(), sc);
}

#[test]
fn freeze_and_thaw_events_read_write_and_pair_up() {
    let text = "duration: 30\nswitches: [{name: s1}]\nhosts: [{name: c1, switch: s1, role: computer}]\n\
                events:\n  - {at: 12, kind: computer-thaw, host: c1}\n  - {at: 4, kind: computer-freeze, host: c1}\n  \
                - {at: 20, kind: computer-stop, host: c1}\n";
    let sc = Scenario::from_yaml(text, "freeze.yaml").unwrap();
    let kinds: Vec<(f64, &str, Option<&str>)> = sc
        .events
        .iter()
        .map(|e| (e.at, e.action.kind(), e.action.host()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (4.0, "computer-freeze", Some("c1")),
            (12.0, "computer-thaw", Some("c1")),
            (20.0, "computer-stop", Some("c1")),
        ]
    );
    assert!(Action::KINDS.contains(&"computer-freeze") && Action::KINDS.contains(&"computer-thaw"));
    let written = sc.to_yaml();
    assert!(written.contains("kind: computer-freeze"), "{written}");
    assert_eq!(Scenario::from_yaml(&written, "again.yaml").unwrap(), sc);
    // Frozen: no second freeze, no speed change; a stopped computer does not freeze.
    for (events, fragment) in [
        (
            "[{at: 1, kind: computer-freeze, host: c1}, {at: 2, kind: computer-freeze, host: c1}]",
            "already frozen at 2 s",
        ),
        (
            "[{at: 1, kind: computer-freeze, host: c1}, {at: 2, kind: computer-speed, host: c1, factor: 2}]",
            "expected a `computer-thaw` before changing its speed",
        ),
        (
            "[{at: 1, kind: computer-stop, host: c1}, {at: 2, kind: computer-freeze, host: c1}]",
            "expected a `computer-start` before freezing it",
        ),
    ] {
        let text = format!(
            "duration: 30\nswitches: [{{name: s1}}]\nhosts: [{{name: c1, switch: s1, role: computer}}]\nevents: {events}\n"
        );
        let error = Scenario::from_yaml(&text, "bad.yaml")
            .unwrap_err()
            .to_string();
        assert!(error.contains(fragment), "{error}");
    }
}

#[test]
fn fallback_routers_read_write_and_default_to_none() {
    let base = "duration: 30\nswitches: [{name: s1}]\n\
                hosts: [{name: r1, switch: s1, role: router}, {name: r2, switch: s1, role: router},\n\
                        {name: r3, switch: s1, role: router}, {name: u1, switch: s1, role: client}]\n";
    for (fallback, expected) in [
        ("", vec![]),
        (", fallback: r2", vec!["r2"]),
        (", fallback: [r3, r2]", vec!["r3", "r2"]),
    ] {
        let text = format!(
            "{base}workloads: [{{client: u1, router: r1{fallback}, lambda: clambda0, pattern: poisson, rate: 1}}]\n"
        );
        let sc = Scenario::from_yaml(&text, "fallback.yaml").unwrap();
        assert_eq!(sc.workloads[0].fallback, expected);
        let written = sc.to_yaml();
        assert_eq!(
            Scenario::from_yaml(&written, "again.yaml").unwrap(),
            sc,
            "{written}"
        );
    }
    let text = format!(
        "{base}workloads: [{{client: u1, router: r1, fallback: [r2, r2], lambda: clambda0, pattern: poisson, rate: 1}}]\n"
    );
    let error = Scenario::from_yaml(&text, "twice.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("workloads[0].fallback[1]: router `r2` is listed twice"),
        "{error}"
    );
    let text = format!(
        "{base}workloads: [{{client: u1, router: r1, fallback: [], lambda: clambda0, pattern: poisson, rate: 1}}]\n"
    );
    let error = Scenario::from_yaml(&text, "empty.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("workloads[0].fallback: expected a router"),
        "{error}"
    );
}

#[test]
fn yaml_round_trip_is_stable() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid/full.yaml"),
    )
    .unwrap();
    let mut scenarios = vec![Scenario::from_yaml(&text, "full.yaml").unwrap()];
    scenarios.extend(all_generated());
    for sc in scenarios {
        let first = sc.to_yaml();
        let back = Scenario::from_yaml(&first, "generated.yaml")
            .unwrap_or_else(|e| panic!("{e}\n{first}"));
        assert_eq!(back, sc, "{}", sc.name);
        assert_eq!(back.to_yaml(), first, "{}", sc.name);
    }
}

#[test]
fn the_full_example_reads_every_section() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid/full.yaml"),
    )
    .unwrap();
    let sc = Scenario::from_yaml(&text, "full.yaml").unwrap();
    assert_eq!(sc.duration, 120.0);
    assert_eq!(
        sc.control.installer,
        Installer::TwoTier {
            objective: Objective::MinMax
        }
    );
    assert_eq!(sc.workloads[0].pattern, Pattern::Poisson { rate: 20.0 });
    assert_eq!(
        sc.workloads[0].size,
        Size::Uniform {
            min: 100,
            max: 10000
        }
    );
    assert_eq!(
        sc.background[0].traffic,
        Traffic::Synthetic {
            rate: 8.0,
            on_off: Some((10.0, 20.0))
        }
    );
    assert_eq!(sc.hosts[1].link, LinkParams::shaped(100.0, 1.0));
    assert_eq!(sc.events.len(), 8);
    assert_eq!(
        sc.events[0],
        Event {
            at: 10.0,
            action: Action::LinkSet {
                link: "s1-s2".into(),
                bw: Some(5.0),
                delay: Some(20.0)
            }
        }
    );
    // `s3-s2` names the link `s2-s3`.
    assert_eq!(
        sc.events[2].action,
        Action::LinkUp {
            link: "s2-s3".into()
        }
    );
    assert_eq!(
        sc.events[3].action,
        Action::ComputerSpeed {
            host: "c1".into(),
            speed: Speed::Factor(0.5)
        }
    );
    assert_eq!(
        sc.events[4].action,
        Action::ComputerLoad {
            host: "c1".into(),
            load: 0.3
        }
    );
    assert_eq!(sc.events[4].action.host(), Some("c1"));
    let flows = sc.network().flows(&sc, 0);
    assert_eq!(flows.len(), 2 * sc.hosts.len());
    assert!(
        flows[0]
            .to_ofctl()
            .starts_with("priority=100,ip,nw_dst=10.0.0.1,actions=output:")
    );
}

#[test]
fn shipped_topologies_load_and_match_their_generators() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../topologies");
    let p = Placement::default();
    let expected = [
        (
            "line.yaml",
            generators::line(5, &LinkParams::shaped(10.0, 5.0), &p).unwrap(),
        ),
        (
            "pods.yaml",
            generators::pods(3, &LinkParams::shaped(100.0, 1.0), &p).unwrap(),
        ),
        (
            "ring-tree.yaml",
            generators::ring_tree(4, 2, 2, &LinkParams::shaped(100.0, 1.0), &p).unwrap(),
        ),
        (
            "grid.yaml",
            generators::grid(4, 4, &LinkParams::shaped(100.0, 1.0), &p).unwrap(),
        ),
        (
            "aot-chicago.yaml",
            generators::aot_chicago(generators::AOT_NODES_CSV, true, &p).unwrap(),
        ),
    ];
    for (file, sc) in expected {
        let loaded = Scenario::load(dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            loaded, sc,
            "{file} is stale: regenerate it with `make topologies`"
        );
        // The text too: canonical names, as the writer writes them.
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            text == sc.to_yaml(),
            "{file} is not as written now: regenerate it with `make topologies`"
        );
    }
}

// ===== control: core's vocabulary =====

fn with_control(control: &str) -> Result<Scenario> {
    Scenario::from_yaml(
        &format!("control:\n{control}\nswitches: [{{name: s1}}]\n"),
        "control.yaml",
    )
}

#[test]
fn estimators_are_cores_and_read_in_the_old_and_new_forms() {
    use std::time::Duration;
    let peak = with_control("  policy: rr\n  estimator: peak-ewma\n  decay: 2.5").unwrap();
    assert_eq!(
        peak.control.estimator,
        EstimatorKind::PeakEwma {
            decay: Duration::from_millis(2500)
        }
    );
    let old =
        with_control("  policy: round-robin\n  estimator: periodic\n  period: 2\n  stat: max")
            .unwrap();
    assert_eq!(old.control.policy, PolicyKind::RoundRobin);
    assert_eq!(
        old.control.estimator,
        EstimatorKind::Periodic {
            period: Duration::from_secs(2),
            stat: Stat::Max
        }
    );
    let compact = with_control("  estimator: periodic:2:max").unwrap();
    assert_eq!(compact.control.estimator, old.control.estimator);
    let ewma = with_control("  policy: least-impedance\n  estimator: ewma\n  alpha: 0.5").unwrap();
    assert_eq!(ewma.control.policy, PolicyKind::LeastImpedance);
    assert_eq!(ewma.control.estimator, EstimatorKind::Ewma { alpha: 0.5 });
}

#[test]
fn without_an_estimator_the_policy_chooses_its_default() {
    for policy in PolicyKind::ALL {
        let sc = with_control(&format!("  policy: {policy}")).unwrap();
        assert_eq!(sc.control.policy, policy);
        assert_eq!(sc.control.estimator, policy.default_estimator());
    }
    let p2c = with_control("  policy: power-of-two\n  decay: 3").unwrap();
    assert_eq!(
        p2c.control.estimator,
        EstimatorKind::PeakEwma {
            decay: std::time::Duration::from_secs(3)
        }
    );
}

#[test]
fn control_is_written_with_canonical_names_and_reads_back() {
    let sc = with_control("  policy: power-of-two\n  estimator: peak-ewma:4").unwrap();
    let text = sc.to_yaml();
    assert!(text.contains("policy: p2c\n"), "{text}");
    assert!(text.contains("estimator: peak-ewma\n"), "{text}");
    assert!(text.contains("decay: 4"), "{text}");
    assert_eq!(Scenario::from_yaml(&text, "back.yaml").unwrap(), sc);
    let pf = with_control("  policy: proportional-fairness:0.5:2").unwrap();
    let text = pf.to_yaml();
    assert!(text.contains("policy: \"pf:0.5:2\"\n"), "{text}");
    assert_eq!(Scenario::from_yaml(&text, "back.yaml").unwrap(), pf);
    let rr = with_control("  policy: round-robin").unwrap().to_yaml();
    assert!(
        rr.contains("policy: rr\n") && rr.contains("estimator: ewma\n"),
        "{rr}"
    );
}

#[test]
fn unknown_policy_lists_cores_policies() {
    let err = with_control("  policy: fastest").unwrap_err().to_string();
    for policy in PolicyKind::ALL {
        assert!(err.contains(&format!("`{policy}`")), "{err}");
    }
}

#[test]
fn nested_aliases_are_rejected_quickly() {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text.push_str("switches: [*a9]\n");
    let start = std::time::Instant::now();
    let err = Scenario::from_yaml(&text, "laughs.yaml")
        .unwrap_err()
        .to_string();
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    assert!(err.starts_with("laughs.yaml:"), "{err}");
    assert!(err.contains("more than 250000 nodes"), "{err}");
    // Too deep a nesting is refused by the parser's budget.
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let err = Scenario::from_yaml(&deep, "deep.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits of a scenario file"), "{err}");
}

#[test]
fn real_computers_read_and_write_back() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid/external.yaml"),
    )
    .unwrap();
    let sc = Scenario::from_yaml(&text, "external.yaml").unwrap();
    let Role::Computer(face) = &sc.host("f1").unwrap().role else {
        panic!("f1 is a computer")
    };
    assert_eq!(face.executor, Executor::Face);
    assert_eq!(sc.external.len(), 2);
    assert_eq!(
        (sc.external[0].name.as_str(), sc.external[0].port),
        ("face", 10100)
    );
    assert_eq!(sc.external[0].computer.executor, Executor::Face);
    assert_eq!(sc.external[1].port, 12000);
    assert_eq!(sc.external[1].computer.preset, Preset::IntelServer);
    assert_eq!(
        sc.workloads[0].images,
        ["../../../../data/images/astronaut.jpg"]
    );
    assert_eq!(sc.workloads[0].eyes.as_deref(), Some("eyerec0"));
    assert!(sc.workloads[1].images.is_empty());
    let first = sc.to_yaml();
    let back =
        Scenario::from_yaml(&first, "written.yaml").unwrap_or_else(|e| panic!("{e}\n{first}"));
    assert_eq!(back, sc);
    assert_eq!(back.to_yaml(), first);
}

#[test]
fn a_workload_calls_through_grpc_or_the_openwhisk_api() {
    let text = "switches: [{name: s1}]\nhosts:\n  - {name: r1, switch: s1, role: router}\n  - {name: u1, switch: s1, role: client}\n  - {name: c1, switch: s1, role: computer}\nworkloads:\n  - {client: u1, router: r1, lambda: clambda0, pattern: poisson, rate: 5, api: openwhisk}\n  - {client: u1, router: r1, lambda: clambda0, pattern: poisson, rate: 5}\n";
    let sc = Scenario::from_yaml(text, "api.yaml").unwrap();
    assert_eq!(sc.workloads[0].api, Api::OpenWhisk);
    assert_eq!(sc.workloads[1].api, Api::Grpc);
    let written = sc.to_yaml();
    assert!(written.contains("api: openwhisk"), "{written}");
    assert_eq!(Scenario::from_yaml(&written, "again.yaml").unwrap(), sc);
    let error = Scenario::from_yaml(&text.replace("api: openwhisk", "api: rest"), "bad.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("bad.yaml:7:") && error.contains("`openwhisk`"),
        "{error}"
    );
}
