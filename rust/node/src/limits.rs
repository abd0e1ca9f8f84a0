//! What a node spends on its peers, and the guards that keep it bounded (docs/security.md,
//! "Resource limits").
//!
//! - [`raise_nofile_limit`]: the descriptor soft limit up to the hard limit, at start.
//! - [`incoming`]: the accept loop of every gRPC listener. On `EMFILE`/`ENFILE` it backs off
//!   (10 ms doubling to 100 ms) and logs at most every 10 s, where tonic's own loop retries at
//!   once and spins; each accepted connection must send the HTTP/2 preface within the
//!   handshake timeout ([`Guarded`]), so idle sockets cannot hold descriptors for ever.
//! - [`Limits::server`]: tonic's server with HTTP/2 keepalive pings, so that peers that stop
//!   answering are closed.
//! - [`AdmissionLayer`]: calls in flight and bytes in flight, each capped; past a cap, and for
//!   a request larger than the largest message, the call is refused with `RESOURCE_EXHAUSTED`
//!   from the 5-byte gRPC header, before its body is buffered. A message counts twice, as a
//!   node holds it twice at worst (decoded, and the buffer it came in or the copy going out);
//!   a router splits the cap between requests and the answers of its destinations
//!   ([`CallBudget`], [`CallBudget::charge_answer`]), so that the node's memory for calls stays under it.
//! - [`return_large_buffers`]: freed large buffers go back to the system.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::Stream;
use http_body::Frame;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::Status;
use tonic::body::Body;
use tonic::transport::Server;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tracing::{debug, warn};

/// Calls in flight on one listener at most, by default.
pub const DEFAULT_MAX_CALLS: usize = 4096;
/// Request bytes in flight on one listener at most, by default: 256 MiB.
pub const DEFAULT_MAX_BYTES_IN_FLIGHT: usize = 256 << 20;
/// Time a new connection has to send the HTTP/2 preface, by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Period of the HTTP/2 pings on an open connection.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Time a peer has to answer a ping before its connection is closed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest text a node echoes back from a request in an error or a log line (see [`clip`]).
pub use lambdaroute_core::text::{ECHO_LIMIT, clip};

/// The HTTP/2 client preface: a peer that has not sent it is still handshaking.
const PREFACE_LEN: usize = 24;
/// Back-off after an accept failed for want of descriptors: first, and at most.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(100);
/// Least time between two log lines about refused connections.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What one listener lets its peers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Calls being served at once; more are refused with `RESOURCE_EXHAUSTED`.
    pub max_calls: usize,
    /// Bytes of messages being served at once: each call counts twice its request's size
    /// from its header until its answer is sent (a router: half of this for requests, half
    /// for the answers it passes back); more are refused with `RESOURCE_EXHAUSTED`.
    pub max_bytes_in_flight: usize,
    /// Time a connection has to send the HTTP/2 preface before it is closed.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_calls: DEFAULT_MAX_CALLS,
            max_bytes_in_flight: DEFAULT_MAX_BYTES_IN_FLIGHT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl Limits {
    /// Refuses limits that would refuse everything.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_calls == 0 {
            return Err("--max-calls must be at least 1".into());
        }
        if self.max_bytes_in_flight == 0 || self.max_bytes_in_flight > Semaphore::MAX_PERMITS {
            return Err(format!(
                "--max-bytes-in-flight must be between 1 and {}",
                Semaphore::MAX_PERMITS
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err("--handshake-timeout must be longer than 0".into());
        }
        Ok(())
    }

    /// tonic's server builder with HTTP/2 keepalive pings: a peer that stops answering is
    /// closed.
    pub fn server(&self) -> Server {
        Server::builder()
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
    }
}

/// Raises this process's soft limit on open descriptors to its hard limit; returns the soft
/// limit before and after. Every role calls it at start: the default soft limit (often 1,024)
/// is what a flood of idle connections exhausts first.
pub fn raise_nofile_limit() -> io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((before, limit.rlim_cur))
}

// ===== accepting =====

