//! The router's table service (`uiiit.rpc.EdgeRouter`): the controller and `lambdaroute table`
//! install, change, remove and read entries here. As upstream, a bad request is answered with
//! "Error: ..." in `Return.msg` and gRPC status OK.

use lambdaroute_core::text::clip;
use std::sync::Arc;
use std::time::Duration;

use lambdaroute_core::table::{ETable, Entry, TableKind};
use lambdaroute_proto::uiiit::edge_router_conf::Action;
use lambdaroute_proto::uiiit::edge_router_server::EdgeRouter;
use lambdaroute_proto::uiiit::{
    self as rpc, EdgeRouterConf, ForwardingTable, NumTables, TableId, Void,
};
use tonic::{Request, Response, Status};
use tracing::info;

use super::RouterState;

/// How long a CHANGE waits for a new destination's connection before answering.
const WARM_PATIENCE: Duration = Duration::from_millis(500);

pub(crate) struct TableService {
    state: Arc<RouterState>,
}

impl TableService {
    pub fn new(state: Arc<RouterState>) -> Self {
        Self { state }
    }

    async fn configure(&self, conf: &EdgeRouterConf) -> Result<String, String> {
        if Action::try_from(conf.action) == Ok(Action::Change)
            && !conf.lambda.is_empty()
            && !conf.destination.is_empty()
        {
            // Also validates the endpoint: a bad one answers "Error: invalid endpoint ...".
            let destination: std::sync::Arc<str> = conf.destination.as_str().into();
            self.state
                .destinations
                .warm(&destination, WARM_PATIENCE)
                .await?;
        }
        self.apply(conf)
    }

    pub(crate) fn apply(&self, conf: &EdgeRouterConf) -> Result<String, String> {
        let action = Action::try_from(conf.action).map_err(|_| {
            format!(
                "unknown action {}; expected FLUSH (0), CHANGE (1) or REMOVE (2)",
                conf.action
            )
        })?;
        let mut guard = self.state.table.lock();
        let result = Self::apply_to(&mut guard.etable, &self.state, conf, action);
        guard.entries_changed();
        result
    }

    fn apply_to(
        table: &mut ETable,
        state: &RouterState,
        conf: &EdgeRouterConf,
        action: Action,
    ) -> Result<String, String> {
        match action {
            Action::Flush => {
                table.flush();
                Ok("flushed".into())
            }
            Action::Change => {
                if conf.lambda.is_empty() || conf.destination.is_empty() {
                    return Err("CHANGE needs a lambda and a destination".into());
                }
                table
                    .change(
                        &conf.lambda,
                        &conf.destination,
                        f64::from(conf.weight),
                        conf.r#final,
                    )
                    .map_err(|e| e.to_string())?;
                Ok(String::new())
            }
            Action::Remove => {
                if conf.destination.is_empty() {
                    return Err("REMOVE needs a destination".into());
                }
                let removed = if conf.lambda.is_empty() {
                    // No lambda: the destination leaves every lambda, and its channel goes,
                    // so that a destination back on the same endpoint gets a fresh connection.
                    let removed = table.remove_destination(&conf.destination) > 0;
                    state.destinations.forget(&conf.destination);
                    removed
                } else {
                    table.remove(&conf.lambda, &conf.destination)
                };
                if removed {
                    Ok(String::new())
                } else {
                    Err(format!(
                        "no entry for lambda '{}' at '{}'",
                        clip(&conf.lambda),
                        clip(&conf.destination)
                    ))
                }
            }
        }
    }
}

fn to_rpc(entry: Entry) -> rpc::Entry {
    rpc::Entry {
        lambda: entry.lambda,
        destination: entry.destination,
        weight: entry.weight as f32,
        r#final: entry.is_final,
        in_flight: entry.in_flight,
    }
}

#[tonic::async_trait]
impl EdgeRouter for TableService {
    async fn configure(
        &self,
        request: Request<EdgeRouterConf>,
    ) -> Result<Response<rpc::Return>, Status> {
        let conf = request.into_inner();
        let msg = match self.configure(&conf).await {
            Ok(msg) => {
                info!(action = conf.action, lambda = %clip(&conf.lambda), destination = %clip(&conf.destination), weight = conf.weight, r#final = conf.r#final, "table configured");
                msg
            }
            Err(error) => format!("Error: {error}"),
        };
        Ok(Response::new(rpc::Return { msg }))
    }

    async fn get_table(
        &self,
        request: Request<TableId>,
    ) -> Result<Response<ForwardingTable>, Status> {
        let id = request.into_inner().value;
        let kind = TableKind::from_id(id).ok_or_else(|| {
            Status::invalid_argument(format!(
                "no table {id}: a router has table 0 (overall) and table 1 (final)"
            ))
        })?;
        let entries = self.state.table.lock().etable.entries(kind);
        Ok(Response::new(ForwardingTable {
            entries: entries.into_iter().map(to_rpc).collect(),
        }))
    }

    async fn get_num_tables(&self, _: Request<Void>) -> Result<Response<NumTables>, Status> {
        Ok(Response::new(NumTables { value: 2 }))
    }
}
