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
    /// Send the calls of --schedule on time (a schedule of Array of Things readings, made by
    /// `lambdaroute trace aot schedule` or the testbed), whatever the answers.
    Aot,
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Router's lambda service, host:port. Given more than once (or as a comma list), the
    /// first is preferred and the others are fallbacks, in order: a call the router in use
    /// does not answer (connection refused or reset, unavailable, --timeout) moves the calls
    /// to the next one and is sent there once more; every second a dry call asks the first
    /// whether it answers again, and calls go back to it when it does.
    #[arg(
        long,
        value_name = "HOST:PORT",
        value_delimiter = ',',
        default_value = "127.0.0.1:6473"
    )]
    router: Vec<String>,
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
    /// ON/OFF: mean ON period (`5s`, `500ms`, or seconds).
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse)]
    on_mean: Duration,
    /// ON/OFF: mean OFF period (`5s`, `500ms`, or seconds).
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse)]
    off_mean: Duration,
    /// ON/OFF: least gap between calls inside ON (`50ms`, or seconds).
    #[arg(long, default_value = "50ms", value_parser = crate::duration::parse)]
    gap_min: Duration,
    /// ON/OFF: largest gap between calls inside ON (`150ms`, or seconds).
    #[arg(long, default_value = "150ms", value_parser = crate::duration::parse)]
    gap_max: Duration,
    /// Trace to replay: rows `time lambda endpoint size` (endpoint `-` = --router).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Schedule to send (--pattern aot): `time,trace_time,node,lambda,size,readings,rows` rows.
    #[arg(long)]
    schedule: Option<PathBuf>,
    /// Payload bytes per call: 100, a range 100-1000, or a list 100,200,400.
    #[arg(long, default_value = "100")]
    sizes: Sizes,
    /// How long to run (`10s`, `2m`, or seconds; 0 = no limit, then --max-calls or the trace
    /// ends the run).
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse)]
    duration: Duration,
    /// Stop after this many calls.
    #[arg(long)]
    max_calls: Option<u64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long one call may take before it counts as an error (`60s`, `500ms`, or seconds).
    #[arg(long, default_value = "60s", value_parser = crate::duration::parse)]
    timeout: Duration,
    /// Ask for estimates only (dry run).
    #[arg(long)]
    dry: bool,
    /// CSV of one row per call: time,latency,load1,responder,lambda,hops,status,objects,
    /// scheduled,node,router (the router that answered, or the last one tried).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Send images (JPEG or PNG) in turn, one per call, in `datain` (e.g. --lambda facerec0);
    /// --sizes is then unused.
    #[arg(long, value_name = "FILE[,FILE]", value_delimiter = ',')]
    image: Vec<PathBuf>,
    /// With --image: after each call, call this lambda once per face found, with the face
    /// cropped out (as serverlessonedge's `facerecclient --eyes`).
    #[arg(long, value_name = "LAMBDA", num_args = 0..=1, default_missing_value = "eyerec0", requires = "image")]
    eyes: Option<String>,
    #[command(flatten)]
    tls: crate::security::TlsArgs,
    #[command(flatten)]
    call_token: crate::security::CallTokenArgs,
    /// Call through this OpenWhisk API host instead of the router's gRPC service:
    /// `POST URL/api/v1/namespaces/NS/actions/LAMBDA?blocking=true` (lambdaroute's gateway,
    /// docs/openwhisk.md); responder, hops and load come from the activation's annotations.
    #[arg(long, value_name = "URL", conflicts_with = "mec")]
    openwhisk: Option<String>,
    /// With --openwhisk: the namespace (`_`: the key's own).
    #[arg(long, default_value = "_", requires = "openwhisk")]
    openwhisk_namespace: String,
    /// With --openwhisk: the API key `UUID:KEY` (basic authentication); from the environment,
    /// it stays out of `ps`.
    #[arg(
        long,
        env = "LAMBDAROUTE_OPENWHISK_AUTH",
        hide_env_values = true,
        value_name = "UUID:KEY"
    )]
    openwhisk_auth: Option<String>,
    /// Ask this ETSI MEC 016 service (a controller's --mec-listen, `http://HOST:PORT`) for
    /// an application context of --lambda, call the router its referenceURI names (instead
    /// of --router), and delete the context at the end (docs/mec.md).
    #[arg(long, value_name = "URL")]
    mec: Option<String>,
}

