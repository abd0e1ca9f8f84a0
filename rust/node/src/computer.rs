//! The simulated e-computer as a gRPC server (docs/computer.md, docs/protocol.md).
//!
//! One driver task owns the [`ComputerModel`] and runs it in real time: calls reach it over a
//! channel with a oneshot reply; it sleeps until the next completion, the next call or the next
//! one-second utilization sample, maps tokio's [`Instant`] onto the model's [`Time`] (time since
//! the server started) and answers each call when its task finishes. Two services face the
//! network: `EdgeServer.RunLambda` (on `listen`) and `EdgeComputer.StreamUtil` (on
//! `util_listen`, or beside `RunLambda` when there is none).
//!
//! `RunLambda` never fails with a gRPC error for a bad call: an unknown lambda or an input too
//! big for the processor's memory is answered with a retcode other than "OK". Only a request
//! refused before it is decoded gets the gRPC status `RESOURCE_EXHAUSTED` ([`crate::limits`]):
//! one larger than `max_request_bytes`, or one past the caps on calls and bytes in flight. The
//! input size of a call is `len(input) + len(datain)`; the output echoes both, or is the
//! lambda's fixed text. A call whose caller goes away (its future is dropped) is withdrawn from
//! the model ([`ComputerModel::cancel`]).
//!
//! Run-time conditions ([`ComputerOptions::conditions`]): the driver applies every new
//! [`Conditions`] sent on the watch channel to its model at once (calls in flight keep their
//! remaining work and continue at the new rate); the channel is only polled by the driver, so
//! calls take no lock. `lambdaroute computer --conditions FILE` feeds it from a YAML file
//! ([`load_conditions`]) re-read on SIGHUP.
//!
//! With an [`HttpExecutor`] ([`ComputerOptions::executor`]) the computer runs real code
//! instead: each call goes to an HTTP function (docs/real-computers.md), and the load is that of
//! its workers; `config` then only says what is announced (see [`HttpConfig::computer_config`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures::Stream;
use lambdaroute_core::clock::Time;
use lambdaroute_core::computer_model::{
    ComputerConfig, ComputerModel, Conditions, ConditionsError, ConfigError, LambdaOutput, Load,
    ModelError, TaskId,
};
use lambdaroute_proto::RETCODE_OK;
use lambdaroute_proto::uiiit::edge_computer_server::{EdgeComputer, EdgeComputerServer};
use lambdaroute_proto::uiiit::edge_server_server::{EdgeServer, EdgeServerServer};
use lambdaroute_proto::uiiit::{LambdaRequest, LambdaResponse, Utilization, Void};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::{Request, Response, Status};
use tracing::{debug, info, trace, warn};

#[cfg(doc)]
use crate::executor::HttpConfig;
use crate::executor::HttpExecutor;
use crate::limits::{self, Limits};
use crate::metrics::{ComputerMetrics, EndpointMetrics};
use crate::tls::{Security, Surface};

/// Default port of `RunLambda`.
pub const DEFAULT_PORT: u16 = 10000;
/// Default port of `StreamUtil`.
pub const DEFAULT_UTIL_PORT: u16 = 6476;
/// Default cap on the size of a request: 16 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 << 20;
/// Period of the utilization samples and of the `StreamUtil` messages.
pub const UTIL_PERIOD: Duration = Duration::from_secs(1);

/// How to run a simulated e-computer.
#[derive(Clone, Debug)]
pub struct ComputerOptions {
    /// Address of the `EdgeServer` service (`RunLambda`); port 0 picks a free port.
    pub listen: SocketAddr,
    /// Address of the `EdgeComputer` service (`StreamUtil`); `None` serves it on `listen`.
    pub util_listen: Option<SocketAddr>,
    /// The endpoint this computer advertises as `responder`; default: the bound `listen`
    /// address (set it when listening on 0.0.0.0).
    pub endpoint: Option<String>,
    /// Processors, containers and lambdas.
    pub config: ComputerConfig,
    /// Requests larger than this, in bytes, are refused (gRPC `RESOURCE_EXHAUSTED`).
    pub max_request_bytes: usize,
    /// Real execution: every call goes to this executor's HTTP functions; `None` simulates.
    pub executor: Option<Arc<HttpExecutor>>,
    /// Run-time conditions of a simulated computer: the current value applies from the start,
    /// and every value sent later applies when it is sent. `None`: the defaults, for ever. Not
    /// with an `executor` ([`spawn`] refuses the pair).
    pub conditions: Option<watch::Receiver<Conditions>>,
    /// Count calls, errors, calls in flight and utilization here, labelled with this computer's
    /// endpoint ([`ComputerMetrics::register`]); `None` counts nothing.
    pub metrics: Option<ComputerMetrics>,
    /// Calls and request bytes in flight, handshake timeout: on each listener.
    pub limits: Limits,
    /// Plain or secured mode ([`Security`]): TLS on both listeners, who may call.
    pub security: Security,
}

