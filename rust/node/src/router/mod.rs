//! The e-router: takes lambda calls, picks a destination per call from its e-table, forwards
//! the call and learns each destination's latency. A second listener serves the table
//! configuration service (`uiiit.rpc.EdgeRouter`) used by the controller and `lambdaroute table`,
//! and the congestion marks service (`lambdaroute.rpc.Marks`). With a controller, an
//! [`Announcer`] keeps the router announced and reports the destinations that fail.

mod dispatch;
mod forward;
mod in_process;
mod marks_service;
mod table_service;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lambdaroute_core::clock::Time;
use lambdaroute_core::estimator::EstimatorKind;
use lambdaroute_core::policy::PolicyKind;
use lambdaroute_core::table::{ETable, TableKind};
use lambdaroute_proto::lambdaroute::marks_server::MarksServer;
use lambdaroute_proto::uiiit::edge_router_server::EdgeRouterServer;
use lambdaroute_proto::uiiit::edge_server_server::EdgeServerServer;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

use crate::destinations::Destinations;
use crate::limits::{self, Limits};
use crate::membership::{self, Announcer, FailureReports, Member};
use crate::metrics::{LambdaMetrics, RouterMetrics};
use crate::tls::{ClientSecurity, Security, Surface};

pub use dispatch::LOOP_HOPS;
pub use in_process::{InProcessRouter, RUN_LAMBDA_PATH};

/// Default port of the lambda service.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:6473";
/// Default port of the table configuration service.
pub const DEFAULT_TABLE_LISTEN: &str = "0.0.0.0:6474";
/// Largest request accepted, by default (the computers' default too).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The policy of a router unless told.
pub const DEFAULT_POLICY: PolicyKind = PolicyKind::RandomProportional;
/// Calls in flight to one destination at most, unless told.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Time limit of one forwarded call unless told.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Time limit of a connection attempt to a destination.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Seed of the policies' random choices unless told.
pub const DEFAULT_SEED: u64 = 1;

/// Threads of a router's async runtime unless told (`lambdaroute router --threads`): one, so
/// that the server half and the client half of a forwarded call never wake each other across
/// CPUs (docs/benchmarks.md, "Where the CPU goes").
pub const DEFAULT_THREADS: usize = 1;

/// How a router runs.
#[derive(Clone, Debug)]
pub struct RouterOptions {
    /// Address of the lambda service (`uiiit.rpc.EdgeServer`).
    pub listen: SocketAddr,
    /// Address of the table service (`uiiit.rpc.EdgeRouter`).
    pub table_listen: SocketAddr,
    /// The dispatch policy of every lambda.
    pub policy: PolicyKind,
    /// The latency estimator; `None`: the policy's own default
    /// ([`PolicyKind::default_estimator`]).
    pub estimator: Option<EstimatorKind>,
    /// Calls in flight to one destination at most; more wait at the router (and that wait
    /// counts in the measured latency).
    pub max_in_flight: usize,
    /// Time limit of one forwarded call; past it the destination counts as failed.
    pub call_timeout: Duration,
    /// Time limit to connect to a destination.
    pub connect_timeout: Duration,
    /// Largest message accepted or sent, bytes, on both listeners and towards destinations.
    pub max_request_bytes: usize,
    /// Seed of the policies' random choices.
    pub seed: u64,
    /// The controller to announce to and report failed destinations to (`host:port`).
    pub controller: Option<String>,
    /// Lambda endpoint announced to the controller; default: the bound `listen` address.
    pub endpoint: Option<String>,
    /// Table endpoint announced to the controller; default: the bound `table_listen` address.
    pub table_endpoint: Option<String>,
    /// Period of the presence check with the controller.
    pub check_interval: Duration,
    /// Benchmark "fake" mode, as serverlessonedge's harness: after the decision the router
    /// answers the call itself ("OK", `responder` = the chosen destination) instead of
    /// forwarding it, and feeds the decision time (from taking the call to the choice) to the
    /// estimator as the call's latency. Measures the dispatch alone; never for real traffic.
    pub fake: bool,
    /// Count calls, errors, retries, latency, entries and calls in flight here
    /// ([`RouterMetrics::register`]); `None` counts nothing.
    pub metrics: Option<RouterMetrics>,
    /// Calls and request bytes in flight, handshake timeout: on each listener.
    pub limits: Limits,
    /// Plain or secured mode ([`Security`]): TLS on both listeners and towards destinations
    /// and the controller, who may change the tables, who may call.
    pub security: Security,
}

