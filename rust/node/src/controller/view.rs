//! Talking to a controller from the command line: congestion reports (what the network
//! monitor sends) and the controller's view, printed as a table a person reads.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;
use lambdaroute_proto::lambdaroute::congestion_client::CongestionClient;
use lambdaroute_proto::lambdaroute::{ControllerView, Empty, LinkReport, LinkReportReply};
use tonic::transport::Channel;

use crate::tls::ClientSecurity;

/// A connection to a controller's `lambdaroute.rpc.Congestion` service.
pub struct CongestionClientConn {
    client: CongestionClient<Channel>,
    address: String,
}

impl CongestionClientConn {
    /// Connects to the controller at `address` (`host:port`), within 5 s, in plain mode.
    pub async fn connect(address: &str) -> anyhow::Result<Self> {
        Self::connect_with(address, &ClientSecurity::plain()).await
    }

    /// Connects to the controller at `address` as `security` says (secured mode: TLS with a
    /// monitor's or an operator's certificate).
    pub async fn connect_with(address: &str, security: &ClientSecurity) -> anyhow::Result<Self> {
        let channel = security
            .endpoint(address, Duration::from_secs(5))
            .map_err(anyhow::Error::msg)
            .context("--controller")?
            .connect()
            .await
            .with_context(|| format!("cannot reach the controller at {address}"))?;
        Ok(Self {
            client: CongestionClient::new(channel),
            address: address.to_owned(),
        })
    }

    /// Report `link` congested (or cleared).
    pub async fn report(&mut self, link: &str, congested: bool) -> anyhow::Result<LinkReportReply> {
        let reply = self
            .client
            .report(LinkReport {
                link: link.to_owned(),
                congested,
            })
            .await
            .with_context(|| format!("congestion report to the controller at {}", self.address))?;
        Ok(reply.into_inner())
    }

    /// The controller's view: installer, epoch, routers, computers, congested links and marks.
    pub async fn view(&mut self) -> anyhow::Result<ControllerView> {
        let view = self
            .client
            .view(Empty {})
            .await
            .with_context(|| format!("view of the controller at {}", self.address))?;
        Ok(view.into_inner())
    }
}

/// Rows as aligned columns, two spaces apart, indented by two.
fn columns(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from(" ");
        for (cell, w) in cells.zip(&widths) {
            let _ = write!(text, " {cell:<w$} ");
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, &mut header.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

/// The controller's view as a person reads it.
pub fn format_view(view: &ControllerView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "controller: installer {}, epoch {:016x}",
        view.installer, view.epoch
    );
    let _ = writeln!(out, "\nrouters: {}", view.routers.len());
    if !view.routers.is_empty() {
        let rows: Vec<Vec<String>> = view
            .routers
            .iter()
            .map(|r| {
                vec![
                    r.endpoint.clone(),
                    r.table_endpoint.clone(),
                    r.entries.to_string(),
                ]
            })
            .collect();
        columns(&mut out, &["endpoint", "table endpoint", "entries"], &rows);
    }
    let _ = writeln!(out, "\ncomputers: {}", view.computers.len());
    if !view.computers.is_empty() {
        let rows: Vec<Vec<String>> = view
            .computers
            .iter()
            .map(|c| vec![c.endpoint.clone(), c.lambdas.join(","), c.placement.clone()])
            .collect();
        columns(&mut out, &["endpoint", "lambdas", "placement"], &rows);
    }
    let mut lambdas: Vec<&str> = view
        .computers
        .iter()
        .flat_map(|c| c.lambdas.iter().map(String::as_str))
        .collect();
    lambdas.sort_unstable();
    lambdas.dedup();
    let _ = writeln!(out, "\nlambdas: {}", lambdas.len());
    if !lambdas.is_empty() {
        let rows: Vec<Vec<String>> = lambdas
            .iter()
            .map(|l| {
                let n = view
                    .computers
                    .iter()
                    .filter(|c| c.lambdas.iter().any(|x| x == l))
                    .count();
                vec![l.to_string(), n.to_string()]
            })
            .collect();
        columns(&mut out, &["lambda", "computers"], &rows);
    }
    let _ = writeln!(
        out,
        "\ncongested links: {}",
        if view.congested_links.is_empty() {
            "none".to_string()
        } else {
            view.congested_links.join(", ")
        }
    );
    let _ = writeln!(out, "\nmarks: {}", view.marks.len());
    if !view.marks.is_empty() {
        let rows: Vec<Vec<String>> = view
            .marks
            .iter()
            .map(|m| vec![m.router.clone(), m.destination.clone(), m.links.join(",")])
            .collect();
        columns(
            &mut out,
            &["router", "destination", "congested links"],
            &rows,
        );
    }
    out
}