impl ComputerOptions {
    /// Options for `config` on `listen`, with `StreamUtil` on the same address, the bound
    /// address as endpoint and the default request cap.
    pub fn new(listen: SocketAddr, config: ComputerConfig) -> Self {
        ComputerOptions {
            listen,
            util_listen: None,
            endpoint: None,
            config,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            executor: None,
            conditions: None,
            metrics: None,
            limits: Limits::default(),
            security: Security::plain(),
        }
    }

    /// Options for the HTTP `executor` on `listen`: the announced configuration is the
    /// executor's ([`HttpConfig::computer_config`]).
    pub fn http(listen: SocketAddr, executor: HttpExecutor) -> Self {
        let config = executor.config().computer_config();
        ComputerOptions {
            executor: Some(Arc::new(executor)),
            ..ComputerOptions::new(listen, config)
        }
    }
}

/// A computer configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadConfigError {
    /// The file cannot be read.
    #[error("{}: cannot read the computer configuration: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not UTF-8 text: where it stops being.
    #[error("{}: {error}", path.display())]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// The line and byte of the first invalid byte.
        error: lambdaroute_core::text::Utf8Error,
    },
    /// The file is not a computer configuration in YAML.
    #[error("{}:{line}:{column}: invalid computer configuration: {message}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// Line of the error, from 1 (0 when unknown).
        line: usize,
        /// Column of the error, from 1 (0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The configuration parses but cannot run.
    #[error("{}: invalid computer configuration: {error}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: ConfigError,
    },
}

/// A conditions file (`lambdaroute computer --conditions`) that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadConditionsError {
    /// The file cannot be read.
    #[error("{}: cannot read the conditions: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not UTF-8 text: where it stops being.
    #[error("{}: {error}", path.display())]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// The line and byte of the first invalid byte.
        error: lambdaroute_core::text::Utf8Error,
    },
    /// The file is not conditions in YAML.
    #[error("{}:{line}:{column}: invalid conditions: {message}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// Line of the error, from 1 (0 when unknown).
        line: usize,
        /// Column of the error, from 1 (0 when unknown).
        column: usize,
        /// What is wrong, starting with the field when known.
        message: String,
    },
    /// A value is out of range.
    #[error("{}: invalid conditions: {error}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong; the message starts with the field.
        error: ConditionsError,
    },
}