impl RouterOptions {
    /// The estimator the router runs: the one given, else the policy's default.
    pub fn estimator(&self) -> EstimatorKind {
        self.estimator
            .unwrap_or_else(|| self.policy.default_estimator())
    }
}

impl Default for RouterOptions {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid constant"),
            table_listen: DEFAULT_TABLE_LISTEN.parse().expect("valid constant"),
            policy: DEFAULT_POLICY,
            estimator: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            seed: DEFAULT_SEED,
            controller: None,
            endpoint: None,
            table_endpoint: None,
            check_interval: membership::DEFAULT_CHECK_INTERVAL,
            fake: false,
            metrics: None,
            limits: Limits::default(),
            security: Security::plain(),
        }
    }
}

/// The e-table, and the metric handles of its lambdas under the same lock: a call looks its
/// lambda's handles up in the critical section it enters anyway to choose a destination.
pub(crate) struct RouterTable {
    pub etable: ETable,
    metrics: Option<RouterMetrics>,
    lambdas: HashMap<Arc<str>, Arc<LambdaMetrics>>,
}

impl RouterTable {
    /// The series of `lambda`, keyed on its first call; `None` without metrics. Call it only
    /// for lambdas the table knows, so that junk names in calls make no series.
    pub fn lambda_metrics(&mut self, lambda: &str) -> Option<Arc<LambdaMetrics>> {
        if let Some(handles) = self.lambdas.get(lambda) {
            return Some(Arc::clone(handles));
        }
        let metrics = self.metrics.as_ref()?;
        let name: Arc<str> = Arc::from(lambda);
        let handles = Arc::new(metrics.lambda(&name));
        self.lambdas.insert(name, Arc::clone(&handles));
        Some(handles)
    }

    /// After a change of the entries: the entries gauges follow.
    pub fn entries_changed(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.set_entries(
                self.etable.len(TableKind::Overall),
                self.etable.len(TableKind::Final),
            );
        }
    }
}

/// State shared by the router's two services.
pub(crate) struct RouterState {
    pub table: Mutex<RouterTable>,
    pub destinations: Destinations,
    pub options: RouterOptions,
    /// Destinations that failed a call, for the controller.
    pub failures: FailureReports,
    origin: tokio::time::Instant,
}

impl RouterState {
    fn new(options: RouterOptions, failures: FailureReports, client: ClientSecurity) -> Self {
        Self {
            failures,
            table: Mutex::new(RouterTable {
                etable: ETable::new(options.policy, options.estimator(), options.seed),
                metrics: options.metrics.clone(),
                lambdas: HashMap::new(),
            }),
            destinations: Destinations::new(options.max_in_flight, options.connect_timeout, client),
            origin: tokio::time::Instant::now(),
            options,
        }
    }

    /// Now, on the core's clock.
    pub fn now(&self) -> Time {
        Time::from_duration(self.origin.elapsed())
    }
}

/// A router running in this process.
pub struct RouterHandle {
    /// Bound address of the lambda service (useful with port 0).
    pub listen: SocketAddr,
    /// Bound address of the table service.
    pub table_listen: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RouterHandle {
    /// Stop both services and wait for them.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.context("router task panicked")?
    }
}

/// Start a router in the background and return once both listeners are bound.
pub async fn spawn(options: RouterOptions) -> anyhow::Result<RouterHandle> {
    let (tx, rx) = oneshot::channel();
    let (lambda_listener, table_listener) = bind(&options).await?;
    let listen = lambda_listener.local_addr()?;
    let table_listen = table_listener.local_addr()?;
    let task = tokio::spawn(serve(options, lambda_listener, table_listener, async {
        let _ = rx.await;
    }));
    Ok(RouterHandle {
        listen,
        table_listen,
        shutdown: Some(tx),
        task,
    })
}

