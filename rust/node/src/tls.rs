//! Secured mode: TLS on every gRPC listener and connection, and who may call what
//! (docs/security.md, "Secured mode").
//!
//! **Plain mode** (no TLS material, the default) is serverlessonedge's: plaintext HTTP/2, and
//! every listener serves anyone who reaches it, so the original's tools keep working.
//!
//! **Secured mode** (a node given its CA, certificate and key, [`TlsFiles`]): every listener
//! speaks TLS with the node's certificate, every connection checks the peer's certificate
//! against the CA and its address, and a [`GuardLayer`] in front of each listener decides per
//! call from the caller's certificate:
//!
//! - the control surfaces ([`Surface::Tables`], [`Surface::Controller`],
//!   [`Surface::Utilization`]) demand a client certificate of the CA (mutual TLS), and each
//!   method a role ([`Role`]) that the certificate carries: only a controller or an operator
//!   changes a router's tables or marks; only routers and computers announce, each only
//!   itself (the controller checks the announced host against the certificate, [`Peer`]);
//!   only a monitor or an operator reports congestion;
//! - the lambda listeners ([`Surface::Lambdas`]) take a call with a client certificate of the
//!   CA, or with a bearer token of the listener's token file (`authorization: Bearer T`),
//!   or, with `open_calls`, from anyone (TLS then only protects the transport).
//!
//! A certificate carries its roles as DNS names of its subject alternative names,
//! `ROLE.role.lambdaroute.invalid` (`.invalid` is reserved: no host has such a name), beside
//! its addresses, and its role in the subject's OU for people reading it. Checking a role is
//! then the name check rustls itself does on every connection (webpki), with no certificate
//! parser of our own; whoever holds the CA's key can make any role.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{Either, Ready, ready};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tonic::Status;
use tonic::body::Body;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

/// The DNS domain under which a certificate names its roles: `router.role.lambdaroute.invalid`.
pub const ROLE_DOMAIN: &str = "role.lambdaroute.invalid";

/// The file names `lambdaroute certs` writes in its directory: the CA's certificate.
pub const CA_FILE: &str = "ca.pem";
/// The CA's private key (only `lambdaroute certs` needs it; never give it to a node).
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// What a certificate lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// An e-router: announces itself, reports failed destinations, forwards calls.
    Router,
    /// An e-computer: announces itself and leaves.
    Computer,
    /// The e-controller: changes routers' tables and marks.
    Controller,
    /// A person or the testbed: may do anything (tables, announcements, congestion, views).
    Operator,
    /// The network monitor: reports congestion, reads the controller's view and the tables.
    Monitor,
    /// A client: calls lambdas.
    Client,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Router,
        Role::Computer,
        Role::Controller,
        Role::Operator,
        Role::Monitor,
        Role::Client,
    ];

    /// The role's keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Router => "router",
            Role::Computer => "computer",
            Role::Controller => "controller",
            Role::Operator => "operator",
            Role::Monitor => "monitor",
            Role::Client => "client",
        }
    }

    /// The DNS name a certificate of this role carries: `ROLE.role.lambdaroute.invalid`.
    pub fn marker(self) -> String {
        format!("{}.{ROLE_DOMAIN}", self.as_str())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown role '{}': expected one of router, computer, controller, operator, monitor, client",
                    crate::limits::clip(text)
                )
            })
    }
}

/// TLS material that cannot be used; each error names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {what} {}: {error}; {hint}", path.display())]
    Read {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        error: std::io::Error,
        /// How to get a good one.
        hint: &'static str,
    },
    /// A file holds no usable PEM object of the expected kind.
    #[error("{}: {problem}; {hint}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// How to get a good one.
        hint: &'static str,
    },
    /// The certificate is not signed by the CA, expired, or not for TLS clients and servers.
    #[error(
        "{} is not valid under the CA {}: {error}; the certificate and the CA must come from the same `lambdaroute certs --out DIR` directory (make the certificate again there)",
        cert.display(), ca.display()
    )]
    NotUnderCa {
        /// The certificate.
        cert: PathBuf,
        /// The CA.
        ca: PathBuf,
        /// What the check found.
        error: String,
    },
    /// The key is not the certificate's.
    #[error(
        "{} is not the private key of {}: give the key file written with it (NAME-key.pem beside NAME.pem)",
        key.display(), cert.display()
    )]
    KeyMismatch {
        /// The key.
        key: PathBuf,
        /// The certificate.
        cert: PathBuf,
    },
    /// tonic refused the configuration.
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

