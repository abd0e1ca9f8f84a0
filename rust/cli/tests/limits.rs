//! Bounded resources of the `lambdaroute` binary, as real processes on loopback: a flood of
//! idle connections under a 1,024-descriptor limit, and 48 concurrent calls of 15 MiB against
//! the cap on request bytes in flight (docs/security.md, "Resource limits").

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::{BIN, Running, free_address};

/// `lambdaroute ARGS`, its stderr into `log`; with `nofile`, under that descriptor limit
/// (soft and hard, through util-linux's prlimit).
fn start(args: &[&str], log: &Path, nofile: Option<u32>) -> Running {
    let stderr = Stdio::from(File::create(log).unwrap());
    let mut command = match nofile {
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    Running(
        command
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    )
}

fn wait_listening(address: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(address).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {address}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// A field of /proc/PID/status in MiB (VmRSS, VmHWM).
fn memory_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

/// The pid of the router itself (prlimit execs it, so the child's pid is the router's).
fn pid(process: &Running) -> u32 {
    process.0.id()
}

/// A computer on `address` whose clambda0 costs 10 ms whatever its input, echoes it, and fits
/// 48 calls of 15 MiB.
fn start_computer(dir: &Path, address: SocketAddr, flags: &[&str]) -> Running {
    let config = dir.join("computer.yaml");
    std::fs::write(
        &config,
        "processors: [{name: cpu, type: cpu, speed: 1.0e9, cores: 64, memory: 1000000000000}]\n\
         containers: [{name: c0, processor: cpu, lambda: clambda0, num_workers: 64}]\n\
         lambdas: [{name: clambda0, op_offset: 1.0e7, op_coeff: 0, mem_offset: 0, mem_coeff: 1, output: echo}]\n",
    )
    .unwrap();
    let mut args = vec![
        "computer".to_string(),
        "--listen".into(),
        address.to_string(),
        "--util-listen".into(),
        free_address().to_string(),
        "--config".into(),
        config.to_str().unwrap().to_string(),
    ];
    args.extend(flags.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start(&args, &dir.join("computer.log"), None)
}

fn computer_and_router(
    dir: &Path,
    nofile: Option<u32>,
    router_flags: &[&str],
) -> (Running, Running, SocketAddr, SocketAddr) {
    let (computer, router, table) = (free_address(), free_address(), free_address());
    let computer_process = start_computer(dir, computer, &[]);
    let mut args = vec![
        "router".to_string(),
        "--listen".into(),
        router.to_string(),
        "--table-listen".into(),
        table.to_string(),
    ];
    args.extend(router_flags.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let router_process = start(&args, &dir.join("router.log"), nofile);
    wait_listening(computer);
    wait_listening(router);
    wait_listening(table);
    ok(&run(&[
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
    (computer_process, router_process, router, table)
}

fn client(router: SocketAddr, size: &str, threads: &str, calls: &str, csv: &Path) -> String {
    ok(&run(&[
        "client",
        "--router",
        &router.to_string(),
        "--lambda",
        "clambda0",
        "--threads",
        threads,
        "--sizes",
        size,
        "--duration",
        "0",
        "--max-calls",
        calls,
        "--output",
        csv.to_str().unwrap(),
    ]))
}

#[test]
fn a_flood_of_idle_connections_is_survived_and_logged_without_spinning() {
    let dir = tempfile::tempdir().unwrap();
    // The default handshake timeout, 10 s: no idle connection is closed before the flood has
    // passed the limit, however slowly this machine connects.
    let (_computer, router_process, router, table) =
        computer_and_router(dir.path(), Some(1024), &["--handshake-timeout", "10s"]);
    // 1,100 connections that never speak, held open by this test, past the router's 1,024
    // descriptors.
    let started = Instant::now();
    let cpu_before = cpu_seconds(pid(&router_process));
    let flood: Vec<TcpStream> = (0..1100)
        .filter_map(|_| TcpStream::connect_timeout(&router, Duration::from_secs(3)).ok())
        .collect();
    assert!(flood.len() > 900, "only {} connections", flood.len());
    // Calls and the table service still answer, the flood still open on this side.
    let summary = client(router, "20", "1", "5", &dir.path().join("calls.csv"));
    assert!(summary.starts_with("calls 5  errors 0"), "{summary}");
    let dump = ok(&run(&["table", "--router", &table.to_string(), "dump"]));
    assert!(dump.contains("clambda0"), "{dump}");
    // Backing off, not spinning: well under one core over the flood.
    let cpu = cpu_seconds(pid(&router_process)) - cpu_before;
    let wall = started.elapsed().as_secs_f64();
    assert!(
        cpu < 0.5 * wall,
        "router used {cpu:.2} s of CPU in {wall:.2} s"
    );
    let mut log = String::new();
    File::open(dir.path().join("router.log"))
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let lines = log.matches("out of file descriptors").count();
    eprintln!("{cpu:.2} s of CPU in {wall:.2} s, {lines} log lines");
    assert!((1..=3).contains(&lines), "{lines} log lines:\n{log}");
    drop(flood);
}

/// 48 concurrent echoed calls of 15 MiB to `server` (pid `pid`), whose cap on bytes in flight
/// is 64 MiB: some are served, the rest refused for the cap, and the server's memory stays
/// under the cap and goes back down afterwards.
fn assert_large_calls_held_to_the_cap(dir: &Path, server: SocketAddr, pid: u32, role: &str) {
    const CAP_MIB: f64 = 64.0;
    let csv = dir.join("calls.csv");
    // A first small call brings in the code and the worker threads' memory a call uses, which
    // stay: the baseline is the server ready to serve.
    client(server, "1000", "1", "1", &csv);
    let baseline = memory_mib(pid, "VmRSS");
    let summary = client(server, "15728640", "48", "48", &csv);
    let mut reader = csv::Reader::from_path(&csv).unwrap();
    let statuses: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[6].to_string())
        .collect();
    assert_eq!(statuses.len(), 48, "{summary}");
    let served = statuses.iter().filter(|s| *s == "OK").count();
    let refused = statuses
        .iter()
        .filter(|s| s.contains("--max-bytes-in-flight"))
        .count();
    let distinct: std::collections::BTreeSet<&String> = statuses.iter().collect();
    assert!(served >= 1, "{summary}{distinct:?}");
    assert_eq!(served + refused, 48, "{distinct:?}");
    let peak = memory_mib(pid, "VmHWM");
    // Freed large buffers go back to the system: the burst does not stay resident.
    std::thread::sleep(Duration::from_millis(500));
    let after = memory_mib(pid, "VmRSS");
    eprintln!(
        "{role}: baseline {baseline:.1} MiB, peak {peak:.1} MiB (+{:.1}), after {after:.1} MiB; \
         {served} served, {refused} refused",
        peak - baseline
    );
    assert!(
        peak - baseline <= CAP_MIB,
        "{role}: peak {peak:.1} MiB from a baseline of {baseline:.1} MiB, over the {CAP_MIB} MiB cap"
    );
    assert!(
        after - baseline < 16.0,
        "{role}: {after:.1} MiB resident after the calls, from a baseline of {baseline:.1} MiB"
    );
}

#[test]
fn large_concurrent_calls_keep_the_router_memory_under_the_cap_on_bytes_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    // A router gives half of its 64 MiB to requests and half to answers, and counts each
    // message twice: one echoed call of 15 MiB at a time.
    let (_computer, router_process, router, _) =
        computer_and_router(dir.path(), None, &["--max-bytes-in-flight", "67108864"]);
    assert_large_calls_held_to_the_cap(dir.path(), router, pid(&router_process), "router");
}

#[test]
fn large_concurrent_calls_keep_the_computer_memory_under_the_cap_on_bytes_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    // A computer counts each request twice and echoes it without a copy: two calls of 15 MiB
    // at a time.
    let address = free_address();
    let computer = start_computer(dir.path(), address, &["--max-bytes-in-flight", "67108864"]);
    wait_listening(address);
    assert_large_calls_held_to_the_cap(dir.path(), address, pid(&computer), "computer");
}
