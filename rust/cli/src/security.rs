//! Secured mode's flags, shared by every role (docs/security.md, "Secured mode"):
//! `--tls-dir`/`--tls-name` or `--tls-ca`/`--tls-cert`/`--tls-key`, the call tokens, and
//! `lambdaroute certs`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use lambdaroute_node::certs::{self, NodeSpec};
use lambdaroute_node::tls::{CallTokens, NodeTls, Role, Security, TlsFiles, read_call_token};

/// Where the node's TLS material is. None of them: plain mode (plaintext, open to anyone, as
/// serverlessonedge).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Secured mode (docs/security.md)")]
pub struct TlsArgs {
    /// Secured mode: a directory made by `lambdaroute certs`, with ca.pem and this node's
    /// NAME.pem and NAME-key.pem.
    #[arg(long, value_name = "DIR")]
    tls_dir: Option<PathBuf>,
    /// This node's name in --tls-dir (default: the role's, e.g. router, operator).
    #[arg(long, value_name = "NAME")]
    tls_name: Option<String>,
    /// The CA certificate every peer must be signed by (default: DIR/ca.pem). Alone: check the
    /// server and present no certificate (a client with --call-token-file).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// This node's certificate (default: DIR/NAME.pem).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// This node's private key (default: DIR/NAME-key.pem).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The files, if secured; `default_name` names the node in --tls-dir without --tls-name.
    pub fn files(&self, default_name: &str) -> anyhow::Result<Option<TlsFiles>> {
        let name = self.tls_name.as_deref().unwrap_or(default_name);
        let from_dir = self.tls_dir.as_ref().map(|dir| TlsFiles::in_dir(dir, name));
        let given = [&self.tls_ca, &self.tls_cert, &self.tls_key];
        if from_dir.is_none() {
            if self.tls_name.is_some() {
                bail!("--tls-name names a node in --tls-dir: give --tls-dir DIR too");
            }
            if given.iter().all(|f| f.is_none()) {
                return Ok(None);
            }
            if self.tls_ca.is_some() && self.tls_cert.is_none() && self.tls_key.is_none() {
                // Checked by [`TlsArgs::load`]: a caller with no certificate of its own.
                return Ok(Some(TlsFiles {
                    ca: self.tls_ca.clone().unwrap_or_default(),
                    cert: PathBuf::new(),
                    key: PathBuf::new(),
                }));
            }
            if given.iter().any(|f| f.is_none()) {
                bail!(
                    "secured mode needs --tls-ca, --tls-cert and --tls-key together (or --tls-dir DIR made by `lambdaroute certs`)"
                );
            }
        }
        let pick = |given: &Option<PathBuf>, from_dir: Option<&PathBuf>| {
            given
                .clone()
                .or_else(|| from_dir.cloned())
                .unwrap_or_default()
        };
        Ok(Some(TlsFiles {
            ca: pick(&self.tls_ca, from_dir.as_ref().map(|f| &f.ca)),
            cert: pick(&self.tls_cert, from_dir.as_ref().map(|f| &f.cert)),
            key: pick(&self.tls_key, from_dir.as_ref().map(|f| &f.key)),
        }))
    }

    /// The node's material, read and checked; `None` in plain mode. Warns when the
    /// certificate lacks `role`.
    pub fn load(&self, default_name: &str, role: Option<Role>) -> anyhow::Result<Option<NodeTls>> {
        let Some(files) = self.files(default_name)? else {
            return Ok(None);
        };
        if files.cert.as_os_str().is_empty() {
            return Ok(Some(TlsFiles::load_ca_only(&files.ca)?));
        }
        let tls = files.load()?;
        if let Some(role) = role
            && !tls.roles().contains(&role)
            && !tls.roles().contains(&Role::Operator)
        {
            tracing::warn!(
                cert = %files.cert.display(),
                roles = ?tls.roles(),
                "the certificate is not of role {role}: peers will refuse what only a {role} may do (make one with `lambdaroute certs --node NAME --role {role}`)"
            );
        }
        Ok(Some(tls))
    }

    /// The security of a node that only connects (tools): its certificate, if any.
    pub fn security(&self, default_name: &str, role: Option<Role>) -> anyhow::Result<Security> {
        Ok(Security {
            tls: self.load(default_name, role)?.map(Arc::new),
            ..Security::default()
        })
    }
}

/// What a lambda listener (router, computer) accepts.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Secured mode (docs/security.md)")]
pub struct CallAuthArgs {
    /// Take lambda calls that carry one of this file's tokens (`authorization: Bearer TOKEN`;
    /// one token per line), besides those with a client certificate of the CA. In plain mode
    /// too (the token then crosses the network in clear).
    #[arg(long, value_name = "FILE")]
    call_token_file: Option<PathBuf>,
    /// Secured mode: take lambda calls from anyone who reaches the listener (TLS then only
    /// protects the transport); the default wants a client certificate of the CA or a token.
    #[arg(long, conflicts_with = "call_token_file")]
    open_calls: bool,
}

