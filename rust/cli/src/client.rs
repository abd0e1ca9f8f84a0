//! `lambdaroute client`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use lambdaroute_core::workload::{Arrivals, Sizes, parse_trace};
use lambdaroute_node::client::{self, ClientOptions, Pattern};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PatternName {
    /// --threads callers, one call outstanding each.
    Closed,
    /// Poisson arrivals at --rate calls/s.
    Poisson,
    /// --threads sources alternating exponential ON (--on-mean) and OFF (--off-mean) periods;
    /// inside ON, calls spaced U[--gap-min, --gap-max].
    OnOff,
    /// Replay --trace.
    Trace,
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Router's lambda service, host:port.
    #[arg(long, default_value = "127.0.0.1:6473")]
    router: String,
    /// Lambda to call.
    #[arg(long, default_value = "clambda0")]
    lambda: String,
    #[arg(long, value_enum, default_value = "closed")]
    pattern: PatternName,
    /// Closed loop: concurrent callers; ON/OFF: independent sources.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Poisson rate, calls per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// ON/OFF: mean ON period, seconds.
    #[arg(long, default_value_t = 5.0)]
    on_mean: f64,
    /// ON/OFF: mean OFF period, seconds.
    #[arg(long, default_value_t = 5.0)]
    off_mean: f64,
    /// ON/OFF: least gap between calls inside ON, seconds.
    #[arg(long, default_value_t = 0.05)]
    gap_min: f64,
    /// ON/OFF: largest gap between calls inside ON, seconds.
    #[arg(long, default_value_t = 0.15)]
    gap_max: f64,
    /// Trace to replay: rows `time lambda endpoint size` (endpoint `-` = --router).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Payload bytes per call: 100, a range 100-1000, or a list 100,200,400.
    #[arg(long, default_value = "100")]
    sizes: Sizes,
    /// Seconds to run (default 10; 0 = no limit, then --max-calls or the trace ends the run).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many calls.
    #[arg(long)]
    max_calls: Option<u64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds one call may take before it counts as an error.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Ask for estimates only (dry run).
    #[arg(long)]
    dry: bool,
    /// CSV of one row per call: time,latency,load1,responder,lambda,hops,status.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

fn seconds(name: &str, value: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        value.is_finite() && value >= 0.0,
        "--{name} must be a number of seconds >= 0, not {value}"
    );
    Ok(Duration::from_secs_f64(value))
}

pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let pattern = match args.pattern {
        PatternName::Closed => Pattern::ClosedLoop {
            threads: args.threads,
        },
        PatternName::Poisson => Pattern::Open {
            arrivals: Arrivals::poisson(args.rate)?,
            sources: 1,
        },
        PatternName::OnOff => Pattern::Open {
            arrivals: Arrivals::on_off(
                seconds("on-mean", args.on_mean)?,
                seconds("off-mean", args.off_mean)?,
                seconds("gap-min", args.gap_min)?,
                seconds("gap-max", args.gap_max)?,
            )?,
            sources: args.threads,
        },
        PatternName::Trace => {
            let path = args
                .trace
                .as_ref()
                .context("--pattern trace needs --trace FILE")?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read trace {}", path.display()))?;
            Pattern::Trace(parse_trace(&text, &path.display().to_string())?)
        }
    };
    let duration = seconds("duration", args.duration)?;
    let options = ClientOptions {
        pattern,
        sizes: args.sizes,
        duration: (!duration.is_zero()).then_some(duration),
        max_calls: args.max_calls,
        seed: args.seed,
        timeout: seconds("timeout", args.timeout)?,
        dry: args.dry,
        ..ClientOptions::new(args.router, args.lambda)
    };
    let report = client::run_until(options, crate::shutdown_signal()).await?;
    if let Some(path) = &args.output {
        report.save_csv(path)?;
        eprintln!("wrote {} calls to {}", report.calls.len(), path.display());
    }
    print!("{}", report.summary());
    Ok(())
}
