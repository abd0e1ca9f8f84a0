//! How routers and computers stay known to the controller.
//!
//! An [`Announcer`] runs beside a router or a computer started with `--controller`:
//!
//! - it announces the member at start (`uiiit.rpc.EdgeController.AnnounceRouter` /
//!   `AnnounceComputer`) and waits for the answer, which means "known", not "installed": the
//!   controller installs the tables in the background;
//! - then, every `interval` (1 s by default), it asks the controller whether it still knows the
//!   member (`lambdaroute.rpc.Presence.Check`: one small unary call on a kept-open HTTP/2
//!   connection). A controller that restarted, or that dropped the member (a router it could not
//!   reach, a computer another router reported failed), answers "unknown", and the member
//!   announces itself again. A controller that does not implement `Presence` (serverlessonedge's)
//!   is announced to once each time it becomes reachable;
//! - for a router, it delivers the destinations that failed a call
//!   (`EdgeController.RemoveComputer` with the failed endpoint and no containers) as soon as they
//!   fail, retrying at every tick for up to [`FAILURE_REPORT_TTL`] while the controller is away;
//! - [`Announcer::leave`] tells the controller that a computer goes (`RemoveComputer` with its
//!   containers): the computer calls it on SIGINT/SIGTERM.
//!
//! A process that serves several computers (`lambdaroute computer --endpoints N`) runs one
//! announcer for all of them ([`Announcer::spawn_all`]): one connection, and one
//! `Presence.CheckAll` per tick for every endpoint, each unknown one announced again. A
//! controller without `CheckAll` gets each endpoint announced once per reachability.
//!
//! While the controller is away nothing else changes: routers keep dispatching with the tables
//! they have.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use lambdaroute_core::computer_model::ComputerConfig;
use lambdaroute_proto::lambdaroute::member::Role;
use lambdaroute_proto::lambdaroute::presence_client::PresenceClient;
use lambdaroute_proto::lambdaroute::{
    Member as MemberMsg, Members, PresenceReplies, PresenceReply,
};
use lambdaroute_proto::uiiit::edge_controller_client::EdgeControllerClient;
use lambdaroute_proto::uiiit::{ComputerInfo, Container, RouterInfo};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tracing::{debug, info, warn};

use crate::tls::ClientSecurity;

/// Default period of the presence check.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Time limit of a presence check or a failure report.
pub const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(2);
/// Announcements in flight at once when a process announces several endpoints.
const ANNOUNCE_CONCURRENCY: usize = 16;
/// Time limit of an announcement. The controller answers once it has taken the member in (a
/// router's once it has read the router's tables, within its 2 s limit per call to a router)
/// and installs the entries in the background, so the answer does not grow with the tables.
pub const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);
/// A failure report not delivered within this time is dropped (the destination may be back).
pub const FAILURE_REPORT_TTL: Duration = Duration::from_secs(10);

/// What announces itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Member {
    /// A router, announced with `AnnounceRouter`.
    Router {
        /// Lambda endpoint (clients and other routers call here).
        endpoint: String,
        /// Table endpoint (the controller installs entries here).
        table_endpoint: String,
    },
    /// A computer, announced with `AnnounceComputer`.
    Computer {
        /// Lambda endpoint (routers send calls here).
        endpoint: String,
        /// The containers it runs, i.e. its lambdas, as announced.
        containers: Vec<Container>,
    },
}

impl Member {
    /// A computer at `endpoint` running the containers of `config`.
    pub fn computer(endpoint: impl Into<String>, config: &ComputerConfig) -> Self {
        Member::Computer {
            endpoint: endpoint.into(),
            containers: config
                .containers
                .iter()
                .map(|c| Container {
                    name: c.name.clone(),
                    processor: c.processor.clone(),
                    lambda: c.lambda.clone(),
                    num_workers: c.num_workers,
                })
                .collect(),
        }
    }

    /// The member's lambda endpoint, by which the controller knows it.
    pub fn endpoint(&self) -> &str {
        match self {
            Member::Router { endpoint, .. } | Member::Computer { endpoint, .. } => endpoint,
        }
    }