/// Reads run-time conditions (`speed-factor: F`, `background: B`, both optional) from a YAML
/// file and validates them.
pub fn load_conditions(path: &Path) -> Result<Conditions, LoadConditionsError> {
    let bytes = std::fs::read(path).map_err(|error| LoadConditionsError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let text = lambdaroute_core::text::utf8(bytes).map_err(|error| LoadConditionsError::Utf8 {
        path: path.to_path_buf(),
        error,
    })?;
    parse_conditions(path, &text)
}

/// Parses run-time conditions in YAML and validates them; `path` only names the source in
/// errors. An empty text gives the defaults.
pub fn parse_conditions(path: &Path, yaml: &str) -> Result<Conditions, LoadConditionsError> {
    let conditions: Conditions = if yaml.trim().is_empty() {
        Conditions::default()
    } else {
        lambdaroute_core::yaml::from_str(yaml).map_err(|e| {
            let (line, column) = e
                .location()
                .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
            LoadConditionsError::Yaml {
                path: path.to_path_buf(),
                line,
                column,
                message: field_message(yaml, line, column, &yaml_message(&e)),
            }
        })?
    };
    conditions
        .validate()
        .map_err(|error| LoadConditionsError::Invalid {
            path: path.to_path_buf(),
            error,
        })?;
    Ok(conditions)
}

/// Reads a computer configuration from a YAML file and validates it.
pub fn load_config(path: &Path) -> Result<ComputerConfig, LoadConfigError> {
    let bytes = std::fs::read(path).map_err(|error| LoadConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let text = lambdaroute_core::text::utf8(bytes).map_err(|error| LoadConfigError::Utf8 {
        path: path.to_path_buf(),
        error,
    })?;
    parse_config(path, &text)
}

/// Parses a computer configuration in YAML and validates it; `path` only names the source
/// in errors.
pub fn parse_config(path: &Path, yaml: &str) -> Result<ComputerConfig, LoadConfigError> {
    let config: ComputerConfig = lambdaroute_core::yaml::from_str(yaml).map_err(|e| {
        let (line, column) = e
            .location()
            .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
        LoadConfigError::Yaml {
            path: path.to_path_buf(),
            line,
            column,
            message: field_message(yaml, line, column, &yaml_message(&e)),
        }
    })?;
    config
        .validate()
        .map_err(|error| LoadConfigError::Invalid {
            path: path.to_path_buf(),
            error,
        })?;
    Ok(config)
}

/// `message` prefixed with the key of the `key: value` pair that holds the error's place
/// (serde-saphyr's messages about a value do not name its field).
fn field_message(text: &str, line: usize, column: usize, message: &str) -> String {
    let Some(row) = line.checked_sub(1).and_then(|i| text.lines().nth(i)) else {
        return message.to_string();
    };
    let start = row.len() - row.trim_start_matches([' ', '-']).len();
    let key = row[start..].split_once(':').map(|(key, _)| key.trim());
    match key {
        Some(key)
            if !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && column > start + key.len() + 1
                && !message.contains(&format!("`{key}`")) =>
        {
            format!("{key}: {message}")
        }
        _ => message.to_string(),
    }
}

/// serde-saphyr's message on one line, without the location (the error names it already) nor
/// the source snippet it appends.
fn yaml_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((place, message)) if place.contains("column") => message,
        _ => first,
    };
    match first.rsplit_once(" at line ") {
        Some((message, place)) if place.contains("column") => message.to_string(),
        _ => first.to_string(),
    }
}

/// A running computer, from [`spawn`]. Dropping it stops the computer too.
#[derive(Debug)]
pub struct ComputerHandle {
    lambda_addr: SocketAddr,
    util_addr: SocketAddr,
    endpoint: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl ComputerHandle {
    /// Where `RunLambda` listens.
    pub fn lambda_addr(&self) -> SocketAddr {
        self.lambda_addr
    }

    /// Where `StreamUtil` listens.
    pub fn util_addr(&self) -> SocketAddr {
        self.util_addr
    }

    /// The endpoint it answers as `responder`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops the computer gracefully: the listeners close and new calls are refused, the
    /// calls in flight run to their end and are answered, utilization streams end.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.context("computer task panicked")?
    }
}

/// Binds the listeners, then runs the computer in a background task.
pub async fn spawn(opts: ComputerOptions) -> anyhow::Result<ComputerHandle> {
    let bound = Bound::bind(opts).await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let (lambda_addr, util_addr, endpoint) =
        (bound.lambda_addr, bound.util_addr, bound.endpoint.clone());
    let task = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    Ok(ComputerHandle {
        lambda_addr,
        util_addr,
        endpoint,
        stop: Some(stop),
        task,
    })
}

/// Runs the computer until `shutdown` completes, then stops it cleanly.
pub async fn serve_until(
    opts: ComputerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Bound::bind(opts).await?.serve(shutdown).await
}

// ===== Bound: listeners ready, nothing served yet =====

struct Bound {
    lambda_listener: TcpListener,
    util_listener: Option<TcpListener>,
    lambda_addr: SocketAddr,
    util_addr: SocketAddr,
    endpoint: String,
    model: ComputerModel,
    max_request_bytes: usize,
    executor: Option<Arc<HttpExecutor>>,
    conditions: Option<watch::Receiver<Conditions>>,
    metrics: Option<ComputerMetrics>,
    limits: Limits,
    security: Security,
}

