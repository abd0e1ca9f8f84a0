//! The controller's state and its three services (see the module above).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use lambdaroute_core::controller::key::split_endpoint;
use lambdaroute_core::controller::plan::{self, INITIAL_WEIGHT, Op, Table};
use lambdaroute_core::controller::{Installer, Paths, Placement, Plan, Topology};
use lambdaroute_proto::lambdaroute::congestion_server::Congestion;
use lambdaroute_proto::lambdaroute::marks_client::MarksClient;
use lambdaroute_proto::lambdaroute::member::Role;
use lambdaroute_proto::lambdaroute::presence_server::Presence;
use lambdaroute_proto::lambdaroute::{
    ComputerView, ControllerView, Empty, LinkReport, LinkReportReply, MarkRequest, MarkView,
    Member, PresenceReply, RouterView,
};
use lambdaroute_proto::uiiit::edge_controller_server::EdgeController;
use lambdaroute_proto::uiiit::edge_router_client::EdgeRouterClient;
use lambdaroute_proto::uiiit::edge_router_conf::Action;
use lambdaroute_proto::uiiit::{ComputerInfo, EdgeRouterConf, RouterInfo, TableId, Void};
use parking_lot::RwLock;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tracing::{debug, info, warn};

use super::ControllerOptions;
use crate::destinations::endpoint;

/// The controller: configuration, and the state behind one async lock (changes are applied
/// and pushed to the routers one at a time, in arrival order).
pub(crate) struct Controller {
    installer: Installer,
    paths: Option<Paths>,
    epoch: u64,
    router_timeout: Duration,
    inner: tokio::sync::Mutex<Inner>,
    /// Who is known, for the presence checks (which must not wait behind a push).
    known: RwLock<Known>,
}

#[derive(Default)]
struct Known {
    routers: HashSet<String>,
    computers: HashSet<String>,
}

#[derive(Default)]
struct Inner {
    topology: Topology,
    congested: BTreeSet<String>,
    /// By lambda endpoint.
    routers: BTreeMap<String, RouterLink>,
    plan: Plan,
    /// While in the resync grace: destinations removed since the start (see the module doc).
    removed: HashSet<String>,
    grace_over: bool,
}

/// A router's table service, and what the controller knows it holds.
struct RouterLink {
    table_endpoint: String,
    table: EdgeRouterClient<Channel>,
    marks: MarksClient<Channel>,
    installed: Table,
    marked: BTreeSet<String>,
    /// False for a router without `lambdaroute.rpc.Marks` (serverlessonedge's).
    marks_supported: bool,
}

/// A router that could not be reached.
struct Unreachable(String);

