//! The `lambdaroute` binary as a user runs it: real processes on loopback.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod support;

use support::{BIN, Running, eventually, free_address, start, wait_ready};

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn experiments() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/computers")
}

#[test]
fn demo_by_hand_serves_every_call_and_the_table_dump_shows_learned_weights() {
    let (fast, slow) = (free_address(), free_address());
    let (router, table) = (free_address(), free_address());
    let mut computers = Vec::new();
    for (address, config) in [(fast, "fast.yaml"), (slow, "slow.yaml")] {
        let config = experiments().join(config);
        let mut computer = start(&[
            "computer",
            "--listen",
            &address.to_string(),
            "--util-listen",
            &free_address().to_string(),
            "--config",
            config.to_str().unwrap(),
        ]);
        wait_ready(address, &mut computer);
        computers.push(computer);
    }
    let mut router_process = start(&[
        "router",
        "--listen",
        &router.to_string(),
        "--table-listen",
        &table.to_string(),
        "--policy",
        "rp",
    ]);
    wait_ready(router, &mut router_process);
    wait_ready(table, &mut router_process);
    for computer in [fast, slow] {
        stdout(&run(&[
            "table",
            "--router",
            &table.to_string(),
            "change",
            "--lambda",
            "clambda0",
            "--destination",
            &computer.to_string(),
            "--final",
        ]));
    }

    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("calls.csv");
    let summary = stdout(&run(&[
        "client",
        "--router",
        &router.to_string(),
        "--lambda",
        "clambda0",
        "--threads",
        "2",
        "--sizes",
        "20",
        "--duration",
        "0",
        "--max-calls",
        "60",
        "--output",
        csv_path.to_str().unwrap(),
    ]));
    assert!(summary.starts_with("calls 60  errors 0"), "{summary}");
    assert!(summary.contains(&fast.to_string()), "{summary}");

    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "time",
            "latency",
            "load1",
            "responder",
            "lambda",
            "hops",
            "status",
            "objects",
            "scheduled",
            "node",
            "router"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 60);
    assert!(rows.iter().all(|r| &r[6] == "OK"
        && &r[5] == "2"
        && &r[4] == "clambda0"
        && r[7].is_empty()
        && r[10] == router.to_string()));

    let dump = stdout(&run(&["table", "--router", &table.to_string(), "dump"]));
    assert!(dump.contains("table 0 (overall): 2 entries"), "{dump}");
    assert!(dump.contains("table 1 (final): 2 entries"), "{dump}");
    // Learned weights replace the installed 1 s (1000 ms): the fast computer's is far lower.
    let weight_of = |endpoint: &str| -> f64 {
        let line = dump.lines().find(|l| l.contains(endpoint)).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    let (w_fast, w_slow) = (weight_of(&fast.to_string()), weight_of(&slow.to_string()));
    assert!(
        w_fast < 100.0 && w_fast < w_slow,
        "fast {w_fast} ms, slow {w_slow} ms\n{dump}"
    );
}

