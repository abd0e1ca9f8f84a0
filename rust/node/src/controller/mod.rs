//! The e-controller (docs/controller.md): it knows every router and computer, installs the
//! routers' e-tables (flat or two-tier) and steers calls away from congested links.
//!
//! One listener serves three services:
//!
//! - `uiiit.rpc.EdgeController` (serverlessonedge's): `AnnounceRouter`, `AnnounceComputer`,
//!   `RemoveComputer`;
//! - `lambdaroute.rpc.Presence`: members ask whether the controller knows them (see
//!   [`crate::membership`]);
//! - `lambdaroute.rpc.Congestion`: the network monitor's `Report` of congested and cleared
//!   links, and `View`, the controller's state.
//!
//! An announcement is answered as soon as the controller has taken it in (a router's once its
//! tables are read); the installation runs in the background. After a change the planner asks
//! the core ([`lambdaroute_core::controller::plan`]) for the tables each router should hold,
//! once per burst of changes, and wakes one reconciliation task per router, which pushes the
//! difference to its router through `uiiit.rpc.EdgeRouter.Configure` and `lambdaroute.rpc.Marks`,
//! changes before removals. A burst of announcements collapses into one pass per router. An
//! entry already in place is left alone, so the weights a router learned survive. A router that
//! cannot be reached is dropped; it gets its tables again when it announces again.
//!
//! A router that announces is read first (`GetTable`, `Marks.List`): what it holds is the
//! starting point of the difference. So a restarted controller picks the routers' tables up
//! where they are. For the first `resync_grace` after its start, it removes only entries of
//! destinations it knows (announced, or removed since its start): the entries of computers
//! that have not announced again yet stay, and calls keep flowing while the members come back.

pub mod mec;
mod service;
pub mod view;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lambdaroute_core::controller::{Distances, FileError, Installer, Paths};
use lambdaroute_proto::lambdaroute::congestion_server::CongestionServer;
use lambdaroute_proto::lambdaroute::presence_server::PresenceServer;
use lambdaroute_proto::uiiit::edge_controller_server::EdgeControllerServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

pub use view::format_view;

use crate::limits::{self, Limits};
use crate::metrics::ControllerMetrics;
use crate::tls::{Security, Surface};

/// Default address of the controller.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:6475";
/// Default time after start during which only known destinations are removed from routers.
pub const DEFAULT_RESYNC_GRACE: Duration = Duration::from_secs(5);

/// Time limit of one call to a router, by default: a router that does not answer within it is
/// dropped until it announces itself again.
pub const DEFAULT_ROUTER_TIMEOUT: Duration = Duration::from_secs(2);

/// Period of the controller's re-reading of each router's tables, by default.
pub const DEFAULT_AUDIT_INTERVAL: Duration = Duration::from_secs(5);

/// How a controller runs.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// Address of the controller's services (`EdgeController`, `Congestion`, `Presence`).
    pub listen: SocketAddr,
    /// How the controller places computers on routers: flat or two-tier.
    pub installer: Installer,
    /// The (router, computer) paths for congestion steering; without them reports mark nothing.
    pub paths: Option<Paths>,
    /// See the module documentation.
    pub resync_grace: Duration,
    /// Time limit of one call to a router.
    pub router_timeout: Duration,
    /// Count routers, computers, installs and congestion here
    /// ([`ControllerMetrics::register`]); `None` counts nothing.
    pub metrics: Option<ControllerMetrics>,
    /// Plain or secured mode ([`Security`]): TLS on the listener and towards the routers,
    /// and which roles may call what.
    pub security: Security,
    /// Period at which each router's tables are read again, so that entries installed there
    /// by anyone else are removed and entries removed by anyone else come back.
    pub audit_interval: Duration,
    /// Serve ETSI MEC 016's device application interface here ([`mec`]); `None`: not at all.
    pub mec_listen: Option<SocketAddr>,
    /// The distance matrix the MEC service chooses a device's router by (the two-tier
    /// installer's, or one given for MEC alone); `None`: by address only.
    pub mec_distances: Option<Distances>,
}

impl ControllerOptions {
    /// A controller on `listen` with `installer`: no paths, the default resync grace, 2 s per
    /// call to a router.
    pub fn new(listen: SocketAddr, installer: Installer) -> Self {
        ControllerOptions {
            listen,
            installer,
            paths: None,
            resync_grace: DEFAULT_RESYNC_GRACE,
            router_timeout: DEFAULT_ROUTER_TIMEOUT,
            metrics: None,
            security: Security::plain(),
            audit_interval: DEFAULT_AUDIT_INTERVAL,
            mec_listen: None,
            mec_distances: None,
        }
    }
}