    fn message(&self) -> MemberMsg {
        MemberMsg {
            role: self.role().into(),
            endpoint: self.endpoint().to_owned(),
        }
    }

    fn role(&self) -> Role {
        match self {
            Member::Router { .. } => Role::Router,
            Member::Computer { .. } => Role::Computer,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Member::Router { .. } => "router",
            Member::Computer { .. } => "computer",
        }
    }
}

/// Where a router's dispatcher reports destinations that failed a call; cheap to clone, and a
/// no-op without a controller.
#[derive(Clone, Debug, Default)]
pub struct FailureReports(Option<mpsc::UnboundedSender<String>>);

impl FailureReports {
    /// A sender and the receiver to hand to [`Announcer::spawn`].
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (FailureReports(Some(tx)), rx)
    }

    /// Report that `destination` failed and was removed from the tables.
    pub fn report(&self, destination: &str) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(destination.to_owned());
        }
    }
}

/// The calls a member makes to the controller.
#[derive(Clone)]
struct ControllerLink {
    address: String,
    controller: EdgeControllerClient<Channel>,
    presence: PresenceClient<Channel>,
}

impl ControllerLink {
    fn new(address: &str, security: &ClientSecurity) -> Result<Self, String> {
        let channel = security
            .endpoint(address, CONTROLLER_TIMEOUT)?
            .connect_lazy();
        Ok(ControllerLink {
            address: address.to_owned(),
            controller: EdgeControllerClient::new(channel.clone()),
            presence: PresenceClient::new(channel),
        })
    }

    async fn check(&mut self, member: &Member) -> Result<PresenceReply, Status> {
        timed(CONTROLLER_TIMEOUT, self.presence.check(member.message())).await
    }

    async fn check_all(&mut self, members: &[Member]) -> Result<PresenceReplies, Status> {
        let request = Members {
            members: members.iter().map(Member::message).collect(),
        };
        timed(CONTROLLER_TIMEOUT, self.presence.check_all(request)).await
    }

    async fn announce(&mut self, member: &Member) -> Result<(), Status> {
        match member {
            Member::Router {
                endpoint,
                table_endpoint,
            } => {
                let info = RouterInfo {
                    edge_server_endpoint: endpoint.clone(),
                    forwarding_table_endpoint: table_endpoint.clone(),
                };
                timed(ANNOUNCE_TIMEOUT, self.controller.announce_router(info)).await?;
            }
            Member::Computer {
                endpoint,
                containers,
            } => {
                let info = ComputerInfo {
                    edge_server_endpoint: endpoint.clone(),
                    containers: containers.clone(),
                };
                timed(ANNOUNCE_TIMEOUT, self.controller.announce_computer(info)).await?;
            }
        }
        Ok(())
    }

    async fn remove_computer(
        &mut self,
        endpoint: &str,
        containers: Vec<Container>,
    ) -> Result<(), Status> {
        let info = ComputerInfo {
            edge_server_endpoint: endpoint.to_owned(),
            containers,
        };
        timed(CONTROLLER_TIMEOUT, self.controller.remove_computer(info)).await?;
        Ok(())
    }
}

async fn timed<T>(
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer within {} s",
            timeout.as_secs()
        ))),
    }
}

/// Keeps members announced to the controller (see the module documentation).
pub struct Announcer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    link: ControllerLink,
    members: Vec<Member>,
}

impl Announcer {
    /// Start announcing `member` to the controller at `controller` (`host:port`), checking
    /// every `interval`; a router passes the receiver of its [`FailureReports`].
    pub fn spawn(
        controller: &str,
        member: Member,
        interval: Duration,
        failures: Option<mpsc::UnboundedReceiver<String>>,
    ) -> Result<Self, String> {
        Self::spawn_with(
            controller,
            member,
            interval,
            failures,
            &ClientSecurity::plain(),
        )
    }

