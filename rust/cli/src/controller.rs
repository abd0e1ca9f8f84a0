//! `lambdaroute controller`, `lambdaroute congestion` and `lambdaroute controller-view`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use lambdaroute_core::controller::{Installer, Objective};
use lambdaroute_node::controller::{
    self, ControllerOptions, DEFAULT_LISTEN, format_view, view::CongestionClientConn,
};
use lambdaroute_node::metrics::ControllerMetrics;
use lambdaroute_node::tls::Role;
use tracing::{info, warn};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum InstallerKind {
    /// Every (lambda, computer) on every router, final.
    Flat,
    /// Each computer final on its home router; the other routers forward to it.
    TwoTier,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ObjectiveArg {
    /// Home router minimising the longest path from any router (ties: the average).
    MinMax,
    /// Home router minimising the average path (ties: the longest).
    MinAvg,
}

/// Run the e-controller: install routers' tables, handle announcements, failures and
/// congestion reports.
#[derive(Args, Debug)]
pub struct ControllerArgs {
    /// Address to serve on (EdgeController, Presence, Congestion).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// How tables are built: flat or two-tier (needs --distances).
    #[arg(long, value_enum, default_value = "flat")]
    installer: InstallerKind,
    /// YAML hop-distance matrix for two-tier (`nodes: [...]`, `hops: [[...]]`; docs/controller.md).
    #[arg(long, value_name = "FILE.yaml")]
    distances: Option<PathBuf>,
    /// YAML (router, computer) paths as link lists, for congestion steering
    /// (`paths: [{router, computer, links}]`; docs/controller.md).
    #[arg(long, value_name = "FILE.yaml")]
    paths: Option<PathBuf>,
    /// Two-tier home router objective.
    #[arg(long, value_enum, default_value = "min-max")]
    objective: ObjectiveArg,
    /// Time after start during which entries of destinations not (yet) announced are kept
    /// on the routers, so that a restarted controller resyncs without a gap (`5s`, `500ms`, or
    /// seconds; default 5s).
    #[arg(long, value_parser = crate::duration::parse)]
    resync_grace: Option<Duration>,
    /// Time limit of one call to a router (reading or changing its tables); a router that does
    /// not answer within it is dropped until it announces itself again. Raise it where routers
    /// are many round trips of a slow network away (`2s`, `500ms`, or seconds; default 2s).
    #[arg(long, value_parser = crate::duration::parse)]
    router_timeout: Option<Duration>,
    /// Period at which each router's tables are read again: entries someone else installed
    /// there are removed, entries someone else removed come back (`5s`, `1s`, or seconds).
    #[arg(long, value_parser = crate::duration::parse)]
    audit_interval: Option<Duration>,
    /// Serve ETSI MEC 016's device application interface (`/dev_app/v1/app_list`,
    /// `/dev_app/v1/app_contexts`) on ADDR:PORT: devices ask for a lambda and are given the
    /// router to use, the nearest by --distances when given (docs/mec.md).
    #[arg(long, value_name = "ADDR:PORT")]
    mec_listen: Option<SocketAddr>,
    #[command(flatten)]
    metrics: crate::metrics::MetricsArgs,
    #[command(flatten)]
    tls: crate::security::TlsArgs,
}

pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    // The MEC service chooses devices' routers by the distance matrix, whatever the installer.
    let mec_distances = match (&args.mec_listen, &args.distances) {
        (Some(_), Some(path)) => Some(controller::load_distances(path)?),
        _ => None,
    };
    let installer = match (args.installer, &args.distances) {
        (InstallerKind::Flat, distances) => {
            if distances.is_some() && args.mec_listen.is_none() {
                warn!("--distances is used only by --installer two-tier and --mec-listen: ignored");
            }
            Installer::Flat
        }
        (InstallerKind::TwoTier, None) => bail!(
            "--installer two-tier needs --distances FILE.yaml, the hop-distance matrix of routers and computers (format: docs/controller.md); or use --installer flat"
        ),
        (InstallerKind::TwoTier, Some(path)) => {
            let distances = controller::load_distances(path)?;
            info!(file = %path.display(), nodes = distances.len(), "distance matrix loaded");
            Installer::TwoTier {
                distances,
                objective: match args.objective {
                    ObjectiveArg::MinMax => Objective::MinMax,
                    ObjectiveArg::MinAvg => Objective::MinAvg,
                },
            }
        }
    };
    let paths = match &args.paths {
        Some(path) => {
            let paths = controller::load_paths(path)?;
            info!(file = %path.display(), paths = paths.len(), "paths loaded");
            Some(paths)
        }
        None => {
            info!("no --paths: congestion reports are accepted but mark nothing");
            None
        }
    };
    let router_timeout = args
        .router_timeout
        .unwrap_or(controller::DEFAULT_ROUTER_TIMEOUT);
    anyhow::ensure!(
        !router_timeout.is_zero(),
        "--router-timeout must be longer than 0"
    );
    let audit_interval = args
        .audit_interval
        .unwrap_or(controller::DEFAULT_AUDIT_INTERVAL);
    anyhow::ensure!(
        !audit_interval.is_zero(),
        "--audit-interval must be longer than 0"
    );
    let security = args.tls.security("controller", Some(Role::Controller))?;
    let mut registry = args.metrics.registry();
    let options = ControllerOptions {
        audit_interval,
        security,
        paths,
        router_timeout,
        metrics: registry.as_mut().map(ControllerMetrics::register),
        resync_grace: args
            .resync_grace
            .unwrap_or(controller::DEFAULT_RESYNC_GRACE),
        mec_listen: args.mec_listen,
        mec_distances,
        ..ControllerOptions::new(args.listen, installer)
    };
    let server = args.metrics.serve(registry).await?;
    crate::metrics::beside(
        server,
        controller::serve_until(options, crate::shutdown_signal()),
    )
    .await
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LinkState {
    /// The links are congested: mark the pairs whose path crosses them.
    Congested,
    /// The links cleared: unmark the pairs with no other congested link.
    Cleared,
}

/// Report congested or cleared links to the controller (what the network monitor calls).
#[derive(Args, Debug)]
pub struct CongestionArgs {
    /// The controller.
    #[arg(long, default_value = "127.0.0.1:6475")]
    controller: String,
    /// congested or cleared.
    #[arg(value_enum)]
    state: LinkState,
    /// Link names, as in the controller's paths file.
    #[arg(required = true, value_name = "LINK")]
    links: Vec<String>,
    /// Secured mode: reports take a monitor's (or an operator's) certificate; --tls-name
    /// defaults to monitor.
    #[command(flatten)]
    tls: crate::security::TlsArgs,
}

pub async fn congestion(args: CongestionArgs) -> anyhow::Result<()> {
    let security = args.tls.security("monitor", None)?.client()?;
    let mut client = CongestionClientConn::connect_with(&args.controller, &security).await?;
    let congested = matches!(args.state, LinkState::Congested);
    let mut last = None;
    for link in &args.links {
        let reply = client
            .report(link, congested)
            .await
            .with_context(|| format!("link {link}"))?;
        if !reply.on_paths {
            eprintln!(
                "warning: link {link} is on no path of the controller's paths file: nothing to mark"
            );
        }
        last = Some(reply);
    }
    if let Some(reply) = last {
        println!(
            "{} {}: {} (router, destination) pairs marked; congested links: {}",
            args.links.join(" "),
            if congested { "congested" } else { "cleared" },
            reply.marked_pairs,
            if reply.congested_links.is_empty() {
                "none".into()
            } else {
                reply.congested_links.join(", ")
            }
        );
    }
    Ok(())
}

/// Print the controller's view: routers, computers, lambdas, congested links and marks.
#[derive(Args, Debug)]
pub struct ViewArgs {
    /// The controller.
    #[arg(long, default_value = "127.0.0.1:6475")]
    controller: String,
    /// Secured mode: the view takes an operator's or a monitor's certificate; --tls-name
    /// defaults to operator.
    #[command(flatten)]
    tls: crate::security::TlsArgs,
}

pub async fn view(args: ViewArgs) -> anyhow::Result<()> {
    let security = args.tls.security("operator", None)?.client()?;
    let mut client = CongestionClientConn::connect_with(&args.controller, &security).await?;
    print!("{}", format_view(&client.view().await?));
    Ok(())
}
