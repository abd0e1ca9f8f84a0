//! The `lambdaroute` binary as a user runs it: real processes on loopback.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lambdaroute");

/// A loopback address with a port that was free a moment ago.
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A child process killed when dropped, so a failing test leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> Running {
    Running(
        Command::new(BIN)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Wait until `address` accepts connections, by probing.
fn wait_ready(address: SocketAddr, process: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(address).is_err() {
        assert!(
            process.0.try_wait().unwrap().is_none(),
            "process for {address} exited"
        );
        assert!(Instant::now() < deadline, "nothing listens on {address}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
            "status"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 60);
    assert!(
        rows.iter()
            .all(|r| &r[6] == "OK" && &r[5] == "2" && &r[4] == "clambda0")
    );

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