    /// As [`Announcer::spawn`], connecting to the controller as `security` says (secured
    /// mode: TLS with the member's certificate, whose addresses must include the member's).
    pub fn spawn_with(
        controller: &str,
        member: Member,
        interval: Duration,
        failures: Option<mpsc::UnboundedReceiver<String>>,
        security: &ClientSecurity,
    ) -> Result<Self, String> {
        let link =
            ControllerLink::new(controller, security).map_err(|e| format!("--controller: {e}"))?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(
            link.clone(),
            member.clone(),
            interval.max(Duration::from_millis(10)),
            failures,
            stop_rx,
        ));
        Ok(Announcer {
            stop,
            task,
            link,
            members: vec![member],
        })
    }

    /// Start announcing every one of `members` (the endpoints of one process) over one
    /// connection, checking them all with one `Presence.CheckAll` every `interval`.
    pub fn spawn_all(
        controller: &str,
        members: Vec<Member>,
        interval: Duration,
        security: &ClientSecurity,
    ) -> Result<Self, String> {
        if members.len() == 1 {
            let member = members.into_iter().next().expect("one member");
            return Self::spawn_with(controller, member, interval, None, security);
        }
        let link =
            ControllerLink::new(controller, security).map_err(|e| format!("--controller: {e}"))?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run_group(
            link.clone(),
            members.clone(),
            interval.max(Duration::from_millis(10)),
            stop_rx,
        ));
        Ok(Announcer {
            stop,
            task,
            link,
            members,
        })
    }

    /// Stop checking and announcing.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Stop, and tell the controller that the computers go (RemoveComputer with their
    /// containers), so that no router sends them another call. A router just stops.
    pub async fn leave(self) {
        let (link, members) = (self.link.clone(), self.members.clone());
        let _ = self.stop.send(true);
        let _ = self.task.await;
        stream::iter(members)
            .for_each_concurrent(ANNOUNCE_CONCURRENCY, |member| {
                let mut link = link.clone();
                async move {
                    let Member::Computer {
                        endpoint,
                        containers,
                    } = member
                    else {
                        return;
                    };
                    match link.remove_computer(&endpoint, containers).await {
                        Ok(()) => {
                            info!(controller = %link.address, %endpoint, "told the controller that this computer leaves")
                        }
                        Err(status) => {
                            warn!(controller = %link.address, %endpoint, error = %status.message(), "could not tell the controller that this computer leaves; routers drop it at its first failed call")
                        }
                    }
                }
            })
            .await;
    }
}

/// Announces `members[i]` for each `i` in `which`, a few at a time; marks those the controller
/// took in. Returns the first error, if any, and how many failed.
async fn announce_some(
    link: &ControllerLink,
    members: &[Member],
    which: Vec<usize>,
    announced: &mut [bool],
) -> Option<(Status, usize)> {
    let results: Vec<(usize, Result<(), Status>)> = stream::iter(which)
        .map(|i| {
            let mut link = link.clone();
            let member = &members[i];
            async move { (i, link.announce(member).await) }
        })
        .buffer_unordered(ANNOUNCE_CONCURRENCY)
        .collect()
        .await;
    let mut failed: Option<(Status, usize)> = None;
    let mut done = 0;
    for (i, result) in results {
        match result {
            Ok(()) => {
                announced[i] = true;
                done += 1;
            }
            Err(status) => {
                announced[i] = false;
                failed.get_or_insert((status, 0)).1 += 1;
            }
        }
    }
    if done > 0 {
        info!(controller = %link.address, announced = done, of = members.len(), "announced computers to the controller");
    }
    failed
}

