//! The HTTP executor against a real HTTP function server (axum, on 127.0.0.1 with a free port),
//! behind a real computer served over gRPC: OpenFaaS-style gateway, OpenWhisk actions, plain
//! URLs, binary data, time limits, error answers, kept-open connections and the load.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine as _;
use lambdaroute_node::computer::{self, ComputerHandle, ComputerOptions};
use lambdaroute_node::executor::{HttpConfig, HttpExecutor, Platform};
use lambdaroute_proto::uiiit::edge_computer_client::EdgeComputerClient;
use lambdaroute_proto::uiiit::edge_server_client::EdgeServerClient;
use lambdaroute_proto::uiiit::{LambdaRequest, LambdaResponse, Void};
use parking_lot::Mutex;
use tonic::transport::Channel;

// ===== the function server =====

/// What the server saw: the client ports of its connections.
#[derive(Clone, Default)]
struct Seen {
    peers: Arc<Mutex<BTreeSet<u16>>>,
}

async fn function(
    State(seen): State<Seen>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    seen.peers.lock().insert(peer.port());
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    match name.as_str() {
        // Text in, text out: the content type it got and the body.
        "echo" => format!("{content_type}|{}", String::from_utf8_lossy(&body)).into_response(),
        // Binary in, binary out: the bytes reversed.
        "reverse" => {
            let mut bytes = body.to_vec();
            bytes.reverse();
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        "slow" => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            "late".into_response()
        }
        "busy" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done".into_response()
        }
        // 2 MiB, its length known from the start, or streamed in chunks without one.
        "big" => vec![b'x'; 2 << 20].into_response(),
        "chunked" => axum::body::Body::from_stream(futures::stream::iter(
            (0..4).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 512 << 10])),
        ))
        .into_response(),
        "fail" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "boom: the function crashed\n",
        )
            .into_response(),
        other => (StatusCode::NOT_FOUND, format!("no function {other}")).into_response(),
    }
}

async fn action(
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("uuid-1:secret")
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&expected)
    {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"The supplied authentication is invalid","code":"x1"}"#,
        )
            .into_response();
    }
    if namespace != "guest" || query.as_deref() != Some("blocking=true&result=true") {
        return (StatusCode::BAD_REQUEST, "wrong namespace or query").into_response();
    }
    let params: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match name.as_str() {
        "hello" => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({"greeting": format!("hello {}", params["name"].as_str().unwrap_or("?")),
                               "input": params["input"], "datain": params["datain"]})
            .to_string(),
        )
            .into_response(),
        _ => (
            StatusCode::BAD_GATEWAY,
            r#"{"error":"The action did not produce a valid response"}"#,
        )
            .into_response(),
    }
}

/// Serves the functions on a free port; returns its base URL and what it saw.
async fn function_server() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/function/{name}", post(function))
        .route("/api/v1/namespaces/{ns}/actions/{name}", post(action))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (format!("http://{addr}"), seen)
}

// ===== helpers =====

async fn computer_for(config: HttpConfig) -> (ComputerHandle, EdgeServerClient<Channel>) {
    let executor = HttpExecutor::new(config).unwrap();
    let computer = computer::spawn(ComputerOptions::http(
        "127.0.0.1:0".parse().unwrap(),
        executor,
    ))
    .await
    .unwrap();
    let client = EdgeServerClient::connect(format!("http://{}", computer.lambda_addr()))
        .await
        .unwrap();
    (computer, client)
}

