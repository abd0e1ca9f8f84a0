//! `lambdaroute bench`: the router's dispatch rate and latency versus its table size, against
//! the gRPC floor, and its memory (issue 6; method and results in docs/benchmarks.md).
//!
//! Everything runs on loopback. The router under test and the answering servers are child
//! processes started from the `lambdaroute` binary (`exe`), so that the router's resident
//! memory and CPU time are its own; this process is the load generator ([`load`]).
//!
//! - Series: the router in fake mode (it answers right after the decision) and in normal mode
//!   (it forwards to answering servers that answer at once, [`answer`]), per policy, per table
//!   size, per number of closed-loop clients.
//! - Table shapes: `lambdas` = size/10 lambdas x 10 destinations, the 10 destinations being
//!   the answering servers (10 ports of one child process); every call names a lambda drawn
//!   at random, so the whole table is in use. `destinations` = 1 lambda x size destinations
//!   whose names are distinct loopback addresses where nothing listens (127.a.b.c:9): fake
//!   mode only, because in normal mode every destination name is an HTTP/2 connection of its
//!   own, and 100,000 of them would measure connection setup and socket memory, not dispatch.
//! - Size 0 is the smallest table that lets a call be dispatched: 1 lambda x 1 destination.
//! - Before the points of a size, every entry is called once (the e-table probes each new
//!   entry once before its policy ranks it), so the points measure the policies' steady state.
//! - Floor: the same closed-loop load sent straight to an answering server, measured before
//!   each policy's series so that router and floor see the same machine state.
//! - Memory: a router in normal mode with `memory_entries` entries: RSS after start, after
//!   installing, after a warm-up, then after each tenth of `memory_calls` calls.

pub mod answer;
pub mod load;
pub mod peer;
pub mod procs;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use lambdaroute_core::policy::PolicyKind;
use lambdaroute_proto::uiiit::EdgeRouterConf;
use lambdaroute_proto::uiiit::edge_router_client::EdgeRouterClient;
use lambdaroute_proto::uiiit::edge_router_conf::Action;
use serde::Serialize;
use tracing::info;

use crate::destinations::endpoint;
use load::{Load, Measured, Pick};
use procs::{AnswerProcess, ChildProcess, RouterProcess};

/// The router's mode in a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// Answers right after the decision (`lambdaroute router --fake`).
    Fake,
    /// Forwards to an answering server.
    Normal,
}

impl Mode {
    /// The mode as `bench.csv` writes it: `fake` or `normal`.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Fake => "fake",
            Mode::Normal => "normal",
        }
    }
}

/// How a table of n entries is spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    /// n / per_lambda lambdas x per_lambda destinations (real answering servers).
    Lambdas,
    /// 1 lambda x n destinations (fake mode only).
    Destinations,
}

impl Shape {
    /// The shape as `bench.csv` writes it: `lambdas` or `destinations`.
    pub const fn name(self) -> &'static str {
        match self {
            Shape::Lambdas => "lambdas",
            Shape::Destinations => "destinations",
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The `lambdaroute` binary, started for the router and the answering servers.
    pub exe: PathBuf,
    /// Directory of `bench.csv` and `memory.csv`.
    pub out: PathBuf,
    /// Table sizes (entries); 0 means 1 entry.
    pub sizes: Vec<usize>,
    /// Numbers of concurrent closed-loop clients.
    pub clients: Vec<usize>,
    /// Policies of the router under test, one series each.
    pub policies: Vec<PolicyKind>,
    /// Router modes to measure (normal mode is never run with the `destinations` shape).
    pub modes: Vec<Mode>,
    /// Table shapes to measure.
    pub shapes: Vec<Shape>,
    /// Destinations per lambda in the `lambdas` shape (= answering servers).
    pub per_lambda: usize,
    /// Measuring window of one point.
    pub duration: Duration,
    /// Warm-up of one window (not counted).
    pub warmup: Duration,
    /// Windows per point, alternating with its pair's.
    pub repeats: usize,
    /// Calls of the memory run (0: no memory run).
    pub memory_calls: u64,
    /// Table size of the memory run.
    pub memory_entries: usize,
    /// Policy of the router of the memory run.
    pub memory_policy: PolicyKind,
    /// Concurrent closed-loop clients of the memory run.
    pub memory_clients: usize,
    /// Size of each call's input, in bytes.
    pub input_bytes: usize,
    /// Router and answering servers on CPU 0, load generator on CPU 1.
    pub pin: bool,
    /// `--threads` of the routers under test, both modes; `None`: see [`BenchOptions::threads_for`].
    pub router_threads: Option<usize>,
    /// Seed of the routers' policies and of the load generator's random lambda picks.
    pub seed: u64,
}

impl BenchOptions {
    /// The full run of `make bench`.
    pub fn full(exe: PathBuf, out: PathBuf) -> Self {
        Self {
            exe,
            out,
            sizes: vec![0, 2_000, 4_000, 10_000, 100_000],
            clients: vec![1, 2, 5, 10],
            policies: PolicyKind::ALL.to_vec(),
            modes: vec![Mode::Fake, Mode::Normal],
            shapes: vec![Shape::Lambdas, Shape::Destinations],
            per_lambda: 10,
            duration: Duration::from_millis(400),
            warmup: Duration::from_millis(100),
            repeats: 1,
            memory_calls: 1_000_000,
            memory_entries: 100_000,
            memory_policy: PolicyKind::RandomProportional,
            memory_clients: 10,
            input_bytes: 100,
            pin: false,
            router_threads: None,
            seed: 1,
        }
    }

