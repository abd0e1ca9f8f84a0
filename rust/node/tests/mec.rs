//! ETSI MEC 016 on the controller (`--mec-listen`, docs/mec.md): the request and response
//! schemas of app_list and app_contexts, problem+json errors, and a device that follows its
//! context's referenceURI to a router and calls a lambda there.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lambdaroute_core::computer_model::Preset;
use lambdaroute_core::controller::Installer;
use lambdaroute_node::client::{self, ClientOptions};
use lambdaroute_node::computer::{self, ComputerOptions};
use lambdaroute_node::controller::{self, ControllerOptions, mec};
use lambdaroute_node::membership::{Announcer, Member};
use lambdaroute_node::router::{self, RouterOptions};
use serde_json::{Value, json};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<&str>,
) -> (u16, String, Value, Option<String>) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, content_type, value, location)
}

/// A ProblemDetails body: type, title, status (the HTTP status), detail, instance.
fn assert_problem(answer: &(u16, String, Value, Option<String>), status: u16, detail: &str) {
    let (code, content_type, body, _) = answer;
    assert_eq!(*code, status, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["status"], status);
    assert!(
        body["type"].is_string() && body["title"].is_string() && body["instance"].is_string(),
        "{body}"
    );
    let text = body["detail"].as_str().unwrap();
    assert!(text.contains(detail), "{text} should contain {detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_gets_a_context_follows_its_reference_uri_and_its_calls_succeed() {
    let controller = controller::spawn(ControllerOptions {
        mec_listen: Some(loopback()),
        ..ControllerOptions::new(loopback(), Installer::Flat)
    })
    .await
    .unwrap();
    let mec_base = format!("http://{}", controller.mec_listen.unwrap());
    let check = Duration::from_millis(100);
    let config = Preset::Raspberry.config();
    let computer = computer::spawn(ComputerOptions::new(loopback(), config.clone()))
        .await
        .unwrap();
    let announcer = Announcer::spawn(
        &controller.listen.to_string(),
        Member::computer(computer.endpoint(), &config),
        check,
        None,
    )
    .unwrap();
    let router = router::spawn(RouterOptions {
        listen: loopback(),
        table_listen: loopback(),
        controller: Some(controller.listen.to_string()),
        check_interval: check,
        ..RouterOptions::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let base = format!("{mec_base}{}", mec::BASE);

    // app_list: every lambda of the announced computers
    let start = Instant::now();
    let list = loop {
        let (status, content_type, body, _) = send(
            &http,
            reqwest::Method::GET,
            &format!("{base}/app_list"),
            None,
        )
        .await;
        assert_eq!((status, content_type.as_str()), (200, "application/json"));
        if body["appList"].as_array().is_some_and(|l| !l.is_empty()) {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no application listed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let apps = list["appList"].as_array().unwrap();
    let clambda = apps
        .iter()
        .find(|a| a["appInfo"]["appName"] == "clambda0")
        .unwrap_or_else(|| panic!("clambda0 listed: {list}"));
    for field in [
        "appDId",
        "appName",
        "appProvider",
        "appSoftVersion",
        "appDVersion",
        "appDescription",
    ] {
        assert!(
            clambda["appInfo"][field].is_string(),
            "appInfo.{field}: {clambda}"
        );
    }
    assert_eq!(clambda["appInfo"]["appProvider"], mec::PROVIDER);
    let (_, _, filtered, _) = send(
        &http,
        reqwest::Method::GET,
        &format!("{base}/app_list?appName=nope"),
        None,
    )
    .await;
    assert_eq!(filtered, json!({"appList": []}));
    let (_, _, filtered, _) = send(
        &http,
        reqwest::Method::GET,
        &format!("{base}/app_list?appName=clambda0&appProvider=lambdaroute"),
        None,
    )
    .await;
    assert_eq!(filtered["appList"].as_array().unwrap().len(), 1);

    // the router must be known before a context can name it
    let start = Instant::now();
    let request = json!({
        "associateDevAppId": "device-1",
        "callbackReference": "http://device.example/cb",
        "appLocationUpdates": false,
        "appAutoInstantiation": false,
        "appInfo": {"appName": "clambda0", "appProvider": "lambdaroute", "appDVersion": "1"},
    })
    .to_string();
    let created = loop {
        let answer = send(
            &http,
            reqwest::Method::POST,
            &format!("{base}/app_contexts"),
            Some(&request),
        )
        .await;
        if answer.0 == 201 {
            break answer;
        }
        assert_problem(&answer, 503, "no router");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the router was never announced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (_, content_type, context, location) = created;
    assert_eq!(content_type, "application/json");
    let id = context["contextId"].as_str().unwrap().to_owned();
    assert!(!id.is_empty() && id.len() <= 32, "{id}");
    assert_eq!(
        location.unwrap(),
        format!("{}/app_contexts/{id}", mec::BASE)
    );
    assert_eq!(context["associateDevAppId"], "device-1");
    assert_eq!(context["callbackReference"], "http://device.example/cb");
    assert_eq!(context["appLocationUpdates"], false);
    assert_eq!(context["appAutoInstantiation"], false);
    assert_eq!(context["appInfo"]["appName"], "clambda0");
    assert_eq!(context["appInfo"]["appDVersion"], "1");
    let instance = &context["appInfo"]["userAppInstanceInfo"][0];
    assert!(instance["appInstanceId"].is_string(), "{context}");
    assert_eq!(
        instance["referenceURI"],
        format!("http://{}", router.listen)
    );

    // errors: problem+json, naming the field
    let post = |body: &'static str| {
        let http = http.clone();
        let url = format!("{base}/app_contexts");
        async move { send(&http, reqwest::Method::POST, &url, Some(body)).await }
    };
    assert_problem(&post("{not json").await, 400, "not JSON");
    assert_problem(
        &post(r#"{"appInfo": {"appName": "clambda0"}}"#).await,
        400,
        "associateDevAppId",
    );
    assert_problem(
        &post(r#"{"associateDevAppId": "a", "appInfo": {}}"#).await,
        400,
        "appInfo.appName",
    );
    assert_problem(
        &post(
            r#"{"associateDevAppId": "a", "appInfo": {"appName": "clambda0", "appDVersion": 1}}"#,
        )
        .await,
        400,
        "appInfo.appDVersion must be a string",
    );
    assert_problem(&post(r#"{"associateDevAppId": "a", "appAutoInstantiation": "yes", "appInfo": {"appName": "clambda0"}}"#).await, 400, "appAutoInstantiation must be a boolean");
    assert_problem(
        &post(
            r#"{"contextId": "x", "associateDevAppId": "a", "appInfo": {"appName": "clambda0"}}"#,
        )
        .await,
        400,
        "contextId",
    );
    assert_problem(
        &post(r#"{"associateDevAppId": "a", "appInfo": {"appName": "nope"}}"#).await,
        404,
        "app_list",
    );
    assert_problem(
        &send(
            &http,
            reqwest::Method::GET,
            &format!("{mec_base}/elsewhere"),
            None,
        )
        .await,
        404,
        "app_contexts",
    );

    // PUT: only callbackReference changes
    let mut changed = context.clone();
    changed["callbackReference"] = json!("http://device.example/other");
    let url = format!("{base}/app_contexts/{id}");
    let (status, _, _, _) = send(
        &http,
        reqwest::Method::PUT,
        &url,
        Some(&changed.to_string()),
    )
    .await;
    assert_eq!(status, 204);
    changed["appInfo"]["appName"] = json!("other");
    assert_problem(
        &send(
            &http,
            reqwest::Method::PUT,
            &url,
            Some(&changed.to_string()),
        )
        .await,
        400,
        "only callbackReference",
    );
    assert_problem(
        &send(
            &http,
            reqwest::Method::PUT,
            &format!("{base}/app_contexts/nope"),
            Some(&context.to_string()),
        )
        .await,
        404,
        "no application context",
    );

    // DELETE
    let (status, _, _, _) = send(&http, reqwest::Method::DELETE, &url, None).await;
    assert_eq!(status, 204);
    assert_problem(
        &send(&http, reqwest::Method::DELETE, &url, None).await,
        404,
        "no application context",
    );

    // The device's side: a context, then calls to the router its referenceURI names
    let device = mec::open_context(&mec_base, "clambda0", "device-2")
        .await
        .unwrap();
    assert_eq!(device.router, router.listen.to_string());
    let report = client::run(ClientOptions {
        max_calls: Some(5),
        duration: None,
        ..ClientOptions::new(device.router.clone(), "clambda0")
    })
    .await
    .unwrap();
    assert_eq!(report.calls.len(), 5);
    assert!(
        report
            .calls
            .iter()
            .all(|c| c.status == "OK" && c.responder == computer.endpoint()),
        "{:?}",
        report.calls
    );
    mec::close_context(&device).await.unwrap();
    assert!(mec::close_context(&device).await.is_err());
    let error = mec::open_context(&mec_base, "nope", "device-3")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("HTTP 404") && error.contains("app_list"),
        "{error}"
    );

    announcer.stop().await;
    router.shutdown().await.unwrap();
    computer.shutdown().await.unwrap();
    controller.shutdown().await.unwrap();
}