impl Bound {
    async fn bind(opts: ComputerOptions) -> anyhow::Result<Bound> {
        anyhow::ensure!(
            opts.executor.is_none() || opts.conditions.is_none(),
            "run-time conditions change a simulated computer; a real one (an executor) runs at its own speed"
        );
        let model = ComputerModel::new(opts.config).context("invalid computer configuration")?;
        let lambda_listener = TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("cannot listen on {} (--listen)", opts.listen))?;
        let lambda_addr = lambda_listener.local_addr()?;
        let (util_listener, util_addr) = match opts.util_listen {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (--util-listen)"))?;
                let a = l.local_addr()?;
                (Some(l), a)
            }
            None => (None, lambda_addr),
        };
        let endpoint = opts.endpoint.unwrap_or_else(|| lambda_addr.to_string());
        if opts.max_request_bytes == 0 {
            anyhow::bail!("max request size: expected at least 1 byte, got 0");
        }
        Ok(Bound {
            lambda_listener,
            util_listener,
            lambda_addr,
            util_addr,
            endpoint,
            model,
            max_request_bytes: opts.max_request_bytes,
            executor: opts.executor,
            conditions: opts.conditions,
            metrics: opts.metrics,
            limits: opts.limits,
            security: opts.security,
        })
    }

    async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let outputs: HashMap<String, LambdaOutput> = self
            .model
            .config()
            .lambdas
            .iter()
            .map(|l| (l.name.clone(), l.output.clone()))
            .collect();
        let lambdas: Vec<String> = self.model.lambda_names().map(String::from).collect();
        let metrics = self
            .metrics
            .as_ref()
            .map(|m| m.computer(&self.endpoint, lambdas.iter().map(String::as_str)));
        info!(
            listen = %self.lambda_addr,
            util_listen = %self.util_addr,
            endpoint = %self.endpoint,
            lambdas = %lambdas.join(","),
            executor = if self.executor.is_some() { "http" } else { "simulated" },
            "computer started"
        );

        let (stop_tx, stop_rx) = watch::channel(false);
        let stop_on = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        let (cancel_tx, cancel_rx) = mpsc::unbounded_channel();
        let (util_tx, util_rx) = watch::channel(Utilization::default());
        let driver = match &self.executor {
            None => {
                let driver = Driver {
                    model: self.model,
                    start: Instant::now(),
                    commands: cmd_rx,
                    cancels: cancel_rx,
                    pending: HashMap::new(),
                    tasks: HashMap::new(),
                    util: Some(util_tx),
                    conditions: self.conditions,
                    metrics: metrics.clone(),
                };
                tokio::spawn(driver.run(stop_on(stop_rx.clone())))
            }
            Some(executor) => tokio::spawn(sample_executor(
                Arc::clone(executor),
                util_tx,
                metrics.clone(),
                stop_on(stop_rx.clone()),
            )),
        };

        let server = EdgeServerServer::new(LambdaService {
            commands: cmd_tx,
            cancels: cancel_tx,
            calls: Arc::new(AtomicU64::new(0)),
            outputs: Arc::new(outputs),
            endpoint: Arc::from(self.endpoint.as_str()),
            executor: self.executor.clone(),
            metrics,
        })
        .max_decoding_message_size(self.max_request_bytes);
        let util = EdgeComputerServer::new(UtilService { util: util_rx });

        let limits = self.limits;
        let lambda_incoming = limits::incoming(self.lambda_listener, limits.handshake_timeout);
        let security = &self.security;
        let admission = limits.admission(self.max_request_bytes);
        admission.warn_if_cap_below_largest_message();
        let mut lambda_server = security
            .server(limits.server(), Surface::Lambdas, limits.handshake_timeout)?
            .layer(admission);
        let mut servers: Vec<JoinHandle<Result<(), tonic::transport::Error>>> = Vec::new();
        match self.util_listener {
            Some(listener) => {
                servers.push(tokio::spawn(
                    lambda_server
                        .add_service(server)
                        .serve_with_incoming_shutdown(lambda_incoming, stop_on(stop_rx.clone())),
                ));
                servers.push(tokio::spawn(
                    security
                        .server(
                            limits.server(),
                            Surface::Utilization,
                            limits.handshake_timeout,
                        )?
                        .layer(limits.admission(4 << 20))
                        .add_service(util)
                        .serve_with_incoming_shutdown(
                            limits::incoming(listener, limits.handshake_timeout),
                            stop_on(stop_rx.clone()),
                        ),
                ));
            }
            None => servers.push(tokio::spawn(
                lambda_server
                    .add_service(server)
                    .add_service(util)
                    .serve_with_incoming_shutdown(lambda_incoming, stop_on(stop_rx.clone())),
            )),
        }

        // Stop everything when asked, or as soon as one server fails.
        let mut result = Ok(());
        let mut finished = None;
        tokio::select! {
            _ = shutdown => info!("computer stopping"),
            (res, index, _) = futures::future::select_all(servers.iter_mut()) => {
                finished = Some(index);
                result = Err(match res {
                    Ok(Ok(())) => anyhow::anyhow!("computer server stopped unexpectedly"),
                    Ok(Err(e)) => anyhow::Error::new(e).context("computer server failed"),
                    Err(e) => anyhow::Error::new(e).context("computer server panicked"),
                });
            }
        }
        // Servers stop accepting calls and wait for those in flight; the driver runs them to
        // their end, then stops once the servers (and their services) are gone.
        let _ = stop_tx.send(true);
        for (index, server) in servers.into_iter().enumerate() {
            if Some(index) == finished {
                continue;
            }
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if result.is_ok() => {
                    result = Err(anyhow::Error::new(e).context("computer server failed"));
                }
                Ok(Err(e)) => warn!("computer server failed while stopping: {e}"),
                Err(e) => warn!("computer server panicked while stopping: {e}"),
            }
        }
        if let Err(e) = driver.await {
            warn!("computer driver panicked: {e}");
        }
        info!("computer stopped");
        result
    }
}

