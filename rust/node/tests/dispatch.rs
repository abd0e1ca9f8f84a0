//! End-to-end dispatch on loopback, in-process: a router in front of simulated computers of
//! different speed, driven by the real client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use lambdaroute_core::policy::PolicyKind;
use lambdaroute_node::client::{self, ClientOptions, Pattern, Report};
use lambdaroute_node::computer::{self, ComputerHandle, ComputerOptions};
use lambdaroute_node::metrics::{Registry, RouterMetrics};
use lambdaroute_node::router::{self, RouterHandle, RouterOptions};
use lambdaroute_node::table_tool::TableClient;
use lambdaroute_proto::uiiit::edge_router_client::EdgeRouterClient;
use lambdaroute_proto::uiiit::edge_server_client::EdgeServerClient;
use lambdaroute_proto::uiiit::{EdgeRouterConf, LambdaRequest, LambdaResponse, Return};
use tonic::transport::Channel;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A computer whose lambda `f` takes `service_ms` on an idle computer.
async fn start_computer(service_ms: f64) -> ComputerHandle {
    start_computer_on(loopback(), service_ms).await
}

/// The same, listening on `listen`.
async fn start_computer_on(listen: SocketAddr, service_ms: f64) -> ComputerHandle {
    let yaml = format!(
        "processors:\n  - {{ name: cpu, type: cpu, speed: 1.0e9, cores: 4, memory: 1073741824 }}\n\
         containers:\n  - {{ name: c, processor: cpu, lambda: f, num_workers: 4 }}\n\
         lambdas:\n  - {{ name: f, op_offset: {ops}, op_coeff: 0 }}\n",
        ops = service_ms * 1e6
    );
    let config = computer::parse_config(Path::new("test.yaml"), &yaml).unwrap();
    computer::spawn(ComputerOptions::new(listen, config))
        .await
        .unwrap()
}

/// A router with the default policy that counts into `registry`.
async fn start_router_with_metrics(registry: &mut Registry) -> RouterHandle {
    router::spawn(RouterOptions {
        listen: loopback(),
        table_listen: loopback(),
        metrics: Some(RouterMetrics::register(registry)),
        ..RouterOptions::default()
    })
    .await
    .unwrap()
}

/// A connection to `router`'s table service.
async fn table_of(router: &RouterHandle) -> TableClient {
    TableClient::connect(&router.table_listen.to_string())
        .await
        .unwrap()
}

/// A call to lambda `name` as a client sends it.
fn request(name: &str) -> LambdaRequest {
    LambdaRequest {
        name: name.into(),
        ..Default::default()
    }
}

async fn start_router(policy: PolicyKind) -> RouterHandle {
    router::spawn(RouterOptions {
        listen: loopback(),
        table_listen: loopback(),
        policy,
        ..RouterOptions::default()
    })
    .await
    .unwrap()
}

/// A router with `f` installed, final, at weight 1.0 on each computer, in this order.
async fn start_router_with(policy: PolicyKind, computers: &[&ComputerHandle]) -> RouterHandle {
    let router = start_router(policy).await;
    let mut table = table_of(&router).await;
    for computer in computers {
        table
            .change("f", computer.endpoint(), 1.0, true)
            .await
            .unwrap();
    }
    router
}

async fn closed_loop(router: &RouterHandle, threads: usize, calls: u64) -> Report {
    client::run(ClientOptions {
        pattern: Pattern::ClosedLoop { threads },
        duration: None,
        max_calls: Some(calls),
        ..ClientOptions::new(router.listen.to_string(), "f")
    })
    .await
    .unwrap()
}

fn calls_by_responder(report: &Report) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for call in &report.calls {
        *counts.entry(call.responder.clone()).or_default() += 1;
    }
    counts
}

fn assert_all_ok(report: &Report) {
    let failed: Vec<_> = report.calls.iter().filter(|c| !c.ok()).collect();
    assert!(
        failed.is_empty(),
        "{} failed calls, e.g. {:?}",
        failed.len(),
        failed.first()
    );
}

