//! `lambdaroute computer`: a simulated e-computer, from a YAML configuration or a preset, or a
//! real one (`--executor http|face`, see `crate::executor`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use lambdaroute_core::computer_model::{Conditions, Preset};
use std::time::Duration;
use tokio::sync::watch;

use lambdaroute_node::computer::{self, ComputerOptions, DEFAULT_MAX_REQUEST_BYTES};
use lambdaroute_node::membership::{Announcer, Member};
use lambdaroute_node::metrics::ComputerMetrics;
use tracing::info;

/// Run an e-computer serving RunLambda and StreamUtil: simulated (processor-sharing model), or
/// real (--executor http: HTTP functions; --executor face: face and eye detection).
#[derive(clap::Args, Debug)]
pub struct ComputerArgs {
    /// Address of the lambda service (EdgeServer.RunLambda).
    #[arg(long, default_value = "0.0.0.0:10000")]
    pub listen: SocketAddr,
    /// Address of the utilization stream (EdgeComputer.StreamUtil).
    #[arg(long, default_value = "0.0.0.0:6476")]
    pub util_listen: SocketAddr,
    /// YAML file with processors, containers and lambdas (see experiments/computers/).
    #[arg(long, value_name = "FILE.yaml", conflicts_with = "preset")]
    pub config: Option<PathBuf>,
    /// A ready-made computer: raspberry or intel-server.
    #[arg(long, value_parser = parse_preset)]
    pub preset: Option<Preset>,
    /// Endpoint to answer as `responder` and to announce, i.e. the address routers must use
    /// (HOST:PORT; e.g. the NAT gateway's from outside Mininet); default: the --listen address.
    #[arg(long, visible_alias = "advertise", value_name = "HOST:PORT")]
    pub endpoint: Option<String>,
    /// Serve this many computers from one process, on consecutive ports from --listen (and
    /// --util-listen, --endpoint): each has its own processors and is announced as its own
    /// computer. Port 0 gives each an ephemeral port.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=MAX_ENDPOINTS as i64))]
    pub endpoints: u16,
    /// Multiply the speed of every processor by this factor (> 0), once, at start: the
    /// configured speed. The speed factor of --conditions multiplies on top of it.
    #[arg(long, default_value_t = 1.0)]
    pub speed_factor: f64,
    /// Run-time conditions of a simulated computer, changed without a restart: a YAML file
    /// `{speed-factor: F, background: B}` (both optional; defaults 1 and 0), read at start if
    /// it exists and again on SIGHUP, applied to every endpoint. `speed-factor` multiplies the
    /// configured speed (after --speed-factor); `background` (0 to below 1) is the fraction of
    /// every core taken by other work, which the reported load includes.
    #[arg(long, value_name = "FILE.yaml")]
    pub conditions: Option<PathBuf>,
    /// Largest request accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,
    /// The controller (HOST:PORT): announce this computer's lambdas, re-announce when the
    /// controller restarts, and leave (RemoveComputer) on Ctrl-C or SIGTERM.
    #[arg(long, value_name = "HOST:PORT")]
    pub controller: Option<String>,
    /// Time between presence checks with the controller (`1s`, `500ms`, or seconds).
    #[arg(long, default_value = "1s", value_parser = crate::duration::parse)]
    pub check_interval: Duration,
    /// Real execution instead of the model.
    #[command(flatten)]
    pub executor: crate::executor::ExecutorArgs,
    /// One listener for every computer of the process; their series are labelled by endpoint.
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
    #[command(flatten)]
    pub limits: crate::limits::LimitsArgs,
    #[command(flatten)]
    pub tls: crate::security::TlsArgs,
    #[command(flatten)]
    pub call_auth: crate::security::CallAuthArgs,
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
        .map_err(|e: lambdaroute_core::computer_model::ConfigError| e.to_string())
}