    /// A tiny run that checks the harness works (`make test`): seconds, not minutes.
    pub fn smoke(exe: PathBuf, out: PathBuf) -> Self {
        Self {
            sizes: vec![0, 40],
            clients: vec![1, 2],
            duration: Duration::from_millis(100),
            warmup: Duration::from_millis(20),
            memory_calls: 2_000,
            memory_entries: 40,
            memory_clients: 2,
            ..Self::full(exe, out)
        }
    }

    /// `--threads` of a router in `mode`. Unless given: in fake mode one worker per CPU (0),
    /// because the bare gRPC server of the floor runs on such a runtime and fake mode asks what
    /// the decision adds to gRPC; in normal mode the router's own default, as deployed.
    pub fn threads_for(&self, mode: Mode) -> usize {
        self.router_threads.unwrap_or(match mode {
            Mode::Fake => 0,
            Mode::Normal => crate::router::DEFAULT_THREADS,
        })
    }

    /// The (mode, shape) series to run, in order.
    pub fn series(&self) -> Vec<(Mode, Shape)> {
        let mut series = Vec::new();
        for &shape in &self.shapes {
            for &mode in &self.modes {
                if !(mode == Mode::Normal && shape == Shape::Destinations) {
                    series.push((mode, shape));
                }
            }
        }
        series
    }
}

/// One point of `bench.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// "router" or "floor" (straight to an answering server).
    pub target: &'static str,
    /// "fake", "normal", or "direct" for the floor.
    pub mode: &'static str,
    /// "lambdas", "destinations", or "-" for the floor.
    pub shape: &'static str,
    /// The series (mode/shape) the point was measured in; the floor's windows are
    /// interleaved with that series' first pair.
    pub series: String,
    /// The router's policy; for the floor, the policy series it was measured before.
    pub policy: String,
    /// Nominal table size (0 = the 1-entry table).
    pub entries: usize,
    /// Entries actually installed.
    pub installed: usize,
    /// Lambdas of the table (0 for the floor).
    pub lambdas: usize,
    /// Destinations per lambda (0 for the floor).
    pub destinations: usize,
    /// The size of the table measured in alternation with this point: the smallest table's
    /// router is measured next to each larger one, so that each ratio compares neighbours.
    pub pair: usize,
    /// Concurrent closed-loop clients.
    pub clients: usize,
    /// Successful calls in the windows.
    pub calls: u64,
    /// Calls in the windows that failed or answered something other than "OK".
    pub errors: u64,
    /// Length of the windows, in seconds.
    pub seconds: f64,
    /// Successful calls per second.
    pub rate: f64,
    /// Median latency of the successful calls, in µs.
    pub p50_us: f64,
    /// 99th-percentile latency of the successful calls, in µs.
    pub p99_us: f64,
    /// CPU time per call (warm-up included) of the router process (the answering servers'
    /// for the floor), of the answering servers (normal mode), of the load generator.
    pub router_cpu_us: f64,
    /// CPU time per call of the answering servers, in µs (about 0 in fake mode: no call reaches them).
    pub answer_cpu_us: f64,
    /// CPU time per call of the load generator (this process), in µs.
    pub load_cpu_us: f64,
    /// Resident memory of the router after the point (of the answering servers for the floor).
    pub rss_kb: u64,
}