/// The connections `listener` accepts, for tonic's `serve_with_incoming*`: never an error
/// (failed accepts are handled here), each connection with `TCP_NODELAY` and guarded by
/// `handshake_timeout`.
pub fn incoming(
    listener: TcpListener,
    handshake_timeout: Duration,
) -> impl Stream<Item = Result<Guarded, io::Error>> + Send + 'static {
    let state = AcceptState {
        listener,
        handshake_timeout,
        backoff: BACKOFF_MIN,
        refused: 0,
        logged: None,
    };
    futures::stream::unfold(state, |mut state| async move {
        let stream = state.accept().await;
        Some((Ok(stream), state))
    })
}

struct AcceptState {
    listener: TcpListener,
    handshake_timeout: Duration,
    backoff: Duration,
    /// Accepts refused for want of descriptors since the last log line.
    refused: u64,
    logged: Option<Instant>,
}

impl AcceptState {
    async fn accept(&mut self) -> Guarded {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    self.backoff = BACKOFF_MIN;
                    let _ = stream.set_nodelay(true);
                    return Guarded::new(stream, self.handshake_timeout);
                }
                Err(error) if out_of_descriptors(&error) => {
                    self.refused += 1;
                    let now = Instant::now();
                    if self.logged.is_none_or(|at| now - at >= LOG_EVERY) {
                        warn!(
                            %error,
                            refused = self.refused,
                            listen = ?self.listener.local_addr().ok(),
                            "cannot accept connections: out of file descriptors; backing off \
                             (idle connections are closed after the handshake timeout)"
                        );
                        self.logged = Some(now);
                        self.refused = 0;
                    }
                    // The pending connection stays in the backlog: retrying at once would
                    // fail again at once, for ever.
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                }
                // A peer that reset before we accepted it, and the like: the next one.
                Err(error) => debug!(%error, "accept failed"),
            }
        }
    }
}

fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// An accepted connection that must send the HTTP/2 preface within its handshake timeout;
/// afterwards HTTP/2 keepalive pings watch it ([`Limits::server`]).
pub struct Guarded {
    stream: TcpStream,
    /// Until the preface is in: the deadline.
    handshake: Option<Pin<Box<Sleep>>>,
    read: usize,
}

impl Guarded {
    fn new(stream: TcpStream, timeout: Duration) -> Self {
        Guarded {
            stream,
            handshake: Some(Box::pin(tokio::time::sleep(timeout))),
            read: 0,
        }
    }
}

impl Connected for Guarded {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if this.handshake.is_some() {
                    this.read += buf.filled().len() - before;
                    if this.read >= PREFACE_LEN {
                        this.handshake = None;
                    }
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let expired = this
                    .handshake
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                debug!(peer = ?this.stream.peer_addr().ok(), "no HTTP/2 handshake in time: closing");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no HTTP/2 handshake in time",
                )))
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

// ===== admission =====

/// How many times a message counts against `--max-bytes-in-flight`: a node holds it decoded
/// and, at the same time, either the buffer it is decoded from or the copy of it being sent on.
const COPIES: u64 = 2;

/// One share of the bytes in flight.
struct Pool {
    semaphore: Arc<Semaphore>,
    size: usize,
}

impl Pool {
    fn new(size: usize) -> Self {
        Pool {
            semaphore: Arc::new(Semaphore::new(size)),
            size,
        }
    }
}

struct AdmissionState {
    calls: Arc<Semaphore>,
    max_calls: usize,
    max_bytes: usize,
    max_message: usize,
    requests: Pool,
    /// A router's share for the answers it receives from its destinations: kept apart from
    /// the requests' so that an answer never waits for requests that wait for answers.
    answers: Option<Pool>,
}

/// A tower layer for tonic's `Server::layer`: caps calls and bytes in flight
/// ([`Limits::admission`], [`Limits::forwarding_admission`]).
#[derive(Clone)]
pub struct AdmissionLayer {
    state: Arc<AdmissionState>,
}

impl Limits {
    /// The admission control of a listener whose largest message is `max_message` bytes and
    /// which answers from what it holds (a computer, a table service): the requests take the
    /// whole of `max_bytes_in_flight`, each counted twice ([`COPIES`]).
    pub fn admission(&self, max_message: usize) -> AdmissionLayer {
        self.admission_with(max_message, false)
    }

