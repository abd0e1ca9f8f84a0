//! `lambdaroute computer`: a simulated e-computer, from a YAML configuration or a preset, or a
//! real one (`--executor http|face`, see `crate::executor`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use lambdaroute_core::computer_model::Preset;
use std::time::Duration;

use lambdaroute_node::computer::{self, ComputerOptions, DEFAULT_MAX_REQUEST_BYTES};
use lambdaroute_node::membership::{Announcer, Member};
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
    /// Multiply the speed of every processor by this factor (> 0).
    #[arg(long, default_value_t = 1.0)]
    pub speed_factor: f64,
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
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
        .map_err(|e: lambdaroute_core::computer_model::ConfigError| e.to_string())
}

/// Loads the configuration, then serves until Ctrl-C or SIGTERM.
pub async fn run(args: ComputerArgs) -> anyhow::Result<()> {
    let executor = args.executor.http_executor()?;
    let (mut config, source) = match (&args.config, args.preset, &executor) {
        (None, None, Some(_)) if args.speed_factor != 1.0 => {
            anyhow::bail!("--speed-factor scales a simulated computer: drop it, or drop --executor")
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
    let opts = ComputerOptions {
        listen: args.listen,
        util_listen: Some(args.util_listen),
        endpoint: args.endpoint,
        config: config.clone(),
        max_request_bytes: args.max_request_bytes,
        executor: executor.map(std::sync::Arc::new),
    };
    let Some(controller) = args.controller else {
        return computer::serve_until(opts, shutdown_signal()).await;
    };
    anyhow::ensure!(
        !args.check_interval.is_zero(),
        "--check-interval must be longer than 0"
    );
    let handle = computer::spawn(opts).await?;
    let announcer = Announcer::spawn(
        &controller,
        Member::computer(handle.endpoint(), &config),
        args.check_interval,
        None,
    )
    .map_err(anyhow::Error::msg)?;
    shutdown_signal().await;
    // Leave first, so that routers stop sending calls, then finish the calls in flight.
    announcer.leave().await;
    handle.shutdown().await
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