const MAKE_CERTS: &str = "make one with `lambdaroute certs --out DIR --ca` and `lambdaroute certs --out DIR --node NAME --role ROLE --ip ADDRESS`";

/// Where a node's TLS material is: the CA's certificate, the node's certificate and its key,
/// PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate every peer must be signed by (`ca.pem`).
    pub ca: PathBuf,
    /// The node's certificate (`NAME.pem`).
    pub cert: PathBuf,
    /// The node's private key (`NAME-key.pem`).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files of node `name` in a directory made by `lambdaroute certs`: `ca.pem`,
    /// `NAME.pem`, `NAME-key.pem`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        TlsFiles {
            ca: dir.join(CA_FILE),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}-key.pem")),
        }
    }

    /// Reads and checks the files: each parses, the certificate is valid under the CA (signed
    /// by it, in its validity period) and the key is the certificate's.
    pub fn load(&self) -> Result<NodeTls, TlsError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|error| TlsError::Read {
                what,
                path: path.to_owned(),
                error,
                hint: MAKE_CERTS,
            })
        };
        let ca_pem = read("the CA certificate", &self.ca)?;
        let cert_pem = read("the node certificate", &self.cert)?;
        let key_pem = read("the node's private key", &self.key)?;
        let ca = certificates(&self.ca, &ca_pem)?;
        let chain = certificates(&self.cert, &cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Content {
            path: self.key.clone(),
            problem: format!("no private key ({e}); expected a PEM `-----BEGIN PRIVATE KEY-----`"),
            hint: "give the NAME-key.pem that `lambdaroute certs` wrote beside NAME.pem",
        })?;
        verify_under_ca(&chain, &ca).map_err(|error| TlsError::NotUnderCa {
            cert: self.cert.clone(),
            ca: self.ca.clone(),
            error,
        })?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
            TlsError::Content {
                path: self.key.clone(),
                problem: format!("unusable private key: {e}"),
                hint: "give the NAME-key.pem that `lambdaroute certs` wrote beside NAME.pem",
            }
        })?;
        if let Err(rustls::Error::InconsistentKeys(_)) =
            rustls::sign::CertifiedKey::new(chain.clone(), signing).keys_match()
        {
            return Err(TlsError::KeyMismatch {
                key: self.key.clone(),
                cert: self.cert.clone(),
            });
        }
        let roles = roles_of(&chain[0]);
        Ok(NodeTls {
            ca_pem,
            identity: Some((cert_pem, key_pem)),
            roles,
            files: self.clone(),
        })
    }

    /// A caller without a certificate of its own (a client with a call token): it checks
    /// the server against the CA at `ca` and presents nothing.
    pub fn load_ca_only(ca: &Path) -> Result<NodeTls, TlsError> {
        let ca_pem = std::fs::read(ca).map_err(|error| TlsError::Read {
            what: "the CA certificate",
            path: ca.to_owned(),
            error,
            hint: MAKE_CERTS,
        })?;
        certificates(ca, &ca_pem)?;
        Ok(NodeTls {
            ca_pem,
            identity: None,
            roles: Vec::new(),
            files: TlsFiles {
                ca: ca.to_owned(),
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
        })
    }
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Content {
            path: path.to_owned(),
            problem: format!("not a PEM certificate file ({e})"),
            hint: MAKE_CERTS,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Content {
            path: path.to_owned(),
            problem: "no certificate (`-----BEGIN CERTIFICATE-----`) in it; is it a key?".into(),
            hint: MAKE_CERTS,
        });
    }
    Ok(certs)
}

