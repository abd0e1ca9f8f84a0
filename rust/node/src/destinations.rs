//! Connections from a router to its destinations (computers or other routers): one lazily
//! connected HTTP/2 channel per destination, shared by all calls, and a bound on the calls in
//! flight to each destination so that a slow destination queues at the router instead of
//! piling up work it cannot serve.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::Semaphore;
use tonic::transport::{Channel, Endpoint};

use crate::tls::ClientSecurity;

/// A destination's channel and its in-flight bound.
#[derive(Debug)]
pub struct Destination {
    /// The lazily connected HTTP/2 channel, shared by every call to the destination.
    pub channel: Channel,
    /// One permit per call in flight to the destination (`max_in_flight` permits).
    pub slots: Semaphore,
}

/// The channels of every destination a router has sent a call to.
#[derive(Debug)]
pub struct Destinations {
    by_endpoint: RwLock<HashMap<Arc<str>, Arc<Destination>>>,
    max_in_flight: usize,
    connect_timeout: Duration,
    security: ClientSecurity,
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
            connect_timeout,
            security,
        }
    }

    /// The destination at `address`, creating its channel on first use.
    pub fn get(&self, address: &Arc<str>) -> Result<Arc<Destination>, String> {
        if let Some(destination) = self.by_endpoint.read().get(address) {
            return Ok(Arc::clone(destination));
        }
        let channel = self
            .security
            .endpoint(address, self.connect_timeout)?
            .connect_lazy();
        let mut by_endpoint = self.by_endpoint.write();
        let destination = by_endpoint.entry(Arc::clone(address)).or_insert_with(|| {
            Arc::new(Destination {
                channel,
                slots: Semaphore::new(self.max_in_flight),
            })
        });
        Ok(Arc::clone(destination))
    }

    /// Connect to `address` ahead of its first call, so that the first call's latency, which
    /// feeds the estimator, is not inflated by the TCP and HTTP/2 handshakes. Waits at most
    /// `patience`; a slower or failed connection attempt leaves a lazy channel behind.
    pub async fn warm(&self, address: &Arc<str>, patience: Duration) -> Result<(), String> {
        if self.by_endpoint.read().contains_key(address) {
            return Ok(());
        }
        let endpoint = self.security.endpoint(address, self.connect_timeout)?;
        if let Ok(Ok(channel)) = tokio::time::timeout(patience, endpoint.connect()).await {
            self.by_endpoint
                .write()
                .entry(Arc::clone(address))
                .or_insert_with(|| {
                    Arc::new(Destination {
                        channel,
                        slots: Semaphore::new(self.max_in_flight),
                    })
                });
        }
        Ok(())
    }

    /// Forget a destination's channel (it failed or left every table).
    pub fn forget(&self, address: &str) {
        self.by_endpoint.write().remove(address);
    }
}