impl CallAuthArgs {
    /// The security of a node with lambda listeners.
    pub fn security(&self, tls: &TlsArgs, name: &str, role: Role) -> anyhow::Result<Security> {
        let tls = tls.load(name, Some(role))?;
        if self.open_calls && tls.is_none() {
            bail!(
                "--open-calls is for secured mode (--tls-dir); in plain mode calls are open anyway"
            );
        }
        let call_tokens = match &self.call_token_file {
            Some(path) => Some(Arc::new(CallTokens::load(path)?)),
            None => None,
        };
        Ok(Security {
            tls: tls.map(Arc::new),
            call_tokens,
            open_calls: self.open_calls,
            call_token: None,
        })
    }
}

/// What a client sends with its calls.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Secured mode (docs/security.md)")]
pub struct CallTokenArgs {
    /// Send this file's (first) token with every call (`authorization: Bearer TOKEN`).
    #[arg(long, value_name = "FILE", conflicts_with = "call_token")]
    call_token_file: Option<PathBuf>,
    /// Send this token with every call; prefer the environment variable or a file, which `ps`
    /// does not show.
    #[arg(
        long,
        env = "LAMBDAROUTE_CALL_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    call_token: Option<String>,
}

impl CallTokenArgs {
    /// The token, if any.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        Ok(match (&self.call_token_file, &self.call_token) {
            (Some(path), _) => Some(read_call_token(path)?),
            (None, Some(token)) => Some(token.trim().to_owned()),
            (None, None) => None,
        })
    }
}

/// `lambdaroute certs`: make a CA and node certificates for secured mode.
#[derive(Args, Debug)]
pub struct CertsArgs {
    /// Directory of the certificates (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Make the CA (ca.pem, ca-key.pem). Refused if one exists, unless --force.
    #[arg(long)]
    ca: bool,
    /// Replace an existing CA (every certificate made with the old one stops working).
    #[arg(long, requires = "ca")]
    force: bool,
    /// Make the certificate of this node: NAME.pem and NAME-key.pem.
    #[arg(long, value_name = "NAME", requires = "role")]
    node: Option<String>,
    /// The node's role: router, computer, controller, operator, monitor or client.
    #[arg(long, value_name = "ROLE", requires = "node")]
    role: Option<Role>,
    /// An address the node is reached at (repeat, or comma-separated).
    #[arg(long, value_name = "IP", value_delimiter = ',', requires = "node")]
    ip: Vec<IpAddr>,
    /// A host name the node is reached at (repeat, or comma-separated).
    #[arg(long, value_name = "NAME", value_delimiter = ',', requires = "node")]
    dns: Vec<String>,
    /// Make the certificates of every router, computer, controller and client host of this
    /// scenario, at their scenario addresses, and `operator` and `monitor` (127.0.0.1); the
    /// CA too if the directory has none.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["node", "force"])]
    scenario: Option<PathBuf>,
}

pub fn certs(args: CertsArgs) -> anyhow::Result<()> {
    if !args.ca && args.node.is_none() && args.scenario.is_none() {
        bail!(
            "say what to make: --ca (the CA), --node NAME --role ROLE [--ip IP] (a node), or --scenario FILE (every node of a scenario)"
        );
    }
    if args.ca {
        let path = certs::make_ca(&args.out, args.force)?;
        println!("{}", path.display());
    }
    if let Some(name) = &args.node {
        let role = args.role.context("--node needs --role")?;
        let files = certs::make_node(
            &args.out,
            &NodeSpec {
                name: name.clone(),
                role,
                ips: args.ip.clone(),
                dns: args.dns.clone(),
            },
        )?;
        println!("{}", files.cert.display());
    }
    if let Some(path) = &args.scenario {
        let scenario = lambdaroute_scenario::Scenario::load(path)
            .with_context(|| format!("cannot load the scenario {}", path.display()))?;
        if !certs::has_ca(&args.out) {
            certs::make_ca(&args.out, false)?;
        }
        let network = scenario.network();
        let mut made = 0;
        for (host, ip) in scenario.hosts.iter().zip(&network.ips) {
            use lambdaroute_scenario::model::Role as HostRole;
            let role = match host.role {
                HostRole::Router => Role::Router,
                HostRole::Computer(_) => Role::Computer,
                HostRole::Controller => Role::Controller,
                HostRole::Client => Role::Client,
                _ => continue,
            };
            certs::make_node(
                &args.out,
                &NodeSpec {
                    name: host.name.clone(),
                    role,
                    ips: vec![IpAddr::V4(*ip)],
                    dns: Vec::new(),
                },
            )?;
            made += 1;
        }
        for (name, role) in [("operator", Role::Operator), ("monitor", Role::Monitor)] {
            certs::make_node(
                &args.out,
                &NodeSpec {
                    name: name.into(),
                    role,
                    ips: vec![IpAddr::from([127, 0, 0, 1])],
                    dns: Vec::new(),
                },
            )?;
        }
        println!(
            "{}: CA and {made} node certificates, operator and monitor",
            args.out.display()
        );
    }
    Ok(())
}
