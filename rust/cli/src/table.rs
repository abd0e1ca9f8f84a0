//! `lambdaroute table`: the forwarding-table tool.

use clap::{Args, Subcommand};
use lambdaroute_node::table_tool::{TableClient, format_table};

#[derive(Args, Debug)]
pub struct TableArgs {
    /// The router's table service.
    #[arg(long, default_value = "127.0.0.1:6474")]
    router: String,
    /// Secured mode: changing a router's tables takes an operator's (or the controller's)
    /// certificate; --tls-name defaults to operator.
    #[command(flatten)]
    tls: crate::security::TlsArgs,
    #[command(subcommand)]
    action: TableAction,
}

#[derive(Subcommand, Debug)]
enum TableAction {
    /// Print the tables (both, or one with --table).
    Dump {
        /// 0 = overall, 1 = final.
        #[arg(long)]
        table: Option<u32>,
    },
    /// Install or update an entry.
    Change {
        #[arg(long)]
        lambda: String,
        /// Destination endpoint, host:port.
        #[arg(long)]
        destination: String,
        /// Initial weight: estimated latency in seconds (> 0).
        #[arg(long, default_value_t = 1.0)]
        weight: f32,
        /// The destination executes the lambda (a computer), rather than forwarding it.
        #[arg(long = "final")]
        is_final: bool,
    },
    /// Remove an entry; without --lambda, the destination from every lambda.
    Remove {
        #[arg(long, default_value = "")]
        lambda: String,
        #[arg(long)]
        destination: String,
    },
    /// Remove every entry.
    Flush,
}

pub async fn run(args: TableArgs) -> anyhow::Result<()> {
    let security = args.tls.security("operator", None)?.client()?;
    let mut client = TableClient::connect_with(&args.router, &security).await?;
    match args.action {
        TableAction::Dump { table } => {
            let ids = match table {
                Some(id) => vec![id],
                None => (0..client.num_tables().await?).collect(),
            };
            for id in ids {
                let name = match id {
                    0 => "table 0 (overall)",
                    1 => "table 1 (final)",
                    _ => "table",
                };
                print!("{}", format_table(name, &client.table(id).await?));
            }
        }
        TableAction::Change {
            lambda,
            destination,
            weight,
            is_final,
        } => {
            client
                .change(&lambda, &destination, weight, is_final)
                .await?
        }
        TableAction::Remove {
            lambda,
            destination,
        } => client.remove(&lambda, &destination).await?,
        TableAction::Flush => client.flush().await?,
    }
    Ok(())
}
