//! The benchmark's child processes (the router under test, the answering servers) and what
//! Linux tells about them: resident memory (`VmRSS` of `/proc/PID/status`) and CPU time
//! (`utime + stime` of `/proc/PID/stat`).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// Where each process runs (`--pin`): the servers under test (router, answering servers) on
/// CPU 0, the load generator (this process) on CPU 1; unpinned, all share both CPUs.
pub const SERVER_CPU: &str = "0";
/// The CPU of the load generator with `--pin` (see [`SERVER_CPU`]).
pub const LOAD_CPU: &str = "1";

/// A child process, killed (and reaped) when dropped.
pub struct ChildProcess {
    child: Child,
    name: String,
}

impl ChildProcess {
    /// Spawn `command`, named `name` in errors.
    pub fn spawn(mut command: Command, name: impl Into<String>) -> anyhow::Result<Self> {
        let name = name.into();
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self { child, name })
    }

    /// Wait until the process exits; fails on a non-zero status.
    pub fn wait_success(mut self) -> anyhow::Result<()> {
        let status = self.child.wait()?;
        if !status.success() {
            bail!("{} exited: {status}", self.name);
        }
        Ok(())
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB.
    pub fn rss_kb(&self) -> anyhow::Result<u64> {
        rss_kb(self.pid())
    }

    /// CPU time used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid())
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited: {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(exe: &Path, pin: bool) -> Command {
    if pin {
        let mut command = Command::new("taskset");
        command.arg("-c").arg(SERVER_CPU).arg(exe);
        command
    } else {
        Command::new(exe)
    }
}

/// A free TCP port on 127.0.0.1 (bound then released; the child binds it a moment later).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A router under test: `lambdaroute router` on loopback.
pub struct RouterProcess {
    /// The router's process.
    pub process: ChildProcess,
    /// Address of the router's lambda service (`uiiit.rpc.EdgeServer`).
    pub listen: SocketAddr,
    /// Address of the router's table service (`uiiit.rpc.EdgeRouter`).
    pub table_listen: SocketAddr,
}

/// Start `exe router` with `policy`, in fake mode or not, on free loopback ports; returns once
/// its table service accepts connections.
pub async fn start_router(
    exe: &Path,
    policy: &str,
    fake: bool,
    seed: u64,
    pin: bool,
    threads: usize,
) -> anyhow::Result<RouterProcess> {
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let table_listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut command = command(exe, pin);
    command
        .args(["--log", "warn", "router", "--policy", policy])
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--table-listen")
        .arg(table_listen.to_string())
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--threads")
        .arg(threads.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if fake {
        command.arg("--fake");
    }
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {} router", exe.display()))?;
    let mut process = ChildProcess {
        child,
        name: format!("router ({policy}{})", if fake { ", fake" } else { "" }),
    };
    for _ in 0..200 {
        process.check_alive()?;
        let both = tokio::net::TcpStream::connect(table_listen).await.is_ok()
            && tokio::net::TcpStream::connect(listen).await.is_ok();
        if both {
            return Ok(RouterProcess {
                process,
                listen,
                table_listen,
            });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the router did not listen on {listen} and {table_listen} within 5 s")
}

/// The answering servers (the floor and the normal-mode destinations): `exe bench
/// --serve-answer count`, which prints its addresses; it exits when its stdin closes.
pub struct AnswerProcess {
    /// The answering servers' process (one process, `count` ports).
    pub process: ChildProcess,
    /// `host:port` of each answering server.
    pub addresses: Vec<String>,
}

/// Start `exe bench --serve-answer count` (pinned to [`SERVER_CPU`] with `pin`); returns once
/// it has printed the addresses of its `count` answering servers.
pub fn start_answerers(exe: &Path, count: usize, pin: bool) -> anyhow::Result<AnswerProcess> {
    let mut child = command(exe, pin)
        .args(["--log", "warn", "bench", "--serve-answer"])
        .arg(count.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {} bench --serve-answer", exe.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let process = ChildProcess {
        child,
        name: "answering servers".into(),
    };
    let mut addresses = Vec::with_capacity(count);
    for line in BufReader::new(stdout).lines().take(count) {
        addresses.push(line.context("cannot read the answering servers' addresses")?);
    }
    if addresses.len() != count {
        bail!(
            "the answering servers printed {} addresses, not {count}",
            addresses.len()
        );
    }
    Ok(AnswerProcess { process, addresses })
}

/// Pin this process (every thread) to the load generator's CPU, with `taskset -a -p`.
pub fn pin_self() -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", LOAD_CPU])
        .arg(std::process::id().to_string())
        .stdout(Stdio::null())
        .status()
        .context("cannot run taskset")?;
    if !status.success() {
        bail!("taskset failed: {status}");
    }
    Ok(())
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kb(pid: u32) -> anyhow::Result<u64> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let status = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_rss_kb(&status).with_context(|| format!("no VmRSS in {}", path.display()))
}

fn parse_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// User + system CPU time of a process, in seconds (clock ticks of 1/100 s).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let stat = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / CLOCK_TICKS)
        .with_context(|| format!("cannot parse {}", path.display()))
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this runs on.
const CLOCK_TICKS: f64 = 100.0;

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // Fields after the command name (which may hold spaces, hence the last ')'):
    // state is field 3, utime 14 and stime 15 (1-based), i.e. 11 and 12 after the state.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vmrss() {
        let status = "Name:\tlambdaroute\nVmPeak:\t  1000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_rss_kb(status), Some(12345));
        assert_eq!(parse_rss_kb("Name: x\n"), None);
    }

    #[test]
    fn parses_cpu_ticks() {
        let stat = "4242 (lambda route) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(281));
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(rss_kb(pid).unwrap() > 0);
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
    }
}