/// The share of the calls that 1/latency predicts for `fast` from the weights the router
/// learned for it and for `slow`.
async fn predicted_share(router: &RouterHandle, fast: &str, slow: &str) -> f64 {
    let mut table = table_of(router).await;
    let weights: HashMap<String, f64> = table
        .table(0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.destination, f64::from(e.weight)))
        .collect();
    let (w_fast, w_slow) = (weights[fast], weights[slow]);
    w_slow / (w_fast + w_slow)
}

/// Share of the calls served by `fast`, and the share that 1/latency predicts from the
/// weights the router learned.
async fn split(router: &RouterHandle, report: &Report, fast: &str, slow: &str) -> (f64, f64) {
    let counts = calls_by_responder(report);
    let share = counts.get(fast).copied().unwrap_or(0) as f64 / report.calls.len() as f64;
    (share, predicted_share(router, fast, slow).await)
}

// Service times within 2x of each other, so round robin keeps both in its active set.
const FAST_MS: f64 = 8.0;
const SLOW_MS: f64 = 14.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_impedance_sends_the_calls_to_the_faster_computer() {
    let fast = start_computer(FAST_MS).await;
    let slow = start_computer(SLOW_MS).await;
    // The slow one first, so that the tie at the initial weight favours it.
    let router = start_router_with(PolicyKind::LeastImpedance, &[&slow, &fast]).await;
    let report = closed_loop(&router, 1, 200).await;
    assert_all_ok(&report);
    assert_eq!(report.calls.len(), 200);
    let counts = calls_by_responder(&report);
    assert!(
        counts[fast.endpoint()] >= 190,
        "calls per responder: {counts:?}"
    );
}