/// The columns of `bench.csv`, in order.
pub const CSV_COLUMNS: [&str; 21] = [
    "target",
    "mode",
    "shape",
    "series",
    "policy",
    "entries",
    "installed",
    "lambdas",
    "destinations",
    "pair",
    "clients",
    "calls",
    "errors",
    "seconds",
    "rate",
    "p50_us",
    "p99_us",
    "router_cpu_us",
    "answer_cpu_us",
    "load_cpu_us",
    "rss_kb",
];

/// One sample of `memory.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct MemorySample {
    /// The router's policy.
    pub policy: String,
    /// Table size of the memory run, in entries (also before they are installed).
    pub entries: usize,
    /// "started", "installed", "warm", "calls" (after `calls` calls since warm).
    pub phase: &'static str,
    /// Calls since the end of the warm-up.
    pub calls: u64,
    /// Resident memory of the router, in KiB.
    pub rss_kb: u64,
    /// Calls per second of the chunk that ended here (0 before the calls).
    pub rate: f64,
}

/// Everything a run produced.
#[derive(Clone, Debug, Default)]
pub struct BenchResults {
    /// The points of `bench.csv`, in the order they were measured.
    pub rows: Vec<Row>,
    /// The samples of `memory.csv` (none without a memory run).
    pub memory: Vec<MemorySample>,
    /// Path of the `bench.csv` written.
    pub csv: PathBuf,
    /// Path of the `memory.csv` written.
    pub memory_csv: PathBuf,
}

/// Entries of a table shape at nominal size `size`: (lambdas, destinations per lambda).
fn layout(shape: Shape, size: usize, per_lambda: usize) -> (usize, usize) {
    let size = size.max(1);
    match shape {
        Shape::Lambdas => (size.div_ceil(per_lambda), size.min(per_lambda)),
        Shape::Destinations => (1, size),
    }
}

fn lambda_name(i: usize) -> String {
    format!("f{i}")
}

/// The i-th destination of the `destinations` shape: a distinct loopback address where
/// nothing listens (fake mode never calls it; the table service's connection attempt is
/// refused at once).
fn silent_destination(i: usize) -> String {
    format!("127.{}.{}.{}:9", 1 + (i >> 16), (i >> 8) & 0xff, i & 0xff)
}

/// Grows a router's table, keeping what is installed.
struct Installer {
    client: EdgeRouterClient<tonic::transport::Channel>,
    shape: Shape,
    per_lambda: usize,
    answerers: Vec<String>,
    /// (lambdas, destinations per lambda) installed so far.
    installed: (usize, usize),
}

impl Installer {
    async fn connect(
        router: &RouterProcess,
        shape: Shape,
        per_lambda: usize,
        answerers: &[String],
    ) -> anyhow::Result<Self> {
        let channel = endpoint(&router.table_listen.to_string(), Duration::from_secs(5))
            .map_err(anyhow::Error::msg)?
            .connect()
            .await
            .context("cannot reach the router's table service")?;
        Ok(Self {
            client: EdgeRouterClient::new(channel),
            shape,
            per_lambda,
            answerers: answerers.to_vec(),
            installed: (0, 0),
        })
    }

    fn destination(&self, d: usize) -> String {
        match self.shape {
            Shape::Lambdas => self.answerers[d % self.answerers.len()].clone(),
            Shape::Destinations => silent_destination(d),
        }
    }

    /// Install what `size` needs beyond what is there (final entries, weight 1.0, as the flat
    /// installer does), 64 Configure calls in flight.
    async fn grow_to(&mut self, size: usize) -> anyhow::Result<(usize, usize)> {
        let (lambdas, per) = layout(self.shape, size, self.per_lambda);
        let (old_lambdas, old_per) = self.installed;
        let mut confs = Vec::new();
        for l in 0..lambdas {
            for d in 0..per {
                if l < old_lambdas && d < old_per {
                    continue;
                }
                confs.push(EdgeRouterConf {
                    action: Action::Change as i32,
                    lambda: lambda_name(l),
                    destination: self.destination(d),
                    weight: 1.0,
                    r#final: true,
                });
            }
        }
        let client = self.client.clone();
        let mut replies = futures::stream::iter(confs)
            .map(|conf| {
                let mut client = client.clone();
                async move { client.configure(conf).await }
            })
            .buffer_unordered(64);
        while let Some(reply) = replies.next().await {
            let msg = reply.context("Configure failed")?.into_inner().msg;
            if msg.starts_with("Error") {
                bail!("the router refused an entry: {msg}");
            }
        }
        self.installed = (lambdas.max(old_lambdas), per.max(old_per));
        Ok((lambdas, per))
    }
}

