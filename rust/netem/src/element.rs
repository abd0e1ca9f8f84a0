//! The NFQUEUE loop: binds the queues, receives every queued packet (metadata only, no payload
//! copy), admits it to a [`DelayLine`] and gives the accept verdict when it is due.
//!
//! One thread does everything: the netlink socket is non-blocking, and between batches the
//! thread waits in `ppoll` on it until the next release or the next packet, whichever comes
//! first, so a held packet leaves within tens of microseconds of its due time.
//!
//! One element can serve the queues of several network namespaces ([`run_namespaces`]): it
//! enters each namespace (`setns` on e.g. `/proc/<pid>/ns/net`) just long enough to open that
//! namespace's netfilter queue socket, then returns to its own; the one thread polls every
//! socket. Queue numbers are per namespace, and each namespace has its own delay line.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nfq::{Message, Queue, Verdict};
use tracing::{debug, info, warn};

use crate::delay_line::{Admission, DelayLine, QueueSpec, QueueStats, SpecError};

/// How long the loop waits at most before it looks at the stop flag again.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Options of one element process.
#[derive(Clone, Debug)]
pub struct ElementOptions {
    /// The queues to bind, each with its delay and loss.
    pub queues: Vec<QueueSpec>,
    /// Seed of the loss draws.
    pub seed: u64,
    /// Packets the kernel keeps waiting for the element per queue; more are dropped.
    pub max_len: u32,
}

/// The queues of one network namespace, for [`run_namespaces`].
#[derive(Clone, Debug)]
pub struct NamespaceQueues {
    /// The namespace to enter (e.g. `/proc/<pid>/ns/net`); `None`: the element's own.
    pub netns: Option<PathBuf>,
    /// The queues to bind there, each with its delay and loss.
    pub queues: Vec<QueueSpec>,
}