async fn call(
    c: &mut EdgeServerClient<Channel>,
    name: &str,
    input: &str,
    datain: &[u8],
) -> LambdaResponse {
    c.run_lambda(LambdaRequest {
        name: name.into(),
        input: input.into(),
        datain: datain.to_vec(),
        hops: 1,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
}

async fn openfaas(functions: &[&str]) -> (ComputerHandle, EdgeServerClient<Channel>, String, Seen) {
    let (url, seen) = function_server().await;
    let config = HttpConfig::new(
        Platform::OpenFaas {
            gateway: url.clone(),
        },
        functions.iter().map(|f| f.to_string()).collect(),
    );
    let (computer, client) = computer_for(config).await;
    (computer, client, url, seen)
}

// ===== tests =====

#[tokio::test]
async fn openfaas_text_goes_in_the_body_and_the_answer_in_output() {
    let (computer, mut c, _, _) = openfaas(&["echo"]).await;
    let resp = call(&mut c, "echo", "hello there", b"").await;
    assert_eq!(resp.retcode, "OK");
    assert_eq!(resp.output, "text/plain; charset=utf-8|hello there");
    assert!(resp.dataout.is_empty());
    assert_eq!(resp.responder, computer.endpoint());
    assert_eq!(resp.hops, 2);
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn binary_datain_goes_as_octets_and_binary_answers_come_back_in_dataout() {
    let (computer, mut c, _, _) = openfaas(&["reverse", "echo"]).await;
    let resp = call(&mut c, "reverse", "", &[1, 2, 3, 255]).await;
    assert_eq!(resp.retcode, "OK");
    assert_eq!(resp.dataout, vec![255, 3, 2, 1]);
    assert!(resp.output.is_empty());
    // datain wins over input as the body.
    let resp = call(&mut c, "echo", "ignored", b"raw").await;
    assert_eq!(resp.output, "application/octet-stream|raw");
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_500_answer_is_an_error_retcode_and_the_computer_keeps_serving() {
    let (computer, mut c, url, _) = openfaas(&["fail", "echo"]).await;
    let resp = call(&mut c, "fail", "x", b"").await;
    assert_eq!(
        resp.retcode,
        format!("Error: fail: HTTP 500 from {url}/function/fail: boom: the function crashed")
    );
    assert_eq!(resp.responder, computer.endpoint());
    assert_eq!(call(&mut c, "echo", "still", b"").await.retcode, "OK");
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_answer_larger_than_the_largest_message_is_an_error_and_is_not_read_further() {
    let (url, _) = function_server().await;
    let mut config = HttpConfig::new(
        Platform::OpenFaas {
            gateway: url.clone(),
        },
        vec!["big".into(), "chunked".into(), "echo".into()],
    );
    config.max_answer_bytes = 1 << 20;
    let (computer, mut c) = computer_for(config).await;
    for name in ["big", "chunked"] {
        let resp = call(&mut c, name, "", b"").await;
        assert_eq!(
            resp.retcode,
            format!(
                "Error: {name}: the answer of {url}/function/{name} is larger than 1048576 \
                 bytes, the largest this computer sends on (--max-request-bytes)"
            )
        );
        assert!(resp.output.is_empty() && resp.dataout.is_empty());
    }
    assert_eq!(call(&mut c, "echo", "after", b"").await.retcode, "OK");
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_function_slower_than_the_time_limit_is_an_error_and_the_computer_keeps_serving() {
    let (url, _) = function_server().await;
    let mut config = HttpConfig::new(
        Platform::OpenFaas {
            gateway: url.clone(),
        },
        vec!["slow".into(), "echo".into()],
    );
    config.timeout = Duration::from_millis(300);
    let (computer, mut c) = computer_for(config).await;
    let started = std::time::Instant::now();
    let resp = call(&mut c, "slow", "", b"").await;
    let took = started.elapsed();
    assert_eq!(
        resp.retcode,
        format!("Error: slow: no answer from {url}/function/slow within 0.3 s")
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1400),
        "{took:?}"
    );
    assert!(resp.ptime >= 290, "{}", resp.ptime);
    assert_eq!(
        call(&mut c, "echo", "after", b"").await.output,
        "text/plain; charset=utf-8|after"
    );
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_function_nobody_serves_is_an_error_naming_the_url() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = HttpConfig::new(
        Platform::OpenFaas {
            gateway: format!("http://127.0.0.1:{port}"),
        },
        vec!["f".into()],
    );
    let (computer, mut c) = computer_for(config).await;
    let resp = call(&mut c, "f", "", b"").await;
    assert!(
        resp.retcode.starts_with(&format!(
            "Error: f: cannot call http://127.0.0.1:{port}/function/f: "
        )),
        "{}",
        resp.retcode
    );
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_are_kept_open_between_calls() {
    let (computer, mut c, _, seen) = openfaas(&["echo"]).await;
    for i in 0..10 {
        assert_eq!(
            call(&mut c, "echo", &i.to_string(), b"").await.retcode,
            "OK"
        );
    }
    assert_eq!(
        seen.peers.lock().len(),
        1,
        "one connection for 10 calls in a row"
    );
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_lambdas_and_dry_runs_are_answered_by_the_computer() {
    let (computer, mut c, _, seen) = openfaas(&["echo"]).await;
    let resp = call(&mut c, "nope", "", b"").await;
    assert_eq!(
        resp.retcode,
        "Error: unknown lambda 'nope'; this computer runs: echo"
    );
    let dry = c
        .run_lambda(LambdaRequest {
            name: "echo".into(),
            dry: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((dry.retcode.as_str(), dry.ptime), ("OK", 0));
    assert!(seen.peers.lock().is_empty(), "nothing was called");
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn openwhisk_actions_get_json_parameters_and_basic_auth() {
    let (url, _) = function_server().await;
    let mut config = HttpConfig::new(
        Platform::OpenWhisk {
            api: url.clone(),
            namespace: "guest".into(),
            auth: Some("uuid-1:secret".into()),
        },
        vec!["hello".into(), "broken".into()],
    );
    config.workers = 2;
    let (computer, mut c) = computer_for(config.clone()).await;
    let resp = call(&mut c, "hello", r#"{"name":"edge"}"#, b"").await;
    assert_eq!(resp.retcode, "OK");
    let out: serde_json::Value = serde_json::from_str(&resp.output).unwrap();
    assert_eq!(out["greeting"], "hello edge");
    // Text that is not a JSON object travels as `input`, binary data as base64 `datain`.
    let resp = call(&mut c, "hello", "plain", &[0, 1, 2]).await;
    let out: serde_json::Value = serde_json::from_str(&resp.output).unwrap();
    assert_eq!(
        (out["input"].as_str(), out["datain"].as_str()),
        (Some("plain"), Some("AAEC"))
    );
    // OpenWhisk's JSON errors are read.
    let resp = call(&mut c, "broken", "{}", b"").await;
    assert_eq!(
        resp.retcode,
        format!(
            "Error: broken: HTTP 502 from {url}/api/v1/namespaces/guest/actions/broken?blocking=true&result=true: The action did not produce a valid response"
        )
    );
    computer.shutdown().await.unwrap();

    config.platform = Platform::OpenWhisk {
        api: url.clone(),
        namespace: "guest".into(),
        auth: Some("uuid-1:wrong".into()),
    };
    let (computer, mut c) = computer_for(config).await;
    let resp = call(&mut c, "hello", "{}", b"").await;
    assert!(
        resp.retcode.starts_with("Error: hello: HTTP 401 from ")
            && resp
                .retcode
                .ends_with(": The supplied authentication is invalid"),
        "{}",
        resp.retcode
    );
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn plain_urls_per_lambda() {
    let (url, _) = function_server().await;
    let config = HttpConfig::new(
        Platform::Urls(BTreeMap::from([
            ("a".to_string(), format!("{url}/function/echo")),
            ("b".to_string(), format!("{url}/function/reverse")),
        ])),
        Vec::new(),
    );
    let (computer, mut c) = computer_for(config).await;
    assert_eq!(
        call(&mut c, "a", "x", b"").await.output,
        "text/plain; charset=utf-8|x"
    );
    assert_eq!(call(&mut c, "b", "", b"ab").await.dataout, b"ba");
    computer.shutdown().await.unwrap();
}

#[tokio::test]
async fn workers_bound_the_calls_in_flight_and_the_load_is_reported() {
    let (url, _) = function_server().await;
    let mut config = HttpConfig::new(Platform::OpenFaas { gateway: url }, vec!["busy".into()]);
    config.workers = 1;
    let (computer, c) = computer_for(config).await;
    // Three calls at once on one worker: 300 ms each, one after the other.
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let mut c = c.clone();
            tokio::spawn(async move { call(&mut c, "busy", "", b"").await })
        })
        .collect();
    let mut ptimes = Vec::new();
    for call in calls {
        let resp = call.await.unwrap();
        assert_eq!(resp.retcode, "OK");
        ptimes.push(resp.ptime);
    }
    ptimes.sort();
    assert!(
        started.elapsed() >= Duration::from_millis(880),
        "{:?}",
        started.elapsed()
    );
    assert!(
        ptimes[2] >= 880,
        "the last waited for the others: {ptimes:?}"
    );
    // The worker was busy for about 0.9 s of the first second: StreamUtil says so.
    let mut util = EdgeComputerClient::connect(format!("http://{}", computer.util_addr()))
        .await
        .unwrap();
    let mut stream = util.stream_util(Void {}).await.unwrap().into_inner();
    let sample = tokio::time::timeout(Duration::from_secs(3), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(sample.values.contains_key("http"), "{:?}", sample.values);
    computer.shutdown().await.unwrap();
}