/// The OpenWhisk API host of `--openwhisk`, if any.
fn openwhisk(args: &ClientArgs) -> anyhow::Result<Option<client::OpenWhiskApi>> {
    let Some(url) = &args.openwhisk else {
        return Ok(None);
    };
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "--openwhisk {url}: give the API host's URL, e.g. http://10.0.0.3:3233"
    );
    let auth = match &args.openwhisk_auth {
        None => None,
        Some(auth) => match auth.split_once(':') {
            Some((user, key)) if !user.is_empty() && !key.is_empty() => {
                Some((user.to_owned(), key.to_owned()))
            }
            _ => anyhow::bail!(
                "--openwhisk-auth (or LAMBDAROUTE_OPENWHISK_AUTH): expected UUID:KEY, as `wsk property get --auth` prints it"
            ),
        },
    };
    Ok(Some(client::OpenWhiskApi {
        url: url.clone(),
        namespace: args.openwhisk_namespace.clone(),
        auth,
    }))
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
            arrivals: Arrivals::on_off(args.on_mean, args.off_mean, args.gap_min, args.gap_max)?,
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
        PatternName::Aot => Pattern::Schedule(
            args.schedule
                .clone()
                .context("--pattern aot needs --schedule FILE")?,
        ),
    };
    let images = if args.image.is_empty() {
        None
    } else {
        Some(client::ImageCalls::read(&args.image, args.eyes.clone())?)
    };
    let duration = args.duration;
    let mut routers = args.router.iter().map(|r| r.trim().to_owned());
    let router = routers
        .next()
        .filter(|r| !r.is_empty())
        .context("--router: expected HOST:PORT, e.g. 127.0.0.1:6473")?;
    let fallback: Vec<String> = routers.collect();
    anyhow::ensure!(
        fallback.iter().all(|r| !r.is_empty()),
        "--router: an empty router in the list; expected HOST:PORT[,HOST:PORT...]"
    );
    let openwhisk = openwhisk(&args)?;
    let mut router = router;
    let context = match &args.mec {
        Some(url) => {
            let device = format!("lambdaroute-client-{}", std::process::id());
            let context =
                lambdaroute_node::controller::mec::open_context(url, &args.lambda, &device).await?;
            eprintln!(
                "MEC: application context {} for {}: router {} (referenceURI {})",
                context.id, args.lambda, context.router, context.reference_uri
            );
            router.clone_from(&context.router);
            Some(context)
        }
        None => None,
    };
    let options = ClientOptions {
        pattern,
        sizes: args.sizes,
        duration: (!duration.is_zero()).then_some(duration),
        max_calls: args.max_calls,
        seed: args.seed,
        timeout: args.timeout,
        dry: args.dry,
        images,
        security: lambdaroute_node::tls::Security {
            call_token: args.call_token.token()?,
            ..args
                .tls
                .security("client", Some(lambdaroute_node::tls::Role::Client))?
        },
        fallback,
        openwhisk,
        ..ClientOptions::new(router, args.lambda.clone())
    };
    let report = client::run_until(options, crate::shutdown_signal()).await;
    if let Some(context) = &context
        && let Err(error) = lambdaroute_node::controller::mec::close_context(context).await
    {
        eprintln!("warning: MEC: {error:#}");
    }
    let report = report?;
    if let Some(path) = &args.output {
        report.save_csv(path)?;
        eprintln!("wrote {} calls to {}", report.calls.len(), path.display());
    }
    print!("{}", report.summary());
    for (lambda, (answers, objects)) in report.objects() {
        println!("objects found by {lambda}: {objects} in {answers} answers");
    }
    anyhow::ensure!(
        report.problems.is_empty(),
        "the run stopped early: {}",
        report.problems.join("; ")
    );
    Ok(())
}