/// Why the element could not run.
#[derive(Debug, thiserror::Error)]
pub enum ElementError {
    /// The queue specifications are refused (e.g. a queue given twice).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The netlink socket of the netfilter queues could not be opened.
    #[error(
        "cannot open the netfilter queue socket: {0} (the element needs root or CAP_NET_ADMIN)"
    )]
    Open(#[source] io::Error),
    /// A queue could not be bound.
    #[error(
        "cannot bind NFQUEUE queue {queue}: {source} (is another element bound to it in this network namespace?)"
    )]
    Bind {
        /// The NFQUEUE number.
        queue: u16,
        /// Why the kernel refused.
        #[source]
        source: io::Error,
    },
    /// The netlink socket could not be found among the process's file descriptors.
    #[error("cannot find the netfilter queue socket among this process's descriptors")]
    NoSocket,
    /// Receiving a queued packet failed.
    #[error("receiving from the netfilter queue failed: {0}")]
    Recv(#[source] io::Error),
    /// Giving a packet its accept or drop verdict failed.
    #[error("giving a verdict failed: {0}")]
    Verdict(#[source] io::Error),
    /// Waiting (`ppoll`) on the netlink socket failed.
    #[error("waiting on the netfilter queue socket failed: {0}")]
    Poll(#[source] io::Error),
    /// A network namespace could not be entered (or left again).
    #[error("cannot enter the network namespace {path}: {source}")]
    Namespace {
        /// The namespace file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Binds the queues of `options`, calls `ready` once they are bound, and runs until `stop` is
/// set; then accepts every held packet, unbinds and returns the counters per queue.
pub fn run(
    options: &ElementOptions,
    stop: &AtomicBool,
    ready: impl FnOnce(),
) -> Result<Vec<QueueStats>, ElementError> {
    let groups = [NamespaceQueues {
        netns: None,
        queues: options.queues.clone(),
    }];
    let stats = run_namespaces(&groups, options.seed, options.max_len, stop, ready)?;
    Ok(stats.into_iter().flatten().collect())
}

/// One namespace's socket and delay line.
struct Bound {
    queue: Queue,
    fd: RawFd,
    line: DelayLine<Message>,
    specs: Vec<QueueSpec>,
}

/// Binds the queues of every namespace of `groups` (the `i`-th draws its losses from seed
/// `seed + i`), calls `ready` once all are bound, and runs until `stop` is set; then accepts
/// every held packet, unbinds and returns the counters per queue of each group, in order.
pub fn run_namespaces(
    groups: &[NamespaceQueues],
    seed: u64,
    max_len: u32,
    stop: &AtomicBool,
    ready: impl FnOnce(),
) -> Result<Vec<Vec<QueueStats>>, ElementError> {
    let own = File::open("/proc/thread-self/ns/net").map_err(|source| ElementError::Namespace {
        path: "/proc/thread-self/ns/net".into(),
        source,
    })?;
    let mut bound = Vec::with_capacity(groups.len());
    for (i, group) in groups.iter().enumerate() {
        let line = DelayLine::new(&group.queues, seed.wrapping_add(i as u64))?;
        let before = netfilter_sockets();
        let opened = match &group.netns {
            None => Queue::open().map_err(ElementError::Open),
            Some(path) => {
                enter(path)?;
                let opened = Queue::open().map_err(ElementError::Open);
                // Back home before anything else, also when opening failed.
                set_netns(&own).map_err(|source| ElementError::Namespace {
                    path: "/proc/thread-self/ns/net".into(),
                    source,
                })?;
                opened
            }
        };
        let mut queue = opened?;
        let fd = netfilter_sockets()
            .difference(&before)
            .next()
            .copied()
            .ok_or(ElementError::NoSocket)?;
        for spec in &group.queues {
            let bind = |q: &mut Queue| -> io::Result<()> {
                q.bind(spec.queue)?;
                // Metadata only: the verdict needs the packet id, not its bytes.
                q.set_copy_range(spec.queue, 0)?;
                q.set_queue_max_len(spec.queue, max_len)
            };
            bind(&mut queue).map_err(|source| ElementError::Bind {
                queue: spec.queue,
                source,
            })?;
        }
        queue.set_nonblocking(true);
        bound.push(Bound {
            queue,
            fd,
            line,
            specs: group.queues.clone(),
        });
    }
    let specs: Vec<String> = groups
        .iter()
        .flat_map(|g| g.queues.iter().map(ToString::to_string))
        .collect();
    info!(namespaces = groups.len(), queues = ?specs, seed, "netem element ready");
    ready();

    let origin = Instant::now();
    let mut due: Vec<Message> = Vec::new();
    let result = serve(&mut bound, stop, origin, &mut due);

    // Whatever happened, let every held packet go.
    let mut all_stats = Vec::with_capacity(bound.len());
    for b in &mut bound {
        due.clear();
        b.line.drain(&mut due);
        let released = due.len();
        for message in due.drain(..) {
            let _ = verdict(&mut b.queue, message, Verdict::Accept);
        }
        for spec in &b.specs {
            let _ = b.queue.unbind(spec.queue);
        }
        let stats = b.line.stats();
        for s in &stats {
            info!(
                queue = s.queue,
                held = s.held,
                dropped = s.dropped,
                "netem element stopped"
            );
        }
        debug!(released, "released the packets held at stop");
        all_stats.push(stats);
    }
    result.map(|()| all_stats)
}

fn enter(path: &Path) -> Result<(), ElementError> {
    let namespace = |source| ElementError::Namespace {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(namespace)?;
    set_netns(&file).map_err(namespace)
}

/// `setns(fd, CLONE_NEWNET)` for the calling thread.
fn set_netns(file: &File) -> io::Result<()> {
    // SAFETY: a valid open descriptor of a network namespace file.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn serve(
    bound: &mut [Bound],
    stop: &AtomicBool,
    origin: Instant,
    due: &mut Vec<Message>,
) -> Result<(), ElementError> {
    let fds: Vec<RawFd> = bound.iter().map(|b| b.fd).collect();
    while !stop.load(Ordering::Relaxed) {
        for b in bound.iter_mut() {
            // Take every packet waiting now.
            loop {
                match b.queue.recv() {
                    Ok(message) => {
                        let number = message.get_queue_num();
                        match b.line.admit(number, origin.elapsed(), message) {
                            Admission::Held { .. } => {}
                            Admission::Dropped(message) => {
                                verdict(&mut b.queue, message, Verdict::Drop)?
                            }
                            Admission::Unknown(message) => {
                                warn!(queue = number, "packet of a queue not configured: accepted");
                                verdict(&mut b.queue, message, Verdict::Accept)?
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(ElementError::Recv(e)),
                }
            }
            b.line.release_due(origin.elapsed(), due);
            for message in due.drain(..) {
                verdict(&mut b.queue, message, Verdict::Accept)?;
            }
        }
        let next = bound.iter().filter_map(|b| b.line.next_release()).min();
        let wait = next
            .map_or(IDLE_WAIT, |r| r.saturating_sub(origin.elapsed()))
            .min(IDLE_WAIT);
        if !wait.is_zero() {
            wait_readable(&fds, wait)?;
        }
    }
    Ok(())
}

fn verdict(queue: &mut Queue, mut message: Message, v: Verdict) -> Result<(), ElementError> {
    message.set_verdict(v);
    queue.verdict(message).map_err(ElementError::Verdict)
}

/// Waits until one of `fds` is readable or `timeout` passed.
fn wait_readable(fds: &[RawFd], timeout: Duration) -> Result<(), ElementError> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `pollfds` holds `len` valid pollfds, a valid timespec, no signal mask.
    let rc = unsafe {
        libc::ppoll(
            pollfds.as_mut_ptr(),
            pollfds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(ElementError::Poll(e));
        }
    }
    Ok(())
}

/// The descriptors of this process's NETLINK_NETFILTER sockets (the `nfq` crate keeps its
/// socket private: the one a `Queue::open` adds is the new one).
fn netfilter_sockets() -> HashSet<RawFd> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return HashSet::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .filter(|&fd| {
            socket_option(fd, libc::SO_DOMAIN) == Some(libc::AF_NETLINK)
                && socket_option(fd, libc::SO_PROTOCOL) == Some(libc::NETLINK_NETFILTER)
        })
        .collect()
}

fn socket_option(fd: RawFd, option: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len point to a c_int and its size; a non-socket fd just fails.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}
