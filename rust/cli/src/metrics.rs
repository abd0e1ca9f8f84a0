//! `--metrics-listen`, shared by `lambdaroute router`, `computer` and `controller`.

use std::net::SocketAddr;

use clap::Args;
use lambdaroute_node::metrics::{self, MetricsServer, Registry};

/// Where the role serves its Prometheus metrics, if anywhere.
#[derive(Args, Debug, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics (text format) on http://ADDR:PORT/metrics (docs/metrics.md);
    /// without it nothing is counted and nothing listens.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
}

impl MetricsArgs {
    /// The registry the role's metrics go into, when `--metrics-listen` is given.
    pub fn registry(&self) -> Option<Registry> {
        self.metrics_listen.map(|_| Registry::default())
    }

    /// Serves `registry` on `--metrics-listen` (binding it now, so that a busy port fails
    /// the start); `None` when either is absent.
    pub async fn serve(&self, registry: Option<Registry>) -> anyhow::Result<Option<MetricsServer>> {
        match (self.metrics_listen, registry) {
            (Some(listen), Some(registry)) => Ok(Some(metrics::spawn(listen, registry).await?)),
            _ => Ok(None),
        }
    }
}

/// Runs `role` with the metrics listener beside it, and stops the listener when the role ends.
pub async fn beside(
    server: Option<MetricsServer>,
    role: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let result = role.await;
    if let Some(server) = server {
        let stopped = server.shutdown().await;
        result?;
        return stopped;
    }
    result
}