    /// The admission control of a router's lambda listener: half of `max_bytes_in_flight` for
    /// the requests, half for the answers its destinations send back ([`CallBudget`]).
    pub fn forwarding_admission(&self, max_message: usize) -> AdmissionLayer {
        self.admission_with(max_message, true)
    }

    fn admission_with(&self, max_message: usize, answers: bool) -> AdmissionLayer {
        let max_bytes = self.max_bytes_in_flight;
        let (requests, answers) = if answers {
            let half = max_bytes / 2;
            (Pool::new(max_bytes - half), Some(Pool::new(half)))
        } else {
            (Pool::new(max_bytes), None)
        };
        AdmissionLayer {
            state: Arc::new(AdmissionState {
                calls: Arc::new(Semaphore::new(self.max_calls)),
                max_calls: self.max_calls,
                max_bytes,
                max_message,
                requests,
                answers,
            }),
        }
    }
}

impl AdmissionLayer {
    /// The largest request this listener can ever admit: its largest message, or less when
    /// twice that is more than the requests' share of the bytes in flight.
    pub fn largest_request(&self) -> usize {
        let state = &self.state;
        state.max_message.min(state.requests.size / COPIES as usize)
    }

    /// Logs a warning when `--max-bytes-in-flight` is too small for `--max-request-bytes`.
    pub fn warn_if_cap_below_largest_message(&self) {
        let state = &self.state;
        let largest = self.largest_request();
        if largest < state.max_message {
            warn!(
                max_request_bytes = state.max_message,
                max_bytes_in_flight = state.max_bytes,
                largest,
                "requests larger than {largest} bytes will always be refused: each counts twice \
                 against --max-bytes-in-flight{}",
                if state.answers.is_some() {
                    " (half of which is a router's for requests)"
                } else {
                    ""
                }
            );
        }
    }
}

impl<S> tower_layer::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// The service of [`AdmissionLayer`].
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    state: Arc<AdmissionState>,
}

type Request = http::Request<Body>;
type Response = http::Response<Body>;

