//! `lambdaroute bench`: the router's dispatch rate versus table size, against the gRPC floor,
//! and its memory (method: docs/benchmarks.md). Writes `bench.csv` and `memory.csv` under
//! `--out` and prints a summary; `make bench` then draws the PNG.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use lambdaroute_core::policy::PolicyKind;
use lambdaroute_node::bench::{self, BenchOptions, Mode, Shape};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Directory of the results (bench.csv, memory.csv).
    #[arg(long, default_value = "results/bench")]
    out: PathBuf,
    /// A tiny run that checks the harness (sizes 0,40; 1 and 2 clients; 0.1 s per point;
    /// 2,000 calls of memory run); the other options still override it.
    #[arg(long)]
    smoke: bool,
    /// Table sizes in entries (0: the 1-entry table, the smallest that dispatches a call).
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// Numbers of concurrent closed-loop clients.
    #[arg(long, value_delimiter = ',')]
    clients: Option<Vec<usize>>,
    /// Policies (rp, li, rr, p2c, pf[:alpha:beta]).
    #[arg(long, value_delimiter = ',')]
    policies: Option<Vec<PolicyKind>>,
    /// Router modes: fake (answers after the decision), normal (forwards).
    #[arg(long, value_delimiter = ',')]
    modes: Option<Vec<ModeArg>>,
    /// Table shapes: lambdas (entries/10 lambdas x 10 destinations), destinations (1 lambda x
    /// entries destinations; fake mode only).
    #[arg(long, value_delimiter = ',')]
    shapes: Option<Vec<ShapeArg>>,
    /// Destinations per lambda in the lambdas shape (= answering servers).
    #[arg(long)]
    per_lambda: Option<usize>,
    /// Time measured per point (`2s`, `500ms`, or seconds).
    #[arg(long, value_parser = crate::duration::parse)]
    duration: Option<Duration>,
    /// Warm-up per window, not measured (`1s`, `500ms`, or seconds).
    #[arg(long, value_parser = crate::duration::parse)]
    warmup: Option<Duration>,
    /// Windows per point, alternating with the windows of its pair (and of the floor).
    #[arg(long)]
    repeats: Option<usize>,
    /// Calls of the memory run (0: skip it).
    #[arg(long)]
    memory_calls: Option<u64>,
    /// Entries of the memory run's table.
    #[arg(long)]
    memory_entries: Option<usize>,
    /// Policy of the memory run.
    #[arg(long)]
    memory_policy: Option<PolicyKind>,
    /// Clients of the memory run.
    #[arg(long)]
    memory_clients: Option<usize>,
    /// Bytes of input per call.
    #[arg(long)]
    input_bytes: Option<usize>,
    /// Pin the router and the answering servers to CPU 0 and the load generator to CPU 1
    /// (taskset); by default all share both CPUs.
    #[arg(long)]
    pin: bool,
    /// `--threads` of the routers under test (default: 0, one worker per CPU, in fake mode, as
    /// the bare gRPC server it is compared with; the router's own default, 1, in normal mode).
    #[arg(long, value_name = "N")]
    router_threads: Option<usize>,
    /// Instead of the table-size grid: side by side with the original prototype's router
    /// (serverlessonedge), whose binaries (edgerouter, edgecomputer, edgeclient) are in DIR,
    /// or in $SOE_BIN when DIR is not given; skipped, saying so, when neither is. Uses
    /// --clients (default 1,5), --duration (5 s), --warmup, --repeats, --input-bytes, --out,
    /// and --router-threads for lambdaroute's routers (default: 1 and 0); --smoke: short windows.
    #[arg(long, value_name = "DIR")]
    #[allow(clippy::option_option)]
    peer: Option<Option<PathBuf>>,
    /// Internal: run N answering servers, print their addresses, serve until stdin closes.
    #[arg(long, hide = true, value_name = "N")]
    serve_answer: Option<usize>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Fake,
    Normal,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ShapeArg {
    Lambdas,
    Destinations,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(count) = args.serve_answer {
        return bench::answer::serve_stdio(count).await;
    }
    let exe = std::env::current_exe().context("cannot find the lambdaroute binary")?;
    if let Some(dir) = args.peer.clone() {
        return run_peer(args, exe, dir).await;
    }
    let mut options = if args.smoke {
        BenchOptions::smoke(exe, args.out)
    } else {
        BenchOptions::full(exe, args.out)
    };
    if let Some(sizes) = args.sizes {
        options.sizes = sizes;
    }
    if let Some(clients) = args.clients {
        anyhow::ensure!(clients.iter().all(|&c| c > 0), "--clients must be > 0");
        options.clients = clients;
    }
    if let Some(policies) = args.policies {
        options.policies = policies;
    }
    if let Some(modes) = args.modes {
        options.modes = modes
            .into_iter()
            .map(|m| match m {
                ModeArg::Fake => Mode::Fake,
                ModeArg::Normal => Mode::Normal,
            })
            .collect();
    }
    if let Some(shapes) = args.shapes {
        options.shapes = shapes
            .into_iter()
            .map(|s| match s {
                ShapeArg::Lambdas => Shape::Lambdas,
                ShapeArg::Destinations => Shape::Destinations,
            })
            .collect();
    }
    if let Some(per_lambda) = args.per_lambda {
        options.per_lambda = per_lambda;
    }
    if let Some(duration) = args.duration {
        options.duration = duration;
    }
    options.router_threads = args.router_threads;
    if let Some(warmup) = args.warmup {
        options.warmup = warmup;
    }
    if let Some(repeats) = args.repeats {
        options.repeats = repeats.max(1);
    }
    if let Some(calls) = args.memory_calls {
        options.memory_calls = calls;
    }
    if let Some(entries) = args.memory_entries {
        options.memory_entries = entries;
    }
    if let Some(policy) = args.memory_policy {
        options.memory_policy = policy;
    }
    if let Some(clients) = args.memory_clients {
        options.memory_clients = clients.max(1);
    }
    if let Some(bytes) = args.input_bytes {
        options.input_bytes = bytes;
    }
    options.pin = args.pin;

    let results = bench::run(&options).await?;
    print!("{}", bench::summary(&options, &results));
    println!(
        "\nwrote {} and {}",
        results.csv.display(),
        results.memory_csv.display()
    );
    Ok(())
}

