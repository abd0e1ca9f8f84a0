//! `pattern: aot` workloads: the file format, and which AoT nodes feed which client.

use std::collections::HashMap;
use std::path::Path;

use lambdaroute_scenario::replay::{aot_sites, replay_passes};
use lambdaroute_scenario::*;
use lambdaroute_trace::{NodeList, NodeSet, Payload};

fn shipped_aot() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../topologies/aot-chicago.yaml");
    Scenario::load(path).unwrap()
}

#[test]
fn every_shipped_node_maps_to_exactly_one_site_of_the_shipped_scenario() {
    let sc = shipped_aot();
    let list = NodeList::shipped();
    let sites = aot_sites(&sc, &list);
    assert_eq!(sites.len(), 71);
    assert!(sites.iter().all(Option::is_some), "a switch is no site");
    let mut site_of: HashMap<&str, usize> = HashMap::new();
    for (s, members) in sites.iter().enumerate() {
        let members = members.as_ref().unwrap();
        let [lon, lat] = sc.switches[s].position.unwrap();
        // The kept node first, standing where the switch stands.
        let kept = &list.nodes[list.index(&members[0]).unwrap()];
        assert_eq!((kept.lon, kept.lat), (lon, lat));
        for id in members {
            let node = &list.nodes[list.index(id).unwrap()];
            assert!(
                node.degrees_to(kept) < 0.010,
                "{id} is {} degrees from its site",
                node.degrees_to(kept)
            );
            assert!(site_of.insert(id, s).is_none(), "{id} is in two sites");
        }
    }
    assert_eq!(site_of.len(), 126, "every node of nodes.csv has a site");
    // Each site's client is on its switch.
    for (s, sw) in sc.switches.iter().enumerate() {
        let clients: Vec<_> = sc
            .hosts_with(RoleKind::Client)
            .filter(|h| h.switch == sw.name)
            .collect();
        assert_eq!(clients.len(), 1, "site {s} has {} clients", clients.len());
    }
}

fn with_aot_workloads(sc: &Scenario, text: &str) -> Result<Scenario> {
    let mut yaml = sc.to_yaml();
    let at = yaml
        .find("workloads:")
        .expect("the AoT scenario has workloads");
    yaml.truncate(at);
    yaml.push_str(text);
    Scenario::from_yaml(&yaml, "aot-replay.yaml")
}

const TWO: &str = r#"workloads:
  - client: u1
    router: r1
    lambda: clambda0
    pattern: aot
    trace: ../traces/aot/sample.csv.gz
    window: {start: "2018/09/03 12:00:00", stop: 3600}
    speedup: 60
    group: subsystem
    lambdas: {chemsense: glambda0, metsense.tsys01: clambda0}
    sensors: [metsense, chemsense.co]
    payload: {per-row: 120}
    start: 2
    stop: 32
  - client: u5
    router: r5
    lambda: clambda0
    pattern: aot
    trace: ../traces/aot/sample.csv.gz
    window: {start: "2018/09/03 12:00:00", stop: 3600}
    speedup: 30
    size: {min: 100, max: 200}
"#;

#[test]
fn aot_workloads_read_write_and_read_back_the_same() {
    let sc = with_aot_workloads(&shipped_aot(), TWO).unwrap();
    let Pattern::Aot(aot) = &sc.workloads[0].pattern else {
        panic!("not aot");
    };
    assert_eq!(aot.speedup, 60.0);
    assert_eq!(aot.group, Group::Subsystem);
    assert_eq!(aot.lambdas.len(), 2);
    assert_eq!(aot.lambdas[1].selector.to_string(), "metsense.tsys01");
    assert_eq!(aot.sensors[1].to_string(), "chemsense.co");
    assert_eq!(aot.payload, AotPayload::PerRow(120));
    assert_eq!(
        aot.window.start,
        Some(TimeSpec::At(
            Timestamp::parse("2018/09/03 12:00:00").unwrap()
        ))
    );
    assert_eq!(aot.window.stop, Some(TimeSpec::After(3600.0)));
    let again = Scenario::from_yaml(&sc.to_yaml(), "again.yaml").unwrap();
    assert_eq!(again, sc);
    assert_eq!(again.to_yaml(), sc.to_yaml());
}

#[test]
fn workloads_on_one_trace_share_a_pass_and_replay_their_sites_nodes() {
    let sc = with_aot_workloads(&shipped_aot(), TWO).unwrap();
    let passes = replay_passes(&sc, &NodeList::shipped()).unwrap();
    assert_eq!(passes.len(), 1);
    let pass = &passes[0];
    assert_eq!(pass.workloads, [0, 1]);
    let sites = aot_sites(&sc, &NodeList::shipped());
    let u1 = sc.switch_index(&sc.host("u1").unwrap().switch).unwrap();
    assert_eq!(
        pass.targets[0].nodes,
        NodeSet::Only(sites[u1].clone().unwrap())
    );
    let first = &pass.targets[0].config;
    assert_eq!(first.limit, Some(30.0), "from start 2 to stop 32");
    assert_eq!(first.payload, Payload::PerRow(120));
    let second = &pass.targets[1].config;
    assert_eq!(second.limit, Some(sc.duration));
    assert_eq!(second.payload, Payload::Size { min: 100, max: 200 });
    assert_ne!(first.seed, second.seed);
}

#[test]
fn an_aot_workload_off_the_aot_sites_is_refused_with_the_reason() {
    let grid = generators::grid(2, 2, &LinkParams::default(), &Default::default()).unwrap();
    let mut yaml = grid.to_yaml();
    yaml.truncate(yaml.find("workloads:").unwrap());
    yaml.push_str(
        "workloads:\n  - {client: u1, router: r1, lambda: clambda0, pattern: aot, trace: x.csv}\n",
    );
    let sc = Scenario::from_yaml(&yaml, "grid.yaml").unwrap();
    let e = replay_passes(&sc, &NodeList::shipped())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("workloads[0]: pattern aot: client `u1` is on switch `s1` at [0, 1], which is no Array of Things site"),
        "{e}"
    );
}
