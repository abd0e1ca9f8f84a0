//! Prometheus metrics of the router, the computer and the controller (docs/metrics.md), and the
//! listener that serves them as Prometheus text on `GET /metrics`.
//!
//! Each role's metric set registers itself in a [`Registry`] ([`RouterMetrics::register`],
//! [`ComputerMetrics::register`], [`ControllerMetrics::register`]) and goes into the role's
//! options; [`spawn`] serves the registry on its own listener. A role without metrics
//! (`metrics: None`, the default) counts nothing.
//!
//! Per call only atomics are touched (and the histogram's own lock, which the client crate
//! needs): label sets are looked up once per lambda (router) or per computer (computer), and
//! the handles kept.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text::{CONTENT_TYPE as TEXT_FORMAT, encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Unit;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

pub use prometheus_client::registry::Registry;

/// The port the testbed gives `--metrics-listen` (Prometheus exporters' customary 9464).
pub const DEFAULT_PORT: u16 = 9464;

/// Upper bounds of the router's latency buckets, seconds: from 1 ms (a call to a computer next
/// door) to 60 s (the default call timeout).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

// ===== the router =====

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LambdaLabels {
    lambda: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The router's metrics: calls, errors, retries and latency per lambda, calls refused before
/// any lambda, table entries, calls in flight.
#[derive(Clone, Debug)]
pub struct RouterMetrics {
    calls: Family<LambdaLabels, Counter>,
    errors: Family<LambdaLabels, Counter>,
    retries: Family<LambdaLabels, Counter>,
    latency: Family<LambdaLabels, Histogram, fn() -> Histogram>,
    unrouted: Counter,
    entries: [Gauge; 2],
    in_flight: Gauge,
}

impl RouterMetrics {
    /// The router's metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let entries = Family::<TableLabels, Gauge>::default();
        let metrics = RouterMetrics {
            calls: Family::default(),
            errors: Family::default(),
            retries: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            unrouted: Counter::default(),
            entries: [
                entries.get_or_create_owned(&TableLabels { table: "overall" }),
                entries.get_or_create_owned(&TableLabels { table: "final" }),
            ],
            in_flight: Gauge::default(),
        };
        registry.register(
            "lambdaroute_router_calls",
            "Calls taken for a lambda of the table",
            metrics.calls.clone(),
        );
        registry.register(
            "lambdaroute_router_errors",
            "Calls for a lambda of the table answered with an error",
            metrics.errors.clone(),
        );
        registry.register(
            "lambdaroute_router_retries",
            "Calls sent again elsewhere after their destination failed",
            metrics.retries.clone(),
        );
        registry.register_with_unit(
            "lambdaroute_router_latency",
            "Time from taking a call to its successful answer, retries included",
            Unit::Seconds,
            metrics.latency.clone(),
        );
        registry.register(
            "lambdaroute_router_unrouted_calls",
            "Calls answered with an error before any entry was chosen: no lambda name, a loop, a lambda the table does not know",
            metrics.unrouted.clone(),
        );
        registry.register(
            "lambdaroute_router_table_entries",
            "Entries of the e-table (overall: table 0, final: table 1)",
            entries,
        );
        registry.register(
            "lambdaroute_router_calls_in_flight",
            "Calls taken and not answered yet",
            metrics.in_flight.clone(),
        );
        metrics
    }

    /// The handles of one lambda's series (created on first use): the router keeps them, so
    /// that its calls never look the label set up again.
    pub(crate) fn lambda(&self, lambda: &Arc<str>) -> LambdaMetrics {
        let labels = LambdaLabels {
            lambda: Arc::clone(lambda),
        };
        LambdaMetrics {
            calls: self.calls.get_or_create_owned(&labels),
            errors: self.errors.get_or_create_owned(&labels),
            retries: self.retries.get_or_create_owned(&labels),
            latency: self.latency.get_or_create_owned(&labels),
        }
    }

    /// A call refused before any entry was chosen.
    pub(crate) fn unrouted(&self) {
        self.unrouted.inc();
    }

    /// The table now holds `overall` entries in table 0 and `final_` in table 1.
    pub(crate) fn set_entries(&self, overall: usize, final_: usize) {
        self.entries[0].set(i64::try_from(overall).unwrap_or(i64::MAX));
        self.entries[1].set(i64::try_from(final_).unwrap_or(i64::MAX));
    }

    /// Counts a call in flight until the guard is dropped (also when the call's future is).
    pub(crate) fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }
}

/// One lambda's series at the router.
#[derive(Debug)]
pub(crate) struct LambdaMetrics {
    pub calls: Counter,
    pub errors: Counter,
    pub retries: Counter,
    pub latency: Histogram,
}

/// A call in flight: the gauge goes down when this is dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

