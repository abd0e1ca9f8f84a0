//! `lambdaroute bench --peer DIR`: the router side by side with the original prototype's
//! (serverlessonedge's `edgerouter`), on loopback (docs/benchmarks.md, "Against the original").
//!
//! The original's binaries come from the directory given (`--peer`, or the environment
//! variable `SOE_BIN`); nothing of them is part of this project. Per computer (the original's
//! `edgecomputer` with a near-zero-cost lambda, and this benchmark's answering server), per load
//! generator (the original's `edgeclient` and this benchmark's closed-loop clients), per number
//! of clients, windows alternate over the targets: straight to the computer, the original's
//! router (round robin), and lambdaroute's router (round robin) at each `--threads` given. Every
//! router has one entry, `clambda0` -> the computer, installed through the table service (the
//! same gRPC call for both: they are wire compatible).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use lambdaroute_proto::uiiit::EdgeRouterConf;
use lambdaroute_proto::uiiit::edge_router_client::EdgeRouterClient;
use lambdaroute_proto::uiiit::edge_router_conf::Action;
use serde::Serialize;
use tracing::info;

use super::load::{self, Load, Measured, Pick};
use super::procs::{self, ChildProcess};
use crate::destinations::endpoint;

/// The lambda every call names.
pub const LAMBDA: &str = "clambda0";

/// The environment variable naming the original's binaries when `--peer` is not given.
pub const SOE_BIN_ENV: &str = "SOE_BIN";

/// What to run.
#[derive(Clone, Debug)]
pub struct PeerOptions {
    /// The `lambdaroute` binary.
    pub exe: PathBuf,
    /// The directory of the original's binaries (`edgerouter`, `edgecomputer`, `edgeclient`).
    pub soe_bin: PathBuf,
    /// Directory of `peer.csv` (and the computer's configuration).
    pub out: PathBuf,
    /// Numbers of concurrent closed-loop clients.
    pub clients: Vec<usize>,
    /// `--threads` of the lambdaroute routers measured.
    pub threads: Vec<usize>,
    /// Measuring window.
    pub duration: Duration,
    /// Warm-up of each window (not counted).
    pub warmup: Duration,
    /// Windows per point; the targets' order rotates from one to the next.
    pub repeats: usize,
    /// Bytes of input per call.
    pub input_bytes: usize,
}

impl PeerOptions {
    /// The issue's grid: 1 and 5 clients, 5 s windows, `--threads` 1 and 0.
    pub fn full(exe: PathBuf, soe_bin: PathBuf, out: PathBuf) -> Self {
        Self {
            exe,
            soe_bin,
            out,
            clients: vec![1, 5],
            threads: vec![1, 0],
            duration: Duration::from_secs(5),
            warmup: Duration::from_millis(500),
            repeats: 1,
            input_bytes: 100,
        }
    }

    /// Short windows, for `make test`'s smoke test.
    pub fn smoke(exe: PathBuf, soe_bin: PathBuf, out: PathBuf) -> Self {
        Self {
            clients: vec![1, 2],
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(100),
            ..Self::full(exe, soe_bin, out)
        }
    }

    /// Why the original's binaries cannot run here, or `None` if they can: missing binaries,
    /// or missing runtime libraries (its README: `install-runtime.sh`).
    pub fn unavailable(soe_bin: &Path) -> Option<String> {
        for name in ["edgerouter", "edgecomputer", "edgeclient"] {
            let path = soe_bin.join(name);
            if !path.is_file() {
                return Some(format!("{} not found", path.display()));
            }
            // `--version` loads the shared libraries; a missing one fails with status 127.
            match Command::new(&path)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
            {
                Ok(out) if out.status.code() == Some(127) => {
                    return Some(format!(
                        "{} cannot start (runtime libraries missing? run the peer's \
                         install-runtime.sh): {}",
                        path.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                Ok(_) => {}
                Err(error) => return Some(format!("{}: {error}", path.display())),
            }
        }
        None
    }
}

/// Which load generator drives a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// The original's `edgeclient` (one process, `--num-threads` clients).
    Soe,
    /// This benchmark's closed-loop tonic clients ([`load`]).
    Ours,
}

/// Which computer answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Computer {
    /// The original's `edgecomputer`, one lambda of near-zero cost that echoes its input.
    Soe,
    /// This benchmark's answering server (answers at once, no output).
    Ours,
}

/// Where a window's calls go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Straight to the computer.
    Direct,
    /// The original's `edgerouter`, round robin.
    Soe,
    /// lambdaroute's router, round robin, with this `--threads`.
    Ours(usize),
}

