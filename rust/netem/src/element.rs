//! The NFQUEUE loop: binds the queues, receives every queued packet (metadata only, no payload
//! copy), admits it to a [`DelayLine`] and gives the accept verdict when it is due.
//!
//! One thread does everything: the netlink socket is non-blocking, and between batches the
//! thread waits in `ppoll` on it until the next release or the next packet, whichever comes
//! first, so a held packet leaves within tens of microseconds of its due time.

use std::io;
use std::os::fd::RawFd;
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
}

/// Binds the queues of `options`, calls `ready` once they are bound, and runs until `stop` is
/// set; then accepts every held packet, unbinds and returns the counters per queue.
pub fn run(
    options: &ElementOptions,
    stop: &AtomicBool,
    ready: impl FnOnce(),
) -> Result<Vec<QueueStats>, ElementError> {
    let mut line = DelayLine::new(&options.queues, options.seed)?;
    let mut queue = Queue::open().map_err(ElementError::Open)?;
    let fd = netfilter_socket().ok_or(ElementError::NoSocket)?;
    for spec in &options.queues {
        let bind = |q: &mut Queue| -> io::Result<()> {
            q.bind(spec.queue)?;
            // Metadata only: the verdict needs the packet id, not its bytes.
            q.set_copy_range(spec.queue, 0)?;
            q.set_queue_max_len(spec.queue, options.max_len)
        };
        bind(&mut queue).map_err(|source| ElementError::Bind {
            queue: spec.queue,
            source,
        })?;
    }
    queue.set_nonblocking(true);
    let specs: Vec<String> = options.queues.iter().map(ToString::to_string).collect();
    info!(queues = ?specs, seed = options.seed, "netem element ready");
    ready();

    let origin = Instant::now();
    let mut due: Vec<Message> = Vec::new();
    let result = serve(&mut queue, fd, &mut line, stop, origin, &mut due);

    // Whatever happened, let every held packet go.
    line.drain(&mut due);
    let released = due.len();
    for message in due.drain(..) {
        let _ = verdict(&mut queue, message, Verdict::Accept);
    }
    for spec in &options.queues {
        let _ = queue.unbind(spec.queue);
    }
    let stats = line.stats();
    for s in &stats {
        info!(
            queue = s.queue,
            held = s.held,
            dropped = s.dropped,
            "netem element stopped"
        );
    }
    debug!(released, "released the packets held at stop");
    result.map(|()| stats)
}

fn serve(
    queue: &mut Queue,
    fd: RawFd,
    line: &mut DelayLine<Message>,
    stop: &AtomicBool,
    origin: Instant,
    due: &mut Vec<Message>,
) -> Result<(), ElementError> {
    while !stop.load(Ordering::Relaxed) {
        // Take every packet waiting now.
        loop {
            match queue.recv() {
                Ok(message) => {
                    let number = message.get_queue_num();
                    match line.admit(number, origin.elapsed(), message) {
                        Admission::Held { .. } => {}
                        Admission::Dropped(message) => verdict(queue, message, Verdict::Drop)?,
                        Admission::Unknown(message) => {
                            warn!(queue = number, "packet of a queue not configured: accepted");
                            verdict(queue, message, Verdict::Accept)?
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ElementError::Recv(e)),
            }
        }
        line.release_due(origin.elapsed(), due);
        for message in due.drain(..) {
            verdict(queue, message, Verdict::Accept)?;
        }
        let wait = line
            .next_release()
            .map_or(IDLE_WAIT, |r| r.saturating_sub(origin.elapsed()))
            .min(IDLE_WAIT);
        if !wait.is_zero() {
            wait_readable(fd, wait)?;
        }
    }
    Ok(())
}

fn verdict(queue: &mut Queue, mut message: Message, v: Verdict) -> Result<(), ElementError> {
    message.set_verdict(v);
    queue.verdict(message).map_err(ElementError::Verdict)
}

/// Waits until `fd` is readable or `timeout` passed.
fn wait_readable(fd: RawFd, timeout: Duration) -> Result<(), ElementError> {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask.
    let rc = unsafe { libc::ppoll(&mut pollfd, 1, &ts, std::ptr::null()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(ElementError::Poll(e));
        }
    }
    Ok(())
}

/// The descriptor of this process's NETLINK_NETFILTER socket (the `nfq` crate keeps it private;
/// the element opens exactly one).
fn netfilter_socket() -> Option<RawFd> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .find(|&fd| {
            socket_option(fd, libc::SO_DOMAIN) == Some(libc::AF_NETLINK)
                && socket_option(fd, libc::SO_PROTOCOL) == Some(libc::NETLINK_NETFILTER)
        })
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
