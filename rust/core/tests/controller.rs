//! The controller's pure logic: home routers by hand, the tables of both installers, the
//! difference pushed to a router, congestion marks, and the files' errors.

use std::collections::BTreeSet;

use lambdaroute_core::controller::plan::{
    self, Op, PlacementChange, Table, choose_home, diff, marks, placement_changes,
};
use lambdaroute_core::controller::{Distances, Installer, Objective, Paths, Placement, Topology};

/// A line of hops: r1 at 0, r2 at 2, r3 at 5, the computer c at 4.
///
/// N = 4 nodes, W = 1 + 2*16 = 33. Per home router i, over the routers j:
///   r1: d_ic = 4, max_j d_ji = 5 -> max term 9;  avg term 4*4 + (0+2+5) = 23
///   r2: d_ic = 2, max_j d_ji = 3 -> max term 5;  avg term 4*2 + (2+0+3) = 13
///   r3: d_ic = 1, max_j d_ji = 5 -> max term 6;  avg term 4*1 + (5+3+0) = 12
/// min-max: 33*9+23=320, 33*5+13=178, 33*6+12=210 -> r2.
/// min-avg: 9+33*23=768,  5+33*13=434,  6+33*12=402 -> r3.
const LINE: &str = "\
nodes: [127.0.0.1:6001, 127.0.0.1:6002, 127.0.0.1:6003, 127.0.0.1:10001]
hops:
  - [0, 2, 5, 4]
  - [2, 0, 3, 2]
  - [5, 3, 0, 1]
  - [4, 2, 1, 0]
";

fn line() -> Distances {
    Distances::from_yaml(LINE, "line.yaml").unwrap()
}

#[test]
fn two_tier_home_router_is_the_hand_computed_one_for_min_max_and_min_avg() {
    let d = line();
    let routers = [0, 1, 2];
    assert_eq!(plan::two_tier_terms(&d, &routers, 0, 3), Some((9, 23)));
    assert_eq!(plan::two_tier_terms(&d, &routers, 1, 3), Some((5, 13)));
    assert_eq!(plan::two_tier_terms(&d, &routers, 2, 3), Some((6, 12)));
    assert_eq!(choose_home(&d, Objective::MinMax, &routers, 3), Some(1));
    assert_eq!(choose_home(&d, Objective::MinAvg, &routers, 3), Some(2));
    // Only the routers announced count: without r2, r3 wins both.
    assert_eq!(choose_home(&d, Objective::MinMax, &[0, 2], 3), Some(2));
}

#[test]
fn two_tier_ties_go_to_the_first_router() {
    let d = Distances::from_yaml(
        "nodes: [a, b, c]\nhops: [[0, 1, 1], [1, 0, 1], [1, 1, 0]]\n",
        "tie.yaml",
    )
    .unwrap();
    assert_eq!(choose_home(&d, Objective::MinMax, &[1, 0], 2), Some(1));
}

fn topology(routers: &[&str], computers: &[(&str, &[&str])]) -> Topology {
    Topology {
        routers: routers
            .iter()
            .map(|r| (r.to_string(), format!("{r}-table")))
            .collect(),
        computers: computers
            .iter()
            .map(|(c, ls)| (c.to_string(), ls.iter().map(|l| l.to_string()).collect()))
            .collect(),
    }
}

fn entries(table: &Table) -> Vec<(&str, &str, bool)> {
    table
        .iter()
        .map(|((l, d), &f)| (l.as_str(), d.as_str(), f))
        .collect()
}

#[test]
fn flat_puts_every_lambda_of_every_computer_final_on_every_router() {
    let t = topology(
        &["r1:1", "r2:1"],
        &[("c1:1", &["f", "g"]), ("c2:1", &["f"]), ("c3:1", &["f"])],
    );
    let p = plan::plan(&Installer::Flat, &t);
    for router in ["r1:1", "r2:1"] {
        assert_eq!(
            entries(&p.tables[router]),
            vec![
                ("f", "c1:1", true),
                ("f", "c2:1", true),
                ("f", "c3:1", true),
                ("g", "c1:1", true)
            ]
        );
    }
    assert_eq!(p.placements["c1:1"], Placement::Flat);
}