impl Controller {
    pub fn new(options: &ControllerOptions) -> Self {
        Controller {
            installer: options.installer.clone(),
            paths: options.paths.clone(),
            epoch: rand::random(),
            router_timeout: options.router_timeout,
            inner: tokio::sync::Mutex::new(Inner {
                grace_over: options.resync_grace.is_zero(),
                ..Inner::default()
            }),
            known: RwLock::new(Known::default()),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn publish_known(&self, inner: &Inner) {
        let mut known = self.known.write();
        known.routers = inner.topology.routers.keys().cloned().collect();
        known.computers = inner.topology.computers.keys().cloned().collect();
    }

    /// Bring every router to the plan of the current topology; drop the routers that cannot
    /// be reached (and plan again without them).
    async fn reconcile(&self, inner: &mut Inner) {
        loop {
            inner.plan = plan::plan(&self.installer, &inner.topology);
            let removable: Option<HashSet<String>> = (!inner.grace_over).then(|| {
                inner
                    .topology
                    .computers
                    .keys()
                    .chain(inner.topology.routers.keys())
                    .chain(inner.removed.iter())
                    .cloned()
                    .collect()
            });
            let Inner {
                routers,
                plan,
                congested,
                ..
            } = &mut *inner;
            let empty = Table::new();
            let pushes = routers.iter_mut().map(|(router, link)| {
                let wanted = plan.tables.get(router).unwrap_or(&empty);
                let marks = match &self.paths {
                    Some(paths) => plan::marks(paths, router, wanted, congested),
                    None => BTreeMap::new(),
                };
                let may_remove = |d: &str| removable.as_ref().is_none_or(|known| known.contains(d));
                let ops = plan::diff(&link.installed, wanted, may_remove);
                let mark: Vec<String> = marks
                    .keys()
                    .filter(|d| !link.marked.contains(*d))
                    .cloned()
                    .collect();
                let unmark: Vec<String> = link
                    .marked
                    .iter()
                    .filter(|d| !marks.contains_key(*d) && may_remove(d))
                    .cloned()
                    .collect();
                let timeout = self.router_timeout;
                async move {
                    let result = link.push(ops, mark, unmark, timeout).await;
                    (router.clone(), result)
                }
            });
            let results = join_all(pushes).await;
            let mut dropped = false;
            for (router, result) in results {
                if let Err(Unreachable(error)) = result {
                    warn!(%router, %error, "router unreachable: dropped; it gets its tables again when it announces again");
                    inner.routers.remove(&router);
                    inner.topology.routers.remove(&router);
                    dropped = true;
                }
            }
            self.publish_known(inner);
            if !dropped {
                return;
            }
        }
    }

    async fn announce_router(&self, info: RouterInfo) -> Result<(), Status> {
        let router = checked_endpoint(&info.edge_server_endpoint, "RouterInfo.edgeServerEndpoint")?;
        let table_endpoint = checked_endpoint(
            &info.forwarding_table_endpoint,
            "RouterInfo.forwardingTableEndpoint",
        )?;
        let mut inner = self.inner.lock().await;
        let link = RouterLink::connect(&table_endpoint, self.router_timeout)
            .await
            .map_err(|Unreachable(e)| {
                Status::unavailable(format!(
                    "cannot read the tables of router {router} at {table_endpoint}: {e}; check RouterInfo.forwardingTableEndpoint"
                ))
            })?;
        info!(%router, %table_endpoint, entries = link.installed.len(), marked = link.marked.len(), "router announced");
        if let Installer::TwoTier { distances, .. } = &self.installer
            && distances.lookup(&router).is_none()
        {
            warn!(%router, "router not in the distance matrix: it is never a home router; it forwards to the home routers (add it to --distances)");
        }
        inner
            .topology
            .routers
            .insert(router.clone(), table_endpoint);
        inner.routers.insert(router, link);
        self.publish_known(&inner);
        self.reconcile(&mut inner).await;
        Ok(())
    }

    async fn announce_computer(&self, info: ComputerInfo) -> Result<(), Status> {
        let computer = checked_endpoint(
            &info.edge_server_endpoint,
            "ComputerInfo.edgeServerEndpoint",
        )?;
        let lambdas: BTreeSet<String> = info
            .containers
            .iter()
            .map(|c| c.lambda.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        if lambdas.is_empty() {
            warn!(%computer, "computer announced no lambdas (no container with a lambda name): no entries for it");
        }
        let mut inner = self.inner.lock().await;
        let previous = inner
            .topology
            .computers
            .insert(computer.clone(), lambdas.clone());
        inner.removed.remove(&computer);
        self.publish_known(&inner);
        match previous {
            Some(old) if old == lambdas => {
                debug!(%computer, "computer announced again, same lambdas")
            }
            Some(_) => {
                info!(%computer, lambdas = ?lambdas, "computer announced again with other lambdas: its entries replaced")
            }
            None => info!(%computer, lambdas = ?lambdas, "computer announced"),
        }
        self.reconcile(&mut inner).await;
        match inner.plan.placements.get(&computer) {
            Some(Placement::Fallback(reason)) => {
                warn!(%computer, %reason, "two-tier cannot place the computer: installed final on every router, as flat (add it to --distances)")
            }
            Some(Placement::Home(router)) => {
                info!(%computer, home_router = %router, "computer placed")
            }
            _ => {}
        }
        Ok(())
    }

    async fn remove_computer(&self, info: ComputerInfo) -> Result<(), Status> {
        let endpoint = checked_endpoint(
            &info.edge_server_endpoint,
            "ComputerInfo.edgeServerEndpoint",
        )?;
        let mut inner = self.inner.lock().await;
        if inner.topology.routers.remove(&endpoint).is_some() {
            // A router reported another router (a two-tier home router) failed.
            inner.routers.remove(&endpoint);
            info!(router = %endpoint, "router reported failed: dropped; it gets its tables again when it announces again");
        } else if let Some(lambdas) = inner.topology.computers.get_mut(&endpoint) {
            let gone: BTreeSet<String> = info.containers.iter().map(|c| c.lambda.clone()).collect();
            if gone.is_empty() {
                lambdas.clear();
            } else {
                lambdas.retain(|l| !gone.contains(l));
            }
            if lambdas.is_empty() {
                inner.topology.computers.remove(&endpoint);
                info!(computer = %endpoint, "computer removed from every router");
            } else {
                info!(computer = %endpoint, removed = ?gone, "lambdas of the computer removed");
            }
        } else {
            debug!(%endpoint, "RemoveComputer of an unknown endpoint");
        }
        if !inner.grace_over {
            inner.removed.insert(endpoint);
        }
        self.reconcile(&mut inner).await;
        Ok(())
    }

    async fn report(&self, report: LinkReport) -> Result<LinkReportReply, Status> {
        let link = report.link.trim().to_owned();
        if link.is_empty() {
            return Err(Status::invalid_argument(
                "LinkReport.link is empty: give a link name of the controller's paths file",
            ));
        }
        let on_paths = self.paths.as_ref().is_some_and(|p| p.has_link(&link));
        let mut inner = self.inner.lock().await;
        let changed = if report.congested {
            inner.congested.insert(link.clone())
        } else {
            inner.congested.remove(&link)
        };
        if changed {
            self.reconcile(&mut inner).await;
        }
        let marked_pairs: usize = inner.routers.values().map(|l| l.marked.len()).sum();
        info!(%link, congested = report.congested, on_paths, marked_pairs, "congestion report");
        if !on_paths {
            warn!(%link, "the link is on no path of the paths file: nothing to mark");
        }
        Ok(LinkReportReply {
            on_paths,
            marked_pairs: u32::try_from(marked_pairs).unwrap_or(u32::MAX),
            congested_links: inner.congested.iter().cloned().collect(),
        })
    }

    async fn view(&self) -> ControllerView {
        let inner = self.inner.lock().await;
        let routers = inner
            .routers
            .iter()
            .map(|(router, link)| RouterView {
                endpoint: router.clone(),
                table_endpoint: link.table_endpoint.clone(),
                entries: u32::try_from(link.installed.len()).unwrap_or(u32::MAX),
            })
            .collect();
        let computers = inner
            .topology
            .computers
            .iter()
            .map(|(computer, lambdas)| {
                let placement = inner.plan.placements.get(computer);
                ComputerView {
                    endpoint: computer.clone(),
                    lambdas: lambdas.iter().cloned().collect(),
                    home_router: match placement {
                        Some(Placement::Home(router)) => router.clone(),
                        _ => String::new(),
                    },
                    placement: placement.map(|p| p.to_string()).unwrap_or_default(),
                }
            })
            .collect();
        let mut marks = Vec::new();
        if let Some(paths) = &self.paths {
            for (router, link) in &inner.routers {
                for destination in &link.marked {
                    let links = paths
                        .links(router, destination)
                        .unwrap_or_default()
                        .iter()
                        .filter(|l| inner.congested.contains(*l))
                        .cloned()
                        .collect();
                    marks.push(MarkView {
                        router: router.clone(),
                        destination: destination.clone(),
                        links,
                    });
                }
            }
        }
        ControllerView {
            installer: self.installer.to_string(),
            epoch: self.epoch,
            routers,
            computers,
            congested_links: inner.congested.iter().cloned().collect(),
            marks,
        }
    }
}

/// After the resync grace, remove what nobody announced again.
pub(crate) async fn end_grace(controller: Arc<Controller>, grace: Duration) {
    if grace.is_zero() {
        return;
    }
    tokio::time::sleep(grace).await;
    let mut inner = controller.inner.lock().await;
    inner.grace_over = true;
    inner.removed.clear();
    info!("resync grace over: entries of destinations nobody announced are removed");
    controller.reconcile(&mut inner).await;
}

fn checked_endpoint(value: &str, field: &str) -> Result<String, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{field} is empty: give host:port, e.g. 10.0.0.1:6473"
        )));
    }
    if split_endpoint(value).is_none() {
        return Err(Status::invalid_argument(format!(
            "{field} '{value}' is not host:port, e.g. 10.0.0.1:6473"
        )));
    }
    Ok(value.to_owned())
}

