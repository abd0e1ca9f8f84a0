//! Nodes of the distances and paths files, and how they match endpoints.
//!
//! A key is `HOST` (matches every endpoint on that host, e.g. `10.0.0.3`) or `HOST:PORT`
//! (matches exactly that endpoint, e.g. `127.0.0.1:10001`, what loopback tests use, where
//! every node shares one address). An endpoint is looked up by its exact `HOST:PORT` key first,
//! then by its `HOST` key. Hosts are IP addresses (`[::1]:80` for IPv6 with a port) or names.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// A node of a distances or paths file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKey {
    /// Every endpoint on this host.
    Host(String),
    /// Exactly this endpoint, `host:port`.
    Endpoint(String),
}

impl NodeKey {
    /// The keys an endpoint may match, most specific first: `HOST:PORT`, then `HOST`.
    /// None when `endpoint` is not `host:port`.
    pub fn candidates(endpoint: &str) -> Option<[NodeKey; 2]> {
        let (host, port) = split_endpoint(endpoint)?;
        Some([NodeKey::Endpoint(join(&host, port)), NodeKey::Host(host)])
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeKey::Host(h) | NodeKey::Endpoint(h) => f.write_str(h),
        }
    }
}

impl FromStr for NodeKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(NodeKey::Host(ip.to_string()));
        }
        if let Some((host, port)) = split_endpoint(s) {
            return Ok(NodeKey::Endpoint(join(&host, port)));
        }
        if is_host_name(s) {
            return Ok(NodeKey::Host(s.to_ascii_lowercase()));
        }
        Err(format!(
            "invalid node '{s}': expected an address (10.0.0.3, matching every endpoint of that host) or an endpoint (127.0.0.1:10001)"
        ))
    }
}

/// `host:port` split into a canonical host and the port; None if it is not one.
pub fn split_endpoint(endpoint: &str) -> Option<(String, u16)> {
    let endpoint = endpoint.trim();
    let endpoint = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .trim_end_matches('/');
    if let Ok(address) = endpoint.parse::<SocketAddr>() {
        return Some((address.ip().to_string(), address.port()));
    }
    let (host, port) = endpoint.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    is_host_name(host).then(|| (host.to_ascii_lowercase(), port))
}

fn join(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_hosts_and_endpoints() {
        assert_eq!("10.0.0.3".parse(), Ok(NodeKey::Host("10.0.0.3".into())));
        assert_eq!(
            "127.0.0.1:10001".parse(),
            Ok(NodeKey::Endpoint("127.0.0.1:10001".into()))
        );
        assert_eq!("[::1]:80".parse(), Ok(NodeKey::Endpoint("[::1]:80".into())));
        assert_eq!("::1".parse(), Ok(NodeKey::Host("::1".into())));
        assert_eq!("Edge-1".parse(), Ok(NodeKey::Host("edge-1".into())));
        assert!("a b".parse::<NodeKey>().is_err());
        assert!("10.0.0.3:99999".parse::<NodeKey>().is_err());
    }

    #[test]
    fn an_endpoint_matches_its_exact_key_first_then_its_host() {
        let [exact, host] = NodeKey::candidates("10.0.0.3:6473").unwrap();
        assert_eq!(exact, NodeKey::Endpoint("10.0.0.3:6473".into()));
        assert_eq!(host, NodeKey::Host("10.0.0.3".into()));
        assert!(NodeKey::candidates("no-port").is_none());
    }
}