#[test]
fn two_tier_is_final_on_the_home_router_and_forwards_to_it_from_the_others() {
    let t = topology(
        &["127.0.0.1:6001", "127.0.0.1:6002", "127.0.0.1:6003"],
        &[("127.0.0.1:10001", &["f"]), ("127.0.0.1:10009", &["g"])],
    );
    let installer = Installer::TwoTier {
        distances: line(),
        objective: Objective::MinMax,
    };
    let p = plan::plan(&installer, &t);
    assert_eq!(
        p.placements["127.0.0.1:10001"],
        Placement::Home("127.0.0.1:6002".into())
    );
    // 10009 is not in the matrix: installed everywhere, as flat.
    assert!(matches!(
        p.placements["127.0.0.1:10009"],
        Placement::Fallback(_)
    ));
    assert_eq!(
        entries(&p.tables["127.0.0.1:6002"]),
        vec![
            ("f", "127.0.0.1:10001", true),
            ("g", "127.0.0.1:10009", true)
        ]
    );
    for other in ["127.0.0.1:6001", "127.0.0.1:6003"] {
        assert_eq!(
            entries(&p.tables[other]),
            vec![
                ("f", "127.0.0.1:6002", false),
                ("g", "127.0.0.1:10009", true)
            ]
        );
    }
}

#[test]
fn a_host_key_matches_every_port_of_that_address() {
    let d = Distances::from_yaml(
        "nodes: [10.0.0.1, 10.0.0.2, 10.0.0.2:6473]\nhops: [[0, 1, 1], [1, 0, 1], [1, 1, 0]]\n",
        "hosts.yaml",
    )
    .unwrap();
    assert_eq!(d.lookup("10.0.0.1:10000"), Some(0));
    assert_eq!(d.lookup("10.0.0.2:10000"), Some(1));
    // The exact endpoint wins over its host.
    assert_eq!(d.lookup("10.0.0.2:6473"), Some(2));
    assert_eq!(d.lookup("10.0.0.9:6473"), None);
}

#[test]
fn two_tier_placement_follows_routers_as_they_arrive_and_leave() {
    let installer = Installer::TwoTier {
        distances: line(),
        objective: Objective::MinMax,
    };
    let c = "127.0.0.1:10001";
    let outside = "127.0.0.1:10009";
    let place = |routers: &[&str]| {
        plan::plan(
            &installer,
            &topology(routers, &[(c, &["f"]), (outside, &["g"])]),
        )
    };
    // The computer announced before any router: final everywhere, for now only.
    let early = place(&[]);
    assert!(matches!(early.placements[c], Placement::Waiting(_)));
    assert!(early.placements[c].to_string().contains("until"));
    // A router outside the matrix does not change that; it gets the flat entry.
    let r9 = "127.0.0.1:6009";
    let p = place(&[r9]);
    assert!(matches!(p.placements[c], Placement::Waiting(_)));
    assert!(p.tables[r9][&("f".into(), c.into())]);
    // Routers of the matrix arrive: the computer moves home, and on to a better home.
    let p = place(&[r9, "127.0.0.1:6001"]);
    assert_eq!(p.placements[c], Placement::Home("127.0.0.1:6001".into()));
    assert_eq!(
        entries(&p.tables[r9]),
        vec![("f", "127.0.0.1:6001", false), ("g", outside, true)]
    );
    assert_eq!(
        place(&[r9, "127.0.0.1:6001", "127.0.0.1:6003"]).placements[c],
        Placement::Home("127.0.0.1:6003".into())
    );
    let all = place(&[r9, "127.0.0.1:6001", "127.0.0.1:6002", "127.0.0.1:6003"]);
    assert_eq!(all.placements[c], Placement::Home("127.0.0.1:6002".into()));
    // Its home leaves: a new home among those left.
    let left = place(&[r9, "127.0.0.1:6001", "127.0.0.1:6003"]);
    assert_eq!(left.placements[c], Placement::Home("127.0.0.1:6003".into()));
    // Outside the matrix: the flat fallback, whatever the routers.
    for p in [&early, &all, &left] {
        assert_eq!(
            p.placements[outside],
            Placement::Fallback("not in the distance matrix".into())
        );
    }
    // The changes to log: once per move, nothing for a computer that stays.
    assert_eq!(
        placement_changes(&all.placements, &left.placements),
        vec![PlacementChange {
            computer: c.into(),
            before: Some(Placement::Home("127.0.0.1:6002".into())),
            after: Placement::Home("127.0.0.1:6003".into()),
        }]
    );
    assert!(placement_changes(&left.placements, &left.placements).is_empty());
    let first = placement_changes(&Default::default(), &early.placements);
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|change| change.before.is_none()));
}