// ===== impl RouterLink =====

/// Transport failures mean the router is gone; other statuses are answers.
fn unreachable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
    )
}

async fn timed<T>(
    timeout: Duration,
    call: impl Future<Output = Result<Response<T>, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map(Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer within {:.1} s",
            timeout.as_secs_f64()
        ))),
    }
}

impl RouterLink {
    /// Connect to a router's table service and read what it holds.
    async fn connect(table_endpoint: &str, timeout: Duration) -> Result<Self, Unreachable> {
        let channel = endpoint(table_endpoint, timeout)
            .map_err(Unreachable)?
            .connect_lazy();
        let mut link = RouterLink {
            table_endpoint: table_endpoint.to_owned(),
            table: EdgeRouterClient::new(channel.clone()),
            marks: MarksClient::new(channel),
            installed: Table::new(),
            marked: BTreeSet::new(),
            marks_supported: true,
        };
        let entries = timed(timeout, link.table.get_table(TableId { value: 0 }))
            .await
            .map_err(|s| Unreachable(s.message().to_owned()))?
            .entries;
        link.installed = entries
            .into_iter()
            .map(|e| ((e.lambda, e.destination), e.r#final))
            .collect();
        match timed(timeout, link.marks.list(Empty {})).await {
            Ok(list) => link.marked = list.destinations.into_iter().collect(),
            Err(status) if status.code() == Code::Unimplemented => {
                warn!(router_table = %table_endpoint, "router without congestion marks (lambdaroute.rpc.Marks): congestion steering skips it");
                link.marks_supported = false;
            }
            Err(status) => return Err(Unreachable(status.message().to_owned())),
        }
        Ok(link)
    }

    async fn configure(
        &mut self,
        conf: EdgeRouterConf,
        timeout: Duration,
    ) -> Result<String, Unreachable> {
        match timed(timeout, self.table.configure(conf)).await {
            Ok(reply) => Ok(reply.msg),
            Err(status) if unreachable(&status) => Err(Unreachable(status.message().to_owned())),
            Err(status) => Ok(format!("Error: {}", status.message())),
        }
    }

    /// Apply `ops` and the mark changes: marks first (so that a new entry towards a congested
    /// destination is never picked), then changes, then removals, then unmarks.
    async fn push(
        &mut self,
        ops: Vec<Op>,
        mark: Vec<String>,
        unmark: Vec<String>,
        timeout: Duration,
    ) -> Result<(), Unreachable> {
        for destination in mark {
            self.set_mark(destination, true, timeout).await?;
        }
        // Destinations every entry of which goes: one REMOVE without lambda each.
        let mut removing: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Change {
                    lambda,
                    destination,
                    is_final,
                } => {
                    let conf = EdgeRouterConf {
                        action: Action::Change.into(),
                        lambda: lambda.clone(),
                        destination: destination.clone(),
                        weight: INITIAL_WEIGHT,
                        r#final: is_final,
                    };
                    let msg = self.configure(conf, timeout).await?;
                    if msg.starts_with("Error") {
                        warn!(router_table = %self.table_endpoint, %lambda, %destination, %msg, "the router refused an entry");
                    } else {
                        self.installed.insert((lambda, destination), is_final);
                    }
                }
                Op::Remove {
                    lambda,
                    destination,
                } => removing.entry(destination).or_default().push(lambda),
            }
        }
        for (destination, lambdas) in removing {
            let whole = self
                .installed
                .keys()
                .filter(|(_, d)| *d == destination)
                .count()
                == lambdas.len();
            if whole {
                let msg = self
                    .remove(String::new(), destination.clone(), timeout)
                    .await?;
                if !msg.starts_with("Error") || msg.contains("no entry") {
                    self.installed.retain(|(_, d), _| *d != destination);
                    continue;
                }
            }
            for lambda in lambdas {
                let msg = self
                    .remove(lambda.clone(), destination.clone(), timeout)
                    .await?;
                if msg.starts_with("Error") && !msg.contains("no entry") {
                    warn!(router_table = %self.table_endpoint, %lambda, %destination, %msg, "the router refused a removal");
                } else {
                    self.installed.remove(&(lambda, destination.clone()));
                }
            }
        }
        for destination in unmark {
            self.set_mark(destination, false, timeout).await?;
        }
        Ok(())
    }