/// Run the whole benchmark and write `bench.csv` and `memory.csv` under `options.out`.
pub async fn run(options: &BenchOptions) -> anyhow::Result<BenchResults> {
    anyhow::ensure!(!options.clients.is_empty(), "no client count given");
    anyhow::ensure!(!options.sizes.is_empty(), "no table size given");
    anyhow::ensure!(options.per_lambda > 0, "--per-lambda must be > 0");
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("cannot create {}", options.out.display()))?;
    if options.pin {
        procs::pin_self()?;
    }
    let mut sizes = options.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let max_clients = options.clients.iter().copied().max().unwrap_or(1);
    let input = "A".repeat(options.input_bytes);
    let answer = procs::start_answerers(&options.exe, options.per_lambda, options.pin)?;
    info!(servers = ?answer.addresses, "answering servers ready");

    let mut results = BenchResults::default();
    let base_size = sizes[0];
    for &policy in &options.policies {
        for (mode, shape) in options.series() {
            let series = format!("{}/{}", mode.name(), shape.name());
            let policy_text = policy.to_string();
            let start = || {
                procs::start_router(
                    &options.exe,
                    &policy_text,
                    mode == Mode::Fake,
                    options.seed,
                    options.pin,
                    options.threads_for(mode),
                )
            };
            let mut base = SeriesRouter::start(start().await?, shape, options, &answer).await?;
            base.grow_to(base_size, max_clients, &input).await?;
            let mut sized = SeriesRouter::start(start().await?, shape, options, &answer).await?;
            let pairs: Vec<usize> = match &sizes[1..] {
                [] => vec![base_size],
                bigger => bigger.to_vec(),
            };
            for (pair_index, &size) in pairs.iter().enumerate() {
                if size != base_size {
                    sized.grow_to(size, max_clients, &input).await?;
                }
                for (client_index, &clients) in options.clients.iter().enumerate() {
                    let load = |target: String, lambdas: &Arc<[String]>| Load {
                        target,
                        lambdas: Arc::clone(lambdas),
                        pick: Pick::Random,
                        clients,
                        warmup: options.warmup,
                        duration: Some(options.duration),
                        max_calls: None,
                        input: input.clone(),
                        seed: options.seed,
                    };
                    // The floor joins the first pair of each series, so that every ratio
                    // compares windows measured next to each other.
                    let with_floor = pair_index == 0;
                    let mut floor = Point::default();
                    let mut small = Point::default();
                    let mut big = Point::default();
                    for repeat in 0..options.repeats.max(1) {
                        // Alternate the order (A B, then B A) so that a drift of the machine
                        // weighs on both sides alike.
                        let forward = (repeat + client_index) % 2 == 0;
                        let order: [u8; 3] = if forward { [0, 1, 2] } else { [2, 1, 0] };
                        for which in order {
                            match which {
                                0 if with_floor => {
                                    let floor_lambda: Arc<[String]> =
                                        Arc::from(vec![lambda_name(0)]);
                                    floor
                                        .add(
                                            load(answer.addresses[0].clone(), &floor_lambda),
                                            None,
                                            &answer.process,
                                        )
                                        .await?
                                }
                                1 => {
                                    small
                                        .add(
                                            load(base.target(), &base.names),
                                            Some(&base.router.process),
                                            &answer.process,
                                        )
                                        .await?
                                }
                                2 if size != base_size => {
                                    big.add(
                                        load(sized.target(), &sized.names),
                                        Some(&sized.router.process),
                                        &answer.process,
                                    )
                                    .await?
                                }
                                _ => {}
                            }
                        }
                    }
                    let describe = Describe {
                        series: &series,
                        policy,
                        clients,
                        pair: size,
                    };
                    if with_floor {
                        let rss = answer.process.rss_kb()?;
                        results
                            .rows
                            .push(describe.row("floor", "direct", "-", None, floor, rss));
                    }
                    base.router.process.check_alive()?;
                    let rss = base.router.process.rss_kb()?;
                    results.rows.push(describe.row(
                        "router",
                        mode.name(),
                        shape.name(),
                        Some(&base),
                        small,
                        rss,
                    ));
                    if size != base_size {
                        sized.router.process.check_alive()?;
                        let rss = sized.router.process.rss_kb()?;
                        results.rows.push(describe.row(
                            "router",
                            mode.name(),
                            shape.name(),
                            Some(&sized),
                            big,
                            rss,
                        ));
                    }
                }
            }
        }
    }

    if options.memory_calls > 0 {
        results.memory = memory_run(options, &answer, &input).await?;
    }
    drop(answer);

    results.csv = options.out.join("bench.csv");
    write_csv(&results.csv, &results.rows)?;
    results.memory_csv = options.out.join("memory.csv");
    write_csv(&results.memory_csv, &results.memory)?;
    Ok(results)
}