impl Target {
    /// The target's name in `peer.csv`.
    pub fn name(self) -> String {
        match self {
            Target::Direct => "direct".into(),
            Target::Soe => "soe-router".into(),
            Target::Ours(threads) => format!("lambdaroute-t{threads}"),
        }
    }
}

fn driver_name(d: Driver) -> &'static str {
    match d {
        Driver::Soe => "soe-client",
        Driver::Ours => "lambdaroute-load",
    }
}

fn computer_name(c: Computer) -> &'static str {
    match c {
        Computer::Soe => "soe-computer",
        Computer::Ours => "lambdaroute-answer",
    }
}

/// One point of `peer.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct PeerRow {
    /// `soe-computer` or `lambdaroute-answer`.
    pub computer: &'static str,
    /// `soe-client` or `lambdaroute-load`.
    pub driver: &'static str,
    /// `direct`, `soe-router`, `lambdaroute-tN`.
    pub target: String,
    /// Concurrent closed-loop clients.
    pub clients: usize,
    /// Successful calls in the windows.
    pub calls: u64,
    /// Seconds measured.
    pub seconds: f64,
    /// Calls per second.
    pub rate: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Mean time per call added over `direct` in the same grid cell, µs (clients / rate).
    pub added_us: f64,
    /// CPU time per call of the router process, µs (0 for direct).
    pub router_cpu_us: f64,
}

struct Router {
    process: ChildProcess,
    listen: String,
}

