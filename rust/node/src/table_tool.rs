//! `lambdaroute table`: read and change a router's e-tables through its table service
//! (`uiiit.rpc.EdgeRouter`), as the controller does.

use std::fmt::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use lambdaroute_proto::uiiit::edge_router_client::EdgeRouterClient;
use lambdaroute_proto::uiiit::edge_router_conf::Action;
use lambdaroute_proto::uiiit::{EdgeRouterConf, Entry, TableId, Void};
use tonic::transport::Channel;

use crate::tls::ClientSecurity;

/// A connection to a router's table service.
pub struct TableClient {
    client: EdgeRouterClient<Channel>,
    address: String,
}

impl TableClient {
    /// Connects to the table service at `address` (`host:port`), within 5 s, in plain mode.
    pub async fn connect(address: &str) -> anyhow::Result<Self> {
        Self::connect_with(address, &ClientSecurity::plain()).await
    }

    /// Connects to the table service at `address` as `security` says (secured mode: TLS with
    /// an operator's or the controller's certificate to change tables).
    pub async fn connect_with(address: &str, security: &ClientSecurity) -> anyhow::Result<Self> {
        let channel = security
            .endpoint(address, Duration::from_secs(5))
            .map_err(anyhow::Error::msg)?
            .connect()
            .await
            .with_context(|| format!("cannot reach the router's table service at {address}"))?;
        Ok(Self {
            client: EdgeRouterClient::new(channel),
            address: address.to_owned(),
        })
    }

    /// Entries of table 0 (overall) or 1 (final).
    pub async fn table(&mut self, id: u32) -> anyhow::Result<Vec<Entry>> {
        let table = self
            .client
            .get_table(TableId { value: id })
            .await
            .with_context(|| format!("GetTable {id} at {}", self.address))?;
        Ok(table.into_inner().entries)
    }

    /// The number of tables the router has (2 for lambdaroute's).
    pub async fn num_tables(&mut self) -> anyhow::Result<u32> {
        Ok(self
            .client
            .get_num_tables(Void {})
            .await?
            .into_inner()
            .value)
    }

    async fn configure(&mut self, conf: EdgeRouterConf) -> anyhow::Result<()> {
        let reply = self
            .client
            .configure(conf)
            .await
            .with_context(|| format!("Configure at {}", self.address))?
            .into_inner();
        // Upstream answers errors with status OK and "Error: ..." in msg.
        if reply.msg.starts_with("Error") {
            bail!("router {}: {}", self.address, reply.msg);
        }
        Ok(())
    }

    /// Install or update an entry.
    pub async fn change(
        &mut self,
        lambda: &str,
        destination: &str,
        weight: f32,
        is_final: bool,
    ) -> anyhow::Result<()> {
        self.configure(EdgeRouterConf {
            action: Action::Change.into(),
            lambda: lambda.into(),
            destination: destination.into(),
            weight,
            r#final: is_final,
        })
        .await
    }

    /// Remove an entry; with an empty lambda, the destination from every lambda.
    pub async fn remove(&mut self, lambda: &str, destination: &str) -> anyhow::Result<()> {
        self.configure(EdgeRouterConf {
            action: Action::Remove.into(),
            lambda: lambda.into(),
            destination: destination.into(),
            ..Default::default()
        })
        .await
    }

    /// Empty both tables of the router.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.configure(EdgeRouterConf {
            action: Action::Flush.into(),
            ..Default::default()
        })
        .await
    }
}

/// A table as a person reads it: one row per entry, weights in ms, calls in flight (0 from
/// routers that do not report them, such as serverlessonedge's).
pub fn format_table(name: &str, entries: &[Entry]) -> String {
    let mut text = format!("{name}: {} entries\n", entries.len());
    let width = entries
        .iter()
        .map(|e| e.lambda.len())
        .chain([6])
        .max()
        .unwrap_or(6);
    let dest_width = entries
        .iter()
        .map(|e| e.destination.len())
        .chain([11])
        .max()
        .unwrap_or(11);
    let _ = writeln!(
        text,
        "  {:<width$}  {:<dest_width$}  {:>12}  {:>9}  final",
        "lambda", "destination", "weight (ms)", "in flight"
    );
    for entry in entries {
        let _ = writeln!(
            text,
            "  {:<width$}  {:<dest_width$}  {:>12.3}  {:>9}  {}",
            entry.lambda,
            entry.destination,
            f64::from(entry.weight) * 1e3,
            entry.in_flight,
            if entry.r#final { "yes" } else { "no" }
        );
    }
    text
}