#[test]
fn a_computer_no_announced_router_reaches_waits_for_one() {
    let d = Distances::from_yaml(
        "nodes: [127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3]\nhops: [[0, 1, null], [1, 0, 3], [null, 3, 0]]\n",
        "d.yaml",
    )
    .unwrap();
    let installer = Installer::TwoTier {
        distances: d,
        objective: Objective::MinMax,
    };
    let c = "127.0.0.1:3";
    let p = plan::plan(&installer, &topology(&["127.0.0.1:1"], &[(c, &["f"])]));
    assert!(matches!(p.placements[c], Placement::Waiting(_)));
    assert!(p.tables["127.0.0.1:1"][&("f".into(), c.into())]);
    let p = plan::plan(
        &installer,
        &topology(&["127.0.0.1:1", "127.0.0.1:2"], &[(c, &["f"])]),
    );
    assert_eq!(p.placements[c], Placement::Home("127.0.0.1:2".into()));
}

#[test]
fn the_plans_home_routers_are_choose_homes_for_every_set_of_routers() {
    let d = line();
    let names = ["127.0.0.1:6001", "127.0.0.1:6002", "127.0.0.1:6003"];
    for objective in [Objective::MinMax, Objective::MinAvg] {
        let installer = Installer::TwoTier {
            distances: d.clone(),
            objective,
        };
        for subset in 1..8u32 {
            let chosen: Vec<usize> = (0..3).filter(|i| subset & (1 << i) != 0).collect();
            let routers: Vec<&str> = chosen.iter().map(|&i| names[i]).collect();
            let p = plan::plan(
                &installer,
                &topology(&routers, &[("127.0.0.1:10001", &["f"])]),
            );
            let home = choose_home(&d, objective, &chosen, 3).unwrap();
            assert_eq!(
                p.placements["127.0.0.1:10001"],
                Placement::Home(names[home].into()),
                "{objective} over {routers:?}"
            );
        }
    }
}

#[test]
fn diff_changes_new_entries_before_removing_old_ones_and_keeps_the_rest() {
    let mut installed = Table::new();
    installed.insert(("f".into(), "a".into()), true);
    installed.insert(("f".into(), "b".into()), true);
    installed.insert(("f".into(), "h".into()), true);
    let mut wanted = Table::new();
    wanted.insert(("f".into(), "a".into()), true);
    wanted.insert(("f".into(), "c".into()), true);
    wanted.insert(("f".into(), "h".into()), false);
    let ops = diff(&installed, &wanted, |_| true);
    assert_eq!(
        ops,
        vec![
            Op::Change {
                lambda: "f".into(),
                destination: "c".into(),
                is_final: true
            },
            Op::Change {
                lambda: "f".into(),
                destination: "h".into(),
                is_final: false
            },
            Op::Remove {
                lambda: "f".into(),
                destination: "b".into()
            },
        ]
    );
    assert_eq!(diff(&installed, &wanted, |d| d != "b").len(), 2);
}

#[test]
fn a_pair_is_marked_while_any_link_of_its_path_is_congested() {
    let paths = Paths::from_yaml(
        "paths:\n  - {router: 10.0.0.1, computer: 10.0.0.7, links: [l1, l2]}\n  - {router: 10.0.0.1, computer: 10.0.0.8, links: [l3]}\n",
        "paths.yaml",
    )
    .unwrap();
    let mut table = Table::new();
    table.insert(("f".into(), "10.0.0.7:10000".into()), true);
    table.insert(("g".into(), "10.0.0.7:10000".into()), true);
    table.insert(("f".into(), "10.0.0.8:10000".into()), true);
    let congested = |links: &[&str]| links.iter().map(|l| l.to_string()).collect::<BTreeSet<_>>();
    let m = marks(&paths, "10.0.0.1:6473", &table, &congested(&["l2"]));
    assert_eq!(m.len(), 1);
    assert_eq!(m["10.0.0.7:10000"], vec!["l2".to_string()]);
    let m = marks(
        &paths,
        "10.0.0.1:6473",
        &table,
        &congested(&["l1", "l2", "l3"]),
    );
    assert_eq!(m.len(), 2);
    assert_eq!(m["10.0.0.7:10000"].len(), 2);
    assert!(marks(&paths, "10.0.0.1:6473", &table, &congested(&["l9"])).is_empty());
    // Another router has no path in the file: nothing to mark.
    assert!(marks(&paths, "10.0.0.2:6473", &table, &congested(&["l1"])).is_empty());
    assert!(paths.has_link("l3") && !paths.has_link("l9"));
}