impl<S> tower_service::Service<Request> for Admission<S>
where
    S: tower_service::Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Ok(call) = Arc::clone(&self.state.calls).try_acquire_owned() else {
            let status = Status::resource_exhausted(format!(
                "too many calls in flight: at most {} (--max-calls)",
                self.state.max_calls
            ));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        let budget = CallBudget {
            state: Arc::clone(&self.state),
            held: Arc::default(),
        };
        let (mut parts, body) = request.into_parts();
        let body = Body::new(Metered::new(body, budget.clone(), Direction::Request));
        // The service reaches the budget through the request (a router charges the answers of
        // its destinations to it).
        parts.extensions.insert(budget.clone());
        // The ready service answers this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let answer = inner.call(http::Request::from_parts(parts, body));
        Box::pin(async move {
            let (parts, body) = answer.await?.into_parts();
            // The permits go when the answer has been sent (or dropped).
            let body = Body::new(Holding {
                inner: body,
                _permits: (call, budget),
            });
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// The bytes one call holds in flight, until its answer has been sent: in the extensions of
/// every request that passed an [`AdmissionLayer`].
#[derive(Clone)]
pub struct CallBudget {
    state: Arc<AdmissionState>,
    held: Arc<Mutex<Held>>,
}

/// The permits of one call: one per share, merged as its messages arrive (no allocation per
/// call beyond the budget itself).
#[derive(Default)]
struct Held {
    requests: Option<OwnedSemaphorePermit>,
    answers: Option<OwnedSemaphorePermit>,
}

impl CallBudget {
    /// Charges an answer of `len` bytes, which this call receives from a destination, to the
    /// call, from its gRPC header, before it is buffered: `RESOURCE_EXHAUSTED` when the
    /// answers' share is full. Nothing on a listener without an answers' share.
    pub fn charge_answer(&self, len: u32) -> Result<(), Status> {
        if self.state.answers.is_none() {
            return Ok(());
        }
        self.reserve(len, Direction::Answer)
    }

    /// Bytes this call holds now.
    pub fn held(&self) -> usize {
        let held = self.held.lock();
        [&held.requests, &held.answers]
            .into_iter()
            .flatten()
            .map(OwnedSemaphorePermit::num_permits)
            .sum()
    }

    fn reserve(&self, len: u32, direction: Direction) -> Result<(), Status> {
        let state = &self.state;
        let what = direction.name();
        if direction == Direction::Request && len as usize > state.max_message {
            return Err(Status::resource_exhausted(format!(
                "request of {len} bytes is larger than the largest accepted, {} bytes \
                 (--max-request-bytes)",
                state.max_message
            )));
        }
        if len == 0 {
            return Ok(());
        }
        let pool = match direction {
            Direction::Request => &state.requests,
            Direction::Answer => state
                .answers
                .as_ref()
                .expect("metered answers have a share"),
        };
        let need = u64::from(len) * COPIES;
        let share = if state.answers.is_some() {
            "half of --max-bytes-in-flight"
        } else {
            "--max-bytes-in-flight"
        };
        if need > pool.size as u64 || need > u64::from(u32::MAX) {
            // A router's share is half the cap (the requests' half rounded up).
            let at_least = if state.answers.is_some() {
                need * 2
            } else {
                need
            };
            return Err(Status::resource_exhausted(format!(
                "{what} of {len} bytes counts {need} bytes in flight (it is held twice: decoded \
                 and copied), more than {share} allows, {} bytes: raise --max-bytes-in-flight \
                 to at least {at_least}",
                pool.size
            )));
        }
        let permit = Arc::clone(&pool.semaphore)
            .try_acquire_many_owned(need as u32)
            .map_err(|_| {
                Status::resource_exhausted(format!(
                    "too many {what} bytes in flight: {what} of {len} bytes counts {need}, \
                     more than is left of {share} ({} bytes; --max-bytes-in-flight {})",
                    pool.size, state.max_bytes
                ))
            })?;
        let mut held = self.held.lock();
        let slot = match direction {
            Direction::Request => &mut held.requests,
            Direction::Answer => &mut held.answers,
        };
        match slot {
            Some(old) => old.merge(permit),
            None => *slot = Some(permit),
        }
        Ok(())
    }
}

/// Which way a metered body flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// A call's request, arriving at a listener.
    Request,
    /// A destination's answer, arriving at the router that forwarded the call.
    Answer,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Answer => "answer",
        }
    }
}

/// A body that reserves each gRPC message's size (times [`COPIES`]) from its call's budget
/// when its 5-byte header arrives, and fails the call when the message is too large or the
/// share empty: before the message is buffered.
struct Metered {
    inner: Body,
    budget: CallBudget,
    direction: Direction,
    header: [u8; 5],
    have: usize,
    remaining: usize,
}

impl Metered {
    fn new(inner: Body, budget: CallBudget, direction: Direction) -> Self {
        Metered {
            inner,
            budget,
            direction,
            header: [0; 5],
            have: 0,
            remaining: 0,
        }
    }

    fn account(&mut self, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(data.len());
                self.remaining -= take;
                data = &data[take..];
                continue;
            }
            let take = (5 - self.have).min(data.len());
            self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            data = &data[take..];
            if self.have < 5 {
                break;
            }
            self.have = 0;
            let len = u32::from_be_bytes(self.header[1..5].try_into().expect("4 bytes"));
            self.budget.reserve(len, self.direction)?;
            self.remaining = len as usize;
        }
        Ok(())
    }
}