/// A router of a series with its table, grown on demand.
struct SeriesRouter {
    router: RouterProcess,
    installer: Installer,
    /// Nominal size, lambdas, destinations per lambda of the table now.
    size: usize,
    layout: (usize, usize),
    names: Arc<[String]>,
}

impl SeriesRouter {
    async fn start(
        router: RouterProcess,
        shape: Shape,
        options: &BenchOptions,
        answer: &AnswerProcess,
    ) -> anyhow::Result<Self> {
        let installer =
            Installer::connect(&router, shape, options.per_lambda, &answer.addresses).await?;
        Ok(Self {
            router,
            installer,
            size: 0,
            layout: (0, 0),
            names: Arc::from(Vec::new()),
        })
    }

    fn target(&self) -> String {
        self.router.listen.to_string()
    }

    /// Grow the table to `size` and call every entry once.
    async fn grow_to(&mut self, size: usize, clients: usize, input: &str) -> anyhow::Result<()> {
        let (lambdas, per) = self.installer.grow_to(size).await?;
        self.size = size;
        self.layout = (lambdas, per);
        self.names = (0..lambdas).map(lambda_name).collect();
        probe_every_entry(&self.router, &self.names, lambdas * per, clients, input).await
    }
}

/// The windows of one point, summed.
#[derive(Default)]
struct Point {
    measured: Measured,
    /// CPU seconds of the router (the answering servers for the floor), the answering servers,
    /// the load generator.
    cpu: (f64, f64, f64),
}

impl Point {
    /// Run one window of `load` and add it.
    async fn add(
        &mut self,
        load: Load,
        router: Option<&ChildProcess>,
        answer: &ChildProcess,
    ) -> anyhow::Result<()> {
        let cpu_of = |p: Option<&ChildProcess>| p.map_or(Ok(0.0), ChildProcess::cpu_seconds);
        let own = std::process::id();
        let before = (
            cpu_of(router)?,
            answer.cpu_seconds()?,
            procs::cpu_seconds(own)?,
        );
        let measured = load::run(load).await?;
        let after = (
            cpu_of(router)?,
            answer.cpu_seconds()?,
            procs::cpu_seconds(own)?,
        );
        if let Some(error) = &measured.first_error {
            tracing::warn!(errors = measured.errors, %error, "calls failed");
        }
        self.cpu.0 += after.0 - before.0;
        self.cpu.1 += after.1 - before.1;
        self.cpu.2 += after.2 - before.2;
        self.measured.merge(measured);
        Ok(())
    }

    fn per_call_us(&self, seconds: f64) -> f64 {
        if self.measured.all_calls == 0 {
            0.0
        } else {
            seconds * 1e6 / self.measured.all_calls as f64
        }
    }
}

/// What the rows of one (series, policy, clients, pair) have in common.
struct Describe<'a> {
    series: &'a str,
    policy: PolicyKind,
    clients: usize,
    pair: usize,
}

impl Describe<'_> {
    fn row(
        &self,
        target: &'static str,
        mode: &'static str,
        shape: &'static str,
        router: Option<&SeriesRouter>,
        point: Point,
        rss_kb: u64,
    ) -> Row {
        let (entries, lambdas, per) =
            router.map_or((0, 0, 0), |r| (r.size, r.layout.0, r.layout.1));
        let m = &point.measured;
        let row = Row {
            target,
            mode,
            shape,
            series: self.series.to_owned(),
            policy: self.policy.to_string(),
            entries,
            installed: lambdas * per,
            lambdas,
            destinations: per,
            pair: self.pair,
            clients: self.clients,
            calls: m.calls,
            errors: m.errors,
            seconds: m.seconds,
            rate: m.rate(),
            p50_us: m.percentile_us(50.0),
            p99_us: m.percentile_us(99.0),
            router_cpu_us: point.per_call_us(if router.is_some() {
                point.cpu.0
            } else {
                point.cpu.1
            }),
            answer_cpu_us: point.per_call_us(point.cpu.1),
            load_cpu_us: point.per_call_us(point.cpu.2),
            rss_kb,
        };
        info!(
            series = %row.series,
            target_ = row.target,
            policy = %row.policy,
            entries = row.entries,
            clients = row.clients,
            rate = format!("{:.0}", row.rate),
            p50_us = format!("{:.0}", row.p50_us),
            p99_us = format!("{:.0}", row.p99_us),
            errors = row.errors,
            "point"
        );
        row
    }
}