/// Checks that `chain[0]` is signed (through `chain[1..]`) by one of `ca`, now, for TLS.
fn verify_under_ca(
    chain: &[CertificateDer<'static>],
    ca: &[CertificateDer<'static>],
) -> Result<(), String> {
    let anchors = ca
        .iter()
        .map(|c| {
            webpki::anchor_from_trusted_cert(c)
                .map(|a| a.to_owned())
                .map_err(|e| format!("the CA certificate cannot be a trust anchor: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| format!("the certificate cannot be parsed: {e}"))?;
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &chain[1..],
        UnixTime::now(),
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// The roles `cert` carries (see the module documentation); none for a certificate that does
/// not parse.
pub fn roles_of(cert: &CertificateDer<'_>) -> Vec<Role> {
    let Ok(parsed) = webpki::EndEntityCert::try_from(cert) else {
        return Vec::new();
    };
    Role::ALL
        .into_iter()
        .filter(|role| {
            ServerName::try_from(role.marker())
                .is_ok_and(|name| parsed.verify_is_valid_for_subject_name(&name).is_ok())
        })
        .collect()
}

/// Whether `cert` names `host` (an IP address or a DNS name) among its subject alternative
/// names.
pub fn names_host(cert: &CertificateDer<'_>, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(parsed) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => match ServerName::try_from(host.to_owned()) {
            Ok(name) => name,
            Err(_) => return false,
        },
    };
    parsed.verify_is_valid_for_subject_name(&name).is_ok()
}

/// A node's TLS material, read and checked ([`TlsFiles::load`]).
#[derive(Clone)]
pub struct NodeTls {
    ca_pem: Vec<u8>,
    /// The certificate and key PEM; `None` for a caller that presents none.
    identity: Option<(Vec<u8>, Vec<u8>)>,
    roles: Vec<Role>,
    files: TlsFiles,
}

impl fmt::Debug for NodeTls {
    // Never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeTls")
            .field("files", &self.files)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl NodeTls {
    /// The roles the node's own certificate carries.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The files it was read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    fn server_config(
        &self,
        client_auth_optional: bool,
        handshake: Duration,
    ) -> Result<ServerTlsConfig, TlsError> {
        let Some((cert, key)) = &self.identity else {
            return Err(TlsError::Setup(
                "a node that listens needs its own certificate and key (--tls-dir, or --tls-cert and --tls-key), not only --tls-ca".into(),
            ));
        };
        Ok(ServerTlsConfig::new()
            .identity(Identity::from_pem(cert, key))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
            .client_auth_optional(client_auth_optional)
            .timeout(handshake))
    }

    /// The rustls side of [`NodeTls::client_config`], for connections made without tonic (a
    /// router's forwarding connections): the CA as the only root, the node's certificate
    /// when it has one, HTTP/2 by ALPN.
    fn rustls_client_config(&self) -> Result<rustls::ClientConfig, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca_pem) {
            let cert = cert.map_err(|e| format!("the CA certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("the CA certificate: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("the node certificate: {e}"))?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| format!("the node's private key: {e}"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("the node certificate: {e}"))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }

    fn client_config(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        match &self.identity {
            Some((cert, key)) => config.identity(Identity::from_pem(cert, key)),
            None => config,
        }
    }
}

/// Bearer tokens a lambda listener accepts (`--call-token-file`): one per line; empty lines
/// and lines starting with `#` are skipped.
#[derive(Clone)]
pub struct CallTokens(Vec<Vec<u8>>);

impl fmt::Debug for CallTokens {
    // Never the tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallTokens({} tokens)", self.0.len())
    }
}

impl CallTokens {
    /// Reads a token file.
    pub fn load(path: &Path) -> Result<Self, TlsError> {
        let tokens: Vec<Vec<u8>> = read_tokens(path)?
            .into_iter()
            .map(String::into_bytes)
            .collect();
        Ok(CallTokens(tokens))
    }

    /// Tokens given as they are (tests, embedding).
    pub fn new(tokens: impl IntoIterator<Item = String>) -> Self {
        CallTokens(tokens.into_iter().map(String::into_bytes).collect())
    }

    /// Whether `token` is one of them; compares in time independent of where they differ.
    pub fn accepts(&self, token: &[u8]) -> bool {
        self.0.iter().fold(false, |found, known| {
            let same_length = known.len() == token.len();
            let difference = known
                .iter()
                .zip(token)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found | (same_length & (difference == 0))
        })
    }
}

const TOKEN_HINT: &str = "a token file holds one token per line (printable ASCII, no spaces), e.g. made with `head -c 32 /dev/urandom | base64 > FILE`";

fn read_tokens(path: &Path) -> Result<Vec<String>, TlsError> {
    let text = std::fs::read_to_string(path).map_err(|error| TlsError::Read {
        what: "the call token file",
        path: path.to_owned(),
        error,
        hint: TOKEN_HINT,
    })?;
    let mut tokens = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let token = line.trim();
        if token.is_empty() || token.starts_with('#') {
            continue;
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TlsError::Content {
                path: path.to_owned(),
                problem: format!(
                    "line {}: the token has a space or a non-ASCII byte",
                    number + 1
                ),
                hint: TOKEN_HINT,
            });
        }
        tokens.push(token.to_owned());
    }
    if tokens.is_empty() {
        return Err(TlsError::Content {
            path: path.to_owned(),
            problem: "no token in it".into(),
            hint: TOKEN_HINT,
        });
    }
    Ok(tokens)
}

/// The token a caller sends: the first of a token file.
pub fn read_call_token(path: &Path) -> Result<String, TlsError> {
    Ok(read_tokens(path)?.swap_remove(0))
}

// ===== the security of a node =====

/// What a node's listeners demand and what its connections present. `Default`: plain mode.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// The node's TLS material; `None`: plain mode.
    pub tls: Option<Arc<NodeTls>>,
    /// Lambda listeners: tokens accepted in `authorization: Bearer T`.
    pub call_tokens: Option<Arc<CallTokens>>,
    /// Lambda listeners in secured mode: take calls without a certificate or token too.
    pub open_calls: bool,
    /// Calls this node makes (the client): the token it sends.
    pub call_token: Option<String>,
}

impl Security {
    /// Plain mode: serverlessonedge's, plaintext and open.
    pub fn plain() -> Self {
        Security::default()
    }

    /// Secured with `tls`: mutual TLS on the control surfaces, lambda calls with a
    /// certificate of the CA.
    pub fn secured(tls: NodeTls) -> Self {
        Security {
            tls: Some(Arc::new(tls)),
            ..Security::default()
        }
    }

    /// Whether the node speaks TLS.
    pub fn is_secured(&self) -> bool {
        self.tls.is_some()
    }

    /// `server` (a listener's, before its services) with TLS for `surface` and the guard that
    /// authorizes each call. The guard goes outermost, so refused calls take no admission
    /// permits.
    pub fn server(
        &self,
        server: Server,
        surface: Surface,
        handshake: Duration,
    ) -> Result<Server<tower_layer::Stack<GuardLayer, tower_layer::Identity>>, TlsError> {
        let server = match &self.tls {
            Some(tls) => {
                install_crypto_provider();
                let optional = surface == Surface::Lambdas;
                server
                    .tls_config(tls.server_config(optional, handshake)?)
                    .map_err(|e| TlsError::Setup(e.to_string()))?
            }
            None => server,
        };
        Ok(server.layer(self.guard(surface)))
    }

    /// The guard of a listener of `surface`.
    pub fn guard(&self, surface: Surface) -> GuardLayer {
        let tls = self.tls.is_some();
        let tokens = self
            .call_tokens
            .clone()
            .filter(|_| surface == Surface::Lambdas);
        GuardLayer {
            policy: Arc::new(Policy {
                surface,
                tls,
                pass_all: !tls && tokens.is_none(),
                tokens,
                open_calls: self.open_calls,
            }),
        }
    }

    /// What the node's connections present: its certificate, and the call token.
    pub fn client(&self) -> Result<ClientSecurity, TlsError> {
        let authorization = match &self.call_token {
            Some(token) => Some(
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| TlsError::Setup("the call token is not printable ASCII".into()))?,
            ),
            None => None,
        };
        Ok(ClientSecurity {
            tls: self.tls.clone(),
            authorization,
        })
    }
}