#[test]
fn distance_file_errors_name_the_line_and_the_fix() {
    let short_row = "nodes: [a, b]\nhops:\n  - [0, 1]\n  - [1]\n";
    let e = Distances::from_yaml(short_row, "d.yaml").unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert!(e.to_string().starts_with("d.yaml:4: hops row 2"), "{e}");
    assert!(e.to_string().contains("expected 2"), "{e}");

    let diagonal = "nodes: [a, b]\nhops:\n  - [0, 1]\n  - [1, 3]\n";
    let e = Distances::from_yaml(diagonal, "d.yaml").unwrap_err();
    assert!(e.to_string().contains("must be 0"), "{e}");

    let duplicate = "nodes:\n  - a\n  - a\nhops: [[0, 1], [1, 0]]\n";
    let e = Distances::from_yaml(duplicate, "d.yaml").unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.to_string().contains("listed twice"), "{e}");

    let bad_key = "nodes: [a, 'x y']\nhops: [[0, 1], [1, 0]]\n";
    let e = Distances::from_yaml(bad_key, "d.yaml").unwrap_err();
    assert!(e.to_string().contains("invalid node 'x y'"), "{e}");

    let missing = "nodes: [a]\n";
    let e = Distances::from_yaml(missing, "d.yaml").unwrap_err();
    assert!(e.to_string().contains("hops"), "{e}");

    let negative = "nodes: [a, b]\nhops:\n  - [0, 1]\n  - [-1, 0]\n";
    let e = Distances::from_yaml(negative, "d.yaml").unwrap_err();
    assert_eq!(e.line, 4, "{e}");
}

#[test]
fn unreachable_nodes_are_null_and_never_chosen() {
    let d = Distances::from_yaml(
        "nodes: [r1, r2, c]\nhops: [[0, 1, null], [1, 0, 3], [null, 3, 0]]\n",
        "d.yaml",
    )
    .unwrap();
    assert_eq!(choose_home(&d, Objective::MinMax, &[0, 1], 2), Some(1));
    assert_eq!(choose_home(&d, Objective::MinMax, &[0], 2), None);
}

#[test]
fn paths_file_errors_name_the_line_and_the_field() {
    let e = Paths::from_yaml(
        "paths:\n  - {router: a, computer: b, links: [l1]}\n  - {router: a, computer: 'b c', links: [l1]}\n",
        "p.yaml",
    )
    .unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.to_string().contains("paths[1].computer"), "{e}");
    let e = Paths::from_yaml("paths:\n  - {router: a, links: [l1]}\n", "p.yaml").unwrap_err();
    assert!(e.to_string().contains("computer"), "{e}");
    let e = Paths::from_yaml(
        "paths:\n  - {router: a, computer: b, links: [l1]}\n  - {router: a, computer: b, links: [l2]}\n",
        "p.yaml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
}

#[test]
fn the_example_files_of_the_repository_parse() {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/controller");
    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap();
    let d =
        Distances::from_yaml(&read("loopback-distances.yaml"), "loopback-distances.yaml").unwrap();
    assert_eq!(d.len(), 4);
    // Each computer's home is the router one hop away.
    assert_eq!(choose_home(&d, Objective::MinMax, &[0, 1], 2), Some(0));
    assert_eq!(choose_home(&d, Objective::MinMax, &[0, 1], 3), Some(1));
    let p = Paths::from_yaml(&read("loopback-paths.yaml"), "loopback-paths.yaml").unwrap();
    assert_eq!(p.len(), 5);
    assert_eq!(
        p.links("127.0.0.1:6473", "127.0.0.1:10001").unwrap(),
        ["h1-s1", "s1-s2", "s2-h3"]
    );
}

#[test]
fn the_testbeds_pyyaml_output_parses() {
    // What python/lambdaroute/testbed/nodes.py writes (yaml.safe_dump, flow rows, quoted keys);
    // unreachable pairs come as u32::MAX from the scenario's distance matrix.
    let d = Distances::from_yaml(
        "nodes: ['10.0.0.1:6473', '10.0.0.2:10000', '10.0.0.3:10000']\nhops:\n- [0, 3, 4294967295]\n- [3, 0, 4294967295]\n- [4294967295, 4294967295, 0]\n",
        "distances.yaml",
    )
    .unwrap();
    assert_eq!(d.lookup("10.0.0.2:10000"), Some(1));
    assert_eq!(choose_home(&d, Objective::MinMax, &[0], 1), Some(0));
    let p = Paths::from_yaml(
        "paths:\n- router: 10.0.0.1:6473\n  computer: 10.0.0.2:10000\n  links: [s1-s2, s2-s3]\n",
        "paths.yaml",
    )
    .unwrap();
    assert_eq!(
        p.links("10.0.0.1:6473", "10.0.0.2:10000").unwrap(),
        ["s1-s2", "s2-s3"]
    );
}
