//! The router's congestion marks service (`lambdaroute.rpc.Marks`), served on the table
//! listener next to `uiiit.rpc.EdgeRouter`: the controller marks the destinations whose path
//! crosses a congested link. A marked entry stays in the tables but is used only while no
//! unmarked destination exists for its lambda; unmarked, it comes back at its installed weight
//! (see `ETable::set_marked`). Marks cost nothing on the per-call path.

use std::collections::BTreeSet;
use std::sync::Arc;

use lambdaroute_core::table::TableKind;
use lambdaroute_proto::lambdaroute::marks_server::Marks;
use lambdaroute_proto::lambdaroute::{Empty, MarkReply, MarkRequest, MarkedDestinations};
use tonic::{Request, Response, Status};
use tracing::info;

use super::RouterState;

pub(crate) struct MarksService {
    state: Arc<RouterState>,
}

impl MarksService {
    pub fn new(state: Arc<RouterState>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl Marks for MarksService {
    async fn mark(&self, request: Request<MarkRequest>) -> Result<Response<MarkReply>, Status> {
        let MarkRequest {
            destination,
            marked,
        } = request.into_inner();
        if destination.trim().is_empty() {
            return Err(Status::invalid_argument(
                "MarkRequest.destination is empty: give the destination endpoint, host:port",
            ));
        }
        let entries = self
            .state
            .table
            .lock()
            .etable
            .set_marked(&destination, marked);
        info!(%destination, marked, entries, "congestion mark set");
        Ok(Response::new(MarkReply {
            entries: u32::try_from(entries).unwrap_or(u32::MAX),
        }))
    }

    async fn list(&self, _: Request<Empty>) -> Result<Response<MarkedDestinations>, Status> {
        let entries = self.state.table.lock().etable.entries(TableKind::Overall);
        let destinations: BTreeSet<String> = entries
            .into_iter()
            .filter(|e| e.marked)
            .map(|e| e.destination)
            .collect();
        Ok(Response::new(MarkedDestinations {
            destinations: destinations.into_iter().collect(),
        }))
    }
}
