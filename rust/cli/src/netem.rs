//! `lambdaroute netem`: the NFQUEUE delay element (for kernels without the netem qdisc).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Args;
use lambdaroute_netem::QueueSpec;

/// Hold the packets that iptables sends to NFQUEUE queues for a fixed delay, drop a seeded
/// fraction, and release them in order. Run it in the network namespace of the rules, as root,
/// e.g. `iptables -A INPUT -j NFQUEUE --queue-num 1` with `lambdaroute netem --queue 1:20`;
/// or serve the queues of several namespaces at once with `--namespaces FILE`.
#[derive(Args, Debug)]
pub struct NetemArgs {
    /// A queue and what to do with its packets: QUEUE:DELAY_MS[:LOSS_PERCENT], e.g. `1:20` or
    /// `2:5:0.1`. Repeat for more queues (each holds its packets in its own FIFO).
    #[arg(
        long = "queue",
        required_unless_present = "namespaces",
        conflicts_with = "namespaces",
        value_name = "QUEUE:DELAY_MS[:LOSS_PERCENT]"
    )]
    queues: Vec<QueueSpec>,
    /// Serve several network namespaces: a file with one line per namespace, its namespace
    /// file then its queues, e.g. `/proc/1234/ns/net 1:5 2:25:0.1` (`#` starts a comment).
    /// Queue numbers are per namespace; the `i`-th line draws its losses from seed `seed + i`.
    #[arg(long, value_name = "FILE")]
    namespaces: Option<std::path::PathBuf>,
    /// Seed of the loss draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Packets the kernel keeps waiting for this element per queue; more are dropped.
    #[arg(long, default_value_t = 16384)]
    max_len: u32,
}

/// The namespaces of a `--namespaces` file: `NETNS_FILE QUEUE_SPEC...` per line.
#[cfg(target_os = "linux")]
fn parse_namespaces(
    text: &str,
) -> anyhow::Result<Vec<lambdaroute_netem::element::NamespaceQueues>> {
    let mut groups = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let Some(netns) = words.next() else { continue };
        let queues = words
            .map(str::parse::<QueueSpec>)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("line {}", n + 1))?;
        anyhow::ensure!(!queues.is_empty(), "line {}: no queue for {netns}", n + 1);
        groups.push(lambdaroute_netem::element::NamespaceQueues {
            netns: Some(netns.into()),
            queues,
        });
    }
    anyhow::ensure!(!groups.is_empty(), "no namespace given");
    Ok(groups)
}

#[cfg(target_os = "linux")]
pub async fn run(args: NetemArgs) -> anyhow::Result<()> {
    use lambdaroute_netem::element::{self, NamespaceQueues};

    let groups = match &args.namespaces {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            parse_namespaces(&text).with_context(|| format!("{}", path.display()))?
        }
        None => vec![NamespaceQueues {
            netns: None,
            queues: args.queues,
        }],
    };
    let (seed, max_len) = (args.seed, args.max_len);
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = Arc::clone(&stop);
        tokio::task::spawn_blocking(move || {
            element::run_namespaces(&groups, seed, max_len, &stop, || ()).map(|_| ())
        })
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::parse_namespaces;

    #[test]
    fn a_namespaces_file_gives_each_namespace_its_queues() {
        let groups = parse_namespaces(
            "# host namespaces\n/proc/1/ns/net 1:5 2:25:0.5\n\n/proc/2/ns/net 2:20\n",
        )
        .unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].netns.as_deref(), Some("/proc/1/ns/net".as_ref()));
        assert_eq!(groups[0].queues.len(), 2);
        assert_eq!(groups[0].queues[1].loss, 0.005);
        assert_eq!(groups[1].queues[0].queue, 2);
        assert!(parse_namespaces("/proc/1/ns/net\n").is_err());
        assert!(parse_namespaces("/proc/1/ns/net 1:x\n").is_err());
        assert!(parse_namespaces("# nothing\n").is_err());
    }
}
