//! Bounded resources, in process on loopback: a computer drops the work of a cancelled call;
//! calls and request bytes in flight are capped with RESOURCE_EXHAUSTED, as is an oversized
//! request; what an error echoes from a request is clipped. (The descriptor flood and the
//! memory of large calls need processes of their own: rust/cli/tests/limits.rs.)

use std::net::SocketAddr;
use std::time::Duration;

use lambdaroute_core::computer_model::{
    ComputerConfig, ContainerConfig, LambdaConfig, LambdaOutput, ProcessorConfig, ProcessorType,
};
use lambdaroute_node::computer::{self, ComputerOptions};
use lambdaroute_node::limits::Limits;
use lambdaroute_node::router::{self, RouterOptions};
use lambdaroute_node::table_tool::TableClient;
use lambdaroute_proto::uiiit::LambdaRequest;
use lambdaroute_proto::uiiit::edge_server_client::EdgeServerClient;
use tonic::Code;

/// One core at 1e9 ops/s running `long` (1e9 ops: 1 s alone), 64 workers, ample memory.
fn long_config() -> ComputerConfig {
    ComputerConfig {
        processors: vec![ProcessorConfig {
            name: "cpu".into(),
            kind: ProcessorType::Cpu,
            speed: 1e9,
            cores: 1,
            memory: 1 << 40,
        }],
        containers: vec![ContainerConfig {
            name: "c0".into(),
            processor: "cpu".into(),
            lambda: "long".into(),
            num_workers: 64,
        }],
        lambdas: vec![LambdaConfig {
            name: "long".into(),
            op_offset: 1e9,
            op_coeff: 0.0,
            mem_offset: 0.0,
            mem_coeff: 0.0,
            output: LambdaOutput::Echo,
        }],
    }
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn call(name: &str, datain: usize) -> LambdaRequest {
    LambdaRequest {
        name: name.into(),
        datain: vec![1; datain],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_computer_drops_the_work_of_cancelled_calls() {
    let computer = computer::spawn(ComputerOptions::new(local(), long_config()))
        .await
        .unwrap();
    let mut client = EdgeServerClient::connect(format!("http://{}", computer.lambda_addr()))
        .await
        .unwrap();
    // 16 calls of 1 s each whose callers give up after 100 ms.
    let cancelled: Vec<_> = (0..16)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                tokio::time::timeout(
                    Duration::from_millis(100),
                    client.run_lambda(call("long", 0)),
                )
                .await
            })
        })
        .collect();
    for call in cancelled {
        assert!(call.await.unwrap().is_err(), "the caller gave up first");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A fresh call runs alone: 1 s, not a 17th of the core while 16 dead calls finish (~16 s).
    let fresh = client
        .run_lambda(call("long", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fresh.retcode, "OK");
    assert!(
        (1000..1100).contains(&fresh.ptime),
        "ptime {} ms: the cancelled calls still take the core",
        fresh.ptime
    );
    drop(client);
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn calls_and_bytes_in_flight_past_their_caps_and_oversized_requests_are_resource_exhausted() {
    let limits = Limits {
        max_calls: 2,
        max_bytes_in_flight: 2 << 20,
        ..Limits::default()
    };
    let computer = computer::spawn(ComputerOptions {
        max_request_bytes: 4 << 20,
        limits,
        ..ComputerOptions::new(local(), long_config())
    })
    .await
    .unwrap();
    let mut client = EdgeServerClient::connect(format!("http://{}", computer.lambda_addr()))
        .await
        .unwrap()
        .max_encoding_message_size(usize::MAX);

    // Larger than --max-request-bytes: refused from its header, whatever is in flight.
    let status = client.run_lambda(call("long", 5 << 20)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("--max-request-bytes"),
        "{status:?}"
    );

    // Two calls of 600 KB in flight: each counts twice, so the second passes the 2 MiB of
    // bytes in flight.
    let first = {
        let mut client = client.clone();
        tokio::spawn(async move { client.run_lambda(call("long", 600_000)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = client.run_lambda(call("long", 600_000)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("--max-bytes-in-flight"),
        "{status:?}"
    );

    // A second small call fits; a third is one call too many.
    let second = {
        let mut client = client.clone();
        tokio::spawn(async move { client.run_lambda(call("long", 10)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = client.run_lambda(call("long", 10)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("--max-calls"), "{status:?}");

    // Once answered, their permits are back.
    assert_eq!(first.await.unwrap().unwrap().into_inner().retcode, "OK");
    assert_eq!(second.await.unwrap().unwrap().into_inner().retcode, "OK");
    let after = client.run_lambda(call("long", 600_000)).await.unwrap();
    assert_eq!(after.into_inner().retcode, "OK");
    drop(client);
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn errors_clip_what_they_echo_from_a_request() {
    let computer = computer::spawn(ComputerOptions::new(local(), long_config()))
        .await
        .unwrap();
    let router = router::spawn(RouterOptions {
        listen: local(),
        table_listen: local(),
        ..RouterOptions::default()
    })
    .await
    .unwrap();
    let name = "x".repeat(1 << 20);
    let mut client = EdgeServerClient::connect(format!("http://{}", computer.lambda_addr()))
        .await
        .unwrap();
    let answer = client
        .run_lambda(call(&name, 0))
        .await
        .unwrap()
        .into_inner();
    assert!(
        answer.retcode.starts_with("Error: unknown lambda 'xxx"),
        "{}",
        &answer.retcode[..200]
    );
    assert!(
        answer.retcode.contains("... (1048576 bytes)"),
        "{}",
        &answer.retcode[..200]
    );
    assert!(answer.retcode.len() < 300, "{} bytes", answer.retcode.len());

    let mut client = EdgeServerClient::connect(format!("http://{}", router.listen))
        .await
        .unwrap();
    let answer = client
        .run_lambda(call(&name, 0))
        .await
        .unwrap()
        .into_inner();
    assert!(
        answer.retcode.contains("... (1048576 bytes)"),
        "{}",
        &answer.retcode[..200]
    );
    assert!(answer.retcode.len() < 300, "{} bytes", answer.retcode.len());
    let mut table = TableClient::connect(&router.table_listen.to_string())
        .await
        .unwrap();
    let error = table
        .remove(&name, "127.0.0.1:1")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("... (1048576 bytes)") && error.len() < 400,
        "{} bytes",
        error.len()
    );
    drop((client, table));
    router.shutdown().await.unwrap();
    computer.shutdown().await.unwrap();
}
