//! The load generator: closed-loop clients over tonic, each with one call outstanding and its
//! own HTTP/2 connection (one channel per client task, connected before the clock starts).
//!
//! One connection per client is what the papers' clients did (separate processes), and it keeps
//! the router's accept path, per-connection tasks and HTTP/2 flow control in the measurement as
//! they are with real clients; a single shared channel would multiplex every client onto one
//! connection and one tonic buffer task, measuring that instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use lambdaroute_proto::RETCODE_OK;
use lambdaroute_proto::uiiit::LambdaRequest;
use lambdaroute_proto::uiiit::edge_server_client::EdgeServerClient;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::destinations::endpoint;

/// Which lambda each call names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Uniformly at random among the lambdas, per call (the whole table is touched).
    Random,
    /// The i-th call (over all clients) names lambda i mod L: with L x D calls every
    /// lambda gets exactly D calls (used to probe every entry once before measuring).
    Sequence,
}

/// One load run.
#[derive(Clone, Debug)]
pub struct Load {
    /// `host:port` of the server under test.
    pub target: String,
    /// The lambdas the calls name (at least one).
    pub lambdas: Arc<[String]>,
    /// Which lambda each call names.
    pub pick: Pick,
    /// Concurrent closed-loop clients, each with its own connection and one call outstanding.
    pub clients: usize,
    /// Calls that end before `warmup` has passed are not counted.
    pub warmup: Duration,
    /// Measuring window after the warm-up; `None`: until `max_calls`.
    pub duration: Option<Duration>,
    /// Calls at most, over all clients (warm-up included).
    pub max_calls: Option<u64>,
    /// The `input` of every call.
    pub input: String,
    /// Seed of the random lambda picks.
    pub seed: u64,
}

/// What a load run measured over its window.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// Successful calls ("OK") in the window.
    pub calls: u64,
    /// Calls in the window that failed or answered something other than "OK".
    pub errors: u64,
    /// Length of the window, in seconds.
    pub seconds: f64,
    /// Latency of every successful call in the window, in ns, sorted.
    pub latencies_ns: Vec<u32>,
    /// The first error seen, to explain `errors`.
    pub first_error: Option<String>,
    /// Calls made, warm-up included.
    pub all_calls: u64,
}

impl Measured {
    /// Add the calls of another window of the same point.
    pub fn merge(&mut self, other: Measured) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.seconds += other.seconds;
        self.all_calls += other.all_calls;
        self.latencies_ns.extend(other.latencies_ns);
        self.latencies_ns.sort_unstable();
        self.first_error = self.first_error.take().or(other.first_error);
    }

    /// Successful calls per second.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.calls as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Latency percentile (nearest rank, `p` in 0..=100) in µs; 0 without calls.
    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.latencies_ns.is_empty() {
            return 0.0;
        }
        let n = self.latencies_ns.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        f64::from(self.latencies_ns[rank.clamp(1, n) - 1]) / 1e3
    }
}

struct Shared {
    load: Load,
    started: AtomicU64,
    measure_from: Instant,
    measure_until: Option<Instant>,
}

#[derive(Default)]
struct ClientTally {
    calls: u64,
    errors: u64,
    latencies_ns: Vec<u32>,
    first_error: Option<String>,
    last_end: Option<Instant>,
    all_calls: u64,
}

/// Run `load` to its end, on the caller's runtime (the binary's multi-thread runtime: the
/// load generator may use both CPUs, as the router does).
pub async fn run(load: Load) -> anyhow::Result<Measured> {
    anyhow::ensure!(!load.lambdas.is_empty(), "no lambda to call");
    anyhow::ensure!(
        load.duration.is_some() || load.max_calls.is_some(),
        "a load needs a duration or a number of calls"
    );
    let endpoint = endpoint(&load.target, Duration::from_secs(5)).map_err(anyhow::Error::msg)?;
    let mut channels = Vec::with_capacity(load.clients.max(1));
    for _ in 0..load.clients.max(1) {
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("cannot connect to {}", load.target))?,
        );
    }
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let shared = Arc::new(Shared {
        measure_until: load.duration.map(|d| measure_from + d),
        measure_from,
        started: AtomicU64::new(0),
        load,
    });
    let mut seeds = SmallRng::seed_from_u64(shared.load.seed);
    let mut tasks = tokio::task::JoinSet::new();
    for channel in channels {
        let shared = Arc::clone(&shared);
        let rng = SmallRng::seed_from_u64(seeds.random());
        tasks.spawn(client(shared, EdgeServerClient::new(channel), rng));
    }
    let mut measured = Measured::default();
    let mut last_end = measure_from;
    while let Some(tally) = tasks.join_next().await {
        let tally = tally.context("load client panicked")?;
        measured.calls += tally.calls;
        measured.errors += tally.errors;
        measured.all_calls += tally.all_calls;
        measured.latencies_ns.extend(tally.latencies_ns);
        measured.first_error = measured.first_error.or(tally.first_error);
        if let Some(end) = tally.last_end {
            last_end = last_end.max(end);
        }
    }
    measured.latencies_ns.sort_unstable();
    measured.seconds = match shared.measure_until {
        Some(until) => until.duration_since(measure_from).as_secs_f64(),
        None => last_end.duration_since(measure_from).as_secs_f64(),
    };
    Ok(measured)
}

async fn client(
    shared: Arc<Shared>,
    mut client: EdgeServerClient<tonic::transport::Channel>,
    mut rng: SmallRng,
) -> ClientTally {
    let load = &shared.load;
    let mut tally = ClientTally::default();
    loop {
        let n = shared.started.fetch_add(1, Ordering::Relaxed);
        if load.max_calls.is_some_and(|max| n >= max) {
            break;
        }
        let sent = Instant::now();
        if shared.measure_until.is_some_and(|until| sent >= until) {
            break;
        }
        let lambda = match load.pick {
            Pick::Random => &load.lambdas[rng.random_range(0..load.lambdas.len())],
            Pick::Sequence => &load.lambdas[(n % load.lambdas.len() as u64) as usize],
        };
        let request = LambdaRequest {
            name: lambda.clone(),
            input: load.input.clone(),
            ..Default::default()
        };
        let outcome = client.run_lambda(request).await;
        let ended = Instant::now();
        tally.all_calls += 1;
        if ended < shared.measure_from || shared.measure_until.is_some_and(|until| ended > until) {
            continue;
        }
        tally.last_end = Some(ended);
        let error = match outcome {
            Ok(response) if response.get_ref().retcode == RETCODE_OK => None,
            Ok(response) => Some(response.into_inner().retcode),
            Err(status) => Some(format!("{}: {}", status.code(), status.message())),
        };
        match error {
            None => {
                tally.calls += 1;
                let ns = ended.duration_since(sent).as_nanos();
                tally
                    .latencies_ns
                    .push(u32::try_from(ns).unwrap_or(u32::MAX));
            }
            Some(error) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(error);
            }
        }
    }
    tally
}