/// Run a router until `shutdown` completes.
pub async fn serve_until(
    options: RouterOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (lambda_listener, table_listener) = bind(&options).await?;
    serve(options, lambda_listener, table_listener, shutdown).await
}

async fn bind(options: &RouterOptions) -> anyhow::Result<(TcpListener, TcpListener)> {
    let lambda = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen for lambdas on {}", options.listen))?;
    let table = TcpListener::bind(options.table_listen)
        .await
        .with_context(|| format!("cannot listen for tables on {}", options.table_listen))?;
    Ok((lambda, table))
}

async fn serve(
    options: RouterOptions,
    lambda_listener: TcpListener,
    table_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let max_request_bytes = options.max_request_bytes;
    let limits = options.limits;
    let security = options.security.clone();
    let client = security.client()?;
    let (failures, failed) = FailureReports::channel();
    let announcer = match &options.controller {
        Some(controller) => {
            let member = Member::Router {
                endpoint: options.endpoint.clone().unwrap_or_else(|| {
                    lambda_listener
                        .local_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                }),
                table_endpoint: options.table_endpoint.clone().unwrap_or_else(|| {
                    table_listener
                        .local_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                }),
            };
            Some(
                Announcer::spawn_with(
                    controller,
                    member,
                    options.check_interval,
                    Some(failed),
                    &client,
                )
                .map_err(anyhow::Error::msg)?,
            )
        }
        None => None,
    };
    let state = Arc::new(RouterState::new(options, failures, client));
    info!(
        secured = security.is_secured(),
        listen = %lambda_listener.local_addr()?,
        table_listen = %table_listener.local_addr()?,
        policy = %state.options.policy,
        estimator = %state.options.estimator(),
        "router ready"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let lambda_service = EdgeServerServer::new(dispatch::Dispatcher::new(Arc::clone(&state)))
        .max_decoding_message_size(max_request_bytes)
        .max_encoding_message_size(max_request_bytes);
    let admission = limits.forwarding_admission(max_request_bytes);
    admission.warn_if_cap_below_largest_message();
    let lambda_server = security
        .server(limits.server(), Surface::Lambdas, limits.handshake_timeout)?
        .layer(admission)
        .add_service(lambda_service)
        .serve_with_incoming_shutdown(
            limits::incoming(lambda_listener, limits.handshake_timeout),
            stopped(stop_rx.clone()),
        );
    // The table service takes tonic's default largest message, 4 MiB.
    let table_server = security
        .server(limits.server(), Surface::Tables, limits.handshake_timeout)?
        .layer(limits.admission(4 << 20))
        .add_service(EdgeRouterServer::new(table_service::TableService::new(
            Arc::clone(&state),
        )))
        .add_service(MarksServer::new(marks_service::MarksService::new(
            Arc::clone(&state),
        )))
        .serve_with_incoming_shutdown(
            limits::incoming(table_listener, limits.handshake_timeout),
            stopped(stop_rx.clone()),
        );
    // Only periodic estimators have periods to close while no call arrives; an EWMA needs no
    // ticks, and skipping them keeps the table lock free for the calls.
    let ticker = matches!(state.options.estimator(), EstimatorKind::Periodic { .. })
        .then(|| tokio::spawn(tick_estimators(Arc::clone(&state), stop_rx)));

    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (lambda_result, table_result) = tokio::join!(lambda_server, table_server);
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    if let Some(announcer) = announcer {
        announcer.stop().await;
    }
    lambda_result.context("lambda service failed")?;
    table_result.context("table service failed")?;
    info!("router stopped");
    Ok(())
}

/// Periodic estimators close their periods here, off the per-call path.
async fn tick_estimators(state: Arc<RouterState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let now = state.now();
                state.table.lock().etable.tick(now);
            }
            _ = stop.changed() => return,
        }
    }
}