// ===== Driver: owns the model =====

/// What a call learns when its task finishes (or, dry, would finish).
#[derive(Debug)]
struct Outcome {
    ptime: Duration,
    load: Load,
}

enum Command {
    Run {
        /// The service's number of the call, for [`Driver::cancel`].
        call: u64,
        lambda: String,
        input_len: usize,
        reply: oneshot::Sender<Result<Outcome, ModelError>>,
    },
    Estimate {
        lambda: String,
        input_len: usize,
        reply: oneshot::Sender<Result<Outcome, ModelError>>,
    },
}

struct Driver {
    model: ComputerModel,
    start: Instant,
    commands: mpsc::Receiver<Command>,
    /// Calls whose caller went away (their future was dropped): their tasks are withdrawn.
    cancels: mpsc::UnboundedReceiver<u64>,
    /// The callers waiting, with their call numbers.
    pending: HashMap<TaskId, (u64, oneshot::Sender<Result<Outcome, ModelError>>)>,
    /// The task of each call running, by the service's call number.
    tasks: HashMap<u64, TaskId>,
    /// `None` once stopping: the utilization streams end.
    util: Option<watch::Sender<Utilization>>,
    /// New run-time conditions; `None` when there are none or their sender is gone.
    conditions: Option<watch::Receiver<Conditions>>,
    metrics: Option<EndpointMetrics>,
}

impl Driver {
    fn now(&self) -> Time {
        Time::from_duration(self.start.elapsed())
    }

    /// Runs the model until the servers are gone. At `stop` the utilization streams end (so
    /// that the servers can stop gracefully) while the calls in flight still run to their end;
    /// the driver ends when the last service is dropped and the command channel closes.
    async fn run(mut self, stop: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval_at(self.start + UTIL_PERIOD, UTIL_PERIOD);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(stop);
        let mut stopping = false;
        if let Some(rx) = &mut self.conditions {
            let conditions = *rx.borrow_and_update();
            self.apply(conditions);
        }
        loop {
            let wake = self
                .model
                .next_completion()
                .map(|t| self.start + t.since_origin());
            tokio::select! {
                _ = &mut stop, if !stopping => {
                    stopping = true;
                    self.util = None;
                    debug!(in_flight = self.pending.len(), "computer draining the calls in flight");
                }
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                Some(call) = self.cancels.recv() => self.cancel(call),
                _ = sleep_until_opt(wake) => {}
                changed = conditions_changed(&mut self.conditions) => match changed {
                    Some(conditions) => self.apply(conditions),
                    None => self.conditions = None,
                },
                _ = tick.tick(), if !stopping => {
                    let values = self.model.sample_utilization(self.now());
                    trace!(?values, "utilization sample");
                    if let Some(metrics) = &self.metrics {
                        metrics.utilization(&values);
                    }
                    if let Some(util) = &self.util {
                        util.send_replace(Utilization { values });
                    }
                }
            }
            self.deliver();
        }
        debug!(abandoned = self.pending.len(), "computer driver stopped");
    }