/// Both roles of rustls's crypto provider in this process: ring (tonic's `tls-ring`). Set
/// once, so that a second provider linked in by another crate never makes rustls guess.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What a node presents when it connects: its certificate (secured mode) and the call token.
#[derive(Clone, Debug, Default)]
pub struct ClientSecurity {
    tls: Option<Arc<NodeTls>>,
    authorization: Option<AsciiMetadataValue>,
}

impl ClientSecurity {
    /// Plain mode.
    pub fn plain() -> Self {
        ClientSecurity::default()
    }

    /// Whether connections speak TLS.
    pub fn is_secured(&self) -> bool {
        self.tls.is_some()
    }

    /// The tonic endpoint of `address` (`host:port`): `https://` with the node's certificate
    /// and the CA in secured mode; the server must present a certificate of the CA that names
    /// the host.
    pub fn endpoint(&self, address: &str, connect_timeout: Duration) -> Result<Endpoint, String> {
        let endpoint = crate::destinations::endpoint_with_scheme(
            address,
            connect_timeout,
            if self.tls.is_some() { "https" } else { "http" },
        )?;
        match &self.tls {
            Some(tls) => {
                install_crypto_provider();
                endpoint
                    .tls_config(tls.client_config())
                    .map_err(|e| format!("TLS towards {}: {e}", crate::limits::clip(address)))
            }
            None => Ok(endpoint),
        }
    }