// ===== the computer =====

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComputerLabels {
    computer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComputerLambdaLabels {
    computer: String,
    lambda: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcessorLabels {
    computer: String,
    processor: String,
}

/// The computer's metrics, labelled by computer (its endpoint: one process may serve several):
/// calls per lambda, errors, calls in flight (its queue), utilization per processor.
#[derive(Clone, Debug)]
pub struct ComputerMetrics {
    calls: Family<ComputerLambdaLabels, Counter>,
    errors: Family<ComputerLabels, Counter>,
    in_flight: Family<ComputerLabels, Gauge>,
    utilization: Family<ProcessorLabels, Gauge<f64, AtomicU64>>,
}

impl ComputerMetrics {
    /// The computer's metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ComputerMetrics {
            calls: Family::default(),
            errors: Family::default(),
            in_flight: Family::default(),
            utilization: Family::default(),
        };
        registry.register(
            "lambdaroute_computer_calls",
            "Calls received for a lambda the computer runs (dry runs included)",
            metrics.calls.clone(),
        );
        registry.register(
            "lambdaroute_computer_errors",
            "Calls answered with a retcode other than OK (an unknown lambda, too big an input, a failed function, shutting down)",
            metrics.errors.clone(),
        );
        registry.register(
            "lambdaroute_computer_calls_in_flight",
            "Calls received and not answered yet: in the model, or at the HTTP function (the queue length)",
            metrics.in_flight.clone(),
        );
        registry.register(
            "lambdaroute_computer_utilization",
            "Busy fraction of the processor's cores over the last second (0 to 1), as StreamUtil reports it",
            metrics.utilization.clone(),
        );
        metrics
    }

    /// The handles of the computer answering as `endpoint`, which runs `lambdas`.
    pub(crate) fn computer<'a>(
        &self,
        endpoint: &str,
        lambdas: impl IntoIterator<Item = &'a str>,
    ) -> EndpointMetrics {
        let computer = ComputerLabels {
            computer: endpoint.to_owned(),
        };
        let calls = lambdas
            .into_iter()
            .map(|lambda| {
                let labels = ComputerLambdaLabels {
                    computer: endpoint.to_owned(),
                    lambda: lambda.to_owned(),
                };
                (lambda.to_owned(), self.calls.get_or_create_owned(&labels))
            })
            .collect();
        EndpointMetrics {
            calls: Arc::new(calls),
            errors: self.errors.get_or_create_owned(&computer),
            in_flight: self.in_flight.get_or_create_owned(&computer),
            utilization: self.utilization.clone(),
            endpoint: endpoint.to_owned(),
        }
    }
}

/// One computer's series.
#[derive(Clone, Debug)]
pub(crate) struct EndpointMetrics {
    /// By lambda; fixed at start, so calls read it without a lock.
    calls: Arc<HashMap<String, Counter>>,
    errors: Counter,
    in_flight: Gauge,
    utilization: Family<ProcessorLabels, Gauge<f64, AtomicU64>>,
    endpoint: String,
}

impl EndpointMetrics {
    /// A call arrived for `lambda`: counted, and in flight until the guard is dropped.
    pub fn call(&self, lambda: &str) -> InFlight {
        if let Some(calls) = self.calls.get(lambda) {
            calls.inc();
        }
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// A call answered with an error.
    pub fn error(&self) {
        self.errors.inc();
    }

    /// A utilization sample (processor -> busy fraction); once a second, off the call path.
    pub fn utilization(&self, values: &HashMap<String, f32>) {
        for (processor, value) in values {
            let labels = ProcessorLabels {
                computer: self.endpoint.clone(),
                processor: processor.clone(),
            };
            self.utilization
                .get_or_create(&labels)
                .set(f64::from(*value));
        }
    }
}

// ===== the controller =====

/// The controller's metrics: routers and computers known, table changes pushed, congestion.
#[derive(Clone, Debug, Default)]
pub struct ControllerMetrics {
    pub(crate) routers: Gauge,
    pub(crate) computers: Gauge,
    pub(crate) installs: Counter,
    pub(crate) marks: Gauge,
    pub(crate) congested_links: Gauge,
    pub(crate) reports: Counter,
}

impl ControllerMetrics {
    /// The controller's metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ControllerMetrics::default();
        registry.register(
            "lambdaroute_controller_routers",
            "Routers announced and reachable",
            metrics.routers.clone(),
        );
        registry.register(
            "lambdaroute_controller_computers",
            "Computers announced and not removed",
            metrics.computers.clone(),
        );
        registry.register(
            "lambdaroute_controller_installs",
            "Table changes the routers accepted: entries installed or changed, entries removed",
            metrics.installs.clone(),
        );
        registry.register(
            "lambdaroute_controller_congestion_marks",
            "(router, destination) pairs marked on the routers as crossing a congested link",
            metrics.marks.clone(),
        );
        registry.register(
            "lambdaroute_controller_congested_links",
            "Links reported congested and not cleared",
            metrics.congested_links.clone(),
        );
        registry.register(
            "lambdaroute_controller_congestion_reports",
            "Congestion reports received (congested or cleared)",
            metrics.reports.clone(),
        );
        metrics
    }
}

/// A gauge's value from a count.
pub(crate) fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ===== the listener =====

/// The `/metrics` listener running in this process.
#[derive(Debug)]
pub struct MetricsServer {
    /// Bound address (useful with port 0).
    pub listen: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl MetricsServer {
    /// Stops serving and waits.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .context("metrics listener panicked")?
            .context("metrics listener failed")
    }
}

/// Binds `listen` and serves `registry` as Prometheus text on `GET /metrics` (HTTP/1.1) in
/// the background.
pub async fn spawn(listen: SocketAddr, registry: Registry) -> anyhow::Result<MetricsServer> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for metrics on {listen} (--metrics-listen)"))?;
    let bound = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, registry, async {
        let _ = stopped.await;
    }));
    info!(metrics_listen = %bound, "metrics served on /metrics");
    Ok(MetricsServer {
        listen: bound,
        stop: Some(stop),
        task,
    })
}

async fn serve(
    listener: TcpListener,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(registry));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn scrape(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    let mut body = String::new();
    match encode(&mut body, &registry) {
        Ok(()) => ([(CONTENT_TYPE, TEXT_FORMAT)], body).into_response(),
        // Only a failing fmt::Write can fail it, and a String never does.
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