/// Loads the configuration, then serves until Ctrl-C or SIGTERM.
pub async fn run(args: ComputerArgs) -> anyhow::Result<()> {
    let executor = args.executor.http_executor(args.max_request_bytes)?;
    let (mut config, source) = match (&args.config, args.preset, &executor) {
        (None, None, Some(_)) if args.speed_factor != 1.0 => {
            anyhow::bail!("--speed-factor scales a simulated computer: drop it, or drop --executor")
        }
        (None, None, Some(_)) if args.conditions.is_some() => {
            anyhow::bail!(
                "--conditions changes a simulated computer (a real one runs at its own speed): drop it, or drop --executor"
            )
        }
        (None, None, Some(executor)) => (
            executor.config().computer_config(),
            format!("{:?} executor", args.executor.executor).to_lowercase(),
        ),
        (_, _, Some(_)) => {
            anyhow::bail!(
                "--config and --preset describe a simulated computer: drop them, or drop --executor"
            )
        }
        (Some(path), _, None) => (computer::load_config(path)?, path.display().to_string()),
        (None, Some(preset), None) => (preset.config(), format!("preset {preset}")),
        (None, None, None) => anyhow::bail!(
            "expected --config FILE.yaml or --preset NAME (a simulated computer), or --executor http|face"
        ),
    };
    config
        .scale_speed(args.speed_factor)
        .context("--speed-factor")?;
    info!(%source, speed_factor = args.speed_factor, "computer configuration loaded");
    if args.endpoint.is_none() && args.listen.ip().is_unspecified() {
        tracing::warn!(
            listen = %args.listen,
            "listening on an unspecified address: set --endpoint to the address peers should use"
        );
    }
    let conditions = match &args.conditions {
        Some(path) => Some(watch_conditions(path.clone())?),
        None => None,
    };
    let executor = executor.map(std::sync::Arc::new);
    let mut registry = args.metrics.registry();
    let metrics = registry.as_mut().map(ComputerMetrics::register);
    let endpoints = endpoint_options(
        &args,
        &config,
        executor.as_ref(),
        conditions.as_ref(),
        metrics.as_ref(),
    )?;
    anyhow::ensure!(
        args.controller.is_none() || !args.check_interval.is_zero(),
        "--check-interval must be longer than 0"
    );
    let server = args.metrics.serve(registry).await?;
    crate::metrics::beside(server, serve(args, config, endpoints)).await
}

