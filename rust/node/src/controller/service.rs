//! The controller's state, its background work and its three services (see the module above).
//!
//! An announcement, a removal or a congestion report changes the state under a short lock and
//! wakes the planner; the answer does not wait for the routers (a congestion report and a
//! computer's leave wait a bounded time, see [`Controller::report`]). The planner computes the
//! plan of the current topology once per burst of changes and wakes one reconciliation task per
//! router; each task pushes the difference between the latest plan and what its router holds,
//! and runs again if the plan changed meanwhile: a burst of announcements costs one pass per
//! router, not one per announcement.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use lambdaroute_core::controller::key::split_endpoint;
use lambdaroute_core::controller::plan::{self, INITIAL_WEIGHT, Op, Table};
use lambdaroute_core::controller::{Installer, Paths, Placement, Plan, Topology};
use lambdaroute_proto::lambdaroute::congestion_server::Congestion;
use lambdaroute_proto::lambdaroute::marks_client::MarksClient;
use lambdaroute_proto::lambdaroute::member::Role;
use lambdaroute_proto::lambdaroute::presence_server::Presence;
use lambdaroute_proto::lambdaroute::{
    ComputerView, ControllerView, Empty, LinkReport, LinkReportReply, MarkRequest, MarkView,
    Member, Members, PresenceReplies, PresenceReply, RouterView,
};
use lambdaroute_proto::uiiit::edge_controller_server::EdgeController;
use lambdaroute_proto::uiiit::edge_router_client::EdgeRouterClient;
use lambdaroute_proto::uiiit::edge_router_conf::Action;
use lambdaroute_proto::uiiit::{ComputerInfo, EdgeRouterConf, RouterInfo, TableId, Void};
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tracing::{debug, info, warn};

use super::ControllerOptions;
use crate::metrics::{ControllerMetrics, count};
use crate::tls::{self, ClientSecurity, TlsError};
use prometheus_client::metrics::counter::Counter;

/// How long a congestion report waits for the marks to be on the routers before it answers.
const REPORT_WAIT: Duration = Duration::from_secs(10);
/// How long a computer's leave (`RemoveComputer` with containers) waits for its entries to be
/// gone from the routers: under the member's 2 s limit on the call.
const LEAVE_WAIT: Duration = Duration::from_millis(1500);
/// How long the view waits for the planner to plan the latest changes.
const VIEW_WAIT: Duration = Duration::from_secs(2);
/// `Configure` calls in flight to one router at a time while its new entries are installed:
/// enough to hide the round trips and the router's own work per entry (it connects to each
/// new destination), few enough not to flood it.
const PIPELINE: usize = 32;
/// Pushes to a router that fail in a row before the router is dropped: a router slow to answer
/// for a moment (a busy machine, a queueing link) keeps its place, so that two-tier placements
/// do not move back and forth with every late answer.
const PUSH_ATTEMPTS: u32 = 3;
/// Wait before the second push to a router that did not answer; doubled before each next one.
const PUSH_RETRY_WAIT: Duration = Duration::from_millis(500);

/// The controller: configuration, and the state behind one short lock.
pub(crate) struct Controller {
    installer: Installer,
    paths: Option<Paths>,
    epoch: u64,
    router_timeout: Duration,
    state: Mutex<State>,
    /// Wakes the planner: the state changed.
    dirty: Notify,
    /// Bumped when a plan is published, a router applied one, or a router is dropped.
    progress: watch::Sender<u64>,
    /// One lock per router endpoint: announcements of the same router run one at a time.
    announcing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    metrics: Option<ControllerMetrics>,
    /// How the controller connects to the routers (secured mode: TLS, its certificate).
    client: ClientSecurity,
    /// Period of the re-reading of each router's tables (see [`reconcile_router`]).
    audit_interval: Duration,
}

#[derive(Default)]
struct State {
    topology: Topology,
    congested: BTreeSet<String>,
    /// While in the resync grace: destinations removed since the start (see the module doc).
    removed: HashSet<String>,
    grace_over: bool,
    /// Bumped by every change of the above.
    generation: u64,
    /// The latest plan.
    snapshot: Arc<Snapshot>,
    /// By lambda endpoint: every announced router's reconciliation task.
    routers: BTreeMap<String, RouterSlot>,
    /// Identifies reconciliation tasks (a router announced again gets a new one).
    next_task: u64,
}