/// Call every entry once (`entries` calls naming the lambdas in turn), so that the e-table's
/// probes of new entries are over before measuring; fails if any call fails.
async fn probe_every_entry(
    router: &RouterProcess,
    lambdas: &Arc<[String]>,
    entries: usize,
    clients: usize,
    input: &str,
) -> anyhow::Result<()> {
    let measured = load::run(Load {
        target: router.listen.to_string(),
        lambdas: Arc::clone(lambdas),
        pick: Pick::Sequence,
        clients,
        warmup: Duration::ZERO,
        duration: None,
        max_calls: Some(entries as u64),
        input: input.to_owned(),
        seed: 0,
    })
    .await?;
    if measured.errors > 0 {
        bail!(
            "{} of {} probe calls failed: {}",
            measured.errors,
            entries,
            measured.first_error.unwrap_or_default()
        );
    }
    Ok(())
}

/// The memory run: RSS of a normal-mode router with `memory_entries` entries, before and
/// after `memory_calls` calls, sampled every tenth.
async fn memory_run(
    options: &BenchOptions,
    answer: &AnswerProcess,
    input: &str,
) -> anyhow::Result<Vec<MemorySample>> {
    let policy = options.memory_policy;
    let entries = options.memory_entries;
    let mut samples = Vec::new();
    let mut sample = |phase, calls, rss_kb, rate| {
        info!(phase, calls, rss_kb, rate = format!("{rate:.0}"), "memory");
        samples.push(MemorySample {
            policy: policy.to_string(),
            entries,
            phase,
            calls,
            rss_kb,
            rate,
        });
    };
    let router = procs::start_router(
        &options.exe,
        &policy.to_string(),
        false,
        options.seed,
        options.pin,
        options.threads_for(Mode::Normal),
    )
    .await?;
    sample("started", 0, router.process.rss_kb()?, 0.0);
    let mut installer = Installer::connect(
        &router,
        Shape::Lambdas,
        options.per_lambda,
        &answer.addresses,
    )
    .await?;
    let (lambdas, per) = installer.grow_to(entries).await?;
    drop(installer);
    sample("installed", 0, router.process.rss_kb()?, 0.0);
    let names: Arc<[String]> = (0..lambdas).map(lambda_name).collect();
    probe_every_entry(
        &router,
        &names,
        lambdas * per,
        options.memory_clients,
        input,
    )
    .await?;
    // Warm-up: a tenth of the calls (at least every entry twice over), so that the allocator's
    // pools, the connections' buffers and the estimator state have reached their size.
    let chunk = (options.memory_calls / 10).max(1);
    let load = |calls| Load {
        target: router.listen.to_string(),
        lambdas: Arc::clone(&names),
        pick: Pick::Random,
        clients: options.memory_clients,
        warmup: Duration::ZERO,
        duration: None,
        max_calls: Some(calls),
        input: input.to_owned(),
        seed: options.seed,
    };
    let warm = load::run(load(chunk.max(2 * (lambdas * per) as u64))).await?;
    sample("warm", 0, router.process.rss_kb()?, warm.rate());
    let mut done = 0;
    while done < options.memory_calls {
        let calls = chunk.min(options.memory_calls - done);
        let measured = load::run(load(calls)).await?;
        if measured.errors > 0 {
            bail!(
                "{} calls of the memory run failed: {}",
                measured.errors,
                measured.first_error.unwrap_or_default()
            );
        }
        done += calls;
        sample("calls", done, router.process.rss_kb()?, measured.rate());
    }
    Ok(samples)
}

fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_path(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    for row in rows {
        writer.serialize(row)?;
    }
    writer.flush()?;
    Ok(())
}

/// Memory figures of a run: RSS after warm-up, after the calls, growth in percent.
pub fn memory_growth(samples: &[MemorySample]) -> Option<(u64, u64, u64, f64)> {
    let warm = samples.iter().find(|s| s.phase == "warm")?;
    let last = samples.iter().rev().find(|s| s.phase == "calls")?;
    let growth = (last.rss_kb as f64 - warm.rss_kb as f64) * 100.0 / warm.rss_kb as f64;
    Some((warm.rss_kb, last.calls, last.rss_kb, growth))
}