/// Serves the computers of `endpoints` until Ctrl-C or SIGTERM, announced to the controller if
/// there is one.
async fn serve(
    args: ComputerArgs,
    config: lambdaroute_core::computer_model::ComputerConfig,
    endpoints: Vec<ComputerOptions>,
) -> anyhow::Result<()> {
    let client = match endpoints.first() {
        Some(first) => first.security.client()?,
        None => Default::default(),
    };
    let mut handles = Vec::with_capacity(endpoints.len());
    for opts in endpoints {
        let listen = opts.listen;
        let handle = computer::spawn(opts)
            .await
            .with_context(|| format!("computer on {listen}"))?;
        handles.push(handle);
    }
    if handles.len() > 1 {
        info!(
            endpoints = handles.len(),
            first = %handles[0].endpoint(),
            last = %handles[handles.len() - 1].endpoint(),
            "serving several computers"
        );
    }
    let announcer = match &args.controller {
        Some(controller) => Some(
            Announcer::spawn_all(
                controller,
                handles
                    .iter()
                    .map(|h| Member::computer(h.endpoint(), &config))
                    .collect(),
                args.check_interval,
                &client,
            )
            .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    shutdown_signal().await;
    // Leave first, so that routers stop sending calls, then finish the calls in flight.
    if let Some(announcer) = announcer {
        announcer.leave().await;
    }
    let mut first_error = None;
    for result in futures::future::join_all(handles.into_iter().map(|h| h.shutdown())).await {
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Most computers one process serves (`--endpoints`).
const MAX_ENDPOINTS: u16 = 4096;

/// The options of each computer the process serves: the i-th listens on the ports of
/// --listen and --util-listen plus i and answers as --endpoint's port plus i.
fn endpoint_options(
    args: &ComputerArgs,
    config: &lambdaroute_core::computer_model::ComputerConfig,
    executor: Option<&std::sync::Arc<lambdaroute_node::executor::HttpExecutor>>,
    conditions: Option<&watch::Receiver<Conditions>>,
    metrics: Option<&ComputerMetrics>,
) -> anyhow::Result<Vec<ComputerOptions>> {
    let n = args.endpoints;
    let limits = args.limits.limits()?;
    let security =
        args.call_auth
            .security(&args.tls, "computer", lambdaroute_node::tls::Role::Computer)?;
    let advertised = match (&args.endpoint, n) {
        (None, _) => None,
        (Some(e), 1) => Some((e.clone(), None)),
        (Some(e), _) => {
            let (host, port) = e.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?))).with_context(|| {
                format!("--endpoint '{e}': with --endpoints {n} it must be HOST:PORT, the first of {n} consecutive ports")
            })?;
            Some((host.to_owned(), Some(port)))
        }
    };
    let ports = |flag: &str, first: u16| -> anyhow::Result<std::ops::Range<u32>> {
        let range = u32::from(first)..u32::from(first) + u32::from(n);
        anyhow::ensure!(
            first == 0 || range.end - 1 <= u32::from(u16::MAX),
            "{flag}: ports {first} to {} do not exist (the last port is 65535): use a lower first port or fewer --endpoints",
            range.end - 1
        );
        Ok(range)
    };
    let lambda_ports = ports("--listen", args.listen.port())?;
    let util_ports = ports("--util-listen", args.util_listen.port())?;
    if let Some((_, Some(first))) = &advertised {
        ports("--endpoint", *first)?;
    }
    if n > 1 && args.listen.port() != 0 && args.util_listen.port() != 0 {
        anyhow::ensure!(
            lambda_ports.end <= util_ports.start || util_ports.end <= lambda_ports.start,
            "--listen ports {}..{} and --util-listen ports {}..{} overlap: move one of them at least {n} ports away",
            lambda_ports.start,
            lambda_ports.end - 1,
            util_ports.start,
            util_ports.end - 1
        );
    }
    let at = |address: SocketAddr, i: u16| {
        let port = if address.port() == 0 {
            0
        } else {
            address.port() + i
        };
        SocketAddr::new(address.ip(), port)
    };
    Ok((0..n)
        .map(|i| ComputerOptions {
            listen: at(args.listen, i),
            util_listen: Some(at(args.util_listen, i)),
            endpoint: advertised.as_ref().map(|(host, first)| match first {
                None => host.clone(),
                Some(port) => format!("{host}:{}", port + i),
            }),
            config: config.clone(),
            max_request_bytes: args.max_request_bytes,
            executor: executor.cloned(),
            conditions: conditions.cloned(),
            metrics: metrics.cloned(),
            limits,
            security: security.clone(),
        })
        .collect())
}

/// The conditions in `path` (the defaults if there is no such file), then, in a background
/// task, those it holds at every SIGHUP. A file that cannot be used at start is an error; at a
/// SIGHUP it is logged and the conditions stay as they were.
fn watch_conditions(path: PathBuf) -> anyhow::Result<watch::Receiver<Conditions>> {
    let initial = if path.exists() {
        computer::load_conditions(&path)?
    } else {
        Conditions::default()
    };
    info!(
        file = %path.display(),
        speed_factor = initial.speed_factor,
        background = initial.background,
        "conditions loaded; SIGHUP re-reads the file"
    );
    let (tx, rx) = watch::channel(initial);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered now, before serving, so that an early SIGHUP does not end the process.
        let mut hangups = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match computer::load_conditions(&path) {
                    Ok(new) => {
                        let old = tx.send_replace(new);
                        info!(
                            speed_factor = new.speed_factor,
                            background = new.background,
                            old_speed_factor = old.speed_factor,
                            old_background = old.background,
                            "conditions changed"
                        );
                    }
                    Err(e) => {
                        let old = *tx.borrow();
                        tracing::error!(
                            speed_factor = old.speed_factor,
                            background = old.background,
                            "{e}; the conditions stay as they were"
                        );
                    }
                }
            }
        });
    }
    Ok(rx)
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("Ctrl-C received"),
        _ = term => info!("SIGTERM received"),
    }
}
