//! `lambdaroute router`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use lambdaroute_core::estimator::EstimatorKind;
use lambdaroute_core::policy::PolicyKind;
use lambdaroute_node::router::{self, DEFAULT_LISTEN, DEFAULT_TABLE_LISTEN, RouterOptions};

#[derive(Args, Debug)]
pub struct RouterArgs {
    /// Address of the lambda service (clients and other routers call here).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Address of the table service (the controller and `lambdaroute table` call here).
    #[arg(long, default_value = DEFAULT_TABLE_LISTEN)]
    table_listen: SocketAddr,
    /// Policy: rp (random proportional), li (least impedance), rr (weighted round robin),
    /// p2c (power of two choices).
    #[arg(long, default_value = "rp")]
    policy: PolicyKind,
    /// Latency estimator: ewma[:alpha] or periodic[:period_s[:min|mean|max]].
    #[arg(long, default_value = "ewma:0.95")]
    estimator: EstimatorKind,
    /// Calls in flight to one destination at most; more wait at the router.
    #[arg(long, default_value_t = 64)]
    max_in_flight: usize,
    /// Seconds a forwarded call may take before its destination counts as failed.
    #[arg(long, default_value_t = 60.0)]
    call_timeout: f64,
    /// Largest request accepted, in bytes.
    #[arg(long, default_value_t = router::DEFAULT_MAX_REQUEST_BYTES)]
    max_request_bytes: usize,
    /// Seed of the policies' random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub async fn run(args: RouterArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.call_timeout.is_finite() && args.call_timeout > 0.0,
        "--call-timeout must be a number of seconds > 0"
    );
    let options = RouterOptions {
        listen: args.listen,
        table_listen: args.table_listen,
        policy: args.policy,
        estimator: args.estimator,
        max_in_flight: args.max_in_flight,
        call_timeout: Duration::from_secs_f64(args.call_timeout),
        max_request_bytes: args.max_request_bytes,
        seed: args.seed,
        ..RouterOptions::default()
    };
    router::serve_until(options, crate::shutdown_signal()).await
}