/// A process listening on `addr`, once it accepts connections.
async fn wait_listening(process: &mut ChildProcess, addrs: &[String]) -> anyhow::Result<()> {
    for _ in 0..200 {
        process.check_alive()?;
        let mut all = true;
        for a in addrs {
            all &= tokio::net::TcpStream::connect(a.as_str()).await.is_ok();
        }
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("nothing listens on {addrs:?} after 5 s")
}

fn port() -> anyhow::Result<String> {
    Ok(format!("127.0.0.1:{}", procs::free_port()?))
}

fn quiet(mut command: Command) -> Command {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

async fn install(table: &str, destination: &str) -> anyhow::Result<()> {
    let channel = endpoint(table, Duration::from_secs(5))
        .map_err(anyhow::Error::msg)?
        .connect()
        .await
        .with_context(|| format!("cannot reach the table service at {table}"))?;
    let msg = EdgeRouterClient::new(channel)
        .configure(EdgeRouterConf {
            action: Action::Change as i32,
            lambda: LAMBDA.into(),
            destination: destination.into(),
            weight: 1.0,
            r#final: true,
        })
        .await
        .context("Configure failed")?
        .into_inner()
        .msg;
    if msg.starts_with("Error") {
        bail!("the router at {table} refused the entry: {msg}");
    }
    Ok(())
}

async fn start_computer(
    options: &PeerOptions,
    computer: Computer,
) -> anyhow::Result<(ChildProcess, String)> {
    match computer {
        Computer::Ours => {
            let answer = procs::start_answerers(&options.exe, 1, false)?;
            let address = answer.addresses[0].clone();
            Ok((answer.process, address))
        }
        Computer::Soe => {
            let conf = options.out.join("soe-computer.json");
            std::fs::write(&conf, SOE_COMPUTER_JSON)
                .with_context(|| format!("cannot write {}", conf.display()))?;
            let (listen, util) = (port()?, port()?);
            let mut command = quiet(Command::new(options.soe_bin.join("edgecomputer")));
            command
                .args([
                    "--server-endpoint",
                    &listen,
                    "--utilization-endpoint",
                    &util,
                ])
                .arg("--conf")
                .arg(format!("type=file,path={}", conf.display()));
            let mut process = ChildProcess::spawn(command, "the original's edgecomputer")?;
            wait_listening(&mut process, std::slice::from_ref(&listen)).await?;
            Ok((process, listen))
        }
    }
}

/// One processor of huge speed and one container of 64 workers: a call costs ~0.
const SOE_COMPUTER_JSON: &str = r#"{
  "version": "1.0",
  "processors": [{"name": "cpu", "type": "GenericCpu", "speed": 1e15, "memory": 500e9, "cores": 16}],
  "containers": [{"name": "c0", "processor": "cpu", "num-workers": 64,
    "lambda": {"name": "clambda0", "output-type": "copy-input", "requirements": "proportional",
               "op-coeff": 1, "op-offset": 1, "mem-coeff": 0, "mem-offset": 0}}]
}
"#;

async fn start_router(
    options: &PeerOptions,
    target: Target,
    computer: &str,
) -> anyhow::Result<Router> {
    let (listen, table) = (port()?, port()?);
    let mut process = match target {
        Target::Direct => unreachable!("no router"),
        Target::Soe => {
            let mut command = quiet(Command::new(options.soe_bin.join("edgerouter")));
            command.args([
                "--server-endpoint",
                &listen,
                "--configuration-endpoint",
                &table,
                "--table-conf",
                "type=round-robin",
            ]);
            ChildProcess::spawn(command, "the original's edgerouter")?
        }
        Target::Ours(threads) => {
            let mut command = quiet(Command::new(&options.exe));
            command
                .args(["--log", "warn", "router", "--policy", "rr"])
                .args(["--listen", &listen, "--table-listen", &table])
                .arg("--threads")
                .arg(threads.to_string());
            ChildProcess::spawn(command, format!("lambdaroute router --threads {threads}"))?
        }
    };
    wait_listening(&mut process, &[listen.clone(), table.clone()]).await?;
    install(&table, computer).await?;
    Ok(Router { process, listen })
}

/// One window of the original's `edgeclient`: it runs warm-up + duration, rounded up to whole
/// seconds (all it takes); the calls whose time stamp falls in the window count.
async fn soe_window(
    options: &PeerOptions,
    target: &str,
    clients: usize,
    file: &Path,
) -> anyhow::Result<Measured> {
    let total = options.warmup + options.duration;
    let mut command = quiet(Command::new(options.soe_bin.join("edgeclient")));
    command
        .args(["--server-endpoints", target, "--lambda", LAMBDA])
        .arg("--num-threads")
        .arg(clients.to_string())
        .arg("--sizes")
        .arg(options.input_bytes.to_string())
        // edgeclient takes whole seconds: it runs at least the window, the rest is not counted.
        .arg("--duration")
        .arg(format!("{:.0}", total.as_secs_f64().ceil().max(1.0)))
        .arg("--output-file")
        .arg(file);
    let process = ChildProcess::spawn(command, "the original's edgeclient")?;
    tokio::task::spawn_blocking(move || process.wait_success()).await??;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let (from, until) = (options.warmup.as_secs_f64(), total.as_secs_f64());
    let mut latencies_ns = Vec::new();
    let mut all_calls = 0u64;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(t), Some(latency)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(t), Ok(latency)) = (t.parse::<f64>(), latency.parse::<f64>()) else {
            continue;
        };
        all_calls += 1;
        if t >= from && t < until {
            latencies_ns.push((latency * 1e9).min(f64::from(u32::MAX)) as u32);
        }
    }
    latencies_ns.sort_unstable();
    Ok(Measured {
        calls: latencies_ns.len() as u64,
        seconds: options.duration.as_secs_f64(),
        latencies_ns,
        all_calls,
        ..Measured::default()
    })
}

async fn ours_window(
    options: &PeerOptions,
    target: &str,
    clients: usize,
) -> anyhow::Result<Measured> {
    load::run(Load {
        target: target.into(),
        lambdas: Arc::from(vec![LAMBDA.to_string()]),
        pick: Pick::Random,
        clients,
        warmup: options.warmup,
        duration: Some(options.duration),
        max_calls: None,
        input: "A".repeat(options.input_bytes),
        seed: 1,
    })
    .await
}