/// Run 400 calls through `policy` in front of a fast and a slow computer; the fast one's share
/// must be about 1/8 : 1/14 (64%), and within `tolerance` of what the learned weights predict.
async fn assert_split_by_inverse_latency(policy: PolicyKind, tolerance: f64) {
    let fast = start_computer(FAST_MS).await;
    let slow = start_computer(SLOW_MS).await;
    let router = start_router_with(policy, &[&slow, &fast]).await;
    let report = closed_loop(&router, 1, 400).await;
    assert_all_ok(&report);
    let (share, predicted) = split(&router, &report, fast.endpoint(), slow.endpoint()).await;
    assert!(
        (0.55..0.75).contains(&share),
        "{policy}: fast share {share:.3}"
    );
    assert!(
        (share - predicted).abs() < tolerance,
        "{policy}: fast share {share:.3}, 1/w predicts {predicted:.3}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_proportional_splits_calls_by_inverse_latency() {
    assert_split_by_inverse_latency(PolicyKind::RandomProportional, 0.08).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_splits_calls_by_inverse_latency() {
    // Deficit round robin is fair in the short term: tighter than random draws.
    assert_split_by_inverse_latency(PolicyKind::RoundRobin, 0.06).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_of_two_choices_serves_every_call() {
    // Peak EWMA holds a latency spike for seconds (10 s decay), longer than this run: the
    // speeds differ by 15x so that one scheduling hiccup on the fast computer cannot flip the
    // preference.
    let fast = start_computer(2.0).await;
    let slow = start_computer(30.0).await;
    let router = start_router_with(PolicyKind::PowerOfTwo, &[&slow, &fast]).await;
    let report = closed_loop(&router, 4, 200).await;
    assert_all_ok(&report);
    let counts = calls_by_responder(&report);
    assert!(
        counts[fast.endpoint()] > counts.get(slow.endpoint()).copied().unwrap_or(0),
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_computer_mid_run_loses_no_call() {
    let first = start_computer(5.0).await;
    let second = start_computer(5.0).await;
    let second_endpoint = second.endpoint().to_owned();
    let router = start_router_with(PolicyKind::RandomProportional, &[&first, &second]).await;
    let client = tokio::spawn(client::run(ClientOptions {
        pattern: Pattern::ClosedLoop { threads: 4 },
        duration: Some(Duration::from_millis(2000)),
        ..ClientOptions::new(router.listen.to_string(), "f")
    }));
    tokio::time::sleep(Duration::from_millis(700)).await;
    second.shutdown().await.unwrap();
    let report = client.await.unwrap().unwrap();
    assert_all_ok(&report);
    let counts = calls_by_responder(&report);
    assert!(
        counts.get(&second_endpoint).is_some_and(|n| *n > 10),
        "{counts:?}"
    );
    let late = report.calls.iter().filter(|c| c.time > 1.0);
    assert!(late.clone().count() > 20);
    assert!(late.into_iter().all(|c| c.responder == first.endpoint()));
    // The failed computer left both tables.
    let mut table = table_of(&router).await;
    for id in [0, 1] {
        let destinations: Vec<String> = table
            .table(id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.destination)
            .collect();
        assert_eq!(
            destinations,
            vec![first.endpoint().to_owned()],
            "table {id}"
        );
    }
}

async fn call(router: &RouterHandle, request: LambdaRequest) -> LambdaResponse {
    let channel = Channel::from_shared(format!("http://{}", router.listen))
        .unwrap()
        .connect()
        .await
        .unwrap();
    EdgeServerClient::new(channel)
        .run_lambda(request)
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn unknown_lambda_and_empty_table_answer_a_clear_retcode() {
    let router = start_router(PolicyKind::RandomProportional).await;
    let response = call(&router, request("nope")).await;
    assert!(
        response.retcode.contains("unknown lambda 'nope'"),
        "{}",
        response.retcode
    );

    // An entry whose only destination is gone leaves the lambda with nothing: the call fails
    // over, the destination is removed, and the answer says so.
    let mut table = table_of(&router).await;
    table.change("f", "127.0.0.1:1", 1.0, true).await.unwrap();
    let response = call(&router, request("f")).await;
    assert_ne!(response.retcode, "OK");
    assert!(response.retcode.contains("'f'"), "{}", response.retcode);
    assert!(table.table(0).await.unwrap().is_empty());
}

/// The value of the series `series` (name and labels, as encoded) in Prometheus text.
fn metric(registry: &Registry, series: &str) -> Option<f64> {
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry).unwrap();
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (s, v) = l.rsplit_once(' ')?;
        (s == series).then(|| v.parse().unwrap())
    })
}

#[tokio::test]
async fn a_destination_that_restarts_on_its_port_keeps_its_entry_and_takes_the_next_call() {
    let mut registry = Registry::default();
    let router = start_router_with_metrics(&mut registry).await;
    let first = start_computer(1.0).await;
    let listen = first.lambda_addr();
    let endpoint = first.endpoint().to_owned();
    let mut table = table_of(&router).await;
    table.change("f", &endpoint, 1.0, true).await.unwrap();
    assert_eq!(call(&router, request("f")).await.retcode, "OK");

    // The router's connection closes with the computer; the next call opens a new one
    // instead of failing the destination.
    first.shutdown().await.unwrap();
    let second = start_computer_on(listen, 1.0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let response = call(&router, request("f")).await;
        assert_eq!(response.retcode, "OK");
        assert_eq!(response.responder, second.endpoint());
    }
    let f = "{lambda=\"f\"}";
    assert_eq!(
        metric(&registry, &format!("lambdaroute_router_retries_total{f}")),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &registry,
            "lambdaroute_router_table_entries{table=\"overall\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_failed_destination_counts_one_retry_and_the_call_once() {
    let mut registry = Registry::default();
    let router = start_router_with_metrics(&mut registry).await;
    let computer = start_computer(1.0).await;
    // New entries are tried oldest first: the dead one takes the first call, fails and goes.
    let mut table = table_of(&router).await;
    table.change("f", "127.0.0.1:1", 1.0, true).await.unwrap();
    table
        .change("f", computer.endpoint(), 1.0, true)
        .await
        .unwrap();
    let entries = "lambdaroute_router_table_entries{table=\"overall\"}";
    assert_eq!(metric(&registry, entries), Some(2.0));

    let response = call(&router, request("f")).await;
    assert_eq!(response.retcode, "OK");
    assert_eq!(response.responder, computer.endpoint());
    let f = "{lambda=\"f\"}";
    assert_eq!(
        metric(&registry, &format!("lambdaroute_router_calls_total{f}")),
        Some(1.0)
    );
    assert_eq!(
        metric(&registry, &format!("lambdaroute_router_retries_total{f}")),
        Some(1.0)
    );
    assert_eq!(
        metric(&registry, &format!("lambdaroute_router_errors_total{f}")),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &registry,
            &format!("lambdaroute_router_latency_seconds_count{f}")
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&registry, entries),
        Some(1.0),
        "the dead destination is gone"
    );
    assert_eq!(
        metric(&registry, "lambdaroute_router_calls_in_flight"),
        Some(0.0)
    );

    // Its last destination stopped: the call fails over to nothing and is one error, no retry.
    computer.shutdown().await.unwrap();
    let response = call(&router, request("f")).await;
    assert_ne!(response.retcode, "OK");
    assert_eq!(
        metric(&registry, &format!("lambdaroute_router_calls_total{f}")),
        Some(2.0)
    );
    assert_eq!(
        metric(&registry, &format!("lambdaroute_router_retries_total{f}")),
        Some(1.0)
    );
    assert_eq!(
        metric(&registry, &format!("lambdaroute_router_errors_total{f}")),
        Some(1.0)
    );
    assert_eq!(metric(&registry, entries), Some(0.0));
    router.shutdown().await.unwrap();
}

#[tokio::test]
async fn hops_guard_loops_and_forwarded_calls_use_the_final_table() {
    let computer = start_computer(1.0).await;
    let router = start_router(PolicyKind::RandomProportional).await;
    let mut table = table_of(&router).await;
    // Non-final: only calls from clients may use it.
    table
        .change("f", computer.endpoint(), 1.0, false)
        .await
        .unwrap();

    let response = call(&router, request("f")).await;
    assert_eq!(response.retcode, "OK");
    // client -> router (hops 1) -> computer (answers hops 2)
    assert_eq!(response.hops, 2);
    assert_eq!(response.responder, computer.endpoint());

    let forwarded = LambdaRequest {
        name: "f".into(),
        forward: true,
        hops: 1,
        ..Default::default()
    };
    let response = call(&router, forwarded).await;
    assert_ne!(
        response.retcode, "OK",
        "a forwarded call must not use a non-final entry"
    );

    let looping = LambdaRequest {
        name: "f".into(),
        hops: 255,
        ..Default::default()
    };
    let response = call(&router, looping).await;
    assert!(
        response.retcode.contains("loop detected"),
        "{}",
        response.retcode
    );
}

#[tokio::test]
async fn table_service_rejects_bad_entries_with_an_error_message() {
    let router = start_router(PolicyKind::LeastImpedance).await;
    let channel = Channel::from_shared(format!("http://{}", router.table_listen))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = EdgeRouterClient::new(channel);
    let mut configure = async |weight: f32, destination: &str| -> Return {
        client
            .configure(EdgeRouterConf {
                action: 1,
                lambda: "f".into(),
                destination: destination.into(),
                weight,
                r#final: true,
            })
            .await
            .unwrap()
            .into_inner()
    };
    assert!(
        configure(-1.0, "127.0.0.1:9")
            .await
            .msg
            .starts_with("Error: invalid weight")
    );
    assert!(
        configure(f32::NAN, "127.0.0.1:9")
            .await
            .msg
            .starts_with("Error: invalid weight")
    );
    assert!(
        configure(1.0, "not an endpoint")
            .await
            .msg
            .starts_with("Error: invalid endpoint")
    );
    assert_eq!(configure(0.5, "127.0.0.1:9").await.msg, "");
    let mut table = table_of(&router).await;
    let entries = table.table(1).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].weight, 0.5);
    assert!(table.table(7).await.is_err());
    assert!(table.remove("g", "127.0.0.1:9").await.is_err());
    table.remove("f", "127.0.0.1:9").await.unwrap();
    assert!(table.table(0).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_oversized_request_is_refused_without_touching_the_table() {
    let computer = start_computer(1.0).await;
    let router = router::spawn(RouterOptions {
        listen: loopback(),
        table_listen: loopback(),
        max_request_bytes: 1024,
        ..RouterOptions::default()
    })
    .await
    .unwrap();
    let mut table = table_of(&router).await;
    table
        .change("f", computer.endpoint(), 1.0, true)
        .await
        .unwrap();
    let channel = Channel::from_shared(format!("http://{}", router.listen))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = EdgeServerClient::new(channel)
        .run_lambda(LambdaRequest {
            name: "f".into(),
            input: "x".repeat(4096),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(table.table(0).await.unwrap().len(), 1);
    assert_eq!(call(&router, request("f")).await.retcode, "OK");
}

// ===== calls whose client gives up =====

/// Send `calls` calls to `f` from `workers` concurrent callers; call `i` gives up after
/// `give_up(i)` when that is Some (its future is dropped, the HTTP/2 stream reset). Returns
/// the responders of the calls that were answered.
async fn calls_with_cancellations(
    router: &RouterHandle,
    workers: usize,
    calls: usize,
    give_up: impl Fn(usize) -> Option<Duration> + Send + Sync + 'static,
) -> (Vec<String>, usize) {
    let client = EdgeServerClient::connect(format!("http://{}", router.listen))
        .await
        .unwrap();
    let give_up = std::sync::Arc::new(give_up);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (mut client, give_up, next) = (client.clone(), give_up.clone(), next.clone());
        tasks.spawn(async move {
            let (mut answered, mut cancelled) = (Vec::new(), 0);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= calls {
                    return (answered, cancelled);
                }
                let call = client.run_lambda(request("f"));
                match give_up(i) {
                    Some(limit) => match tokio::time::timeout(limit, call).await {
                        Ok(answer) => answered.push(answer.unwrap().into_inner().responder),
                        Err(_) => cancelled += 1,
                    },
                    None => answered.push(call.await.unwrap().into_inner().responder),
                }
            }
        });
    }
    let (mut answered, mut cancelled) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (a, c) = done.unwrap();
        answered.extend(a);
        cancelled += c;
    }
    (answered, cancelled)
}

/// Calls in flight per destination, as the router's table reports them, once the
/// computers have had `settle` to finish whatever they still ran.
async fn in_flight_after(router: &RouterHandle, settle: Duration) -> HashMap<String, u32> {
    tokio::time::sleep(settle).await;
    let mut table = table_of(router).await;
    table
        .table(0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.destination, e.in_flight))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_dropped_by_their_clients_are_completed_for_every_policy() {
    // Every call gives up after 5 ms at computers that take 40 ms: the router's future for
    // each is dropped while it waits for the computer. Each must still be completed, or the
    // table's in-flight counts (and p2c's, and round robin's probes) stay raised for ever.
    for policy in PolicyKind::ALL {
        let a = start_computer(40.0).await;
        let b = start_computer(40.0).await;
        let router = start_router_with(policy, &[&a, &b]).await;
        let (answered, cancelled) =
            calls_with_cancellations(&router, 4, 40, |_| Some(Duration::from_millis(5))).await;
        assert_eq!((answered.len(), cancelled), (0, 40), "{policy}");
        let in_flight = in_flight_after(&router, Duration::from_millis(300)).await;
        assert!(
            in_flight.values().all(|&n| n == 0),
            "{policy}: calls still in flight after every client gave up: {in_flight:?}"
        );
        router.shutdown().await.unwrap();
    }
}

/// Calls to `f`, one at a time, until `until` after `origin`; each gives up after `give_up`
/// when that is Some. Returns the responders of the answered calls and the number given up.
async fn one_at_a_time(
    router: &RouterHandle,
    origin: tokio::time::Instant,
    until: Duration,
    give_up: Option<Duration>,
) -> (HashMap<String, usize>, usize) {
    let mut client = EdgeServerClient::connect(format!("http://{}", router.listen))
        .await
        .unwrap();
    let (mut answered, mut cancelled) = (HashMap::new(), 0);
    while origin.elapsed() < until {
        let call = client.run_lambda(request("f"));
        let answer = match give_up {
            Some(limit) => tokio::time::timeout(limit, call).await.ok(),
            None => Some(call.await),
        };
        match answer {
            Some(answer) => {
                let answer = answer.unwrap().into_inner();
                assert_eq!(answer.retcode, "OK");
                *answered.entry(answer.responder).or_default() += 1;
            }
            None => cancelled += 1,
        }
    }
    (answered, cancelled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_probes_again_after_a_probe_whose_client_gave_up() {
    // The slow computer (60 ms, over 2x the fast one's 10 ms) is measured, leaves the active
    // set at ~0.2 s and is due for a probe 1 s later. From 0.5 s to 1.8 s every client gives
    // up after 30 ms, that probe's too. The probe must end (as a bad one: back to idle with a
    // 2 s timer), so that the next probe, at ~3.2 s, is answered by 4.8 s. Left open, the
    // slow computer would never be chosen again.
    let fast = start_computer(10.0).await;
    let slow = start_computer(60.0).await;
    let router = start_router_with(PolicyKind::RoundRobin, &[&fast, &slow]).await;
    let origin = tokio::time::Instant::now();
    let ms = Duration::from_millis;
    let (patient, _) = one_at_a_time(&router, origin, ms(500), None).await;
    assert!(
        patient.contains_key(slow.endpoint()),
        "measured first: {patient:?}"
    );
    let (impatient, cancelled) = one_at_a_time(&router, origin, ms(1_800), Some(ms(30))).await;
    assert!(
        cancelled >= 1 && !impatient.contains_key(slow.endpoint()),
        "the probe of the slow computer is given up: {cancelled}, {impatient:?}"
    );
    let (after, _) = one_at_a_time(&router, origin, ms(4_800), None).await;
    assert!(
        after.get(slow.endpoint()).copied().unwrap_or(0) >= 1,
        "the slow computer was never probed again: {after:?}"
    );
}

/// 400 calls from 4 callers to a fast (8 ms) and a slow (14 ms) computer, every tenth given
/// up after 3 ms: the share of the fast one among the answered calls, what the learned
/// weights predict, and the calls in flight afterwards.
async fn split_with_a_tenth_cancelled(policy: PolicyKind) -> (f64, f64, HashMap<String, u32>) {
    let fast = start_computer(FAST_MS).await;
    let slow = start_computer(SLOW_MS).await;
    let router = start_router_with(policy, &[&slow, &fast]).await;
    let (answered, cancelled) = calls_with_cancellations(&router, 4, 400, |i| {
        (i % 10 == 9).then_some(Duration::from_millis(3))
    })
    .await;
    assert_eq!(answered.len() + cancelled, 400);
    assert!(cancelled >= 30, "{policy}: only {cancelled} calls gave up");
    let in_flight = in_flight_after(&router, Duration::from_millis(200)).await;
    let fast_share =
        answered.iter().filter(|r| *r == fast.endpoint()).count() as f64 / answered.len() as f64;
    let predicted = predicted_share(&router, fast.endpoint(), slow.endpoint()).await;
    eprintln!(
        "{policy}: {cancelled} of 400 calls given up; fast share {fast_share:.3}, 1/w predicts {predicted:.3}"
    );
    (fast_share, predicted, in_flight)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_and_p2c_stay_balanced_with_a_tenth_of_the_calls_cancelled() {
    let (share, predicted, in_flight) = split_with_a_tenth_cancelled(PolicyKind::RoundRobin).await;
    assert!(in_flight.values().all(|&n| n == 0), "rr: {in_flight:?}");
    assert!(
        (share - predicted).abs() < 0.08,
        "rr: fast share {share:.3}, 1/w predicts {predicted:.3}"
    );
    let (share, _, in_flight) = split_with_a_tenth_cancelled(PolicyKind::PowerOfTwo).await;
    assert!(in_flight.values().all(|&n| n == 0), "p2c: {in_flight:?}");
    assert!(
        (0.5..0.95).contains(&share),
        "p2c: the fast computer should take more calls, not all: {share:.3}"
    );
}