    /// The TLS connector of connections made without tonic (a router's forwarding
    /// connections), with the same certificates as [`ClientSecurity::endpoint`]; `None` in
    /// plain mode.
    pub(crate) fn tls_connector(&self) -> Result<Option<tokio_rustls::TlsConnector>, String> {
        match &self.tls {
            Some(tls) => {
                let config = tls.rustls_client_config()?;
                Ok(Some(tokio_rustls::TlsConnector::from(Arc::new(config))))
            }
            None => Ok(None),
        }
    }

    /// Adds the call token, if any, to a request.
    pub fn authorize<T>(&self, request: &mut tonic::Request<T>) {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
    }
}

// ===== authorization =====

/// What a listener serves: decides who may call what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// `EdgeServer.RunLambda` of routers and computers.
    Lambdas,
    /// A router's `EdgeRouter` and `Marks`.
    Tables,
    /// A computer's `EdgeComputer.StreamUtil`.
    Utilization,
    /// The controller's `EdgeController`, `Presence` and `Congestion`.
    Controller,
}

/// The roles that may call `path` (`/package.Service/Method`) on `surface`; operators may call
/// everything.
fn allowed(surface: Surface, path: &str) -> &'static [Role] {
    use Role::*;
    match (surface, path) {
        (Surface::Lambdas | Surface::Utilization, _) => &Role::ALL,
        (Surface::Tables, "/uiiit.rpc.EdgeRouter/GetTable")
        | (Surface::Tables, "/uiiit.rpc.EdgeRouter/GetNumTables")
        | (Surface::Tables, "/lambdaroute.rpc.Marks/List") => &[Controller, Operator, Monitor],
        (Surface::Tables, _) => &[Controller, Operator],
        (Surface::Controller, "/uiiit.rpc.EdgeController/AnnounceRouter") => &[Router, Operator],
        (Surface::Controller, "/uiiit.rpc.EdgeController/AnnounceComputer") => {
            &[Computer, Operator]
        }
        (Surface::Controller, "/uiiit.rpc.EdgeController/RemoveComputer") => {
            &[Computer, Router, Operator]
        }
        (Surface::Controller, p) if p.starts_with("/lambdaroute.rpc.Presence/") => {
            &[Router, Computer, Operator]
        }
        (Surface::Controller, "/lambdaroute.rpc.Congestion/Report") => &[Monitor, Operator],
        (Surface::Controller, "/lambdaroute.rpc.Congestion/View") => &[Monitor, Operator],
        (Surface::Controller, _) => &[Operator],
    }
}

/// The authenticated caller of a call on a control surface, in the request's extensions for
/// the services' own checks (an announcement names the announcer).
#[derive(Clone, Debug)]
pub struct Peer {
    roles: Vec<Role>,
    cert: CertificateDer<'static>,
}

impl Peer {
    /// Whether the caller's certificate carries `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The caller's roles.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Whether the caller may speak for `endpoint` (`host:port`): an operator for any; anyone
    /// else for a host its certificate names. Ports are not in certificates: a host's
    /// certificate speaks for every port of the host.
    pub fn may_speak_for(&self, endpoint: &str, field: &str) -> Result<(), Status> {
        if self.has(Role::Operator) {
            return Ok(());
        }
        let host = lambdaroute_core::controller::key::split_endpoint(endpoint)
            .map_or_else(|| endpoint.to_owned(), |(host, _)| host);
        if names_host(&self.cert, &host) {
            return Ok(());
        }
        Err(Status::permission_denied(format!(
            "{field} '{}' is not an address of the caller's certificate: a node announces only itself",
            crate::limits::clip(endpoint)
        )))
    }
}

/// The caller's [`Peer`] from a request's extensions, if the listener is secured.
pub fn peer<T>(request: &tonic::Request<T>) -> Option<&Peer> {
    request.extensions().get::<Peer>()
}

struct Policy {
    surface: Surface,
    tls: bool,
    /// Plain mode with no token to check: every call passes untouched.
    pass_all: bool,
    tokens: Option<Arc<CallTokens>>,
    open_calls: bool,
}