impl http_body::Body for Metered {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            this.account(data.chunk())?;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its call's permits until it is sent or dropped.
struct Holding {
    inner: Body,
    _permits: (OwnedSemaphorePermit, CallBudget),
}

/// Answers from this size on keep their call's bytes in flight until HTTP/2 has written them:
/// the body ends as soon as its data is handed over, while the data itself may wait for the
/// peer's flow-control window.
const CHARGED_UNTIL_WRITTEN: usize = 64 << 10;

/// Data that holds its call's budget until the last reference to it is dropped.
struct Charged {
    data: Bytes,
    _budget: CallBudget,
}

impl AsRef<[u8]> for Charged {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        Poll::Ready(frame.map(|frame| {
            frame.map(|frame| {
                frame.map_data(|data| {
                    if data.len() < CHARGED_UNTIL_WRITTEN {
                        return data;
                    }
                    Bytes::from_owner(Charged {
                        data,
                        _budget: this._permits.1.clone(),
                    })
                })
            })
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Makes glibc's allocator give buffers of 1 MiB and more back to the system when they are
/// freed. Its default threshold rises to the largest buffer freed so far, after which large
/// messages are carved from heaps that stay resident: a node that once served a burst of
/// large calls would keep their memory for good.
pub fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; called once at start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(layer: &AdmissionLayer) -> CallBudget {
        CallBudget {
            state: Arc::clone(&layer.state),
            held: Arc::default(),
        }
    }

    fn metered(layer: &AdmissionLayer, direction: Direction) -> Metered {
        Metered::new(Body::empty(), budget(layer), direction)
    }

    fn frame(len: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend(std::iter::repeat_n(7, len as usize));
        bytes
    }

    fn limits(max_bytes_in_flight: usize) -> Limits {
        Limits {
            max_bytes_in_flight,
            ..Limits::default()
        }
    }

    #[test]
    fn a_message_reserves_twice_its_size_from_its_header_even_split_across_chunks() {
        let layer = limits(200).admission(1000);
        let mut body = metered(&layer, Direction::Request);
        for chunk in frame(60).chunks(3) {
            body.account(chunk).unwrap();
        }
        assert_eq!(body.budget.held(), 120);
        assert_eq!(layer.state.requests.semaphore.available_permits(), 80);
        // A second call of 60 bytes does not fit while the first is held.
        let mut second = metered(&layer, Direction::Request);
        let error = second.account(&frame(60)).unwrap_err();
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
        assert!(error.message().contains("--max-bytes-in-flight"), "{error}");
        drop(body);
        assert_eq!(layer.state.requests.semaphore.available_permits(), 200);
        second.account(&frame(60)).unwrap();
    }

    #[test]
    fn an_oversized_message_is_refused_at_its_header() {
        let layer = Limits::default().admission(10);
        let mut body = metered(&layer, Direction::Request);
        let error = body.account(&frame(11)[..5]).unwrap_err();
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
        assert!(error.message().contains("11 bytes"), "{error}");
    }

    #[test]
    fn a_message_that_could_never_fit_names_the_cap_to_set() {
        let layer = limits(100).forwarding_admission(1000);
        let error = metered(&layer, Direction::Request)
            .account(&frame(30)[..5])
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
        // 30 bytes count 60, more than the requests' half (50): the cap must be 120.
        assert!(
            error.message().contains("at least 120"),
            "{}",
            error.message()
        );
        // An odd cap: the same, not the cap divided by the larger half.
        let layer = limits(101).forwarding_admission(1000);
        let error = metered(&layer, Direction::Request)
            .account(&frame(30)[..5])
            .unwrap_err();
        assert!(
            error.message().contains("at least 120"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn a_router_charges_answers_to_their_own_half_and_keeps_them_with_the_call() {
        let layer = limits(200).forwarding_admission(1000);
        let call = budget(&layer);
        let mut request = Metered::new(Body::empty(), call.clone(), Direction::Request);
        request.account(&frame(50)).unwrap();
        // The requests' half is now full; the answers' is not.
        assert!(
            metered(&layer, Direction::Request)
                .account(&frame(1)[..5])
                .is_err()
        );
        call.charge_answer(40).unwrap();
        assert_eq!(call.held(), 180);
        let other = budget(&layer);
        let error = other.charge_answer(20).unwrap_err();
        assert!(
            error.message().contains("answer bytes"),
            "{}",
            error.message()
        );
        // Dropping the body keeps the permits: they go with the call's last handle.
        drop(request);
        assert_eq!(
            layer
                .state
                .answers
                .as_ref()
                .unwrap()
                .semaphore
                .available_permits(),
            20
        );
        drop(call);
        assert_eq!(
            layer
                .state
                .answers
                .as_ref()
                .unwrap()
                .semaphore
                .available_permits(),
            100
        );
        assert_eq!(layer.state.requests.semaphore.available_permits(), 100);
    }
}
