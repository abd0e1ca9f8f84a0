//! The simulated e-computer served over gRPC, in process on 127.0.0.1 with free ports.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lambdaroute_core::computer_model::{
    ComputerConfig, Conditions, ContainerConfig, LambdaConfig, LambdaOutput, ProcessorConfig,
    ProcessorType,
};
use lambdaroute_node::computer::{
    self, ComputerHandle, ComputerOptions, LoadConditionsError, LoadConfigError,
};
use lambdaroute_proto::uiiit::edge_computer_client::EdgeComputerClient;
use lambdaroute_proto::uiiit::edge_server_client::EdgeServerClient;
use lambdaroute_proto::uiiit::{LambdaRequest, LambdaResponse, Void};
use tonic::transport::Channel;

// ===== helpers =====

/// Processor `cpu`: 1 core at 1e9 ops/s, 1 MB, running `slow` (1e8 ops: 100 ms alone, 1 byte
/// of memory per input byte, echo). Processor `gpu`: 1 core at 1e9 ops/s, running `fixed`
/// (1e6 ops: 1 ms, answers "done").
fn config() -> ComputerConfig {
    let processor = |name: &str, kind| ProcessorConfig {
        name: name.into(),
        kind,
        speed: 1e9,
        cores: 1,
        memory: 1_000_000,
    };
    let container = |name: &str, processor: &str, lambda: &str| ContainerConfig {
        name: name.into(),
        processor: processor.into(),
        lambda: lambda.into(),
        num_workers: 4,
    };
    ComputerConfig {
        processors: vec![
            processor("cpu", ProcessorType::Cpu),
            processor("gpu", ProcessorType::Gpu),
        ],
        containers: vec![
            container("c0", "cpu", "slow"),
            container("g0", "gpu", "fixed"),
        ],
        lambdas: vec![
            LambdaConfig {
                name: "slow".into(),
                op_offset: 1e8,
                op_coeff: 0.0,
                mem_offset: 0.0,
                mem_coeff: 1.0,
                output: LambdaOutput::Echo,
            },
            LambdaConfig {
                name: "fixed".into(),
                op_offset: 1e6,
                op_coeff: 0.0,
                mem_offset: 0.0,
                mem_coeff: 0.0,
                output: LambdaOutput::Fixed("done".into()),
            },
        ],
    }
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn start() -> ComputerHandle {
    computer::spawn(ComputerOptions::new(local(), config()))
        .await
        .unwrap()
}

async fn client(addr: SocketAddr) -> EdgeServerClient<Channel> {
    EdgeServerClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn request(name: &str, input: &str) -> LambdaRequest {
    LambdaRequest {
        name: name.into(),
        input: input.into(),
        ..Default::default()
    }
}

async fn call(client: &mut EdgeServerClient<Channel>, req: LambdaRequest) -> LambdaResponse {
    client.run_lambda(req).await.unwrap().into_inner()
}

// ===== RunLambda =====

#[tokio::test]
async fn a_call_answers_ok_with_the_models_ptime_after_that_long() {
    let computer = start().await;
    let mut c = client(computer.lambda_addr()).await;
    let t0 = Instant::now();
    let resp = call(&mut c, request("slow", "hello")).await;
    let wall = t0.elapsed();
    assert_eq!(resp.retcode, "OK");
    assert_eq!(resp.output, "hello");
    assert!((99..=101).contains(&resp.ptime), "ptime {}", resp.ptime);
    assert!(wall >= Duration::from_millis(100), "wall {wall:?}");
    assert!(resp.load1 <= 100 && resp.load10 <= 100 && resp.load30 <= 100);
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_concurrent_calls_on_one_core_take_twice_as_long() {
    let computer = start().await;
    let c = client(computer.lambda_addr()).await;
    let t0 = Instant::now();
    let (mut c1, mut c2) = (c.clone(), c);
    let (a, b) = tokio::join!(
        call(&mut c1, request("slow", "a")),
        call(&mut c2, request("slow", "b"))
    );
    let wall = t0.elapsed();
    for resp in [&a, &b] {
        assert_eq!(resp.retcode, "OK");
        assert!((180..=201).contains(&resp.ptime), "ptime {}", resp.ptime);
    }
    assert!(wall >= Duration::from_millis(180), "wall {wall:?}");
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_lambda_gets_a_non_ok_retcode_naming_it() {
    let computer = start().await;
    let mut c = client(computer.lambda_addr()).await;
    let resp = call(&mut c, request("nosuchlambda", "x")).await;
    assert_ne!(resp.retcode, "OK");
    assert!(resp.retcode.contains("nosuchlambda"), "{}", resp.retcode);
    assert!(resp.retcode.contains("fixed, slow"), "{}", resp.retcode);
    let resp = call(&mut c, request("", "")).await;
    assert_ne!(resp.retcode, "OK");
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_input_too_big_for_the_processor_memory_gets_a_non_ok_retcode() {
    let computer = start().await;
    let mut c = client(computer.lambda_addr()).await;
    let resp = call(&mut c, request("slow", &"x".repeat(1_000_001))).await;
    assert_ne!(resp.retcode, "OK");
    assert!(resp.retcode.contains("memory"), "{}", resp.retcode);
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn dry_run_answers_an_estimate_without_running() {
    let computer = start().await;
    let mut c = client(computer.lambda_addr()).await;
    let t0 = Instant::now();
    let resp = call(
        &mut c,
        LambdaRequest {
            dry: true,
            ..request("slow", "abc")
        },
    )
    .await;
    assert!(
        t0.elapsed() < Duration::from_millis(90),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(resp.retcode, "OK");
    assert_eq!(resp.ptime, 100);
    assert_eq!(resp.output, "");
    // Nothing was left running: a real call right after still takes 100 ms alone.
    let resp = call(&mut c, request("slow", "abc")).await;
    assert!((99..=101).contains(&resp.ptime), "ptime {}", resp.ptime);
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_answer_has_hops_plus_one_and_the_computer_as_responder() {
    let computer = start().await;
    let mut c = client(computer.lambda_addr()).await;
    let resp = call(
        &mut c,
        LambdaRequest {
            hops: 3,
            forward: true,
            ..request("fixed", "ignored")
        },
    )
    .await;
    assert_eq!(resp.retcode, "OK");
    assert_eq!(resp.hops, 4);
    assert_eq!(resp.responder, computer.lambda_addr().to_string());
    assert_eq!(resp.responder, computer.endpoint());
    assert_eq!(resp.output, "done");
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_endpoint_option_overrides_the_responder() {
    let opts = ComputerOptions {
        endpoint: Some("computer-7:10000".into()),
        ..ComputerOptions::new(local(), config())
    };
    let computer = computer::spawn(opts).await.unwrap();
    let mut c = client(computer.lambda_addr()).await;
    let resp = call(&mut c, request("fixed", "")).await;
    assert_eq!(resp.responder, "computer-7:10000");
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn echo_returns_datain_as_dataout() {
    let computer = start().await;
    let mut c = client(computer.lambda_addr()).await;
    let resp = call(
        &mut c,
        LambdaRequest {
            datain: vec![1, 2, 3],
            ..request("slow", "in")
        },
    )
    .await;
    assert_eq!(resp.output, "in");
    assert_eq!(resp.dataout, vec![1, 2, 3]);
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_request_over_the_size_cap_is_refused_with_a_clear_error() {
    let opts = ComputerOptions {
        max_request_bytes: 1024,
        ..ComputerOptions::new(local(), config())
    };
    let computer = computer::spawn(opts).await.unwrap();
    let mut c = client(computer.lambda_addr()).await;
    let err = c
        .run_lambda(request("slow", &"x".repeat(2000)))
        .await
        .unwrap_err();
    // Refused from its gRPC header with RESOURCE_EXHAUSTED, as gRPC's convention has it.
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(
        err.message().contains("largest accepted, 1024 bytes"),
        "{err}"
    );
    // Smaller requests still work.
    assert_eq!(call(&mut c, request("fixed", "ok")).await.retcode, "OK");
    computer.shutdown().await.unwrap();
}

// ===== run-time conditions =====

fn conditions(speed_factor: f64, background: f64) -> Conditions {
    Conditions {
        speed_factor,
        background,
    }
}

#[tokio::test]
async fn new_conditions_change_the_speed_of_the_calls_in_flight_and_after() {
    let (tx, rx) = tokio::sync::watch::channel(conditions(0.5, 0.0));
    let opts = ComputerOptions {
        conditions: Some(rx),
        ..ComputerOptions::new(local(), config())
    };
    let computer = computer::spawn(opts).await.unwrap();
    let mut c = client(computer.lambda_addr()).await;
    // The conditions at the start apply: half the speed, 200 ms.
    let resp = call(&mut c, request("slow", "a")).await;
    assert!((199..=202).contains(&resp.ptime), "ptime {}", resp.ptime);
    tx.send_replace(conditions(1.0, 0.5));
    let resp = call(&mut c, request("slow", "b")).await;
    assert!((199..=202).contains(&resp.ptime), "ptime {}", resp.ptime);
    tx.send_replace(Conditions::default());
    let resp = call(&mut c, request("slow", "c")).await;
    assert!((99..=101).contains(&resp.ptime), "ptime {}", resp.ptime);
    // A call in flight when the speed halves, about half done, is not lost: it finishes at
    // the new rate, about 50 + 100 ms.
    let mut c2 = c.clone();
    let in_flight = tokio::spawn(async move { call(&mut c2, request("slow", "d")).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    tx.send_replace(conditions(0.5, 0.0));
    let resp = in_flight.await.unwrap();
    assert_eq!(resp.retcode, "OK");
    assert!((130..=175).contains(&resp.ptime), "ptime {}", resp.ptime);
    // The load it reports counts the background: an idle computer at 0.5 shows 50.
    tx.send_replace(conditions(1.0, 0.5));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let resp = call(&mut c, request("fixed", "")).await;
    assert!((49..=51).contains(&resp.load1), "load1 {}", resp.load1);
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn conditions_with_an_executor_are_refused() {
    let executor = lambdaroute_node::executor::HttpExecutor::new(
        lambdaroute_node::executor::HttpConfig::face("http://127.0.0.1:9"),
    )
    .unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(Conditions::default());
    let opts = ComputerOptions {
        conditions: Some(rx),
        ..ComputerOptions::http(local(), executor)
    };
    let err = computer::spawn(opts).await.unwrap_err().to_string();
    assert!(err.contains("simulated computer"), "{err}");
}

#[test]
fn a_conditions_file_parses_with_defaults_and_bad_values_name_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c1.yaml");
    std::fs::write(&path, "speed-factor: 0.5\nbackground: 0.3\n").unwrap();
    assert_eq!(
        computer::load_conditions(&path).unwrap(),
        conditions(0.5, 0.3)
    );
    std::fs::write(&path, "{background: 0.25}").unwrap();
    assert_eq!(
        computer::load_conditions(&path).unwrap(),
        conditions(1.0, 0.25)
    );
    std::fs::write(&path, "").unwrap();
    assert_eq!(
        computer::load_conditions(&path).unwrap(),
        Conditions::default()
    );
    let cases = [
        (
            "speed-factor: fast\n",
            "c1.yaml:1:15: invalid conditions: speed-factor: ",
        ),
        (
            "background: 1.5\n",
            "c1.yaml: invalid conditions: background: expected",
        ),
        (
            "speed-factor: 0\n",
            "c1.yaml: invalid conditions: speed-factor: expected",
        ),
        ("speed: 2\n", "c1.yaml:1:1: invalid conditions: "),
    ];
    for (text, expected) in cases {
        std::fs::write(&path, text).unwrap();
        let err = computer::load_conditions(&path).unwrap_err();
        assert!(err.to_string().contains(expected), "{text:?}: {err}");
    }
    let err = computer::load_conditions(&dir.path().join("none.yaml")).unwrap_err();
    assert!(matches!(err, LoadConditionsError::Read { .. }), "{err:?}");
}

// ===== StreamUtil =====

#[tokio::test]
async fn stream_util_yields_utilization_keyed_by_processor_name() {
    let opts = ComputerOptions {
        util_listen: Some(local()),
        ..ComputerOptions::new(local(), config())
    };
    let computer = computer::spawn(opts).await.unwrap();
    assert_ne!(computer.util_addr(), computer.lambda_addr());
    let mut util = EdgeComputerClient::connect(format!("http://{}", computer.util_addr()))
        .await
        .unwrap();
    let mut stream = util.stream_util(Void {}).await.unwrap().into_inner();
    let first = tokio::time::timeout(Duration::from_secs(3), stream.message())
        .await
        .expect("a message within 3 s")
        .unwrap()
        .expect("the stream is open");
    let mut keys: Vec<&String> = first.values.keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["cpu", "gpu"]);
    assert!(first.values.values().all(|u| (0.0..=1.0).contains(u)));
    computer.shutdown().await.unwrap();
    // The stream ends when the computer stops.
    let end = tokio::time::timeout(Duration::from_secs(3), stream.message()).await;
    assert!(matches!(end, Ok(Ok(None)) | Ok(Err(_))), "{end:?}");
}

#[tokio::test]
async fn stream_util_reports_a_busy_processor() {
    let computer = start().await;
    let mut c = client(computer.lambda_addr()).await;
    let mut util = EdgeComputerClient::connect(format!("http://{}", computer.util_addr()))
        .await
        .unwrap();
    let mut stream = util.stream_util(Void {}).await.unwrap().into_inner();
    // Keep the cpu busy with back-to-back calls until a sample shows it.
    let busy = tokio::spawn(async move {
        loop {
            call(&mut c, request("slow", "")).await;
        }
    });
    let mut seen = 0.0f32;
    for _ in 0..3 {
        let msg = stream.message().await.unwrap().unwrap();
        seen = seen.max(msg.values["cpu"]);
    }
    busy.abort();
    assert!(seen > 0.5, "cpu utilization {seen}");
    computer.shutdown().await.unwrap();
}

// ===== lifecycle and configuration =====

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let computer = start().await;
    let addr = computer.lambda_addr();
    computer.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_lets_the_calls_in_flight_finish() {
    let computer = start().await;
    let mut c = client(computer.lambda_addr()).await;
    let in_flight = tokio::spawn(async move { call(&mut c, request("slow", "x")).await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    tokio::time::timeout(Duration::from_secs(5), computer.shutdown())
        .await
        .expect("stops")
        .unwrap();
    let resp = in_flight.await.unwrap();
    assert_eq!(resp.retcode, "OK");
    assert!((99..=101).contains(&resp.ptime), "ptime {}", resp.ptime);
}

#[tokio::test]
async fn serve_until_returns_when_the_shutdown_future_completes() {
    let listener = std::net::TcpListener::bind(local()).unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let opts = ComputerOptions::new(addr, config());
    let served = computer::serve_until(opts, tokio::time::sleep(Duration::from_millis(300)));
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("stops")
        .unwrap();
}

#[tokio::test]
async fn an_invalid_config_is_refused_at_start() {
    let mut bad = config();
    bad.processors[0].cores = 0;
    let err = computer::spawn(ComputerOptions::new(local(), bad))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("processors[cpu].cores"),
        "{err:#}"
    );
}

#[test]
fn load_config_errors_name_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "processors:\n  - name: cpu\n    type: cpu\n    speed: 1e9\n    cores: 1\n    memory: 10\n    colour: red\ncontainers: []\nlambdas: []\n",
    )
    .unwrap();
    let err = computer::load_config(&path).unwrap_err();
    assert!(
        matches!(err, LoadConfigError::Yaml { line: 7, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("bad.yaml:7:") && text.contains("colour"),
        "{text}"
    );
    // A wrong value names its field, once its place.
    std::fs::write(
        &path,
        "processors:\n  - name: cpu\n    type: cpu\n    speed: fast\n    cores: 1\n    memory: 10\ncontainers: []\nlambdas: []\n",
    )
    .unwrap();
    let text = computer::load_config(&path).unwrap_err().to_string();
    assert!(
        text.contains("bad.yaml:4:12: ") && text.contains("speed: "),
        "{text}"
    );
    assert!(!text.contains("at line"), "{text}");

    std::fs::write(&path, "processors: []\ncontainers: []\nlambdas: []\n").unwrap();
    let text = computer::load_config(&path).unwrap_err().to_string();
    assert!(
        text.contains("bad.yaml") && text.contains("processors: expected at least one"),
        "{text}"
    );

    let missing = dir.path().join("missing.yaml");
    let text = computer::load_config(&missing).unwrap_err().to_string();
    assert!(
        text.contains("missing.yaml") && text.contains("cannot read"),
        "{text}"
    );
}

#[test]
fn the_example_configs_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/computers");
    for name in ["fast.yaml", "slow.yaml"] {
        computer::load_config(&dir.join(name)).unwrap();
    }
}