#[test]
fn bad_input_gets_a_clear_error_naming_what_and_where() {
    let output = run(&["router", "--policy", "fastest"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--policy") && stderr.contains("rr"),
        "{stderr}"
    );

    let output = run(&["computer", "--config", "/nonexistent/computer.yaml"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/computer.yaml"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, "processors:\n  - name: cpu\n    speed: fast\n").unwrap();
    let output = run(&["computer", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("bad.yaml:3:"), "{stderr}");

    let output = run(&["client", "--sizes", "ten"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("invalid sizes 'ten'"), "{stderr}");

    let trace = dir.path().join("trace.txt");
    std::fs::write(&trace, "0 f - 10\n0.5 f -\n").unwrap();
    let output = run(&[
        "client",
        "--pattern",
        "trace",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("trace.txt:2:"), "{stderr}");

    let output = run(&["table", "--router", "127.0.0.1:1", "dump"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot reach the router's table service at 127.0.0.1:1"),
        "{stderr}"
    );
}

/// `lambdaroute table dump` of table 0, or "" while the router is not there.
fn dump(table: SocketAddr) -> String {
    let output = run(&[
        "table",
        "--router",
        &table.to_string(),
        "dump",
        "--table",
        "0",
    ]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn controller_by_hand_installs_steers_congestion_and_resyncs_after_a_restart() {
    let controller = free_address();
    let (router, table) = (free_address(), free_address());
    let (fast, slow) = (free_address(), free_address());
    let dir = tempfile::tempdir().unwrap();
    let paths = dir.path().join("paths.yaml");
    std::fs::write(
        &paths,
        format!(
            "paths:\n  - {{router: {router}, computer: {fast}, links: [s1-s2]}}\n  - {{router: {router}, computer: {slow}, links: [s1-s3]}}\n"
        ),
    )
    .unwrap();
    let controller_args = [
        "controller",
        "--listen",
        &controller.to_string(),
        "--installer",
        "flat",
        "--paths",
        paths.to_str().unwrap(),
        "--resync-grace",
        "1",
    ];
    let mut controller_process = start(&controller_args);
    wait_ready(controller, &mut controller_process);
    let mut router_process = start(&[
        "router",
        "--listen",
        &router.to_string(),
        "--table-listen",
        &table.to_string(),
        "--controller",
        &controller.to_string(),
        "--check-interval",
        "0.2",
    ]);
    wait_ready(table, &mut router_process);
    let mut computers = Vec::new();
    for (address, config) in [(fast, "fast.yaml"), (slow, "slow.yaml")] {
        let config = experiments().join(config);
        let mut computer = start(&[
            "computer",
            "--listen",
            &address.to_string(),
            "--util-listen",
            &free_address().to_string(),
            "--config",
            config.to_str().unwrap(),
            "--controller",
            &controller.to_string(),
            "--check-interval",
            "0.2",
        ]);
        wait_ready(address, &mut computer);
        computers.push(computer);
    }
    eventually(Duration::from_secs(10), "both computers installed", || {
        let d = dump(table);
        d.contains(&fast.to_string()) && d.contains(&slow.to_string())
    });

    // The network monitor's call: the fast computer's path is congested.
    let reply = stdout(&run(&[
        "congestion",
        "--controller",
        &controller.to_string(),
        "congested",
        "s1-s2",
    ]));
    assert!(
        reply.contains("1 (router, destination) pairs marked"),
        "{reply}"
    );
    let view = stdout(&run(&[
        "controller-view",
        "--controller",
        &controller.to_string(),
    ]));
    assert!(
        view.contains("routers: 1") && view.contains("computers: 2"),
        "{view}"
    );
    assert!(view.contains("congested links: s1-s2"), "{view}");
    let mark_line = view
        .lines()
        .find(|l| l.contains(&fast.to_string()) && l.contains("s1-s2"));
    assert!(mark_line.is_some(), "{view}");

    let client = |n: &str, csv: &Path| {
        stdout(&run(&[
            "client",
            "--router",
            &router.to_string(),
            "--lambda",
            "clambda0",
            "--threads",
            "2",
            "--sizes",
            "20",
            "--duration",
            "0",
            "--max-calls",
            n,
            "--output",
            csv.to_str().unwrap(),
        ]))
    };
    let responders = |csv: &Path| -> Vec<String> {
        csv::Reader::from_path(csv)
            .unwrap()
            .records()
            .map(|r| r.unwrap()[3].to_string())
            .collect()
    };
    let marked_csv = dir.path().join("marked.csv");
    let summary = client("40", &marked_csv);
    assert!(summary.starts_with("calls 40  errors 0"), "{summary}");
    assert!(
        responders(&marked_csv)
            .iter()
            .all(|r| *r == slow.to_string())
    );

    stdout(&run(&[
        "congestion",
        "--controller",
        &controller.to_string(),
        "cleared",
        "s1-s2",
    ]));
    let cleared_csv = dir.path().join("cleared.csv");
    client("40", &cleared_csv);
    assert!(
        responders(&cleared_csv)
            .iter()
            .any(|r| *r == fast.to_string())
    );

    // The controller dies: the router keeps serving; a new one resyncs.
    drop(controller_process);
    let down_csv = dir.path().join("down.csv");
    let summary = client("40", &down_csv);
    assert!(summary.starts_with("calls 40  errors 0"), "{summary}");
    let mut controller_process = start(&controller_args);
    wait_ready(controller, &mut controller_process);
    eventually(
        Duration::from_secs(10),
        "the new controller knows everyone",
        || {
            let output = run(&["view", "--controller", &controller.to_string()]);
            let view = String::from_utf8_lossy(&output.stdout);
            view.contains("routers: 1") && view.contains("computers: 2")
        },
    );
    let d = dump(table);
    assert!(
        d.contains(&fast.to_string()) && d.contains(&slow.to_string()),
        "{d}"
    );
}

#[test]
fn two_tier_without_distances_or_with_a_bad_matrix_refuses_with_a_clear_error() {
    let output = run(&[
        "controller",
        "--listen",
        "127.0.0.1:0",
        "--installer",
        "two-tier",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--installer two-tier needs --distances"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let distances = dir.path().join("d.yaml");
    std::fs::write(
        &distances,
        "nodes: [10.0.0.1, 10.0.0.2]\nhops:\n  - [0, 1]\n  - [1, 0, 2]\n",
    )
    .unwrap();
    let output = run(&[
        "controller",
        "--listen",
        "127.0.0.1:0",
        "--installer",
        "two-tier",
        "--distances",
        distances.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("d.yaml:4: hops row 2"), "{stderr}");

    let output = run(&[
        "congestion",
        "--controller",
        "127.0.0.1:1",
        "sideways",
        "l1",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("congested") && stderr.contains("cleared"),
        "{stderr}"
    );
}

/// `lambdaroute trace aot generate`, `read`, `schedule`, then `client --pattern aot` against a
/// computer: the digest round trip as a user runs it.
#[test]
fn an_aot_digest_is_generated_read_scheduled_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv.gz");
    let data = data.to_str().unwrap();
    let out = run(&[
        "trace",
        "aot",
        "generate",
        "--hours",
        "0.05",
        "--sensors",
        "metsense.tsys01",
        "-o",
        data,
    ]);
    stdout(&out);
    let made = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(made.contains("rows from"), "{made}");

    let out = run(&["trace", "aot", "read", data, "--nodes", "004", "--rows"]);
    let rows = stdout(&out);
    assert!(rows.starts_with("timestamp,node_id,subsystem,sensor,parameter,value_raw,value_hrf\n"));
    assert!(
        rows.lines()
            .skip(1)
            .all(|l| l.contains(",001e0610ba46,metsense,tsys01,temperature,"))
    );
    assert!(rows.lines().count() > 3, "{rows}");

    let schedule = dir.path().join("schedule.csv");
    let schedule = schedule.to_str().unwrap();
    stdout(&run(&[
        "trace",
        "aot",
        "schedule",
        data,
        "--speedup",
        "60",
        "--lambda",
        "clambda0",
        "--payload",
        "per-row:10",
        "--limit",
        "2",
        "-o",
        schedule,
    ]));
    let text = std::fs::read_to_string(schedule).unwrap();
    let calls = text.lines().count() - 1;
    assert!(calls > 50, "{calls} calls in {text}");

    let computer = free_address();
    let config = experiments().join("fast.yaml");
    let mut process = start(&[
        "computer",
        "--listen",
        &computer.to_string(),
        "--util-listen",
        &free_address().to_string(),
        "--config",
        config.to_str().unwrap(),
    ]);
    wait_ready(computer, &mut process);
    let calls_csv = dir.path().join("calls.csv");
    let summary = stdout(&run(&[
        "client",
        "--router",
        &computer.to_string(),
        "--pattern",
        "aot",
        "--schedule",
        schedule,
        "--duration",
        "0",
        "--output",
        calls_csv.to_str().unwrap(),
    ]));
    assert!(
        summary.starts_with(&format!("calls {calls}  errors 0")),
        "{summary}"
    );
    let mut reader = csv::Reader::from_path(&calls_csv).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), calls);
    assert!(
        rows.iter()
            .all(|r| !r[8].is_empty() && r[9].starts_with("001e06"))
    );
}

/// `n` consecutive loopback ports that were free a moment ago; the first of them.
fn free_port_range(n: u16) -> u16 {
    let mut base = free_address().port().clamp(20_000, 60_000);
    loop {
        let bound: Vec<_> = (base..base + n)
            .map_while(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if bound.len() == usize::from(n) {
            return base;
        }
        base = if base + 2 * n > 60_000 {
            20_000
        } else {
            base + n
        };
    }
}

#[test]
fn one_process_serves_several_computers_each_announced_and_leaving_on_sigterm() {
    const N: u16 = 6;
    let controller = free_address();
    let (router, table) = (free_address(), free_address());
    let base = free_port_range(2 * N);
    let mut controller_process = start(&[
        "controller",
        "--listen",
        &controller.to_string(),
        "--installer",
        "flat",
    ]);
    wait_ready(controller, &mut controller_process);
    let mut router_process = start(&[
        "router",
        "--listen",
        &router.to_string(),
        "--table-listen",
        &table.to_string(),
        "--controller",
        &controller.to_string(),
        "--check-interval",
        "0.2",
    ]);
    wait_ready(table, &mut router_process);
    let mut computer = start(&[
        "computer",
        "--listen",
        &format!("127.0.0.1:{base}"),
        "--util-listen",
        &format!("127.0.0.1:{}", base + N),
        "--endpoints",
        &N.to_string(),
        "--preset",
        "intel-server",
        "--controller",
        &controller.to_string(),
        "--check-interval",
        "0.2",
    ]);
    let endpoints: Vec<String> = (base..base + N).map(|p| format!("127.0.0.1:{p}")).collect();
    for port in base..base + 2 * N {
        wait_ready(SocketAddr::from(([127, 0, 0, 1], port)), &mut computer);
    }
    eventually(
        Duration::from_secs(10),
        "every endpoint installed as its own computer",
        || {
            let d = dump(table);
            endpoints.iter().all(|e| d.contains(e.as_str()))
        },
    );
    let view = stdout(&run(&["view", "--controller", &controller.to_string()]));
    assert!(view.contains(&format!("computers: {N}")), "{view}");

    // Calls reach every endpoint, each answering as itself.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("calls.csv");
    let summary = stdout(&run(&[
        "client",
        "--router",
        &router.to_string(),
        "--lambda",
        "clambda0",
        "--threads",
        "4",
        "--sizes",
        "20",
        "--duration",
        "0",
        "--max-calls",
        "300",
        "--output",
        csv.to_str().unwrap(),
    ]));
    assert!(summary.starts_with("calls 300  errors 0"), "{summary}");
    let responders: std::collections::BTreeSet<String> = csv::Reader::from_path(&csv)
        .unwrap()
        .records()
        .map(|r| r.unwrap()[3].to_string())
        .collect();
    assert_eq!(
        responders,
        endpoints.iter().cloned().collect(),
        "every endpoint answers as itself"
    );

    // A restarted controller knows nobody: the one check of every endpoint finds them all
    // unknown, and each is announced again.
    drop(controller_process);
    let mut controller_process = start(&[
        "controller",
        "--listen",
        &controller.to_string(),
        "--installer",
        "flat",
    ]);
    wait_ready(controller, &mut controller_process);
    eventually(
        Duration::from_secs(10),
        "every endpoint announced again",
        || {
            let output = run(&["view", "--controller", &controller.to_string()]);
            String::from_utf8_lossy(&output.stdout).contains(&format!("computers: {N}"))
        },
    );

    // SIGTERM: every endpoint leaves the controller, and so the router's table.
    let status = Command::new("kill")
        .args(["-TERM", &computer.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    eventually(
        Duration::from_secs(10),
        "the computer process exits",
        || computer.0.try_wait().unwrap().is_some(),
    );
    eventually(
        Duration::from_secs(5),
        "every endpoint left the table",
        || {
            let d = dump(table);
            !d.is_empty() && endpoints.iter().all(|e| !d.contains(e.as_str()))
        },
    );
    let view = stdout(&run(&["view", "--controller", &controller.to_string()]));
    assert!(view.contains("computers: 0"), "{view}");
}

#[test]
fn several_endpoints_on_ports_that_do_not_fit_get_a_clear_error() {
    let output = run(&[
        "computer",
        "--preset",
        "raspberry",
        "--endpoints",
        "4",
        "--listen",
        "127.0.0.1:65534",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--listen: ports 65534 to 65537 do not exist"),
        "{stderr}"
    );
    let output = run(&[
        "computer",
        "--preset",
        "raspberry",
        "--endpoints",
        "10",
        "--listen",
        "127.0.0.1:30000",
        "--util-listen",
        "127.0.0.1:30005",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("overlap"), "{stderr}");
    let output = run(&["computer", "--preset", "raspberry", "--endpoints", "0"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--endpoints"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn executor_flags_that_do_not_fit_are_refused_with_the_fix() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["computer", "--executor", "face", "--conditions", "c1.yaml"],
            "--conditions changes a simulated computer",
        ),
        (
            &["computer", "--executor", "http"],
            "--executor http needs where the functions are: --openfaas URL, --openwhisk URL or --function-url NAME=URL",
        ),
        (
            &["computer", "--executor", "face", "--preset", "raspberry"],
            "--config and --preset describe a simulated computer",
        ),
        (
            &[
                "computer",
                "--preset",
                "raspberry",
                "--openfaas",
                "http://x",
            ],
            "need --executor http",
        ),
        (
            &[
                "computer",
                "--executor",
                "http",
                "--openfaas",
                "ftp://x",
                "--lambdas",
                "f",
            ],
            "the gateway: `ftp://x` is not a usable URL: expected an http:// or https:// URL",
        ),
        (
            &["computer", "--executor", "http", "--function-url", "nourl"],
            "expected NAME=URL",
        ),
    ];
    for (args, message) in cases {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// A computer whose lambda `slow` takes 100 ms alone (1e8 ops on one core at 1e9 ops/s).
const SLOW_COMPUTER: &str = "processors:
  - {name: cpu, type: cpu, speed: 1.0e9, cores: 1, memory: 1000000}
containers:
  - {name: c0, processor: cpu, lambda: slow, num_workers: 4}
lambdas:
  - {name: slow, op_offset: 1.0e8, op_coeff: 0, mem_offset: 0, mem_coeff: 0, output: echo}
";

/// The median latency in seconds of `n` calls of `slow`, one at a time, straight to `computer`.
fn median_latency(computer: SocketAddr, n: usize, dir: &Path) -> f64 {
    let csv_path = dir.join("calls.csv");
    let summary = stdout(&run(&[
        "client",
        "--router",
        &computer.to_string(),
        "--lambda",
        "slow",
        "--sizes",
        "10",
        "--duration",
        "0",
        "--max-calls",
        &n.to_string(),
        "--output",
        csv_path.to_str().unwrap(),
    ]));
    assert!(
        summary.starts_with(&format!("calls {n}  errors 0")),
        "{summary}"
    );
    let mut latencies: Vec<f64> = csv::Reader::from_path(&csv_path)
        .unwrap()
        .records()
        .map(|r| r.unwrap()[1].parse().unwrap())
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies[latencies.len() / 2]
}

fn hangup(process: &Running) {
    let status = Command::new("kill")
        .args(["-HUP", &process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_computer_changes_speed_and_background_load_live_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("slow.yaml");
    std::fs::write(&config, SLOW_COMPUTER).unwrap();
    let conditions = dir.path().join("conditions.yaml");
    std::fs::write(&conditions, "speed-factor: 1\nbackground: 0\n").unwrap();
    let log = dir.path().join("computer.log");
    let (listen, util) = (free_address(), free_address());
    let mut computer = Running(
        Command::new(BIN)
            .args([
                "computer",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                &listen.to_string(),
                "--util-listen",
                &util.to_string(),
                "--conditions",
                conditions.to_str().unwrap(),
            ])
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_ready(listen, &mut computer);
    let log_lines = |what: &str| {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| l.contains(what))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let base = median_latency(listen, 3, dir.path());
    assert!((0.095..0.2).contains(&base), "base latency {base}");
    let ratio = |latency: f64| latency / base;

    // Half the speed: the calls take twice as long, from the same process.
    std::fs::write(&conditions, "speed-factor: 0.5\n").unwrap();
    hangup(&computer);
    eventually(Duration::from_secs(5), "the change is logged", || {
        log_lines("conditions changed").len() == 1
    });
    let changed = &log_lines("conditions changed")[0];
    assert!(
        changed.contains("speed_factor=0.5") && changed.contains("background=0"),
        "{changed}"
    );
    let slow = median_latency(listen, 3, dir.path());
    assert!((1.7..2.3).contains(&ratio(slow)), "{base} -> {slow}");

    // Full speed, half of the core taken by other work: twice as long again.
    std::fs::write(&conditions, "background: 0.5\n").unwrap();
    hangup(&computer);
    eventually(Duration::from_secs(5), "the change is logged", || {
        log_lines("conditions changed").len() == 2
    });
    let loaded = median_latency(listen, 3, dir.path());
    assert!((1.7..2.3).contains(&ratio(loaded)), "{base} -> {loaded}");

    // A malformed file: an error naming the file and the field; it serves as before.
    std::fs::write(&conditions, "speed-factor: fast\n").unwrap();
    hangup(&computer);
    eventually(Duration::from_secs(5), "the error is logged", || {
        !log_lines("conditions stay as they were").is_empty()
    });
    let error = &log_lines("conditions stay as they were")[0];
    assert!(
        error.contains("ERROR")
            && error.contains(conditions.to_str().unwrap())
            && error.contains("speed-factor"),
        "{error}"
    );
    assert!(
        computer.0.try_wait().unwrap().is_none(),
        "the computer exited"
    );
    let still = median_latency(listen, 3, dir.path());
    assert!((1.7..2.3).contains(&ratio(still)), "{base} -> {still}");
    assert_eq!(log_lines("conditions changed").len(), 2);
}

/// A router on `router` (lambdas) and `table` whose table sends clambda0 to `computer`.
fn router_for(router: SocketAddr, table: SocketAddr, computer: SocketAddr) -> Running {
    let mut process = start(&[
        "router",
        "--listen",
        &router.to_string(),
        "--table-listen",
        &table.to_string(),
    ]);
    wait_ready(router, &mut process);
    wait_ready(table, &mut process);
    stdout(&run(&[
        "table",
        "--router",
        &table.to_string(),
        "change",
        "--lambda",
        "clambda0",
        "--destination",
        &computer.to_string(),
        "--final",
    ]));
    process
}

#[test]
fn a_client_with_two_routers_fails_over_when_the_first_dies_and_comes_back_to_it() {
    let computer = free_address();
    let config = experiments().join("fast.yaml");
    let mut computer_process = start(&[
        "computer",
        "--listen",
        &computer.to_string(),
        "--util-listen",
        &free_address().to_string(),
        "--config",
        config.to_str().unwrap(),
    ]);
    wait_ready(computer, &mut computer_process);
    let (first, first_table) = (free_address(), free_address());
    let (second, second_table) = (free_address(), free_address());
    let mut first_process = router_for(first, first_table, computer);
    let _second_process = router_for(second, second_table, computer);

    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("calls.csv");
    const THREADS: usize = 4;
    // Repeated --router and a comma list mean the same.
    let client = Command::new(BIN)
        .args([
            "client",
            "--router",
            &first.to_string(),
            "--router",
            &second.to_string(),
            "--threads",
            &THREADS.to_string(),
            "--sizes",
            "20",
            "--duration",
            "7",
            "--timeout",
            "5s",
            "--output",
            csv_path.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = Running(client);
    // The first router dies 2 s in (SIGKILL: connections reset, calls in flight lost) ...
    std::thread::sleep(Duration::from_secs(2));
    first_process.0.kill().unwrap();
    first_process.0.wait().unwrap();
    let killed_at = 2.0;
    // ... and a new one takes its address 2 s later, with its table.
    std::thread::sleep(Duration::from_secs(2));
    let restarted_at = 4.0;
    let _first_again = router_for(first, first_table, computer);
    let mut client = client;
    let status = client.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(client.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "client failed: {stderr}");

    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let router_column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "router")
        .unwrap();
    let rows: Vec<(f64, String, String)> = reader
        .records()
        .map(Result::unwrap)
        .map(|r| {
            (
                r[0].parse().unwrap(),
                r[6].to_owned(),
                r[router_column].to_owned(),
            )
        })
        .collect();
    let errors: Vec<_> = rows.iter().filter(|r| r.1 != "OK").collect();
    // At most the calls in flight when the router died are lost (each is retried once on the
    // second router, so usually none).
    assert!(
        errors.len() <= THREADS,
        "{} errors: {errors:?}",
        errors.len()
    );
    let (first, second) = (first.to_string(), second.to_string());
    let ok_via = |router: &str, from: f64, to: f64| {
        rows.iter()
            .filter(|r| r.1 == "OK" && r.2 == router && r.0 >= from && r.0 < to)
            .count()
    };
    assert!(
        ok_via(&first, 0.0, killed_at) > 10,
        "calls before the kill went to the first router"
    );
    assert_eq!(
        ok_via(&second, 0.0, killed_at - 0.2),
        0,
        "no failover before the kill"
    );
    assert!(
        ok_via(&second, killed_at + 0.2, restarted_at) > 10,
        "calls after the kill went to the second router"
    );
    assert_eq!(ok_via(&first, killed_at + 0.2, restarted_at), 0);
    // The probe (every second) finds the first router again: calls go back to it.
    let back = restarted_at + 2.0;
    assert!(
        ok_via(&first, back, 7.0) > 10,
        "calls went back to the first router"
    );
    assert_eq!(
        ok_via(&second, back, 7.0),
        0,
        "nothing left on the second router"
    );
    assert!(stderr.contains("failing over"), "{stderr}");
}

#[test]
fn a_lambda_error_does_not_fail_over() {
    // A router without the lambda answers an error in `retcode`: the client records it and
    // stays on that router (the second is never called).
    let (first, first_table) = (free_address(), free_address());
    let mut first_process = start(&[
        "router",
        "--listen",
        &first.to_string(),
        "--table-listen",
        &first_table.to_string(),
    ]);
    wait_ready(first, &mut first_process);
    let second = free_address();
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("calls.csv");
    let output = run(&[
        "client",
        "--router",
        &format!("{first},{second}"),
        "--duration",
        "0",
        "--max-calls",
        "5",
        "--output",
        csv_path.to_str().unwrap(),
    ]);
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.starts_with("calls 5  errors 5"), "{summary}");
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    for row in reader.records().map(Result::unwrap) {
        assert_eq!(&row[10], first.to_string(), "{row:?}");
        assert!(row[6].contains("clambda0"), "{row:?}");
    }
}
