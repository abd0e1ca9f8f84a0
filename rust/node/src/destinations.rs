//! Connections from a router to its destinations (computers or other routers): one HTTP/2
//! connection per destination, opened on first use and again after it closes, shared by all
//! calls, and a bound on the calls in flight to each destination so that a slow destination
//! queues at the router instead of piling up work it cannot serve.
//!
//! The connections are the `h2` crate's own, not tonic channels: a forwarded call is one
//! stream whose HEADERS and DATA frames leave in one write, with no buffer task, client task
//! or body pipe of its own (docs/benchmarks.md, "Where the time goes").

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::Uri;
use http::uri::{Authority, Scheme};
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tonic::transport::Endpoint;
use tracing::debug;

use crate::limits::clip;
use crate::router::RUN_LAMBDA_PATH;
use crate::tls::ClientSecurity;

/// HTTP/2 flow-control windows of a forwarding connection: those of tonic's channels (hyper's
/// defaults), so that large answers flow as they did.
const STREAM_WINDOW: u32 = 2 << 20;
const CONNECTION_WINDOW: u32 = 5 << 20;

/// A destination: where it is, its connection, and its in-flight bound.
pub struct Destination {
    address: Arc<str>,
    authority: Authority,
    /// Where its calls go: `scheme://authority/uiiit.rpc.EdgeServer/RunLambda`.
    run_lambda: Uri,
    connector: Arc<Connector>,
    live: Mutex<Option<Live>>,
    /// Serializes the opening of connections, so that concurrent first calls share one.
    opening: tokio::sync::Mutex<()>,
    /// One permit per call in flight to the destination (`max_in_flight` permits).
    pub slots: Semaphore,
}

/// An open connection: a handle to open streams on, and whether its connection task still
/// runs.
struct Live {
    sender: SendRequest<Bytes>,
    open: Arc<AtomicBool>,
}

impl Live {
    fn usable(&self) -> Option<SendRequest<Bytes>> {
        self.open
            .load(Ordering::Acquire)
            .then(|| self.sender.clone())
    }
}

/// How connections are opened: time limit, and TLS in secured mode.
struct Connector {
    connect_timeout: Duration,
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Destination {
    /// The URI of its `RunLambda` method, built once (a clone per call is a reference count).
    pub fn run_lambda_uri(&self) -> &Uri {
        &self.run_lambda
    }

    /// A handle on the destination's connection, opening one if there is none or the last
    /// one closed (the destination restarted, say): a closed connection fails only the calls
    /// that were on it.
    pub async fn sender(&self) -> Result<SendRequest<Bytes>, String> {
        if let Some(sender) = self.live.lock().as_ref().and_then(Live::usable) {
            return Ok(sender);
        }
        let _opening = self.opening.lock().await;
        if let Some(sender) = self.live.lock().as_ref().and_then(Live::usable) {
            return Ok(sender);
        }
        let live = self.connect().await?;
        let sender = live.sender.clone();
        *self.live.lock() = Some(live);
        Ok(sender)
    }

    async fn connect(&self) -> Result<Live, String> {
        let connector = &self.connector;
        // An IPv6 literal without its brackets, for the socket and the TLS server name.
        let host = self
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = self
            .authority
            .port_u16()
            .expect("checked in Destinations::new_destination");
        let tcp = tokio::time::timeout(connector.connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| {
                format!(
                    "cannot connect within {:.1} s",
                    connector.connect_timeout.as_secs_f64()
                )
            })?
            .map_err(|e| format!("cannot connect: {e}"))?;
        // A forwarded call is small and answered at once: never wait to fill a segment.
        tcp.set_nodelay(true)
            .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
        match &connector.tls {
            Some(tls) => {
                let name = rustls_pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| format!("not a TLS server name: {e}"))?;
                let stream =
                    tokio::time::timeout(connector.connect_timeout, tls.connect(name, tcp))
                        .await
                        .map_err(|_| "no TLS handshake within the connect timeout".to_owned())?
                        .map_err(|e| format!("TLS handshake: {e}"))?;
                self.handshake(stream).await
            }
            None => self.handshake(tcp).await,
        }
    }

    async fn handshake<T>(&self, io: T) -> Result<Live, String>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        let open = Arc::new(AtomicBool::new(true));
        let running = Arc::clone(&open);
        let address = Arc::clone(&self.address);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%address, %error, "connection to the destination closed");
            }
            running.store(false, Ordering::Release);
        });
        Ok(Live { sender, open })
    }
}