    /// Applies new run-time conditions now; invalid ones are logged and ignored.
    fn apply(&mut self, conditions: Conditions) {
        match self.model.set_conditions(conditions, self.now()) {
            Ok(()) => debug!(
                speed_factor = conditions.speed_factor,
                background = conditions.background,
                in_flight = self.pending.len(),
                "conditions applied"
            ),
            Err(e) => warn!("conditions ignored: {e}"),
        }
    }

    fn handle(&mut self, cmd: Command) {
        let now = self.now();
        match cmd {
            Command::Run {
                call,
                lambda,
                input_len,
                reply,
            } => match self.model.submit(&lambda, input_len, now) {
                Ok(id) => {
                    trace!(%lambda, input_len, id = id.0, "task submitted");
                    self.pending.insert(id, (call, reply));
                    self.tasks.insert(call, id);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Estimate {
                lambda,
                input_len,
                reply,
            } => {
                let outcome = self
                    .model
                    .estimate(&lambda, input_len, now)
                    .and_then(|ptime| {
                        Ok(Outcome {
                            ptime,
                            load: self.model.load(&lambda)?,
                        })
                    });
                let _ = reply.send(outcome);
            }
        }
    }

    /// Withdraws the task of `call`, whose caller went away, so that it stops taking the cores
    /// (a call answered meanwhile has no task left: nothing to do).
    fn cancel(&mut self, call: u64) {
        let Some(id) = self.tasks.remove(&call) else {
            return;
        };
        self.pending.remove(&id);
        let now = self.now();
        if self.model.cancel(id, now) {
            debug!(id = id.0, "call cancelled by its caller: task withdrawn");
        }
    }

    /// Runs the model up to now and answers the calls whose task finished.
    fn deliver(&mut self) {
        for done in self.model.advance(self.now()) {
            trace!(lambda = %done.lambda, id = done.id.0, ptime_ms = done.ptime.as_millis(), "task finished");
            let Some((call, reply)) = self.pending.remove(&done.id) else {
                continue;
            };
            self.tasks.remove(&call);
            let load = self.model.load(&done.lambda).unwrap_or_default();
            // The caller may have gone away; the computer did the work anyway.
            let _ = reply.send(Ok(Outcome {
                ptime: done.ptime,
                load,
            }));
        }
    }
}

/// The utilization of an HTTP executor's workers, once a second until `stop`.
async fn sample_executor(
    executor: Arc<HttpExecutor>,
    util: watch::Sender<Utilization>,
    metrics: Option<EndpointMetrics>,
    stop: impl Future<Output = ()>,
) {
    let mut tick = tokio::time::interval_at(Instant::now() + UTIL_PERIOD, UTIL_PERIOD);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let values = executor.sample();
                if let Some(metrics) = &metrics {
                    metrics.utilization(&values);
                }
                util.send_replace(Utilization { values });
            }
        }
    }
}

