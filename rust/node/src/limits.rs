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
//! - [`AdmissionLayer`]: calls in flight and request bytes in flight, each capped; past a cap,
//!   and for a request larger than the largest message, the call is refused with
//!   `RESOURCE_EXHAUSTED` from the 5-byte gRPC header, before its body is buffered.

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
    /// Bytes of requests being served at once (each call counts its request's size from its
    /// header until its answer is sent); more are refused with `RESOURCE_EXHAUSTED`.
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

    /// The admission control of one listener whose largest message is `max_message` bytes.
    pub fn admission(&self, max_message: usize) -> AdmissionLayer {
        AdmissionLayer {
            state: Arc::new(AdmissionState {
                calls: Arc::new(Semaphore::new(self.max_calls)),
                bytes: Arc::new(Semaphore::new(self.max_bytes_in_flight)),
                max_calls: self.max_calls,
                max_bytes: self.max_bytes_in_flight,
                max_message,
            }),
        }
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

struct AdmissionState {
    calls: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_calls: usize,
    max_bytes: usize,
    max_message: usize,
}

/// A tower layer for tonic's `Server::layer`: caps calls and request bytes in flight
/// ([`Limits::admission`]).
#[derive(Clone)]
pub struct AdmissionLayer {
    state: Arc<AdmissionState>,
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
        let held = Arc::new(Mutex::new(None));
        let (parts, body) = request.into_parts();
        let body = Body::new(Metered {
            inner: body,
            state: Arc::clone(&self.state),
            held: Arc::clone(&held),
            header: [0; 5],
            have: 0,
            remaining: 0,
        });
        // The ready service answers this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let answer = inner.call(http::Request::from_parts(parts, body));
        Box::pin(async move {
            let (parts, body) = answer.await?.into_parts();
            // The permits go when the answer has been sent (or dropped).
            let body = Body::new(Holding {
                inner: body,
                _permits: (call, held),
            });
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// A request body that reserves each gRPC message's size in the bytes semaphore when its
/// 5-byte header arrives, and fails the call when the message is too large or the reserve
/// empty.
struct Metered {
    inner: Body,
    state: Arc<AdmissionState>,
    held: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    header: [u8; 5],
    have: usize,
    remaining: usize,
}

impl Metered {
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
            self.reserve(len)?;
            self.remaining = len as usize;
        }
        Ok(())
    }

    fn reserve(&mut self, len: u32) -> Result<(), Status> {
        let state = &self.state;
        if len as usize > state.max_message {
            return Err(Status::resource_exhausted(format!(
                "request of {len} bytes is larger than the largest accepted, {} bytes \
                 (--max-request-bytes)",
                state.max_message
            )));
        }
        if len == 0 {
            return Ok(());
        }
        let permit = Arc::clone(&state.bytes)
            .try_acquire_many_owned(len)
            .map_err(|_| {
                Status::resource_exhausted(format!(
                    "too many request bytes in flight: {len} more would pass {} \
                     (--max-bytes-in-flight)",
                    state.max_bytes
                ))
            })?;
        let mut held = self.held.lock();
        match held.as_mut() {
            Some(old) => old.merge(permit),
            None => *held = Some(permit),
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
    _permits: (
        OwnedSemaphorePermit,
        Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    ),
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metered(limits: Limits, max_message: usize) -> Metered {
        Metered {
            inner: Body::empty(),
            state: limits.admission(max_message).state,
            held: Arc::new(Mutex::new(None)),
            header: [0; 5],
            have: 0,
            remaining: 0,
        }
    }

    fn frame(len: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend(std::iter::repeat_n(7, len as usize));
        bytes
    }

    #[test]
    fn a_message_reserves_its_size_from_its_header_even_split_across_chunks() {
        let limits = Limits {
            max_bytes_in_flight: 100,
            ..Limits::default()
        };
        let mut body = metered(limits, 1000);
        let bytes = frame(60);
        for chunk in bytes.chunks(3) {
            body.account(chunk).unwrap();
        }
        assert_eq!(body.state.bytes.available_permits(), 40);
        // A second call of 60 bytes does not fit while the first is held.
        let mut second = Metered {
            state: Arc::clone(&body.state),
            ..metered(limits, 1000)
        };
        let error = second.account(&frame(60)).unwrap_err();
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
        assert!(error.message().contains("--max-bytes-in-flight"), "{error}");
        drop(body);
        assert_eq!(second.state.bytes.available_permits(), 100);
        second.account(&frame(60)).unwrap();
    }

    #[test]
    fn an_oversized_message_is_refused_at_its_header() {
        let mut body = metered(Limits::default(), 10);
        let error = body.account(&frame(11)[..5]).unwrap_err();
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
        assert!(error.message().contains("11 bytes"), "{error}");
    }
}