/// A plan, with what the routers' tasks need besides: which destinations they may remove, and
/// the congested links.
#[derive(Default)]
struct Snapshot {
    /// The state's generation this plan reflects.
    generation: u64,
    plan: Plan,
    /// None: any; else only these (the resync grace).
    removable: Option<HashSet<String>>,
    congested: BTreeSet<String>,
}

/// A router's reconciliation task, and what it reported of the router's tables.
struct RouterSlot {
    table_endpoint: String,
    task_id: u64,
    wake: Arc<Notify>,
    task: Option<JoinHandle<()>>,
    /// The generation of the latest plan the router holds.
    applied: u64,
    /// Entries of its table 0, as installed.
    entries: usize,
    /// Passes that pushed something to the router.
    passes: u64,
    marked: BTreeSet<String>,
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
    /// Counts the table changes the router accepted.
    installs: Option<Counter>,
}

/// A router that could not be reached.
struct Unreachable(String);

impl Controller {
    pub fn new(options: &ControllerOptions) -> Result<Self, TlsError> {
        Ok(Controller {
            client: options.security.client()?,
            audit_interval: options.audit_interval,
            installer: options.installer.clone(),
            paths: options.paths.clone(),
            epoch: rand::random(),
            router_timeout: options.router_timeout,
            state: Mutex::new(State {
                grace_over: options.resync_grace.is_zero(),
                ..State::default()
            }),
            dirty: Notify::new(),
            progress: watch::Sender::new(0),
            announcing: Mutex::new(HashMap::new()),
            metrics: options.metrics.clone(),
        })
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// What the MEC device application interface offers: the announced routers and the
    /// lambdas of the announced computers, with how many computers run each.
    pub fn offer(&self) -> super::mec::Offer {
        let state = self.state.lock();
        let mut lambdas = BTreeMap::new();
        for computer_lambdas in state.topology.computers.values() {
            for lambda in computer_lambdas {
                *lambdas.entry(lambda.clone()).or_insert(0) += 1;
            }
        }
        super::mec::Offer {
            routers: state.routers.keys().cloned().collect(),
            lambdas,
        }
    }

    /// Record a change: the planner plans again. Returns the change's generation.
    fn changed(&self, state: &mut State) -> u64 {
        self.observe(state);
        state.generation += 1;
        self.dirty.notify_one();
        state.generation
    }

    /// The gauges follow the state (called under its lock, after every change and every
    /// router's pass).
    fn observe(&self, state: &State) {
        if let Some(metrics) = &self.metrics {
            metrics.routers.set(count(state.routers.len()));
            metrics.computers.set(count(state.topology.computers.len()));
            metrics.congested_links.set(count(state.congested.len()));
            let marks = state.routers.values().map(|s| s.marked.len()).sum();
            metrics.marks.set(count(marks));
        }
    }

    /// Stop every reconciliation task (the controller stops).
    pub fn stop(&self) {
        let mut state = self.state.lock();
        for slot in state.routers.values_mut() {
            if let Some(task) = slot.task.take() {
                task.abort();
            }
        }
    }

    /// Plan the current topology; publish the plan and wake the routers' tasks.
    fn replan(&self) {
        let (topology, generation, removable, congested) = {
            let state = self.state.lock();
            if state.snapshot.generation == state.generation {
                return;
            }
            let removable: Option<HashSet<String>> = (!state.grace_over).then(|| {
                state
                    .topology
                    .computers
                    .keys()
                    .chain(state.topology.routers.keys())
                    .chain(state.removed.iter())
                    .cloned()
                    .collect()
            });
            (
                state.topology.clone(),
                state.generation,
                removable,
                state.congested.clone(),
            )
        };
        let plan = plan::plan(&self.installer, &topology);
        let mut state = self.state.lock();
        for change in plan::placement_changes(&state.snapshot.plan.placements, &plan.placements) {
            let computer = &change.computer;
            match (&change.before, &change.after) {
                (_, Placement::Fallback(reason)) => {
                    warn!(%computer, %reason, "two-tier cannot place the computer: installed final on every router, as flat (add it to --distances)")
                }
                (_, Placement::Waiting(reason)) => {
                    info!(%computer, %reason, "computer installed final on every router until its home router is announced")
                }
                (Some(Placement::Home(before)), Placement::Home(router)) => {
                    info!(%computer, home_router = %router, previous = %before, "computer moved to another home router")
                }
                (_, Placement::Home(router)) => {
                    info!(%computer, home_router = %router, "computer placed")
                }
                (_, Placement::Flat) => {}
            }
        }
        state.snapshot = Arc::new(Snapshot {
            generation,
            plan,
            removable,
            congested,
        });
        for slot in state.routers.values() {
            slot.wake.notify_one();
        }
        drop(state);
        self.progress.send_modify(|p| *p += 1);
    }

    /// Wait, at most `limit`, until `done` holds of the state; whether it does.
    async fn wait_for(&self, limit: Duration, done: impl Fn(&State) -> bool) -> bool {
        let mut progress = self.progress.subscribe();
        let wait = async {
            loop {
                if done(&self.state.lock()) {
                    return;
                }
                if progress.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Every router holds the plan of `generation` (or a later one).
    fn installed(state: &State, generation: u64) -> bool {
        state.snapshot.generation >= generation
            && state
                .routers
                .values()
                .all(|slot| slot.applied >= generation)
    }

    /// Drop `router` (its task `task_id` found it unreachable) and plan without it.
    fn drop_router(&self, router: &str, task_id: u64, error: &str) {
        let mut state = self.state.lock();
        if state
            .routers
            .get(router)
            .is_none_or(|s| s.task_id != task_id)
        {
            return;
        }
        warn!(%router, %error, "router unreachable: dropped; it gets its tables again when it announces again");
        state.routers.remove(router);
        state.topology.routers.remove(router);
        self.changed(&mut state);
        drop(state);
        self.progress.send_modify(|p| *p += 1);
    }

    async fn announce_router(self: &Arc<Self>, info: RouterInfo) -> Result<(), Status> {
        let router = checked_endpoint(&info.edge_server_endpoint, "RouterInfo.edgeServerEndpoint")?;
        let table_endpoint = checked_endpoint(
            &info.forwarding_table_endpoint,
            "RouterInfo.forwardingTableEndpoint",
        )?;
        let lock = Arc::clone(self.announcing.lock().entry(router.clone()).or_default());
        let _one_at_a_time = lock.lock().await;
        // Stop the router's current task first, so that nothing it sends lands after the read.
        let previous = self
            .state
            .lock()
            .routers
            .get_mut(&router)
            .and_then(|slot| slot.task.take());
        if let Some(task) = previous {
            task.abort();
            let _ = task.await;
        }
        let link = match RouterLink::connect(&table_endpoint, self.router_timeout, &self.client)
            .await
        {
            Ok(link) => RouterLink {
                installs: self.metrics.as_ref().map(|m| m.installs.clone()),
                ..link
            },
            Err(Unreachable(e)) => {
                let mut state = self.state.lock();
                if state.routers.remove(&router).is_some() {
                    state.topology.routers.remove(&router);
                    self.changed(&mut state);
                }
                return Err(Status::unavailable(format!(
                    "cannot read the tables of router {router} at {table_endpoint}: {e}; check RouterInfo.forwardingTableEndpoint"
                )));
            }
        };
        info!(%router, %table_endpoint, entries = link.installed.len(), marked = link.marked.len(), "router announced");
        if let Installer::TwoTier { distances, .. } = &self.installer
            && distances.lookup(&router).is_none()
        {
            warn!(%router, "router not in the distance matrix: it is never a home router; it forwards to the home routers (add it to --distances)");
        }
        let mut state = self.state.lock();
        state.next_task += 1;
        let task_id = state.next_task;
        let wake = Arc::new(Notify::new());
        let slot = RouterSlot {
            table_endpoint: table_endpoint.clone(),
            task_id,
            wake: Arc::clone(&wake),
            task: None,
            applied: 0,
            entries: link.installed.len(),
            passes: 0,
            marked: link.marked.clone(),
        };
        state.routers.insert(router.clone(), slot);
        state
            .topology
            .routers
            .insert(router.clone(), table_endpoint);
        self.changed(&mut state);
        let task = tokio::spawn(reconcile_router(
            Arc::clone(self),
            router.clone(),
            task_id,
            link,
            wake,
        ));
        if let Some(slot) = state.routers.get_mut(&router) {
            slot.task = Some(task);
        }
        Ok(())
    }

    fn announce_computer(&self, info: ComputerInfo) -> Result<(), Status> {
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
        let mut state = self.state.lock();
        let previous = state
            .topology
            .computers
            .insert(computer.clone(), lambdas.clone());
        state.removed.remove(&computer);
        match previous {
            Some(old) if old == lambdas => {
                debug!(%computer, "computer announced again, same lambdas");
                return Ok(());
            }
            Some(_) => {
                info!(%computer, lambdas = ?lambdas, "computer announced again with other lambdas: its entries replaced")
            }
            None => info!(%computer, lambdas = ?lambdas, "computer announced"),
        }
        self.changed(&mut state);
        Ok(())
    }

    /// A router's failure report (no containers) is answered at once; a computer's leave
    /// (its containers) once its entries are gone from the routers, or after [`LEAVE_WAIT`].
    async fn remove_computer(&self, info: ComputerInfo) -> Result<(), Status> {
        let endpoint = checked_endpoint(
            &info.edge_server_endpoint,
            "ComputerInfo.edgeServerEndpoint",
        )?;
        let generation = {
            let mut state = self.state.lock();
            if state.topology.routers.remove(&endpoint).is_some() {
                // A router reported another router (a two-tier home router) failed.
                if let Some(task) = state.routers.remove(&endpoint).and_then(|s| s.task) {
                    task.abort();
                }
                info!(router = %endpoint, "router reported failed: dropped; it gets its tables again when it announces again");
            } else if let Some(lambdas) = state.topology.computers.get_mut(&endpoint) {
                let gone: BTreeSet<String> =
                    info.containers.iter().map(|c| c.lambda.clone()).collect();
                if gone.is_empty() {
                    lambdas.clear();
                } else {
                    lambdas.retain(|l| !gone.contains(l));
                }
                if lambdas.is_empty() {
                    state.topology.computers.remove(&endpoint);
                    info!(computer = %endpoint, "computer removed from every router");
                } else {
                    info!(computer = %endpoint, removed = ?gone, "lambdas of the computer removed");
                }
            } else {
                debug!(%endpoint, "RemoveComputer of an unknown endpoint");
            }
            if !state.grace_over {
                state.removed.insert(endpoint);
            }
            self.changed(&mut state)
        };
        if !info.containers.is_empty() {
            self.wait_for(LEAVE_WAIT, |s| Self::installed(s, generation))
                .await;
        }
        Ok(())
    }

    /// Answered once the marks are on every router (or after [`REPORT_WAIT`]), so that the
    /// reply counts the marks in place.
    async fn report(&self, report: LinkReport) -> Result<LinkReportReply, Status> {
        let link = report.link.trim().to_owned();
        if link.is_empty() {
            return Err(Status::invalid_argument(
                "LinkReport.link is empty: give a link name of the controller's paths file",
            ));
        }
        if let Some(metrics) = &self.metrics {
            metrics.reports.inc();
        }
        let on_paths = self.paths.as_ref().is_some_and(|p| p.has_link(&link));
        let generation = {
            let mut state = self.state.lock();
            let changed = if report.congested {
                state.congested.insert(link.clone())
            } else {
                state.congested.remove(&link)
            };
            if changed {
                Some(self.changed(&mut state))
            } else {
                None
            }
        };
        if let Some(generation) = generation
            && !self
                .wait_for(REPORT_WAIT, |s| Self::installed(s, generation))
                .await
        {
            warn!(%link, "congestion report: the marks are not on every router yet; answering with those in place");
        }
        let state = self.state.lock();
        let marked_pairs: usize = state.routers.values().map(|s| s.marked.len()).sum();
        info!(%link, congested = report.congested, on_paths, marked_pairs, "congestion report");
        if !on_paths {
            warn!(%link, "the link is on no path of the paths file: nothing to mark");
        }
        Ok(LinkReportReply {
            on_paths,
            marked_pairs: u32::try_from(marked_pairs).unwrap_or(u32::MAX),
            congested_links: state.congested.iter().cloned().collect(),
        })
    }

    /// The state, with the placements of a plan of the current topology (the view waits, at
    /// most [`VIEW_WAIT`], for the planner to catch up; entries are those installed).
    async fn view(&self) -> ControllerView {
        let generation = self.state.lock().generation;
        self.wait_for(VIEW_WAIT, |s| s.snapshot.generation >= generation)
            .await;
        let state = self.state.lock();
        let routers = state
            .routers
            .iter()
            .map(|(router, slot)| RouterView {
                endpoint: router.clone(),
                table_endpoint: slot.table_endpoint.clone(),
                entries: u32::try_from(slot.entries).unwrap_or(u32::MAX),
                passes: slot.passes,
            })
            .collect();
        let computers = state
            .topology
            .computers
            .iter()
            .map(|(computer, lambdas)| {
                let placement = state.snapshot.plan.placements.get(computer);
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
            for (router, slot) in &state.routers {
                for destination in &slot.marked {
                    let links = paths
                        .links(router, destination)
                        .unwrap_or_default()
                        .iter()
                        .filter(|l| state.congested.contains(*l))
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
            congested_links: state.congested.iter().cloned().collect(),
            marks,
        }
    }
}

/// The planner: plans once per burst of changes (changes during a plan wake it again).
pub(crate) async fn planner(controller: Arc<Controller>) {
    loop {
        controller.dirty.notified().await;
        controller.replan();
    }
}

/// One router's reconciliation: whenever woken, push the difference between the latest plan
/// and what the router holds (marks first, then changes, then removals, then unmarks).
async fn reconcile_router(
    controller: Arc<Controller>,
    router: String,
    task_id: u64,
    mut link: RouterLink,
    wake: Arc<Notify>,
) {
    let mut failed: u32 = 0;
    let mut audited = false;
    loop {
        let snapshot = Arc::clone(&controller.state.lock().snapshot);
        // A router the plan does not know yet waits for the plan that includes it.
        if let Some(wanted) = snapshot.plan.tables.get(&router) {
            let marks = match &controller.paths {
                Some(paths) => plan::marks(paths, &router, wanted, &snapshot.congested),
                None => BTreeMap::new(),
            };
            let may_remove = |d: &str| {
                snapshot
                    .removable
                    .as_ref()
                    .is_none_or(|known| known.contains(d))
            };
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
            let pushed = !(ops.is_empty() && mark.is_empty() && unmark.is_empty());
            if pushed && audited {
                warn!(%router, ops = ops.len(), mark = mark.len(), unmark = unmark.len(), "the router's tables were changed by someone else: restoring the controller's");
            }
            audited = false;
            if pushed {
                debug!(%router, ops = ops.len(), mark = mark.len(), unmark = unmark.len(), generation = snapshot.generation, "reconciling");
                let timeout = controller.router_timeout;
                if let Err(Unreachable(error)) = link.push(ops, mark, unmark, timeout).await {
                    failed += 1;
                    if failed >= PUSH_ATTEMPTS {
                        controller.drop_router(&router, task_id, &error);
                        return;
                    }
                    let wait = PUSH_RETRY_WAIT * 2u32.pow(failed - 1);
                    warn!(%router, %error, attempt = failed, of = PUSH_ATTEMPTS, "router did not answer: trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                failed = 0;
            }
            {
                let mut state = controller.state.lock();
                if let Some(slot) = state.routers.get_mut(&router)
                    && slot.task_id == task_id
                {
                    slot.applied = snapshot.generation;
                    slot.passes += u64::from(pushed);
                    slot.entries = link.installed.len();
                    slot.marked.clone_from(&link.marked);
                    controller.observe(&state);
                }
            }
            controller.progress.send_modify(|p| *p += 1);
        }
        // Woken by a new plan, or at the audit: the router's tables are read again, so that
        // entries someone else installed there are removed, and entries someone else removed
        // come back (a managed router's tables are the controller's).
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(controller.audit_interval) => {
                match link.read(controller.router_timeout).await {
                    Ok(()) => audited = true,
                    Err(Unreachable(error)) => {
                        debug!(%router, %error, "cannot read the router's tables for the audit: next time")
                    }
                }
            }
        }
    }
}

/// After the resync grace, remove what nobody announced again.
pub(crate) async fn end_grace(controller: Arc<Controller>, grace: Duration) {
    if grace.is_zero() {
        return;
    }
    tokio::time::sleep(grace).await;
    let mut state = controller.state.lock();
    state.grace_over = true;
    state.removed.clear();
    info!("resync grace over: entries of destinations nobody announced are removed");
    controller.changed(&mut state);
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

/// One `Configure` call; a transport failure or a timeout means the router is unreachable.
async fn configure(
    client: &mut EdgeRouterClient<Channel>,
    conf: EdgeRouterConf,
    timeout: Duration,
) -> Result<String, Unreachable> {
    match timed(timeout, client.configure(conf)).await {
        Ok(reply) => Ok(reply.msg),
        Err(status) if unreachable(&status) => Err(Unreachable(status.message().to_owned())),
        Err(status) => Ok(format!("Error: {}", status.message())),
    }
}

impl RouterLink {
    /// Connect to a router's table service and read what it holds.
    async fn connect(
        table_endpoint: &str,
        timeout: Duration,
        client: &ClientSecurity,
    ) -> Result<Self, Unreachable> {
        let channel = client
            .endpoint(table_endpoint, timeout)
            .map_err(Unreachable)?
            .connect_lazy();
        let mut link = RouterLink {
            table_endpoint: table_endpoint.to_owned(),
            table: EdgeRouterClient::new(channel.clone()),
            marks: MarksClient::new(channel),
            installed: Table::new(),
            marked: BTreeSet::new(),
            marks_supported: true,
            installs: None,
        };
        link.read(timeout).await?;
        Ok(link)
    }

    /// Read what the router holds: table 0 and the marks.
    async fn read(&mut self, timeout: Duration) -> Result<(), Unreachable> {
        let entries = timed(timeout, self.table.get_table(TableId { value: 0 }))
            .await
            .map_err(|s| Unreachable(s.message().to_owned()))?
            .entries;
        self.installed = entries
            .into_iter()
            .map(|e| ((e.lambda, e.destination), e.r#final))
            .collect();
        if !self.marks_supported {
            return Ok(());
        }
        match timed(timeout, self.marks.list(Empty {})).await {
            Ok(list) => self.marked = list.destinations.into_iter().collect(),
            Err(status) if status.code() == Code::Unimplemented => {
                warn!(router_table = %self.table_endpoint, "router without congestion marks (lambdaroute.rpc.Marks): congestion steering skips it");
                self.marks_supported = false;
            }
            Err(status) => return Err(Unreachable(status.message().to_owned())),
        }
        Ok(())
    }

    async fn configure(
        &mut self,
        conf: EdgeRouterConf,
        timeout: Duration,
    ) -> Result<String, Unreachable> {
        configure(&mut self.table, conf, timeout).await
    }

    /// Apply `ops` and the mark changes: marks first (so that a new entry towards a congested
    /// destination is never picked), then changes, then removals, then unmarks. Changes are
    /// independent of one another: up to [`PIPELINE`] are in flight at once.
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
        let mut changes = Vec::new();
        for op in ops {
            match op {
                Op::Change {
                    lambda,
                    destination,
                    is_final,
                } => changes.push(EdgeRouterConf {
                    action: Action::Change.into(),
                    lambda,
                    destination,
                    weight: INITIAL_WEIGHT,
                    r#final: is_final,
                }),
                Op::Remove {
                    lambda,
                    destination,
                } => removing.entry(destination).or_default().push(lambda),
            }
        }
        let client = self.table.clone();
        let mut replies = stream::iter(changes)
            .map(|conf| {
                let mut client = client.clone();
                async move {
                    let reply = configure(&mut client, conf.clone(), timeout).await;
                    (conf, reply)
                }
            })
            .buffer_unordered(PIPELINE);
        while let Some((conf, reply)) = replies.next().await {
            // The first unreachable answer ends the push (the calls still in flight are dropped).
            let msg = reply?;
            let EdgeRouterConf {
                lambda,
                destination,
                r#final,
                ..
            } = conf;
            if msg.starts_with("Error") {
                warn!(router_table = %self.table_endpoint, %lambda, %destination, %msg, "the router refused an entry");
            } else {
                self.installed.insert((lambda, destination), r#final);
                self.count_installs(1);
            }
        }
        drop(replies);
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
                    self.count_installs(lambdas.len());
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
                    self.count_installs(1);
                }
            }
        }
        for destination in unmark {
            self.set_mark(destination, false, timeout).await?;
        }
        Ok(())
    }

    /// `n` table changes accepted by the router.
    fn count_installs(&self, n: usize) {
        if let Some(installs) = &self.installs {
            installs.inc_by(n as u64);
        }
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
        if let Some(peer) = tls::peer(&request) {
            peer.may_speak_for(
                &request.get_ref().edge_server_endpoint,
                "ComputerInfo.edgeServerEndpoint",
            )?;
        }
        self.0.announce_computer(request.into_inner())?;
        Ok(Response::new(Void {}))
    }

    async fn announce_router(
        &self,
        request: Request<RouterInfo>,
    ) -> Result<Response<Void>, Status> {
        // In a task of its own: a caller that gives up must not leave the router half
        // announced (its old reconciliation stopped, no new one).
        if let Some(peer) = tls::peer(&request) {
            let info = request.get_ref();
            peer.may_speak_for(&info.edge_server_endpoint, "RouterInfo.edgeServerEndpoint")?;
            peer.may_speak_for(
                &info.forwarding_table_endpoint,
                "RouterInfo.forwardingTableEndpoint",
            )?;
        }
        let controller = Arc::clone(&self.0);
        let info = request.into_inner();
        tokio::spawn(async move { controller.announce_router(info).await })
            .await
            .map_err(|e| Status::internal(format!("router announcement failed: {e}")))??;
        Ok(Response::new(Void {}))
    }

    async fn remove_computer(
        &self,
        request: Request<ComputerInfo>,
    ) -> Result<Response<Void>, Status> {
        // A router reports any destination failed (no containers); a computer removes only
        // itself.
        if let Some(peer) = tls::peer(&request) {
            let info = request.get_ref();
            if !(peer.has(tls::Role::Router) && info.containers.is_empty()) {
                peer.may_speak_for(
                    &info.edge_server_endpoint,
                    "ComputerInfo.edgeServerEndpoint",
                )?;
            }
        }
        self.0.remove_computer(request.into_inner()).await?;
        Ok(Response::new(Void {}))
    }
}

#[tonic::async_trait]
impl Presence for Service {
    async fn check(&self, request: Request<Member>) -> Result<Response<PresenceReply>, Status> {
        let member = request.into_inner();
        let known = knows(&self.0.state.lock(), &member)?;
        Ok(Response::new(PresenceReply {
            known,
            epoch: self.0.epoch,
        }))
    }

    async fn check_all(
        &self,
        request: Request<Members>,
    ) -> Result<Response<PresenceReplies>, Status> {
        let members = request.into_inner().members;
        if members.len() > MAX_CHECKED_MEMBERS {
            return Err(Status::invalid_argument(format!(
                "{} members in one check: at most {MAX_CHECKED_MEMBERS}; split them",
                members.len()
            )));
        }
        let state = self.0.state.lock();
        let known = members
            .iter()
            .map(|m| knows(&state, m))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(PresenceReplies {
            known,
            epoch: self.0.epoch,
        }))
    }
}

/// Most members in one `Presence.CheckAll`.
const MAX_CHECKED_MEMBERS: usize = 4096;

fn knows(state: &State, member: &Member) -> Result<bool, Status> {
    match Role::try_from(member.role) {
        Ok(Role::Router) => Ok(state.topology.routers.contains_key(&member.endpoint)),
        Ok(Role::Computer) => Ok(state.topology.computers.contains_key(&member.endpoint)),
        Err(_) => Err(Status::invalid_argument(format!(
            "Member.role {} is unknown: expected ROUTER (0) or COMPUTER (1)",
            member.role
        ))),
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