/// The next conditions sent; `None` when the sender is gone; never without a receiver.
async fn conditions_changed(rx: &mut Option<watch::Receiver<Conditions>>) -> Option<Conditions> {
    let rx = match rx {
        Some(rx) => rx,
        None => std::future::pending().await,
    };
    match rx.changed().await {
        Ok(()) => Some(*rx.borrow_and_update()),
        Err(_) => None,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

// ===== LambdaService: EdgeServer.RunLambda =====

#[derive(Clone)]
struct LambdaService {
    commands: mpsc::Sender<Command>,
    /// Tells the driver which calls' callers went away.
    cancels: mpsc::UnboundedSender<u64>,
    /// Numbers the calls.
    calls: Arc<AtomicU64>,
    outputs: Arc<HashMap<String, LambdaOutput>>,
    endpoint: Arc<str>,
    executor: Option<Arc<HttpExecutor>>,
    metrics: Option<EndpointMetrics>,
}

#[tonic::async_trait]
impl EdgeServer for LambdaService {
    async fn run_lambda(
        &self,
        request: Request<LambdaRequest>,
    ) -> Result<Response<LambdaResponse>, Status> {
        let req = request.into_inner();
        let _in_flight = self.metrics.as_ref().map(|m| m.call(&req.name));
        let resp = self.answer(req).await;
        if resp.retcode != RETCODE_OK
            && let Some(metrics) = &self.metrics
        {
            metrics.error();
        }
        Ok(Response::new(resp))
    }
}

impl LambdaService {
    /// The answer to one call; errors are in its retcode.
    async fn answer(&self, mut req: LambdaRequest) -> LambdaResponse {
        let input_len = req.input.len() + req.datain.len();
        let mut resp = LambdaResponse {
            responder: self.endpoint.to_string(),
            hops: req.hops.saturating_add(1),
            ..Default::default()
        };
        if let Some(executor) = &self.executor {
            let answer = executor
                .call(&req.name, &req.input, &req.datain, req.dry)
                .await;
            resp.retcode = answer.retcode;
            resp.output = answer.output;
            resp.dataout = answer.dataout;
            resp.ptime = millis(answer.ptime);
            resp.load1 = answer.load.load1;
            resp.load10 = answer.load.load10;
            resp.load30 = answer.load.load30;
            debug!(lambda = %req.name, input_len, dry = req.dry, ptime_ms = resp.ptime, retcode = %resp.retcode, "call answered");
            return resp;
        }
        let (reply, answer) = oneshot::channel();
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let cmd = if req.dry {
            Command::Estimate {
                lambda: req.name.clone(),
                input_len,
                reply,
            }
        } else {
            Command::Run {
                call,
                lambda: req.name.clone(),
                input_len,
                reply,
            }
        };
        // Dropped before the answer (the caller went away): the task is withdrawn.
        let guard = CancelOnDrop {
            call,
            cancels: &self.cancels,
            armed: !req.dry,
        };
        let outcome = match self.commands.send(cmd).await {
            Ok(()) => answer.await.ok(),
            Err(_) => None,
        };
        guard.disarm();
        match outcome {
            Some(Ok(outcome)) => {
                resp.retcode = RETCODE_OK.to_string();
                resp.ptime = millis(outcome.ptime);
                resp.load1 = outcome.load.load1;
                resp.load10 = outcome.load.load10;
                resp.load30 = outcome.load.load30;
                if !req.dry {
                    let output = self.outputs.get(&req.name).cloned().unwrap_or_default();
                    // Moved, not copied: an echo holds no more than its request did.
                    resp.output = output.render(std::mem::take(&mut req.input));
                    if output == LambdaOutput::Echo {
                        resp.dataout = std::mem::take(&mut req.datain);
                    }
                }
                debug!(lambda = %req.name, input_len, dry = req.dry, ptime_ms = resp.ptime, "call answered");
            }
            Some(Err(e)) => {
                resp.retcode = format!("Error: {e}");
                warn!(lambda = %req.name, input_len, "call refused: {e}");
            }
            None => {
                resp.retcode = "Error: the computer is shutting down; retry elsewhere".to_string();
            }
        }
        resp
    }
}

/// Withdraws a call's task when the future serving the call is dropped before its answer.
struct CancelOnDrop<'a> {
    call: u64,
    cancels: &'a mpsc::UnboundedSender<u64>,
    armed: bool,
}

impl CancelOnDrop<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.cancels.send(self.call);
        }
    }
}

fn millis(d: Duration) -> u32 {
    (d.as_secs_f64() * 1000.0).round().min(u32::MAX as f64) as u32
}

// ===== UtilService: EdgeComputer.StreamUtil =====

#[derive(Clone)]
struct UtilService {
    util: watch::Receiver<Utilization>,
}

type UtilStream = Pin<Box<dyn Stream<Item = Result<Utilization, Status>> + Send>>;

#[tonic::async_trait]
impl EdgeComputer for UtilService {
    type StreamUtilStream = UtilStream;

    async fn stream_util(
        &self,
        _request: Request<Void>,
    ) -> Result<Response<Self::StreamUtilStream>, Status> {
        let mut rx = self.util.clone();
        rx.mark_unchanged();
        // One message per sample (each second); the stream ends when the computer stops.
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            let util = rx.borrow_and_update().clone();
            Some((Ok(util), rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
