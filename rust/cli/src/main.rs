//! The `lambdaroute` binary: one subcommand per role. It parses the command line and hands over
//! to `lambdaroute-node`; nothing else lives here.

mod bench;
mod client;
mod computer;
mod controller;
mod duration;
mod executor;
mod gateway;
mod limits;
mod metrics;
mod netem;
mod router;
mod security;
mod table;
mod trace;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Route serverless function calls (lambdas) across edge computers.
#[derive(Parser, Debug)]
#[command(name = "lambdaroute", version, about, long_about = None)]
struct Cli {
    /// Log filter, e.g. "info", "debug", "lambdaroute_node=debug" (or RUST_LOG).
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// e-router: take lambda calls and dispatch each to a destination of the e-table.
    Router(router::RouterArgs),
    /// e-computer: run lambdas on a simulated processor-sharing computer.
    Computer(computer::ComputerArgs),
    /// Client: send lambda calls to a router and record one CSV row per call.
    Client(client::ClientArgs),
    /// Read or change a router's e-tables.
    Table(table::TableArgs),
    /// Delay element: hold NFQUEUE-queued packets a fixed delay, drop a seeded fraction.
    Netem(netem::NetemArgs),
    /// e-controller: install routers' tables (flat or two-tier), handle failures and congestion.
    Controller(controller::ControllerArgs),
    /// Report congested or cleared links to the controller (the network monitor's call).
    Congestion(controller::CongestionArgs),
    /// Print the controller's view: routers, computers, lambdas, congested links, marks.
    #[command(visible_alias = "view")]
    ControllerView(controller::ViewArgs),
    /// Benchmark the router: dispatch rate versus table size, the gRPC floor, memory.
    Bench(bench::BenchArgs),
    /// Array of Things traces: generate a digest, read (check, filter) one, make call schedules.
    Trace(trace::TraceArgs),
    /// Make a CA and node certificates for secured mode (--tls-dir; docs/security.md).
    Certs(security::CertsArgs),
    /// OpenWhisk-compatible front door of a router: OpenWhisk's clients invoke lambdas unchanged.
    Gateway(gateway::GatewayArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    // Every role: the descriptors a flood of connections takes first are those of the soft
    // limit, often 1,024 of a far higher hard limit.
    match lambdaroute_node::limits::raise_nofile_limit() {
        Ok((before, after)) if before != after => {
            tracing::debug!(
                before,
                after,
                "descriptor soft limit raised to the hard limit"
            )
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot raise the descriptor soft limit"),
    }
    // A burst of large calls must not leave its memory resident for good.
    lambdaroute_node::limits::return_large_buffers();
    // The router picks its own threads (`--threads`); every other role uses one worker per CPU.
    let threads = match &cli.role {
        Role::Router(args) => args.threads,
        _ => 0,
    };
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if threads > 1 {
        builder.worker_threads(threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.role {
            Role::Router(args) => router::run(args).await,
            Role::Computer(args) => computer::run(args).await,
            Role::Client(args) => client::run(args).await,
            Role::Table(args) => table::run(args).await,
            Role::Netem(args) => netem::run(args).await,
            Role::Controller(args) => controller::run(args).await,
            Role::Congestion(args) => controller::congestion(args).await,
            Role::ControllerView(args) => controller::view(args).await,
            Role::Bench(args) => bench::run(args).await,
            Role::Trace(args) => trace::run(args),
            Role::Certs(args) => security::certs(args),
            Role::Gateway(args) => gateway::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM, so that every role stops cleanly.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("stopping");
}