async fn run_peer(args: BenchArgs, exe: PathBuf, dir: Option<PathBuf>) -> anyhow::Result<()> {
    use lambdaroute_node::bench::peer::{self, PeerOptions};
    let soe_bin = if let Some(dir) = dir {
        dir
    } else {
        match std::env::var_os(peer::SOE_BIN_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => {
                println!(
                    "peer benchmark SKIPPED: no directory of the original's binaries (give \
                     --peer DIR or set {}=DIR)",
                    peer::SOE_BIN_ENV
                );
                return Ok(());
            }
        }
    };
    if let Some(why) = PeerOptions::unavailable(&soe_bin) {
        println!("peer benchmark SKIPPED: {why}");
        return Ok(());
    }
    let mut options = if args.smoke {
        PeerOptions::smoke(exe, soe_bin, args.out)
    } else {
        PeerOptions::full(exe, soe_bin, args.out)
    };
    if let Some(clients) = args.clients {
        anyhow::ensure!(clients.iter().all(|&c| c > 0), "--clients must be > 0");
        options.clients = clients;
    }
    if let Some(duration) = args.duration {
        options.duration = duration;
    }
    if let Some(warmup) = args.warmup {
        options.warmup = warmup;
    }
    if let Some(repeats) = args.repeats {
        options.repeats = repeats.max(1);
    }
    if let Some(bytes) = args.input_bytes {
        options.input_bytes = bytes;
    }
    if let Some(threads) = args.router_threads {
        options.threads = vec![threads];
    }
    let rows = peer::run(&options).await?;
    print!("{}", peer::summary(&options, &rows));
    println!("\nwrote {}", options.out.join("peer.csv").display());
    Ok(())
}
