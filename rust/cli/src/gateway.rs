//! `lambdaroute gateway`: the OpenWhisk-compatible front door of a router (docs/openwhisk.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use lambdaroute_node::gateway::{self, GatewayOptions, keys::Keys};
use tracing::warn;

/// Serve Apache OpenWhisk's REST API (`/api/v1/namespaces/{ns}/actions/...`) in front of a
/// router: OpenWhisk's clients invoke the router's lambdas unchanged.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// Address to serve the OpenWhisk API on.
    #[arg(long, default_value = gateway::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// The router's lambda service, host:port.
    #[arg(long, default_value = "127.0.0.1:6473")]
    router: String,
    /// The router's table service, host:port, read for the list of actions (default: the
    /// router's host, port 6474).
    #[arg(long, value_name = "HOST:PORT")]
    router_table: Option<String>,
    /// Accepted API keys: one `UUID:KEY [NAMESPACE]` per line (namespace `guest` unless
    /// given), as `wsk property get --auth` prints them.
    #[arg(long, value_name = "FILE", required_unless_present = "no_auth")]
    keys: Option<PathBuf>,
    /// Accept every request without authentication, every namespace open (tests, a closed
    /// network).
    #[arg(long, conflicts_with = "keys")]
    no_auth: bool,
    /// How long a blocking invocation waits before it answers 202 with the activation id,
    /// as OpenWhisk (`60s`, `500ms`, or seconds).
    #[arg(long, default_value = "60s", value_parser = crate::duration::parse)]
    blocking_timeout: Duration,
    /// Time limit of one call to the router (`300s`, or seconds).
    #[arg(long, default_value = "300s", value_parser = crate::duration::parse)]
    call_timeout: Duration,
    /// Calls in flight at most; more are answered 429.
    #[arg(long, default_value_t = gateway::DEFAULT_MAX_CALLS)]
    max_calls: usize,
    /// Largest request body, bytes (OpenWhisk's default: 1 MiB); larger ones are answered 413.
    #[arg(long, default_value_t = gateway::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Activation records kept at most (the oldest go first).
    #[arg(long, default_value_t = gateway::DEFAULT_ACTIVATIONS)]
    activations: usize,
    /// How long an activation record is kept (`10m`, `30s`, or seconds).
    #[arg(long, default_value = "10m", value_parser = crate::duration::parse)]
    activation_ttl: Duration,
}

impl GatewayArgs {
    /// The gateway's options, the keys file read.
    pub fn options(&self) -> anyhow::Result<GatewayOptions> {
        let keys = match (&self.keys, self.no_auth) {
            (Some(path), false) => Some(Keys::load(path)?),
            (None, true) => {
                warn!("--no-auth: every request is accepted, every namespace open");
                None
            }
            _ => bail!("give --keys FILE (one `UUID:KEY [NAMESPACE]` per line) or --no-auth"),
        };
        anyhow::ensure!(
            !self.blocking_timeout.is_zero() && !self.call_timeout.is_zero(),
            "--blocking-timeout and --call-timeout must be longer than 0"
        );
        anyhow::ensure!(self.max_calls > 0, "--max-calls must be at least 1");
        anyhow::ensure!(self.activations > 0, "--activations must be at least 1");
        let mut options = GatewayOptions::new(self.listen, &self.router);
        if let Some(table) = &self.router_table {
            options.router_table = table.clone();
        }
        Ok(GatewayOptions {
            keys,
            blocking_timeout: self.blocking_timeout,
            call_timeout: self.call_timeout,
            max_calls: self.max_calls,
            max_body_bytes: self.max_body_bytes,
            activations: self.activations,
            activation_ttl: self.activation_ttl,
            ..options
        })
    }
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    gateway::serve_until(args.options()?, crate::shutdown_signal()).await
}