impl Policy {
    fn admit(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        let leaf = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs)
            .and_then(|certs| certs.first().cloned());
        if self.surface == Surface::Lambdas {
            // rustls verified a presented certificate against the CA during the handshake.
            if leaf.is_some() {
                return Ok(());
            }
            if let Some(tokens) = &self.tokens
                && let Some(token) = bearer(request)
                && tokens.accepts(token)
            {
                return Ok(());
            }
            if self.tls && self.open_calls && self.tokens.is_none() {
                return Ok(());
            }
            return Err(Status::unauthenticated(match (self.tls, &self.tokens) {
                (true, Some(_)) => {
                    "this listener takes calls with a client certificate of its CA or a call token (`authorization: Bearer TOKEN`; lambdaroute client --tls-dir or --call-token-file)"
                }
                (true, None) => {
                    "this listener takes calls with a client certificate of its CA (lambdaroute client --tls-dir DIR --tls-name NAME)"
                }
                (false, _) => {
                    "this listener takes calls with a call token (`authorization: Bearer TOKEN`; lambdaroute client --call-token-file FILE)"
                }
            }));
        }
        if !self.tls {
            return Ok(());
        }
        let Some(cert) = leaf else {
            return Err(Status::unauthenticated(
                "this listener takes calls with a client certificate of its CA only (--tls-dir DIR, docs/security.md)",
            ));
        };
        let roles = roles_of(&cert);
        let path = request.uri().path();
        let allowed = allowed(self.surface, path);
        if !roles.iter().any(|r| allowed.contains(r)) {
            let allowed: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
            let held: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            return Err(Status::permission_denied(format!(
                "{} needs a certificate of role {}; the caller's is {}",
                crate::limits::clip(path),
                allowed.join(" or "),
                if held.is_empty() {
                    "of no role".to_owned()
                } else {
                    format!("of role {}", held.join(", "))
                }
            )));
        }
        request.extensions_mut().insert(Peer { roles, cert });
        Ok(())
    }
}

fn bearer(request: &http::Request<Body>) -> Option<&[u8]> {
    let value = request
        .headers()
        .get(http::header::AUTHORIZATION)?
        .as_bytes();
    let prefix = b"Bearer ";
    (value.len() > prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &value[prefix.len()..])
}

/// A tower layer for tonic's `Server::layer`: authorizes each call ([`Security::server`]).
#[derive(Clone)]
pub struct GuardLayer {
    policy: Arc<Policy>,
}

impl<S> tower_layer::Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// The service of [`GuardLayer`].
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    policy: Arc<Policy>,
}

type HttpResponse = http::Response<Body>;

impl<S> tower_service::Service<http::Request<Body>> for Guard<S>
where
    S: tower_service::Service<http::Request<Body>, Response = HttpResponse>,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<HttpResponse, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        if self.policy.pass_all {
            return Either::Left(self.inner.call(request));
        }
        match self.policy.admit(&mut request) {
            Ok(()) => Either::Left(self.inner.call(request)),
            Err(status) => Either::Right(ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        let error = "admin".parse::<Role>().unwrap_err();
        assert!(error.contains("router, computer"), "{error}");
    }

    #[test]
    fn tokens_match_whole_tokens_only() {
        let tokens = CallTokens::new(["secret".to_owned(), "other".to_owned()]);
        assert!(tokens.accepts(b"secret"));
        assert!(tokens.accepts(b"other"));
        assert!(!tokens.accepts(b"secre"));
        assert!(!tokens.accepts(b"secrets"));
        assert!(!tokens.accepts(b""));
    }

    #[test]
    fn the_controller_alone_changes_tables_and_routers_announce_only_as_routers() {
        let configure = allowed(Surface::Tables, "/uiiit.rpc.EdgeRouter/Configure");
        assert_eq!(configure, &[Role::Controller, Role::Operator]);
        let mark = allowed(Surface::Tables, "/lambdaroute.rpc.Marks/Mark");
        assert!(!mark.contains(&Role::Router) && !mark.contains(&Role::Monitor));
        let report = allowed(Surface::Controller, "/lambdaroute.rpc.Congestion/Report");
        assert!(!report.contains(&Role::Computer) && !report.contains(&Role::Router));
        let announce = allowed(
            Surface::Controller,
            "/uiiit.rpc.EdgeController/AnnounceComputer",
        );
        assert!(!announce.contains(&Role::Router));
    }

    #[test]
    fn missing_files_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let error = TlsFiles::in_dir(dir.path(), "r1")
            .load()
            .unwrap_err()
            .to_string();
        assert!(error.contains("ca.pem"), "{error}");
        assert!(error.contains("lambdaroute certs"), "{error}");
    }
}