    async fn remove(
        &mut self,
        lambda: String,
        destination: String,
        timeout: Duration,
    ) -> Result<String, Unreachable> {
        let conf = EdgeRouterConf {
            action: Action::Remove.into(),
            lambda,
            destination,
            ..Default::default()
        };
        self.configure(conf, timeout).await
    }

    async fn set_mark(
        &mut self,
        destination: String,
        marked: bool,
        timeout: Duration,
    ) -> Result<(), Unreachable> {
        if !self.marks_supported {
            return Ok(());
        }
        let request = MarkRequest {
            destination: destination.clone(),
            marked,
        };
        match timed(timeout, self.marks.mark(request)).await {
            Ok(_) => {
                if marked {
                    self.marked.insert(destination);
                } else {
                    self.marked.remove(&destination);
                }
                Ok(())
            }
            Err(status) if status.code() == Code::Unimplemented => {
                warn!(router_table = %self.table_endpoint, "router without congestion marks (lambdaroute.rpc.Marks): congestion steering skips it");
                self.marks_supported = false;
                Ok(())
            }
            Err(status) if unreachable(&status) => Err(Unreachable(status.message().to_owned())),
            Err(status) => {
                warn!(router_table = %self.table_endpoint, %destination, error = %status.message(), "the router refused a mark");
                Ok(())
            }
        }
    }
}

