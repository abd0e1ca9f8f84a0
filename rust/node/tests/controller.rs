//! The control plane on loopback, in-process: a controller, routers and computers that announce
//! themselves, the failure path, congestion steering, a controller that dies and returns,
//! two-tier placement as routers arrive and leave, and a thousand announcements at once.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use lambdaroute_core::controller::{Distances, Installer, NodeKey, Objective, Paths};
use lambdaroute_core::policy::PolicyKind;
use lambdaroute_node::client::{self, ClientOptions, Pattern, Report};
use lambdaroute_node::computer::{self, ComputerHandle, ComputerOptions};
use lambdaroute_node::controller::view::CongestionClientConn;
use lambdaroute_node::controller::{self, ControllerHandle, ControllerOptions};
use lambdaroute_node::membership::{Announcer, Member};
use lambdaroute_node::router::{self, RouterHandle, RouterOptions};
use lambdaroute_node::table_tool::TableClient;
use lambdaroute_proto::lambdaroute::ControllerView;
use lambdaroute_proto::uiiit::edge_controller_client::EdgeControllerClient;
use lambdaroute_proto::uiiit::edge_server_client::EdgeServerClient;
use lambdaroute_proto::uiiit::{ComputerInfo, Container, Entry, LambdaRequest, RouterInfo};
use tokio::sync::RwLock;
use tonic::transport::Channel;

const CHECK: Duration = Duration::from_millis(100);

