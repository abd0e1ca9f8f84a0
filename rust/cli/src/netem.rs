//! `lambdaroute netem`: the NFQUEUE delay element (for kernels without the netem qdisc).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Args;
use lambdaroute_netem::QueueSpec;

/// Hold the packets that iptables sends to NFQUEUE queues for a fixed delay, drop a seeded
/// fraction, and release them in order. Run it in the network namespace of the rules, as root,
/// e.g. `iptables -A INPUT -j NFQUEUE --queue-num 1` with `lambdaroute netem --queue 1:20`.
#[derive(Args, Debug)]
pub struct NetemArgs {
    /// A queue and what to do with its packets: QUEUE:DELAY_MS[:LOSS_PERCENT], e.g. `1:20` or
    /// `2:5:0.1`. Repeat for more queues (each holds its packets in its own FIFO).
    #[arg(
        long = "queue",
        required = true,
        value_name = "QUEUE:DELAY_MS[:LOSS_PERCENT]"
    )]
    queues: Vec<QueueSpec>,
    /// Seed of the loss draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Packets the kernel keeps waiting for this element per queue; more are dropped.
    #[arg(long, default_value_t = 16384)]
    max_len: u32,
}

#[cfg(target_os = "linux")]
pub async fn run(args: NetemArgs) -> anyhow::Result<()> {
    use lambdaroute_netem::element::{self, ElementOptions};

    let options = ElementOptions {
        queues: args.queues,
        seed: args.seed,
        max_len: args.max_len,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = Arc::clone(&stop);
        tokio::task::spawn_blocking(move || element::run(&options, &stop, || ()))
    };
    tokio::pin!(worker);
    tokio::select! {
        result = &mut worker => {
            result.context("the netem element thread panicked")??;
        }
        _ = crate::shutdown_signal() => {
            stop.store(true, Ordering::Relaxed);
            worker.await.context("the netem element thread panicked")??;
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub async fn run(_args: NetemArgs) -> anyhow::Result<()> {
    anyhow::bail!("`lambdaroute netem` needs Linux (NFQUEUE)")
}
