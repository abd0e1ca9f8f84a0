//! Offered load against capacity, with answers worked out by hand from the computer model:
//! a raspberry's `clambda0` with 1,000 bytes costs 4e6 + 1e6 × 1000 = 1.004e9 ops, 1.004 s on
//! one of its four 1e9 ops/s cores, so one raspberry serves 4 / 1.004 = 3.984 calls/s.

use lambdaroute_scenario::Scenario;

fn scenario(computers: &str, workloads: &str) -> Scenario {
    let text = format!(
        "duration: 60\nswitches: [{{name: s1}}]\nhosts:\n  - {{name: r1, switch: s1, role: router}}\n  - {{name: u1, switch: s1, role: client}}\n{computers}workloads:\n{workloads}"
    );
    Scenario::from_yaml(&text, "load.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const PI: &str = "  - {name: c1, switch: s1, role: computer}\n";

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn poisson_on_one_raspberry() {
    let sc = scenario(
        PI,
        "  - {client: u1, router: r1, lambda: clambda0, pattern: poisson, rate: 2}\n",
    );
    let load = sc.offered_load();
    assert!(close(load.calls_per_s, 2.0));
    assert!(close(load.work_s, 1.004));
    assert!(close(load.capacity_per_s, 4.0 / 1.004), "{load:?}");
    assert!(close(load.utilization, 2.0 * 1.004 / 4.0));
    assert_eq!(load.computers, 1);
    assert!(!load.saturated());
    assert_eq!(
        load.to_string(),
        "offered load: 2.0 calls/s, 1.00 s of work each; capacity 4 calls/s across 1 computers: 50 %"
    );
}

#[test]
fn closed_loop_counts_its_threads_in_flight_on_the_fastest_core() {
    // Two threads, each on one 4e9 core of an intel server (20 cores): 2 x 4e9 / 1.004e9 calls/s.
    let sc = scenario(
        "  - {name: c1, switch: s1, role: computer, computer: {preset: intel-server}}\n",
        "  - {client: u1, router: r1, lambda: clambda0, pattern: closed-loop, threads: 2}\n",
    );
    let load = sc.offered_load();
    assert!(close(load.calls_per_s, 2.0 * 4e9 / 1.004e9));
    assert!(close(load.capacity_per_s, 20.0 * 4e9 / 1.004e9));
    assert!(close(load.utilization, 0.1));
}

#[test]
fn the_peak_is_over_the_workloads_active_together() {
    let sc = scenario(
        &format!("{PI}  - {{name: c2, switch: s1, role: computer, computer: {{endpoints: 2}}}}\n"),
        "  - {client: u1, router: r1, lambda: clambda0, pattern: poisson, rate: 3, stop: 10}\n\
         \x20 - {client: u1, router: r1, lambda: clambda0, pattern: on-off, rate: 4, on: 1, off: 3, start: 10}\n\
         \x20 - {client: u1, router: r1, lambda: clambda0, pattern: poisson, rate: 5, start: 20, stop: 30}\n\
         \x20 - {client: u1, router: r1, lambda: clambda0, pattern: trace, trace: t.csv}\n",
    );
    let load = sc.offered_load();
    // Three endpoints (c1, and c2 serving two); at 20 s: 4 x 1/4 (ON/OFF) + 5 calls/s.
    assert_eq!(load.computers, 3);
    assert_eq!(load.peak_at, 20.0);
    assert!(close(load.calls_per_s, 6.0));
    assert!(close(load.capacity_per_s, 3.0 * 4.0 / 1.004));
    assert!(close(load.utilization, 6.0 * 1.004 / 12.0));
    assert_eq!(
        load.uncounted,
        vec!["workloads[3] (u1): trace replay".to_string()]
    );
}

#[test]
fn mixed_sizes_and_memory_limits() {
    // Sizes 0..2000 count at their mean 1000; 150,000 bytes of memory hold one call of
    // 100 x 1000 bytes at a time: one core's worth.
    let sc = scenario(
        "  - {name: c1, switch: s1, role: computer, computer: {memory: 150000}}\n",
        "  - {client: u1, router: r1, lambda: clambda0, pattern: poisson, rate: 0.5, size: {min: 0, max: 2000}}\n",
    );
    let load = sc.offered_load();
    assert!(close(load.lambdas[0].ops, 1.004e9));
    assert!(close(load.capacity_per_s, 1.0 / 1.004));
}

#[test]
fn over_capacity_and_unserved_lambdas_saturate() {
    let sc = scenario(
        PI,
        "  - {client: u1, router: r1, lambda: clambda0, pattern: poisson, rate: 8}\n",
    );
    assert!(sc.offered_load().saturated());
    assert!(close(sc.offered_load().utilization, 8.0 * 1.004 / 4.0));
    let sc = scenario(
        PI,
        "  - {client: u1, router: r1, lambda: clambda7, pattern: poisson, rate: 1}\n",
    );
    let load = sc.offered_load();
    assert!(load.saturated());
    assert!(
        load.to_string().ends_with("no computer runs the lambda"),
        "{load}"
    );
}

/// Every generator's defaults (and the shipped grid-6x6's placement) stay below saturation.
#[test]
fn generators_default_workloads_stay_below_saturation() {
    use lambdaroute_scenario::LinkParams;
    use lambdaroute_scenario::generators::{self, Placement};
    let p = Placement::default();
    let ideal = LinkParams::default();
    let six = Placement {
        routers: Some(
            [
                "s1", "s4", "s7", "s10", "s13", "s16", "s19", "s22", "s25", "s28", "s31",
            ]
            .map(String::from)
            .to_vec(),
        ),
        computers: Some(
            [
                "s2", "s5", "s8", "s11", "s14", "s17", "s20", "s23", "s26", "s29", "s32", "s35",
            ]
            .map(String::from)
            .to_vec(),
        ),
        controller: Some("s18".into()),
        ..Placement::default()
    };
    let all = [
        generators::line(5, &ideal, &p).unwrap(),
        generators::pods(3, &ideal, &p).unwrap(),
        generators::ring_tree(4, 2, 2, &ideal, &p).unwrap(),
        generators::grid(4, 4, &ideal, &p).unwrap(),
        generators::grid(6, 6, &ideal, &p).unwrap(),
        generators::grid(6, 6, &ideal, &six).unwrap(),
        generators::aot_chicago(generators::AOT_NODES_CSV, true, &p).unwrap(),
        generators::brite(include_str!("brite/small.brite"), "small.brite", &p).unwrap(),
    ];
    let mut report = Vec::new();
    for sc in &all {
        let load = sc.offered_load();
        report.push(format!("{}: {load}", sc.name));
    }
    let text = report.join("\n");
    eprintln!("{text}");
    for sc in &all {
        assert!(sc.offered_load().utilization < 1.0, "{text}");
    }
}

#[test]
fn calls_to_real_computers_are_listed_not_counted() {
    let sc = scenario(
        "  - {name: c1, switch: s1, role: computer}\n  - {name: f1, switch: s1, role: computer, computer: {executor: face}}\n",
        "  - {client: u1, router: r1, lambda: facerec0, pattern: poisson, rate: 5, size: 1000}\n  - {client: u1, router: r1, lambda: clambda0, pattern: poisson, rate: 2, size: 1000}\n",
    );
    let load = sc.offered_load();
    assert_eq!(load.uncounted.len(), 1, "{load}");
    assert!(load.uncounted[0].contains("facerec0 runs on f1"), "{load}");
    // Only clambda0 counts, on the raspberry alone: 2 calls/s of its 3.984.
    assert!(close(load.utilization, 2.0 / (4.0 / 1.004)), "{load}");
    assert!(!load.utilization.is_infinite());
}

#[test]
fn many_uncounted_workloads_print_as_one_line() {
    let replays: String = (0..5)
        .map(|_| "  - {client: u1, router: r1, lambda: clambda0, pattern: trace, trace: t.csv}\n")
        .collect();
    let sc = scenario(
        "",
        &format!(
            "  - {{client: u1, router: r1, lambda: clambda0, pattern: poisson, rate: 1}}\n{replays}"
        ),
    );
    let load = sc.offered_load();
    assert_eq!(load.uncounted.len(), 5);
    let text = load.to_string();
    assert!(
        text.ends_with(
            "(not counted: workloads[1] (u1): trace replay, workloads[2] (u1): trace replay and 3 more)"
        ),
        "{text}"
    );
}