/// The connections of every destination a router has sent a call to.
pub struct Destinations {
    by_endpoint: RwLock<HashMap<Arc<str>, Arc<Destination>>>,
    max_in_flight: usize,
    connector: Result<Arc<Connector>, String>,
}

impl std::fmt::Debug for Destinations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destinations")
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

/// Turn `host:port` (or a full `http://host:port` URI) into a plaintext tonic endpoint.
pub fn endpoint(address: &str, connect_timeout: Duration) -> Result<Endpoint, String> {
    endpoint_with_scheme(address, connect_timeout, "http")
}

/// Turn `host:port` into a tonic endpoint of `scheme` (`http`, or `https` for TLS); a full
/// URI keeps its own.
pub(crate) fn endpoint_with_scheme(
    address: &str,
    connect_timeout: Duration,
    scheme: &str,
) -> Result<Endpoint, String> {
    let uri = if address.contains("://") {
        address.to_owned()
    } else {
        format!("{scheme}://{address}")
    };
    let endpoint = Endpoint::from_shared(uri).map_err(|e| {
        format!(
            "invalid endpoint '{}': {e}; expected host:port, e.g. 127.0.0.1:10000",
            lambdaroute_core::text::clip(address)
        )
    })?;
    match endpoint.uri().port_u16() {
        Some(_) => Ok(endpoint.connect_timeout(connect_timeout).tcp_nodelay(true)),
        None => Err(format!(
            "invalid endpoint '{}': no port; expected host:port, e.g. 127.0.0.1:10000",
            lambdaroute_core::text::clip(address)
        )),
    }
}

impl Destinations {
    /// No destinations yet; each gets `max_in_flight` calls in flight at most (at least 1) and
    /// `connect_timeout` to connect, connecting as `security` says (secured mode: TLS with
    /// the router's certificate).
    pub fn new(max_in_flight: usize, connect_timeout: Duration, security: ClientSecurity) -> Self {
        Self {
            by_endpoint: RwLock::new(HashMap::new()),
            max_in_flight: max_in_flight.max(1),
            connector: security.tls_connector().map(|tls| {
                Arc::new(Connector {
                    connect_timeout,
                    tls,
                })
            }),
        }
    }

    /// The destination at `address` (`host:port`), created on first use; it connects on its
    /// first call ([`Destination::sender`]).
    pub fn get(&self, address: &Arc<str>) -> Result<Arc<Destination>, String> {
        if let Some(destination) = self.by_endpoint.read().get(address) {
            return Ok(Arc::clone(destination));
        }
        let destination = Arc::new(self.new_destination(address)?);
        let mut by_endpoint = self.by_endpoint.write();
        let destination = by_endpoint
            .entry(Arc::clone(address))
            .or_insert(destination);
        Ok(Arc::clone(destination))
    }

    fn new_destination(&self, address: &Arc<str>) -> Result<Destination, String> {
        let connector = Arc::clone(self.connector.as_ref()?);
        let scheme = if connector.tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        // The same addresses as a tonic endpoint takes: `host:port`, or a full URI.
        let uri = endpoint_with_scheme(address, connector.connect_timeout, scheme.as_str())?
            .uri()
            .clone();
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("invalid endpoint '{}': no host", clip(address)))?;
        let run_lambda = Uri::builder()
            .scheme(scheme)
            .authority(authority.clone())
            .path_and_query(RUN_LAMBDA_PATH)
            .build()
            .map_err(|e| format!("invalid endpoint '{}': {e}", clip(address)))?;
        Ok(Destination {
            address: Arc::clone(address),
            authority,
            run_lambda,
            connector,
            live: Mutex::new(None),
            opening: tokio::sync::Mutex::new(()),
            slots: Semaphore::new(self.max_in_flight),
        })
    }

    /// Connect to `address` ahead of its first call, so that the first call's latency, which
    /// feeds the estimator, is not inflated by the TCP and HTTP/2 handshakes. Waits at most
    /// `patience`; a slower or failed attempt leaves the connection to the first call.
    pub async fn warm(&self, address: &Arc<str>, patience: Duration) -> Result<(), String> {
        let destination = self.get(address)?;
        let _ = tokio::time::timeout(patience, destination.sender()).await;
        Ok(())
    }

    /// Forget a destination's connection (it failed or left every table).
    pub fn forget(&self, address: &str) {
        self.by_endpoint.write().remove(address);
    }
}
