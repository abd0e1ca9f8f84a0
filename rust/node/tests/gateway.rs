//! `lambdaroute gateway` in-process (docs/openwhisk.md): the client's `--openwhisk` mode
//! through it, OpenWhisk's errors for bodies and queries, and the bounded activation store.
//! Apache's own client is checked against it in rust/cli/tests/openwhisk.rs.

use std::net::SocketAddr;
use std::time::Duration;

use lambdaroute_core::computer_model::Preset;
use lambdaroute_node::client::{self, ClientOptions, OpenWhiskApi};
use lambdaroute_node::computer::{self, ComputerOptions};
use lambdaroute_node::gateway::{self, GatewayOptions};
use lambdaroute_node::router::{self, RouterOptions};
use lambdaroute_node::table_tool::TableClient;
use serde_json::Value;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_through_the_gateway_and_its_errors() {
    let computer = computer::spawn(ComputerOptions::new(
        loopback(),
        Preset::IntelServer.config(),
    ))
    .await
    .unwrap();
    let router = router::spawn(RouterOptions {
        listen: loopback(),
        table_listen: loopback(),
        ..RouterOptions::default()
    })
    .await
    .unwrap();
    let mut table = TableClient::connect(&router.table_listen.to_string())
        .await
        .unwrap();
    table
        .change("clambda0", computer.endpoint(), 1.0, true)
        .await
        .unwrap();
    let gateway = gateway::spawn(GatewayOptions {
        router_table: router.table_listen.to_string(),
        activations: 3,
        max_body_bytes: 1000,
        ..GatewayOptions::new(loopback(), &router.listen.to_string())
    })
    .await
    .unwrap();
    let url = format!("http://{}", gateway.listen);

    // lambdaroute's client in --openwhisk mode: answers rebuilt from the activation records
    let report = client::run(ClientOptions {
        max_calls: Some(5),
        duration: None,
        openwhisk: Some(OpenWhiskApi {
            url: url.clone(),
            namespace: "_".into(),
            auth: None,
        }),
        ..ClientOptions::new(router.listen.to_string(), "clambda0")
    })
    .await
    .unwrap();
    assert_eq!(report.calls.len(), 5);
    for call in &report.calls {
        assert_eq!(call.status, "OK", "{call:?}");
        assert_eq!(call.responder, computer.endpoint());
        assert_eq!(call.hops, 2);
    }
    let failing = client::run(ClientOptions {
        max_calls: Some(1),
        duration: None,
        openwhisk: Some(OpenWhiskApi {
            url: url.clone(),
            namespace: "_".into(),
            auth: None,
        }),
        ..ClientOptions::new(router.listen.to_string(), "nope")
    })
    .await
    .unwrap();
    assert!(
        failing.calls[0].status.contains("HTTP 404"),
        "{:?}",
        failing.calls
    );

    let http = reqwest::Client::new();
    let post = |path: &str, body: &str| {
        http.post(format!("{url}/api/v1/namespaces/_/actions/{path}"))
            .body(body.to_owned())
            .send()
    };
    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        (status, body)
    };
    let (status, body) = answer(post("clambda0?blocking=true", "[1]").await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("must be a JSON object"),
        "{body}"
    );
    assert!(body["code"].is_string());
    let (status, body) = answer(post("clambda0?blocking=true", "{").await.unwrap()).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = answer(post("clambda0?blocking=maybe", "{}").await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("`blocking`"),
        "{body}"
    );
    let big = format!("{{\"input\": \"{}\"}}", "A".repeat(2000));
    let (status, body) = answer(post("clambda0?blocking=true", &big).await.unwrap()).await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = answer(post("a/b/c", "{}").await.unwrap()).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = answer(
        http.put(format!("{url}/api/v1/namespaces/_/actions/clambda0"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 405);
    let (status, _) = answer(http.get(format!("{url}/nowhere")).send().await.unwrap()).await;
    assert_eq!(status, 404);

    // --no-auth: another namespace maps to /ns/action, which the router does not know
    let response = http
        .post(format!(
            "{url}/api/v1/namespaces/other/actions/clambda0?blocking=true"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);

    // The store keeps the latest 3 activations
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (status, record) = answer(post("clambda0?blocking=true", "{}").await.unwrap()).await;
        assert_eq!(status, 200);
        ids.push(record["activationId"].as_str().unwrap().to_owned());
    }
    let get = |id: &str| {
        http.get(format!("{url}/api/v1/namespaces/_/activations/{id}"))
            .send()
    };
    assert_eq!(get(&ids[0]).await.unwrap().status().as_u16(), 404);
    assert_eq!(get(&ids[3]).await.unwrap().status().as_u16(), 200);
    let (_, listed) = answer(
        http.get(format!("{url}/api/v1/namespaces/_/activations?limit=10"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[0]["activationId"], ids[3].as_str());

    // A router that is gone: 500, whisk internal error, after the table check says so (503)
    router.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, body) = answer(post("clambda0?blocking=true", "{}").await.unwrap()).await;
    assert!(status == 500 || status == 502, "{status} {body}");
    let (status, body) = answer(
        http.get(format!("{url}/api/v1/namespaces/_/actions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "{body}");

    gateway.shutdown().await.unwrap();
    computer.shutdown().await.unwrap();
}