/// A distances or paths file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
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
    /// The file is read but its content is refused, with the line at fault.
    #[error(transparent)]
    Invalid(#[from] FileError),
}

fn read(path: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|error| LoadError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    lambdaroute_core::text::utf8(bytes).map_err(|error| LoadError::Utf8 {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads a distances file (format: docs/controller.md).
pub fn load_distances(path: &Path) -> Result<Distances, LoadError> {
    Ok(Distances::from_yaml(
        &read(path)?,
        &path.display().to_string(),
    )?)
}

/// Reads a paths file (format: docs/controller.md).
pub fn load_paths(path: &Path) -> Result<Paths, LoadError> {
    Ok(Paths::from_yaml(&read(path)?, &path.display().to_string())?)
}

/// A controller running in this process.
pub struct ControllerHandle {
    /// Bound address.
    pub listen: SocketAddr,
    /// Bound address of the MEC 016 service, if it runs.
    pub mec_listen: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl ControllerHandle {
    /// Stop serving and wait.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.context("controller task panicked")?
    }
}

/// Start a controller in the background; returns once it listens.
pub async fn spawn(options: ControllerOptions) -> anyhow::Result<ControllerHandle> {
    let listener = bind(&options).await?;
    let listen = listener.local_addr()?;
    let mec = bind_mec(&options).await?;
    let mec_listen = mec.as_ref().map(TcpListener::local_addr).transpose()?;
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(serve(options, listener, mec, async {
        let _ = rx.await;
    }));
    Ok(ControllerHandle {
        listen,
        mec_listen,
        shutdown: Some(tx),
        task,
    })
}

/// Run a controller until `shutdown` completes.
pub async fn serve_until(
    options: ControllerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = bind(&options).await?;
    let mec = bind_mec(&options).await?;
    serve(options, listener, mec, shutdown).await
}

async fn bind_mec(options: &ControllerOptions) -> anyhow::Result<Option<TcpListener>> {
    match options.mec_listen {
        Some(listen) => {
            Ok(Some(TcpListener::bind(listen).await.with_context(
                || format!("cannot listen on {listen} (--mec-listen)"),
            )?))
        }
        None => Ok(None),
    }
}

async fn bind(options: &ControllerOptions) -> anyhow::Result<TcpListener> {
    TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))
}

async fn serve(
    options: ControllerOptions,
    listener: TcpListener,
    mec: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let controller = Arc::new(service::Controller::new(&options)?);
    // The MEC service stops when the controller's services stop.
    let (mec_stop, mec_stopped) = tokio::sync::watch::channel(false);
    let mec_task = mec.map(|listener| {
        let mut stopped = mec_stopped.clone();
        tokio::spawn(mec::serve(
            Arc::clone(&controller),
            options.mec_distances.clone(),
            listener,
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ))
    });
    info!(
        secured = options.security.is_secured(),
        listen = %listener.local_addr()?,
        installer = %options.installer,
        paths = options.paths.as_ref().map_or(0, Paths::len),
        epoch = controller.epoch(),
        "controller ready"
    );
    let grace = tokio::spawn(service::end_grace(
        Arc::clone(&controller),
        options.resync_grace,
    ));
    let planner = tokio::spawn(service::planner(Arc::clone(&controller)));
    let service = service::Service(Arc::clone(&controller));
    // The defaults: the controller's peers are few, and its messages small.
    let limits = Limits::default();
    let result = options
        .security
        .server(
            limits.server(),
            Surface::Controller,
            limits.handshake_timeout,
        )?
        .layer(limits.admission(4 << 20))
        .add_service(EdgeControllerServer::new(service.clone()))
        .add_service(PresenceServer::new(service.clone()))
        .add_service(CongestionServer::new(service))
        .serve_with_incoming_shutdown(
            limits::incoming(listener, limits.handshake_timeout),
            shutdown,
        )
        .await;
    grace.abort();
    planner.abort();
    controller.stop();
    let _ = mec_stop.send(true);
    if let Some(task) = mec_task {
        task.await.context("MEC service task panicked")??;
    }
    result.context("controller service failed")?;
    info!("controller stopped");
    Ok(())
}