// ===== the services =====

/// The services, over one shared controller.
#[derive(Clone)]
pub(crate) struct Service(pub Arc<Controller>);

#[tonic::async_trait]
impl EdgeController for Service {
    async fn announce_computer(
        &self,
        request: Request<ComputerInfo>,
    ) -> Result<Response<Void>, Status> {
        self.0.announce_computer(request.into_inner()).await?;
        Ok(Response::new(Void {}))
    }

    async fn announce_router(
        &self,
        request: Request<RouterInfo>,
    ) -> Result<Response<Void>, Status> {
        self.0.announce_router(request.into_inner()).await?;
        Ok(Response::new(Void {}))
    }

    async fn remove_computer(
        &self,
        request: Request<ComputerInfo>,
    ) -> Result<Response<Void>, Status> {
        self.0.remove_computer(request.into_inner()).await?;
        Ok(Response::new(Void {}))
    }
}

#[tonic::async_trait]
impl Presence for Service {
    async fn check(&self, request: Request<Member>) -> Result<Response<PresenceReply>, Status> {
        let member = request.into_inner();
        let known = self.0.known.read();
        let known = match Role::try_from(member.role) {
            Ok(Role::Router) => known.routers.contains(&member.endpoint),
            Ok(Role::Computer) => known.computers.contains(&member.endpoint),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "Member.role {} is unknown: expected ROUTER (0) or COMPUTER (1)",
                    member.role
                )));
            }
        };
        Ok(Response::new(PresenceReply {
            known,
            epoch: self.0.epoch,
        }))
    }
}

#[tonic::async_trait]
impl Congestion for Service {
    async fn report(
        &self,
        request: Request<LinkReport>,
    ) -> Result<Response<LinkReportReply>, Status> {
        Ok(Response::new(self.0.report(request.into_inner()).await?))
    }

    async fn view(&self, _: Request<Empty>) -> Result<Response<ControllerView>, Status> {
        Ok(Response::new(self.0.view().await))
    }
}