/// The printed summary: rates per series, the targets' ratios, memory.
pub fn summary(options: &BenchOptions, results: &BenchResults) -> String {
    let mut out = String::new();
    let rows = &results.rows;
    let clients = &options.clients;
    let mut sizes = options.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let base = sizes[0];
    let first_pair = sizes.get(1).copied().unwrap_or(base);
    let policies: Vec<String> = options.policies.iter().map(|p| p.to_string()).collect();
    // The row of a router (or floor) point.
    let find = |series: &str, target: &str, policy: &str, entries: usize, pair: usize, c: usize| {
        rows.iter().find(|r| {
            r.series == series
                && r.target == target
                && r.policy == policy
                && r.entries == entries
                && r.pair == pair
                && r.clients == c
        })
    };
    let header = |out: &mut String, first: &str, second: &str| {
        let _ = write!(out, "{first:<8}{second:>9}");
        for c in clients {
            let label = format!("{c} client{}", if *c == 1 { "" } else { "s" });
            let _ = write!(out, "{label:>18}");
        }
        out.push('\n');
    };
    let percent = |a: Option<&Row>, b: Option<&Row>| match (a, b) {
        (Some(a), Some(b)) if b.rate > 0.0 => format!("{:.0}%", a.rate * 100.0 / b.rate),
        _ => "-".into(),
    };

    let _ = writeln!(
        out,
        "\ncalls/s (p99 µs); entries {base} = {}; windows of {} s after {} s warm-up, {} per point; {}",
        if base == 0 {
            "a 1-entry table"
        } else {
            "the smallest table"
        },
        options.duration.as_secs_f64(),
        options.warmup.as_secs_f64(),
        options.repeats.max(1),
        if options.pin {
            "router and servers on CPU 0, load generator on CPU 1"
        } else {
            "router, servers and load generator share the CPUs"
        }
    );
    let threads = |mode| match options.threads_for(mode) {
        0 => "one worker per CPU".to_owned(),
        1 => "1 thread".to_owned(),
        n => format!("{n} threads"),
    };
    let _ = writeln!(
        out,
        "router runtime: fake mode {}, normal mode {}",
        threads(Mode::Fake),
        threads(Mode::Normal)
    );
    let _ = writeln!(
        out,
        "the {base}-entry router is measured next to each larger one: its rate is the mean over those pairs"
    );
    for (mode, shape) in options.series() {
        let series = format!("{}/{}", mode.name(), shape.name());
        let _ = writeln!(
            out,
            "\nrouter {}, table shape {}",
            mode.name(),
            match shape {
                Shape::Lambdas => format!(
                    "lambdas (entries/{0} lambdas x {0} destinations)",
                    options.per_lambda
                ),
                Shape::Destinations => "destinations (1 lambda x entries destinations)".into(),
            }
        );
        header(&mut out, "policy", "entries");
        for policy in &policies {
            let _ = write!(out, "{policy:<8}{:>9}", "floor");
            for &c in clients {
                let cell = find(&series, "floor", policy, 0, first_pair, c)
                    .map_or("-".into(), |r| format!("{:.0} ({:.0})", r.rate, r.p99_us));
                let _ = write!(out, "{cell:>18}");
            }
            out.push('\n');
            for &size in &sizes {
                let _ = write!(out, "{policy:<8}{size:>9}");
                for &c in clients {
                    let points: Vec<&Row> = rows
                        .iter()
                        .filter(|r| {
                            r.series == series
                                && r.target == "router"
                                && r.policy == *policy
                                && r.entries == size
                                && r.clients == c
                        })
                        .collect();
                    let cell = if points.is_empty() {
                        "-".into()
                    } else {
                        let n = points.len() as f64;
                        let rate = points.iter().map(|r| r.rate).sum::<f64>() / n;
                        let p99 = points.iter().map(|r| r.p99_us).sum::<f64>() / n;
                        let errors: u64 = points.iter().map(|r| r.errors).sum();
                        format!("{rate:.0} ({p99:.0}){}", if errors > 0 { "!" } else { "" })
                    };
                    let _ = write!(out, "{cell:>18}");
                }
                out.push('\n');
            }
        }
    }

    let _ = writeln!(
        out,
        "\nrate with n entries / rate with {base}, measured in alternation (target at 10000: >= 90%)"
    );
    header(&mut out, "series", "entries");
    for (mode, shape) in options.series() {
        let series = format!("{}/{}", mode.name(), shape.name());
        for policy in &policies {
            for &size in sizes.iter().skip(1) {
                let _ = write!(
                    out,
                    "{:<8}{size:>9}",
                    format!("{policy} {}{}", &mode.name()[..1], &shape.name()[..1])
                );
                for &c in clients {
                    let cell = percent(
                        find(&series, "router", policy, size, size, c),
                        find(&series, "router", policy, base, size, c),
                    );
                    let _ = write!(out, "{cell:>18}");
                }
                out.push('\n');
            }
        }
    }
    let _ = writeln!(
        out,
        "(fl: fake, lambdas shape; nl: normal, lambdas shape; fd: fake, destinations shape)"
    );
    for (series, what) in [
        (
            "fake/lambdas",
            "fake-mode router / bare server (target >= 50%)",
        ),
        (
            "normal/lambdas",
            "normal-mode router / straight to the server (router path / direct path)",
        ),
    ] {
        let _ = writeln!(out, "\n{what}, {base} entries, windows in alternation");
        header(&mut out, "policy", "entries");
        for policy in &policies {
            let _ = write!(out, "{policy:<8}{base:>9}");
            for &c in clients {
                let cell = percent(
                    find(series, "router", policy, base, first_pair, c),
                    find(series, "floor", policy, 0, first_pair, c),
                );
                let _ = write!(out, "{cell:>18}");
            }
            out.push('\n');
        }
    }

    let mut rss: BTreeMap<(String, &str), u64> = BTreeMap::new();
    let largest = *sizes.last().expect("sizes not empty");
    for r in rows
        .iter()
        .filter(|r| r.target == "router" && r.entries == largest)
    {
        let e = rss
            .entry((r.policy.clone(), r.series.as_str()))
            .or_default();
        *e = (*e).max(r.rss_kb);
    }
    let _ = writeln!(
        out,
        "\nrouter RSS with {largest} entries (after its points)"
    );
    for ((policy, series), kb) in &rss {
        let _ = writeln!(
            out,
            "  {policy:<4} {series:<20} {:>8.1} MiB",
            *kb as f64 / 1024.0
        );
    }
    if let Some((warm, calls, after, growth)) = memory_growth(&results.memory) {
        let installed = results
            .memory
            .iter()
            .find(|s| s.phase == "installed")
            .map_or(0, |s| s.rss_kb);
        let started = results.memory.first().map_or(0, |s| s.rss_kb);
        let _ = writeln!(
            out,
            "\nmemory run ({} normal, {} entries, {} clients): RSS at start {:.1} MiB, with the table \
             {:.1} MiB, after warm-up {:.1} MiB, after {} more calls {:.1} MiB: growth {:+.2}% \
             (target < 5%)",
            options.memory_policy,
            options.memory_entries,
            options.memory_clients,
            started as f64 / 1024.0,
            installed as f64 / 1024.0,
            warm as f64 / 1024.0,
            calls,
            after as f64 / 1024.0,
            growth
        );
    }
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    let _ = writeln!(out, "\nfailed calls over all points: {errors}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(layout(Shape::Lambdas, 0, 10), (1, 1));
        assert_eq!(layout(Shape::Lambdas, 2_000, 10), (200, 10));
        assert_eq!(layout(Shape::Lambdas, 100_000, 10), (10_000, 10));
        assert_eq!(layout(Shape::Lambdas, 5, 10), (1, 5));
        assert_eq!(layout(Shape::Destinations, 0, 10), (1, 1));
        assert_eq!(layout(Shape::Destinations, 4_000, 10), (1, 4_000));
    }

    #[test]
    fn silent_destinations_are_distinct_loopback_addresses() {
        assert_eq!(silent_destination(0), "127.1.0.0:9");
        assert_eq!(silent_destination(65_536 + 257), "127.2.1.1:9");
        let names: std::collections::HashSet<_> = (0..100_000).map(silent_destination).collect();
        assert_eq!(names.len(), 100_000);
    }

    #[test]
    fn fake_routers_get_a_worker_per_cpu_like_the_floor_unless_told() {
        let mut options = BenchOptions::full("x".into(), "y".into());
        assert_eq!(options.threads_for(Mode::Fake), 0);
        assert_eq!(
            options.threads_for(Mode::Normal),
            crate::router::DEFAULT_THREADS
        );
        options.router_threads = Some(3);
        assert_eq!(options.threads_for(Mode::Fake), 3);
        assert_eq!(options.threads_for(Mode::Normal), 3);
    }

    #[test]
    fn no_normal_mode_over_silent_destinations() {
        let options = BenchOptions::full("x".into(), "y".into());
        assert_eq!(
            options.series(),
            vec![
                (Mode::Fake, Shape::Lambdas),
                (Mode::Normal, Shape::Lambdas),
                (Mode::Fake, Shape::Destinations)
            ]
        );
    }
}
