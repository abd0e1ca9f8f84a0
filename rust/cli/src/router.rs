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
    #[arg(long, default_value = router::DEFAULT_POLICY.as_str())]
    policy: PolicyKind,
    /// Latency estimator: ewma[:alpha], periodic[:period_s[:min|mean|max]] or
    /// peak-ewma[:decay_s]. Default: peak-ewma:10 with p2c, ewma:0.95 with the others.
    #[arg(long)]
    estimator: Option<EstimatorKind>,
    /// Calls in flight to one destination at most; more wait at the router.
    #[arg(long, default_value_t = router::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
    /// Seconds a forwarded call may take before its destination counts as failed.
    #[arg(long, default_value_t = router::DEFAULT_CALL_TIMEOUT.as_secs_f64())]
    call_timeout: f64,
    /// Largest request accepted, in bytes.
    #[arg(long, default_value_t = router::DEFAULT_MAX_REQUEST_BYTES)]
    max_request_bytes: usize,
    /// Seed of the policies' random choices.
    #[arg(long, default_value_t = router::DEFAULT_SEED)]
    seed: u64,
    /// The controller (HOST:PORT): announce this router, re-announce when the controller
    /// restarts, report failed destinations.
    #[arg(long, value_name = "HOST:PORT")]
    controller: Option<String>,
    /// Lambda endpoint announced to the controller (default: --listen; set it when listening on
    /// 0.0.0.0).
    #[arg(long, value_name = "HOST:PORT")]
    endpoint: Option<String>,
    /// Table endpoint announced to the controller (default: --table-listen).
    #[arg(long, value_name = "HOST:PORT")]
    table_endpoint: Option<String>,
    /// Seconds between presence checks with the controller.
    #[arg(long, default_value_t = lambdaroute_node::membership::DEFAULT_CHECK_INTERVAL.as_secs_f64())]
    check_interval: f64,
    /// Benchmark mode: answer each call right after the decision instead of forwarding it
    /// (as serverlessonedge's harness); the decision time feeds the estimator.
    #[arg(long)]
    fake: bool,
    /// Threads of the async runtime: 1 runs everything on one thread (no cross-CPU wake-ups
    /// between the two halves of a forwarded call); N > 1 a multi-thread runtime of N workers;
    /// 0 one worker per CPU.
    #[arg(long, default_value_t = router::DEFAULT_THREADS)]
    pub threads: usize,
}

pub async fn run(args: RouterArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.call_timeout.is_finite() && args.call_timeout > 0.0,
        "--call-timeout must be a number of seconds > 0"
    );
    anyhow::ensure!(
        args.check_interval.is_finite() && args.check_interval > 0.0,
        "--check-interval must be a number of seconds > 0"
    );
    if args.controller.is_some()
        && ((args.endpoint.is_none() && args.listen.ip().is_unspecified())
            || (args.table_endpoint.is_none() && args.table_listen.ip().is_unspecified()))
    {
        tracing::warn!(
            "listening on an unspecified address: set --endpoint and --table-endpoint to the addresses the controller and other routers should use"
        );
    }
    let options = RouterOptions {
        listen: args.listen,
        table_listen: args.table_listen,
        policy: args.policy,
        estimator: args.estimator,
        max_in_flight: args.max_in_flight,
        call_timeout: Duration::from_secs_f64(args.call_timeout),
        max_request_bytes: args.max_request_bytes,
        seed: args.seed,
        controller: args.controller,
        endpoint: args.endpoint,
        table_endpoint: args.table_endpoint,
        check_interval: Duration::from_secs_f64(args.check_interval),
        fake: args.fake,
        ..RouterOptions::default()
    };
    router::serve_until(options, crate::shutdown_signal()).await
}