/// The tests that install thousands of entries load both cores for seconds; the others measure
/// latencies (calls steered by 1/latency, removals within a second). They do not overlap: each
/// test holds this lock, shared, or alone for the heavy ones.
static LOAD: RwLock<()> = RwLock::const_new(());

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A loopback address with a port that was free a moment ago (for a controller that must be
/// named before it starts, or restarted on the same address).
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Poll `condition` until it holds; fail with `what` after `deadline`.
async fn eventually<F, Fut>(deadline: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if condition().await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "not within {deadline:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn computer_config(
    lambdas: &[&str],
    service_ms: f64,
) -> lambdaroute_core::computer_model::ComputerConfig {
    let mut yaml = String::from(
        "processors:\n  - { name: cpu, type: cpu, speed: 1.0e9, cores: 4, memory: 1073741824 }\ncontainers:\n",
    );
    for l in lambdas {
        yaml.push_str(&format!(
            "  - {{ name: c{l}, processor: cpu, lambda: {l}, num_workers: 4 }}\n"
        ));
    }
    yaml.push_str("lambdas:\n");
    for l in lambdas {
        yaml.push_str(&format!(
            "  - {{ name: {l}, op_offset: {}, op_coeff: 0 }}\n",
            service_ms * 1e6
        ));
    }
    computer::parse_config(Path::new("test.yaml"), &yaml).unwrap()
}

/// A computer running `lambdas` (each `service_ms` long) at `listen`, announced to `controller`.
struct Computer {
    handle: ComputerHandle,
    announcer: Announcer,
}

impl Computer {
    async fn start(
        listen: SocketAddr,
        controller: SocketAddr,
        lambdas: &[&str],
        service_ms: f64,
    ) -> Computer {
        let config = computer_config(lambdas, service_ms);
        let handle = computer::spawn(ComputerOptions::new(listen, config.clone()))
            .await
            .unwrap();
        let announcer = Announcer::spawn(
            &controller.to_string(),
            Member::computer(handle.endpoint(), &config),
            CHECK,
            None,
        )
        .unwrap();
        Computer { handle, announcer }
    }

    fn endpoint(&self) -> String {
        self.handle.endpoint().to_owned()
    }

    /// Crash: stop serving without telling the controller.
    async fn crash(self) {
        self.announcer.stop().await;
        self.handle.shutdown().await.unwrap();
    }
}

async fn start_router(controller: SocketAddr) -> RouterHandle {
    start_router_at(loopback(), loopback(), controller).await
}

async fn start_router_at(
    listen: SocketAddr,
    table_listen: SocketAddr,
    controller: SocketAddr,
) -> RouterHandle {
    router::spawn(RouterOptions {
        listen,
        table_listen,
        policy: PolicyKind::RandomProportional,
        controller: Some(controller.to_string()),
        check_interval: CHECK,
        ..RouterOptions::default()
    })
    .await
    .unwrap()
}

async fn start_controller(
    listen: SocketAddr,
    installer: Installer,
    paths: Option<Paths>,
) -> ControllerHandle {
    controller::spawn(ControllerOptions {
        paths,
        resync_grace: Duration::from_millis(500),
        ..ControllerOptions::new(listen, installer)
    })
    .await
    .unwrap()
}

async fn entries(router: &RouterHandle, table: u32) -> Vec<Entry> {
    match TableClient::connect(&router.table_listen.to_string()).await {
        Ok(mut client) => client.table(table).await.unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Destinations per lambda in `router`'s table `table`, with their final flag.
async fn destinations(router: &RouterHandle, table: u32) -> BTreeMap<String, Vec<(String, bool)>> {
    let mut out: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for e in entries(router, table).await {
        out.entry(e.lambda)
            .or_default()
            .push((e.destination, e.r#final));
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

async fn lists(router: &RouterHandle, destination: &str) -> bool {
    entries(router, 0)
        .await
        .iter()
        .any(|e| e.destination == destination)
}

async fn view(controller: SocketAddr) -> ControllerView {
    CongestionClientConn::connect(&controller.to_string())
        .await
        .unwrap()
        .view()
        .await
        .unwrap()
}

fn assert_all_ok(report: &Report) {
    let failed: Vec<_> = report.calls.iter().filter(|c| !c.ok()).collect();
    assert!(
        failed.is_empty(),
        "{} failed calls of {}, e.g. {:?}",
        failed.len(),
        report.calls.len(),
        failed.first()
    );
}

fn closed_loop(
    router: &RouterHandle,
    duration: Duration,
) -> tokio::task::JoinHandle<anyhow::Result<Report>> {
    tokio::spawn(client::run(ClientOptions {
        pattern: Pattern::ClosedLoop { threads: 2 },
        duration: Some(duration),
        timeout: Duration::from_secs(5),
        ..ClientOptions::new(router.listen.to_string(), "f")
    }))
}

/// `n` sequential calls of `f` at `router`; responders and hops of each.
async fn calls(router: &RouterHandle, n: usize) -> Vec<(String, u32)> {
    let mut client = EdgeServerClient::connect(format!("http://{}", router.listen))
        .await
        .unwrap();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let response = client
            .run_lambda(LambdaRequest {
                name: "f".into(),
                input: "x".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.retcode, "OK", "{response:?}");
        out.push((response.responder, response.hops));
    }
    out
}

fn count(calls: &[(String, u32)], responder: &str) -> usize {
    calls.iter().filter(|(r, _)| r == responder).count()
}

/// The two-tier installer over routers `r1`, `r2` and computer `c` with r1 - c one hop,
/// r2 - c three, r1 - r2 two: r1 is c's home router (for both objectives); r2 when alone.
fn two_tier_home_r1(r1: SocketAddr, r2: SocketAddr, c: SocketAddr) -> Installer {
    let key = |a: SocketAddr| NodeKey::Endpoint(a.to_string());
    let distances = Distances::new(
        vec![key(r1), key(r2), key(c)],
        vec![
            vec![Some(0), Some(2), Some(1)],
            vec![Some(2), Some(0), Some(3)],
            vec![Some(1), Some(3), Some(0)],
        ],
    )
    .unwrap();
    Installer::TwoTier {
        distances,
        objective: Objective::MinMax,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_gives_every_router_a_final_entry_per_computer_and_lambda() {
    let _shared = LOAD.read().await;
    let address = free_address();
    let ctl = start_controller(address, Installer::Flat, None).await;
    let routers = [start_router(address).await, start_router(address).await];
    let mut computers = Vec::new();
    for _ in 0..3 {
        computers.push(Computer::start(loopback(), address, &["f", "g"], 2.0).await);
    }
    let mut expected: Vec<(String, bool)> =
        computers.iter().map(|c| (c.endpoint(), true)).collect();
    expected.sort();
    for router in &routers {
        eventually(
            Duration::from_secs(5),
            "3 final entries per lambda",
            || async {
                let t = destinations(router, 0).await;
                t.len() == 2 && t.values().all(|d| *d == expected)
            },
        )
        .await;
        // Final entries are in the final table too.
        let t = destinations(router, 1).await;
        assert_eq!(t["f"], expected);
        assert_eq!(t["g"], expected);
    }
    // A router that joins later gets every entry.
    let late = start_router(address).await;
    eventually(
        Duration::from_secs(5),
        "the late router has every entry",
        || async {
            let t = destinations(&late, 0).await;
            t.len() == 2 && t.values().all(|d| *d == expected)
        },
    )
    .await;
    ctl.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tier_call_at_a_non_home_router_executes_after_two_router_hops() {
    let _shared = LOAD.read().await;
    let address = free_address();
    let computer_address = free_address();
    let r1 = start_router(address).await;
    let r2 = start_router(address).await;
    // r1 - c one hop, r2 - c three: r1 is the home router, for both objectives.
    let installer = two_tier_home_r1(r1.listen, r2.listen, computer_address);
    let ctl = start_controller(address, installer, None).await;
    let c = Computer::start(computer_address, address, &["f"], 1.0).await;
    let home = r1.listen.to_string();
    eventually(
        Duration::from_secs(5),
        "two-tier tables installed",
        || async {
            destinations(&r1, 0).await.get("f") == Some(&vec![(c.endpoint(), true)])
                && destinations(&r2, 0).await.get("f") == Some(&vec![(home.clone(), false)])
        },
    )
    .await;
    // r2 forwards to r1 (non-final), r1 executes on c: client -> r2 -> r1 -> c.
    assert!(
        destinations(&r2, 1).await.is_empty(),
        "r2's final table is empty"
    );
    for (responder, hops) in calls(&r2, 5).await {
        assert_eq!(responder, c.endpoint());
        assert_eq!(hops, 3, "two routers and the computer");
    }
    for (responder, hops) in calls(&r1, 5).await {
        assert_eq!(responder, c.endpoint());
        assert_eq!(hops, 2, "one router and the computer");
    }
    let v = view(address).await;
    assert_eq!(v.computers[0].home_router, home);
    ctl.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_computer_leaves_every_router_within_a_second_and_returns_when_restarted() {
    let _shared = LOAD.read().await;
    let address = free_address();
    let ctl = start_controller(address, Installer::Flat, None).await;
    let (r1, r2) = (start_router(address).await, start_router(address).await);
    let victim_address = free_address();
    let victim = Computer::start(victim_address, address, &["f"], 3.0).await;
    let other = Computer::start(loopback(), address, &["f"], 3.0).await;
    let victim_endpoint = victim.endpoint();
    eventually(
        Duration::from_secs(5),
        "both computers installed",
        || async {
            for r in [&r1, &r2] {
                if destinations(r, 0).await.get("f").map(Vec::len) != Some(2) {
                    return false;
                }
            }
            true
        },
    )
    .await;

    // Calls flow through r1 only; r2 learns of the failure from the controller.
    let client = closed_loop(&r1, Duration::from_millis(2500));
    eventually(Duration::from_secs(5), "r1 measured the victim", || async {
        entries(&r1, 0)
            .await
            .iter()
            .any(|e| e.destination == victim_endpoint && e.weight < 0.5)
    })
    .await;
    victim.crash().await;
    let killed = Instant::now();
    eventually(
        Duration::from_secs(1),
        "no router lists the killed computer",
        || async { !lists(&r1, &victim_endpoint).await && !lists(&r2, &victim_endpoint).await },
    )
    .await;
    eprintln!(
        "removed from every router {:?} after the kill",
        killed.elapsed()
    );
    let report = client.await.unwrap().unwrap();
    assert_all_ok(&report);
    assert!(report.calls.iter().any(|c| c.responder == other.endpoint()));

    // Back on the same endpoint: announced, installed everywhere again.
    let back = Computer::start(victim_address, address, &["f"], 3.0).await;
    eventually(
        Duration::from_secs(5),
        "the restarted computer is back on every router",
        || async { lists(&r1, &victim_endpoint).await && lists(&r2, &victim_endpoint).await },
    )
    .await;
    let served = calls(&r2, 40).await;
    assert!(count(&served, &back.endpoint()) > 0, "{served:?}");
    ctl.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn congestion_marks_steer_calls_away_and_clearing_brings_them_back() {
    let _shared = LOAD.read().await;
    let address = free_address();
    let router_address = free_address();
    let (fast_address, slow_address) = (free_address(), free_address());
    let ep = |a: SocketAddr| NodeKey::Endpoint(a.to_string());
    let paths = Paths::new([
        (
            ep(router_address),
            ep(fast_address),
            vec!["s1-s2".to_string()],
        ),
        (
            ep(router_address),
            ep(slow_address),
            vec!["s1-s3".to_string(), "s3-s4".to_string()],
        ),
    ])
    .unwrap();
    let ctl = start_controller(address, Installer::Flat, Some(paths)).await;
    let router = start_router_at(router_address, loopback(), address).await;
    // The computer marked is the faster one: without the mark it gets most calls.
    let fast = Computer::start(fast_address, address, &["f"], 1.0).await;
    let slow = Computer::start(slow_address, address, &["f"], 4.0).await;
    eventually(
        Duration::from_secs(5),
        "both computers installed",
        || async { destinations(&router, 0).await.get("f").map(Vec::len) == Some(2) },
    )
    .await;
    let before = calls(&router, 60).await;
    assert!(count(&before, &fast.endpoint()) > 30, "{before:?}");

    let mut monitor = CongestionClientConn::connect(&address.to_string())
        .await
        .unwrap();
    let reply = monitor.report("s1-s2", true).await.unwrap();
    assert!(reply.on_paths);
    assert_eq!(reply.marked_pairs, 1);
    let marked = calls(&router, 60).await;
    assert_eq!(
        count(&marked, &fast.endpoint()),
        0,
        "no call to the marked computer"
    );
    let v = view(address).await;
    assert_eq!(v.marks.len(), 1);
    assert_eq!(v.marks[0].destination, fast.endpoint());
    assert_eq!(v.marks[0].links, vec!["s1-s2".to_string()]);

    let reply = monitor.report("s1-s2", false).await.unwrap();
    assert_eq!(reply.marked_pairs, 0);
    let cleared = calls(&router, 60).await;
    assert!(
        count(&cleared, &fast.endpoint()) > 30,
        "calls return: {cleared:?}"
    );

    // Every destination marked: calls still succeed (last resort).
    monitor.report("s1-s2", true).await.unwrap();
    let reply = monitor.report("s3-s4", true).await.unwrap();
    assert_eq!(reply.marked_pairs, 2);
    let all_marked = calls(&router, 30).await;
    assert_eq!(all_marked.len(), 30);
    // A link on no path is accepted and said so.
    assert!(!monitor.report("s9-s9", true).await.unwrap().on_paths);
    drop(slow);
    ctl.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routers_serve_without_the_controller_and_resync_when_it_returns() {
    let _shared = LOAD.read().await;
    let address = free_address();
    let ctl = start_controller(address, Installer::Flat, None).await;
    let (r1, r2) = (start_router(address).await, start_router(address).await);
    let c1 = Computer::start(loopback(), address, &["f"], 2.0).await;
    let c2 = Computer::start(loopback(), address, &["f"], 2.0).await;
    eventually(Duration::from_secs(5), "installed", || async {
        destinations(&r1, 0).await.get("f").map(Vec::len) == Some(2)
            && destinations(&r2, 0).await.get("f").map(Vec::len) == Some(2)
    })
    .await;

    let client = closed_loop(&r1, Duration::from_millis(2500));
    tokio::time::sleep(Duration::from_millis(300)).await;
    ctl.shutdown().await.unwrap();
    // Routers notice the controller is gone (their checks fail) and keep serving.
    let report = client.await.unwrap().unwrap();
    assert_all_ok(&report);
    assert!(report.calls.len() > 50, "{} calls", report.calls.len());
    let learned: HashMap<String, f32> = entries(&r1, 0)
        .await
        .into_iter()
        .map(|e| (e.destination, e.weight))
        .collect();
    assert!(
        learned.values().all(|w| *w < 0.5),
        "weights learned: {learned:?}"
    );

    // The controller returns with no state: members announce again, tables resync.
    let ctl = start_controller(address, Installer::Flat, None).await;
    eventually(
        Duration::from_secs(5),
        "the controller knows everyone again",
        || async {
            let v = view(address).await;
            v.routers.len() == 2
                && v.computers.len() == 2
                && v.routers.iter().all(|r| r.entries == 2)
        },
    )
    .await;
    // Resync kept the entries in place: the learned weights survive.
    for e in entries(&r1, 0).await {
        assert!(e.weight < 0.5, "weight reset by the resync: {e:?}");
    }
    // And the controller acts again: a computer that leaves is removed everywhere.
    let gone = c2.endpoint();
    c2.announcer.leave().await;
    eventually(
        Duration::from_secs(2),
        "the leaving computer is removed",
        || async { !lists(&r1, &gone).await && !lists(&r2, &gone).await },
    )
    .await;
    let served = calls(&r2, 10).await;
    assert_eq!(count(&served, &c1.endpoint()), 10);
    ctl.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_router_is_dropped_and_reinstalled_when_it_announces_again() {
    let _shared = LOAD.read().await;
    let address = free_address();
    let ctl = start_controller(address, Installer::Flat, None).await;
    let r1 = start_router(address).await;
    let (listen, table_listen) = (free_address(), free_address());
    let r2 = start_router_at(listen, table_listen, address).await;
    eventually(Duration::from_secs(5), "both routers known", || async {
        view(address).await.routers.len() == 2
    })
    .await;
    r2.shutdown().await.unwrap();
    // The next change cannot reach r2: it is dropped.
    let c = Computer::start(loopback(), address, &["f"], 1.0).await;
    eventually(Duration::from_secs(5), "r2 dropped", || async {
        let v = view(address).await;
        v.routers.len() == 1 && v.routers[0].endpoint == r1.listen.to_string()
    })
    .await;
    assert!(lists(&r1, &c.endpoint()).await);
    // Back on the same endpoints, it announces and gets its entries.
    let r2 = start_router_at(listen, table_listen, address).await;
    eventually(Duration::from_secs(5), "r2 reinstalled", || async {
        lists(&r2, &c.endpoint()).await
    })
    .await;
    ctl.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tier_computer_announced_before_its_routers_moves_home_once_they_are_announced() {
    let _shared = LOAD.read().await;
    let address = free_address();
    let (r1_address, r2_address) = (free_address(), free_address());
    let computer_address = free_address();
    // r1 - c one hop, r2 - c three: r1 is the home router; alone, r2 is.
    let installer = two_tier_home_r1(r1_address, r2_address, computer_address);
    let ctl = start_controller(address, installer, None).await;
    // Computers first: one of the matrix, one outside it.
    let c = Computer::start(computer_address, address, &["f"], 1.0).await;
    let outside = Computer::start(loopback(), address, &["g"], 1.0).await;
    let placement = |v: &ControllerView, computer: &str| {
        v.computers
            .iter()
            .find(|x| x.endpoint == computer)
            .map(|x| x.placement.clone())
            .unwrap_or_default()
    };
    eventually(Duration::from_secs(5), "both computers known", || async {
        view(address).await.computers.len() == 2
    })
    .await;
    let v = view(address).await;
    assert!(
        placement(&v, &c.endpoint()).contains("until its home router is announced"),
        "{v:?}"
    );
    assert!(
        placement(&v, &outside.endpoint()).contains("not in the distance matrix"),
        "{v:?}"
    );

    // The routers arrive: c is final on its home only, forwarded to from the other.
    let r1 = start_router_at(r1_address, loopback(), address).await;
    let r2 = start_router_at(r2_address, loopback(), address).await;
    let home = r1.listen.to_string();
    let expected = |router: &RouterHandle| {
        let mut t = BTreeMap::new();
        let f = if router.listen == r1.listen {
            (c.endpoint(), true)
        } else {
            (home.clone(), false)
        };
        t.insert("f".to_string(), vec![f]);
        t.insert("g".to_string(), vec![(outside.endpoint(), true)]);
        t
    };
    eventually(
        Duration::from_secs(5),
        "c final on its home router only",
        || async {
            destinations(&r1, 0).await == expected(&r1)
                && destinations(&r2, 0).await == expected(&r2)
        },
    )
    .await;
    let v = view(address).await;
    assert_eq!(placement(&v, &c.endpoint()), format!("home router {home}"));
    for (responder, hops) in calls(&r2, 3).await {
        assert_eq!((responder, hops), (c.endpoint(), 3));
    }

    // The home router leaves (a router reports it failed): c gets a new home, r2.
    r1.shutdown().await.unwrap();
    controller_client(address)
        .await
        .remove_computer(ComputerInfo {
            edge_server_endpoint: home.clone(),
            containers: Vec::new(),
        })
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "c final on r2, its new home",
        || async { destinations(&r2, 0).await.get("f") == Some(&vec![(c.endpoint(), true)]) },
    )
    .await;
    let v = view(address).await;
    assert_eq!(
        placement(&v, &c.endpoint()),
        format!("home router {}", r2.listen)
    );
    ctl.shutdown().await.unwrap();
}

async fn controller_client(address: SocketAddr) -> EdgeControllerClient<Channel> {
    EdgeControllerClient::connect(format!("http://{address}"))
        .await
        .unwrap()
}

/// `n` computers at 127.0.0.1:20000.. (nobody listens there: the controller only installs
/// them), each running `lambdas`, announced over `concurrency` calls at a time. Every
/// announcement must be acknowledged.
async fn announce_computers(address: SocketAddr, n: u16, lambdas: &[&str], concurrency: usize) {
    let client = controller_client(address).await;
    let containers: Vec<Container> = lambdas
        .iter()
        .map(|l| Container {
            name: format!("c{l}"),
            processor: "cpu".into(),
            lambda: (*l).into(),
            num_workers: 1,
        })
        .collect();
    let acks: Vec<Result<_, tonic::Status>> = stream::iter(0..n)
        .map(|i| {
            let mut client = client.clone();
            let info = ComputerInfo {
                edge_server_endpoint: format!("127.0.0.1:{}", 20000 + i),
                containers: containers.clone(),
            };
            async move { client.announce_computer(info).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let refused: Vec<_> = acks.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(
        refused.is_empty(),
        "{} refused, e.g. {:?}",
        refused.len(),
        refused.first()
    );
}

/// Whether `router`'s table 0 holds `n` entries per lambda of `lambdas`.
async fn holds(router: &RouterHandle, lambdas: &[&str], n: usize) -> bool {
    let t = destinations(router, 0).await;
    lambdas.iter().all(|l| t.get(*l).map(Vec::len) == Some(n))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_computer_announcements_are_acknowledged_and_installed_on_every_router() {
    let _alone = LOAD.write().await;
    let address = free_address();
    let ctl = start_controller(address, Installer::Flat, None).await;
    let routers = [
        start_router(address).await,
        start_router(address).await,
        start_router(address).await,
    ];
    eventually(Duration::from_secs(5), "3 routers known", || async {
        view(address).await.routers.len() == 3
    })
    .await;
    let start = Instant::now();
    announce_computers(address, 1000, &["f"], 64).await;
    let acknowledged = start.elapsed();
    let mut held_then = Vec::new();
    for r in &routers {
        held_then.push(destinations(r, 0).await.get("f").map_or(0, Vec::len));
    }
    for r in &routers {
        eventually(
            Duration::from_secs(60),
            "1000 final entries on every router",
            || holds(r, &["f"], 1000),
        )
        .await;
    }
    let installed = start.elapsed();
    eprintln!(
        "1000 computer announcements: all acknowledged after {acknowledged:?} (the routers held {held_then:?} entries then), installed on 3 routers after {installed:?}"
    );
    assert_eq!(view(address).await.computers.len(), 1000);
    // The view counts what the routers' tasks confirmed: it follows once their pass ends.
    eventually(
        Duration::from_secs(10),
        "the view counts 1000 entries per router",
        || async {
            view(address)
                .await
                .routers
                .iter()
                .all(|r| r.entries == 1000)
        },
    )
    .await;
    // Batched: a pass installs whatever arrived since the previous one, so the 1000
    // announcements cost each router far fewer passes than announcements.
    let passes: Vec<u64> = view(address)
        .await
        .routers
        .iter()
        .map(|r| r.passes)
        .collect();
    eprintln!("reconciliation passes per router for the 1000 announcements: {passes:?}");
    assert!(passes.iter().all(|&p| p < 500), "{passes:?}");
    ctl.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_announcement_is_answered_at_once_while_large_tables_are_installed() {
    let _alone = LOAD.write().await;
    let address = free_address();
    let ctl = start_controller(address, Installer::Flat, None).await;
    let routers = [start_router(address).await, start_router(address).await];
    eventually(Duration::from_secs(5), "2 routers known", || async {
        view(address).await.routers.len() == 2
    })
    .await;
    // Large tables: 1000 computers with 4 lambdas, 4000 entries per router.
    let lambdas = ["f", "g", "h", "k"];
    announce_computers(address, 1000, &lambdas, 64).await;
    // A third router, announced by hand (it has no announcer), while those are installed.
    let late = router::spawn(RouterOptions {
        listen: loopback(),
        table_listen: loopback(),
        policy: PolicyKind::RandomProportional,
        ..RouterOptions::default()
    })
    .await
    .unwrap();
    let start = Instant::now();
    controller_client(address)
        .await
        .announce_router(RouterInfo {
            edge_server_endpoint: late.listen.to_string(),
            forwarding_table_endpoint: late.table_listen.to_string(),
        })
        .await
        .unwrap();
    let answered = start.elapsed();
    // Answered means known, not installed: 4000 entries do not arrive within a table read.
    let held = entries(&late, 0).await.len();
    assert!(
        held < 4000,
        "the answer waited for the installation ({held} entries)"
    );
    assert!(
        answered < Duration::from_secs(2),
        "router announcement answered after {answered:?}"
    );
    eventually(
        Duration::from_secs(60),
        "4000 entries on the late router",
        || holds(&late, &lambdas, 1000),
    )
    .await;
    let installed = start.elapsed();
    for r in &routers {
        eventually(
            Duration::from_secs(60),
            "4000 entries on the first routers",
            || holds(r, &lambdas, 1000),
        )
        .await;
    }
    eprintln!(
        "router announcement answered after {answered:?} (it held {held} entries then); its 4000 entries installed after {installed:?}"
    );
    assert!(view(address).await.routers.len() == 3);
    ctl.shutdown().await.unwrap();
}