/// Run the grid, write `peer.csv` under `options.out`, return the rows.
pub async fn run(options: &PeerOptions) -> anyhow::Result<Vec<PeerRow>> {
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("cannot create {}", options.out.display()))?;
    if let Some(why) = PeerOptions::unavailable(&options.soe_bin) {
        bail!("the original's binaries cannot run: {why}");
    }
    let mut targets = vec![Target::Direct, Target::Soe];
    targets.extend(options.threads.iter().map(|&t| Target::Ours(t)));
    let scratch = options.out.join("edgeclient.txt");
    let mut rows = Vec::new();
    for computer in [Computer::Soe, Computer::Ours] {
        let (mut computer_process, address) = start_computer(options, computer).await?;
        let mut routers = Vec::new();
        for &target in &targets[1..] {
            routers.push(start_router(options, target, &address).await?);
        }
        for driver in [Driver::Soe, Driver::Ours] {
            for (c, &clients) in options.clients.iter().enumerate() {
                let mut measured: Vec<Measured> = vec![Measured::default(); targets.len()];
                let mut cpu = vec![0.0f64; targets.len()];
                let mut all_calls = vec![0u64; targets.len()];
                for rep in 0..options.repeats.max(1) {
                    for k in 0..targets.len() {
                        // Rotate the order from one window set to the next.
                        let i = (k + rep + c) % targets.len();
                        let (address, router) = match targets[i] {
                            Target::Direct => (address.as_str(), None),
                            _ => {
                                let r = &routers[i - 1];
                                (r.listen.as_str(), Some(&r.process))
                            }
                        };
                        let before = router.map(ChildProcess::cpu_seconds).transpose()?;
                        let m = match driver {
                            Driver::Soe => soe_window(options, address, clients, &scratch).await?,
                            Driver::Ours => ours_window(options, address, clients).await?,
                        };
                        if let (Some(r), Some(before)) = (router, before) {
                            cpu[i] += r.cpu_seconds()? - before;
                        }
                        // Every call made, warm-up included, as the CPU time counts them.
                        all_calls[i] += m.all_calls.max(m.calls);
                        measured[i].merge(m);
                    }
                }
                computer_process.check_alive()?;
                let direct_time = clients as f64 / measured[0].rate().max(f64::MIN_POSITIVE);
                for (i, m) in measured.iter().enumerate() {
                    let rate = m.rate();
                    let added = if i == 0 || rate == 0.0 {
                        0.0
                    } else {
                        (clients as f64 / rate - direct_time) * 1e6
                    };
                    let row = PeerRow {
                        computer: computer_name(computer),
                        driver: driver_name(driver),
                        target: targets[i].name(),
                        clients,
                        calls: m.calls,
                        seconds: m.seconds,
                        rate,
                        p50_us: m.percentile_us(50.0),
                        p99_us: m.percentile_us(99.0),
                        added_us: added,
                        router_cpu_us: if all_calls[i] > 0 {
                            cpu[i] * 1e6 / all_calls[i] as f64
                        } else {
                            0.0
                        },
                    };
                    info!(?row, "peer point");
                    rows.push(row);
                }
            }
        }
        for mut r in routers {
            r.process.check_alive()?;
        }
    }
    let csv = options.out.join("peer.csv");
    let mut writer =
        csv::Writer::from_path(&csv).with_context(|| format!("cannot write {}", csv.display()))?;
    for row in &rows {
        writer.serialize(row)?;
    }
    writer.flush()?;
    Ok(rows)
}

/// The side-by-side table: per computer, driver and clients, calls/s (p50 / p99 µs) per
/// target, then lambdaroute / original ratios.
pub fn summary(options: &PeerOptions, rows: &[PeerRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "side by side with the original (windows of {} s after {} s warm-up, {} per point; \
         round robin, 1 entry); calls/s (p50 / p99 ms), +µs per call over direct",
        options.duration.as_secs_f64(),
        options.warmup.as_secs_f64(),
        options.repeats.max(1),
    );
    let mut keys: Vec<(&str, &str, usize)> = Vec::new();
    for r in rows {
        let k = (r.computer, r.driver, r.clients);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (computer, driver, clients) in keys {
        let cell: Vec<&PeerRow> = rows
            .iter()
            .filter(|r| r.computer == computer && r.driver == driver && r.clients == clients)
            .collect();
        let _ = writeln!(out, "{computer}, {driver}, {clients} client(s):");
        let soe = cell.iter().find(|r| r.target == "soe-router");
        for r in &cell {
            let _ = write!(
                out,
                "  {:16} {:8.0}/s ({:.2} / {:.2} ms)",
                r.target,
                r.rate,
                r.p50_us / 1e3,
                r.p99_us / 1e3
            );
            if r.target != "direct" {
                let _ = write!(
                    out,
                    " +{:.0} µs, router CPU {:.0} µs/call",
                    r.added_us, r.router_cpu_us
                );
            }
            if let (Some(soe), true) = (soe, r.target.starts_with("lambdaroute")) {
                let _ = write!(
                    out,
                    "; vs original: rate {:.2}x, added {:.2}x, p99 {:.2}x",
                    r.rate / soe.rate.max(f64::MIN_POSITIVE),
                    r.added_us / soe.added_us.max(f64::MIN_POSITIVE),
                    r.p99_us / soe.p99_us.max(f64::MIN_POSITIVE),
                );
            }
            let _ = writeln!(out);
        }
    }
    out
}