async fn run_group(
    mut link: ControllerLink,
    members: Vec<Member>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut announced = vec![false; members.len()];
    let mut reachable = true;
    let all: Vec<usize> = (0..members.len()).collect();
    if let Some((status, n)) = announce_some(&link, &members, all, &mut announced).await {
        warn!(controller = %link.address, error = %status.message(), failed = n, "cannot announce some computers to the controller; trying again");
    }
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let retry: Vec<usize> = match link.check_all(&members).await {
                    Ok(reply) => {
                        if !reachable {
                            info!(controller = %link.address, epoch = reply.epoch, "controller reachable again");
                        }
                        reachable = true;
                        // A member missing from the answer counts as unknown.
                        (0..members.len())
                            .filter(|&i| !reply.known.get(i).copied().unwrap_or(false))
                            .collect()
                    }
                    Err(status) if status.code() == Code::Unimplemented => {
                        // A controller without CheckAll: announce once per reachability.
                        reachable = true;
                        (0..members.len()).filter(|&i| !announced[i]).collect()
                    }
                    Err(status) => {
                        if reachable {
                            warn!(controller = %link.address, error = %status.message(), "controller unreachable; carrying on, announcing again when it is back");
                        }
                        reachable = false;
                        announced.fill(false);
                        Vec::new()
                    }
                };
                if !retry.is_empty() {
                    debug!(controller = %link.address, unknown = retry.len(), "the controller does not know some computers: announcing");
                    if let Some((status, n)) = announce_some(&link, &members, retry, &mut announced).await {
                        warn!(controller = %link.address, error = %status.message(), failed = n, "cannot announce some computers to the controller; trying again");
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Whether the member is known to the controller, as far as the announcer can tell.
struct Standing {
    /// The controller answered the last call.
    reachable: bool,
    /// The controller accepted an announcement since it last became reachable.
    announced: bool,
}

async fn run(
    mut link: ControllerLink,
    member: Member,
    interval: Duration,
    mut failures: Option<mpsc::UnboundedReceiver<String>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut standing = Standing {
        reachable: true,
        announced: false,
    };
    let mut pending: BTreeMap<String, Instant> = BTreeMap::new();
    // Announce at start whatever the controller says: a member that restarted on the same
    // endpoint may still be known, with state (tables) it lost.
    announce(&mut link, &member, &mut standing).await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                keep_announced(&mut link, &member, &mut standing).await;
                report_failures(&mut link, &mut pending).await;
            }
            Some(destination) = recv(&mut failures) => {
                pending.entry(destination).or_insert_with(Instant::now);
                if let Some(rx) = failures.as_mut() {
                    while let Ok(more) = rx.try_recv() {
                        pending.entry(more).or_insert_with(Instant::now);
                    }
                }
                report_failures(&mut link, &mut pending).await;
            }
            _ = stop.changed() => return,
        }
    }
}

async fn recv(failures: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match failures {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn keep_announced(link: &mut ControllerLink, member: &Member, standing: &mut Standing) {
    match link.check(member).await {
        Ok(reply) => {
            if !standing.reachable {
                info!(controller = %link.address, epoch = reply.epoch, "controller reachable again");
            }
            standing.reachable = true;
            if reply.known {
                standing.announced = true;
                return;
            }
            debug!(controller = %link.address, "the controller does not know this {}: announcing", member.kind());
        }
        Err(status) if status.code() == Code::Unimplemented => {
            // A controller without presence checks: announce once per reachability.
            standing.reachable = true;
            if standing.announced {
                return;
            }
        }
        Err(status) => {
            if standing.reachable {
                warn!(controller = %link.address, error = %status.message(), "controller unreachable; carrying on with the current state, announcing again when it is back");
            }
            standing.reachable = false;
            standing.announced = false;
            return;
        }
    }
    announce(link, member, standing).await;
}

async fn announce(link: &mut ControllerLink, member: &Member, standing: &mut Standing) {
    match link.announce(member).await {
        Ok(()) => {
            standing.reachable = true;
            standing.announced = true;
            info!(controller = %link.address, endpoint = %member.endpoint(), "announced this {} to the controller", member.kind());
        }
        Err(status) => {
            standing.announced = false;
            if standing.reachable {
                warn!(controller = %link.address, error = %status.message(), "cannot announce this {} to the controller; trying again", member.kind());
            }
            standing.reachable = !matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Unknown
            );
        }
    }
}

async fn report_failures(link: &mut ControllerLink, pending: &mut BTreeMap<String, Instant>) {
    pending.retain(|destination, since| {
        let fresh = since.elapsed() < FAILURE_REPORT_TTL;
        if !fresh {
            warn!(%destination, "failure report not delivered to the controller in time: dropped");
        }
        fresh
    });
    let destinations: Vec<String> = pending.keys().cloned().collect();
    for destination in destinations {
        match link.remove_computer(&destination, Vec::new()).await {
            Ok(()) => {
                info!(%destination, "reported the failed destination to the controller");
                pending.remove(&destination);
            }
            Err(status) => {
                debug!(%destination, error = %status.message(), "failure report not delivered; retrying");
                return;
            }
        }
    }
}
