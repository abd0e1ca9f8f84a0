//! `lambdaroute router`.

use std::net::SocketAddr;

use clap::Args;
use lambdaroute_core::estimator::EstimatorKind;
use lambdaroute_core::policy::PolicyKind;
use lambdaroute_node::metrics::RouterMetrics;
use lambdaroute_node::router::{self, DEFAULT_LISTEN, DEFAULT_TABLE_LISTEN, RouterOptions};
use lambdaroute_node::tls::Role;

#[derive(Args, Debug)]
pub struct RouterArgs {
    /// Address of the lambda service (clients and other routers call here).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Address of the table service (the controller and `lambdaroute table` call here).
    #[arg(long, default_value = DEFAULT_TABLE_LISTEN)]
    table_listen: SocketAddr,
    /// Policy: rp (random proportional), li (least impedance), rr (weighted round robin),
    /// p2c (power of two choices), pf[:alpha:beta] (proportional fairness, default 1:1).
    #[arg(long, default_value = router::DEFAULT_POLICY.as_str())]
    policy: PolicyKind,
    /// Latency estimator: ewma[:alpha], periodic[:period_s[:min|mean|max]] or
    /// peak-ewma[:decay_s]. Default: peak-ewma:10 with p2c, ewma:0.95 with the others.
    #[arg(long)]
    estimator: Option<EstimatorKind>,
    /// Calls in flight to one destination at most; more wait at the router.
    #[arg(long, default_value_t = router::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
    /// How long a forwarded call may take before its destination counts as failed
    /// (e.g. 500ms, 30s, 2m; a plain number is seconds).
    #[arg(long, default_value_t = router::DEFAULT_CALL_TIMEOUT.into(), value_parser = human_duration)]
    call_timeout: humantime::Duration,
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
    /// Time between presence checks with the controller (e.g. 500ms, 1s; a plain number is
    /// seconds).
    #[arg(long, default_value_t = lambdaroute_node::membership::DEFAULT_CHECK_INTERVAL.into(), value_parser = human_duration)]
    check_interval: humantime::Duration,
    /// Benchmark mode: answer each call right after the decision instead of forwarding it
    /// (as serverlessonedge's harness); the decision time feeds the estimator.
    #[arg(long)]
    fake: bool,
    /// Threads of the async runtime: 1 runs everything on one thread (no cross-CPU wake-ups
    /// between the two halves of a forwarded call); N > 1 a multi-thread runtime of N workers;
    /// 0 one worker per CPU.
    #[arg(long, default_value_t = router::DEFAULT_THREADS)]
    pub threads: usize,
    #[command(flatten)]
    metrics: crate::metrics::MetricsArgs,
    #[command(flatten)]
    limits: crate::limits::LimitsArgs,
    #[command(flatten)]
    tls: crate::security::TlsArgs,
    #[command(flatten)]
    call_auth: crate::security::CallAuthArgs,
}

/// A duration flag as `humantime::Duration`, whose `Display` shows the defaults in `--help`.
fn human_duration(text: &str) -> Result<humantime::Duration, String> {
    crate::duration::parse(text).map(humantime::Duration::from)
}

pub async fn run(mut args: RouterArgs) -> anyhow::Result<()> {
    let mut registry = args.metrics.registry();
    let metrics_args = std::mem::take(&mut args.metrics);
    let mut options = options(args)?;
    options.metrics = registry.as_mut().map(RouterMetrics::register);
    let server = metrics_args.serve(registry).await?;
    crate::metrics::beside(
        server,
        router::serve_until(options, crate::shutdown_signal()),
    )
    .await
}

/// The router's options from its command line.
fn options(args: RouterArgs) -> anyhow::Result<RouterOptions> {
    anyhow::ensure!(
        !args.call_timeout.is_zero(),
        "--call-timeout must be longer than 0"
    );
    anyhow::ensure!(
        !args.check_interval.is_zero(),
        "--check-interval must be longer than 0"
    );
    if args.controller.is_some()
        && ((args.endpoint.is_none() && args.listen.ip().is_unspecified())
            || (args.table_endpoint.is_none() && args.table_listen.ip().is_unspecified()))
    {
        tracing::warn!(
            "listening on an unspecified address: set --endpoint and --table-endpoint to the addresses the controller and other routers should use"
        );
    }
    Ok(RouterOptions {
        listen: args.listen,
        table_listen: args.table_listen,
        policy: args.policy,
        estimator: args.estimator,
        max_in_flight: args.max_in_flight,
        call_timeout: args.call_timeout.into(),
        max_request_bytes: args.max_request_bytes,
        seed: args.seed,
        controller: args.controller,
        endpoint: args.endpoint,
        table_endpoint: args.table_endpoint,
        check_interval: args.check_interval.into(),
        fake: args.fake,
        limits: args.limits.limits()?,
        security: args.call_auth.security(&args.tls, "router", Role::Router)?,
        ..RouterOptions::default()
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use lambdaroute_core::{EstimatorKind, PolicyKind};

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        router: RouterArgs,
    }

    fn parse(args: &[&str]) -> anyhow::Result<RouterOptions> {
        options(Command::try_parse_from(["router"].iter().chain(args))?.router)
    }

    #[test]
    fn no_flags_give_the_router_options_defaults() {
        let (cli, default) = (parse(&[]).unwrap(), RouterOptions::default());
        assert_eq!(cli.listen, default.listen);
        assert_eq!(cli.table_listen, default.table_listen);
        assert_eq!(cli.policy, default.policy);
        assert_eq!(cli.estimator(), default.estimator());
        assert_eq!(cli.max_in_flight, default.max_in_flight);
        assert_eq!(cli.call_timeout, default.call_timeout);
        assert_eq!(cli.max_request_bytes, default.max_request_bytes);
        assert_eq!(cli.seed, default.seed);
        assert_eq!(cli.check_interval, default.check_interval);
    }

    #[test]
    fn the_estimator_defaults_to_the_policys_own() {
        let p2c = parse(&["--policy", "p2c"]).unwrap();
        assert_eq!(p2c.estimator(), PolicyKind::PowerOfTwo.default_estimator());
        assert!(matches!(p2c.estimator(), EstimatorKind::PeakEwma { .. }));
        let told = parse(&["--policy", "p2c", "--estimator", "ewma:0.5"]).unwrap();
        assert_eq!(told.estimator(), EstimatorKind::Ewma { alpha: 0.5 });
    }

    #[test]
    fn durations_take_humantime_or_seconds() {
        let o = parse(&["--call-timeout", "1500ms", "--check-interval", "2"]).unwrap();
        assert_eq!(o.call_timeout, std::time::Duration::from_millis(1500));
        assert_eq!(o.check_interval, std::time::Duration::from_secs(2));
        let zero = parse(&["--call-timeout", "0s"]).unwrap_err().to_string();
        assert!(zero.contains("--call-timeout"), "{zero}");
    }
}
