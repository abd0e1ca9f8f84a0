//! ETSI GS MEC 016 (device application interface, Mx2) on the controller (docs/mec.md):
//! a device application asks which applications (lambdas) are on offer and, for one, which
//! router to use, chosen by the device's location.
//!
//! | request | answer |
//! |---|---|
//! | `GET /dev_app/v1/app_list[?appName=..&appProvider=..&appSoftVersion=..]` | 200 `ApplicationList{appList[{appInfo}]}` |
//! | `POST /dev_app/v1/app_contexts`, an `AppContext` without `contextId` | 201, `Location`, the `AppContext` with `contextId` and `appInfo.userAppInstanceInfo[{appInstanceId, referenceURI}]` |
//! | `PUT /dev_app/v1/app_contexts/{contextId}`, the `AppContext` | 204 (only `callbackReference` changes) |
//! | `DELETE /dev_app/v1/app_contexts/{contextId}` | 204 |
//!
//! Errors are `application/problem+json` `ProblemDetails{type, title, status, detail, instance}`.
//! The `referenceURI` is `http://ROUTER` (the router's lambda endpoint, gRPC `EdgeServer`):
//! the announced router nearest to the device by the controller's distance matrix when the
//! device's address is a node of it, else the one whose address shares the longest prefix
//! with the device's (ties: the lowest endpoint).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use lambdaroute_core::controller::Distances;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::service::Controller;

/// The API's root under the listener.
pub const BASE: &str = "/dev_app/v1";
/// `appProvider` of every application: lambdaroute offers the lambdas of its computers.
pub const PROVIDER: &str = "lambdaroute";
/// Application contexts held at most; more are refused (429) until some are deleted.
pub const MAX_CONTEXTS: usize = 65_536;
/// Largest request body.
const MAX_BODY: usize = 64 << 10;
/// Longest `associateDevAppId` and `contextId` (MEC 016: 32 characters).
const MAX_ID: usize = 32;

/// Where a device sits, and what the controller knows, to choose its router.
pub struct Offer {
    /// Announced routers' lambda endpoints.
    pub routers: Vec<String>,
    /// Lambdas on offer, with the computers that run each.
    pub lambdas: BTreeMap<String, usize>,
}

/// The router for a device at `device`: the nearest by `distances` when the device is a node
/// of the matrix and reaches a router, else by the longest common address prefix; ties go to
/// the lowest endpoint. Returns the router and why it was chosen.
pub fn choose_router(
    routers: &[String],
    device: IpAddr,
    distances: Option<&Distances>,
) -> Option<(String, String)> {
    if let Some(distances) = distances
        && let Some(d) = distances.lookup(&SocketAddr::new(device, 0).to_string())
    {
        let nearest = routers
            .iter()
            .filter_map(|r| Some((distances.hops(d, distances.lookup(r)?)?, r)))
            .min();
        if let Some((hops, router)) = nearest {
            return Some((
                router.clone(),
                format!("nearest router by the distance matrix ({hops} hops)"),
            ));
        }
    }
    routers
        .iter()
        .map(|r| (std::cmp::Reverse(common_prefix(device, r)), r))
        .min()
        .map(|(std::cmp::Reverse(bits), r)| {
            (
                r.clone(),
                format!("longest common address prefix ({bits} bits)"),
            )
        })
}

/// Leading bits `device` shares with the host of `endpoint` (0 for a host name or another family).
fn common_prefix(device: IpAddr, endpoint: &str) -> u32 {
    let host = lambdaroute_core::controller::key::split_endpoint(endpoint)
        .and_then(|(host, _)| host.parse::<IpAddr>().ok());
    match (device, host) {
        (IpAddr::V4(a), Some(IpAddr::V4(b))) => (u32::from(a) ^ u32::from(b)).leading_zeros(),
        (IpAddr::V6(a), Some(IpAddr::V6(b))) => (u128::from(a) ^ u128::from(b)).leading_zeros(),
        _ => 0,
    }
}

struct Mec {
    controller: Arc<Controller>,
    distances: Option<Distances>,
    contexts: Mutex<HashMap<String, Value>>,
}

/// A MEC 016 error: `application/problem+json`.
struct Problem {
    status: StatusCode,
    detail: String,
    instance: String,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "instance": self.instance,
        });
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

fn problem(status: StatusCode, uri: &Uri, detail: impl Into<String>) -> Problem {
    Problem {
        status,
        detail: detail.into(),
        instance: uri.path().to_owned(),
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Serves MEC 016 on `listener` until `shutdown`.
pub(crate) async fn serve(
    controller: Arc<Controller>,
    distances: Option<Distances>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    info!(mec_listen = %listener.local_addr()?, "MEC 016 device application interface on {BASE}");
    let state = Arc::new(Mec {
        controller,
        distances,
        contexts: Mutex::new(HashMap::new()),
    });
    let app = axum::Router::new()
        .route(&format!("{BASE}/app_list"), get(app_list))
        .route(&format!("{BASE}/app_contexts"), post(create))
        .route(
            &format!("{BASE}/app_contexts/{{id}}"),
            put(update).delete(delete),
        )
        .fallback(|uri: Uri| async move {
            problem(
                StatusCode::NOT_FOUND,
                &uri,
                format!("no such resource: the API is {BASE}/app_list and {BASE}/app_contexts"),
            )
        })
        .with_state(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("MEC 016 service failed")
}

fn app_info(lambda: &str, computers: usize) -> Value {
    json!({
        "appDId": lambda,
        "appName": lambda,
        "appProvider": PROVIDER,
        "appSoftVersion": "1",
        "appDVersion": "1",
        "appDescription": format!("lambda {lambda}, run by {computers} computer{}", if computers == 1 { "" } else { "s" }),
    })
}

async fn app_list(State(mec): State<Arc<Mec>>, uri: Uri) -> Response {
    let pairs = match Query::<Vec<(String, String)>>::try_from_uri(&uri) {
        Ok(Query(pairs)) => pairs,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &uri,
                format!("the query string is malformed: {e}"),
            )
            .into_response();
        }
    };
    let wanted = |field: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(k, _)| k == field)
            .flat_map(|(_, v)| v.split(',').map(str::to_owned))
            .collect()
    };
    let (names, providers, versions) = (
        wanted("appName"),
        wanted("appProvider"),
        wanted("appSoftVersion"),
    );
    let offer = mec.controller.offer();
    let list: Vec<Value> = offer
        .lambdas
        .iter()
        .filter(|(lambda, _)| names.is_empty() || names.contains(lambda))
        .filter(|_| providers.is_empty() || providers.iter().any(|p| p == PROVIDER))
        .filter(|_| versions.is_empty() || versions.iter().any(|v| v == "1"))
        .map(|(lambda, computers)| json!({"appInfo": app_info(lambda, *computers)}))
        .collect();
    json_response(StatusCode::OK, &json!({"appList": list}))
}

/// The request's `AppContext`, checked: an object with a string `associateDevAppId` of 1 to
/// 32 characters, an `appInfo` object with a string `appName`, the optional fields of their
/// types.
fn parse_context(bytes: &[u8], uri: &Uri) -> Result<Map<String, Value>, Problem> {
    let bad = |detail: String| problem(StatusCode::BAD_REQUEST, uri, detail);
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        bad(format!(
            "the body is not JSON: {e}; send an AppContext object"
        ))
    })?;
    let Value::Object(context) = value else {
        return Err(bad("the body must be an AppContext object".into()));
    };
    match context.get("associateDevAppId") {
        Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_ID => {}
        _ => {
            return Err(bad(format!(
                "associateDevAppId: give the device application's id, a string of 1 to {MAX_ID} characters"
            )));
        }
    }
    for field in ["appLocationUpdates", "appAutoInstantiation"] {
        if context.get(field).is_some_and(|v| !v.is_boolean()) {
            return Err(bad(format!("{field} must be a boolean")));
        }
    }
    if context
        .get("callbackReference")
        .is_some_and(|v| !v.is_string())
    {
        return Err(bad("callbackReference must be a URI string".into()));
    }
    let Some(Value::Object(info)) = context.get("appInfo") else {
        return Err(bad(
            "appInfo: give an object with appName (a lambda of GET app_list)".into(),
        ));
    };
    if !info.get("appName").is_some_and(Value::is_string) {
        return Err(bad(
            "appInfo.appName: give the application's name (a lambda of GET app_list), a string"
                .into(),
        ));
    }
    for field in [
        "appDId",
        "appProvider",
        "appSoftVersion",
        "appDVersion",
        "appDescription",
        "appPackageSource",
    ] {
        if info.get(field).is_some_and(|v| !v.is_string()) {
            return Err(bad(format!("appInfo.{field} must be a string")));
        }
    }
    if info
        .get("userAppInstanceInfo")
        .is_some_and(|v| !v.is_array())
    {
        return Err(bad("appInfo.userAppInstanceInfo must be an array".into()));
    }
    Ok(context)
}

async fn read_body(body: Body, uri: &Uri) -> Result<axum::body::Bytes, Problem> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            uri,
            format!("the body is larger than {MAX_BODY} bytes"),
        )
    })
}

async fn create(
    State(mec): State<Arc<Mec>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    body: Body,
) -> Response {
    create_inner(&mec, peer.ip(), &uri, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn create_inner(
    mec: &Mec,
    device: IpAddr,
    uri: &Uri,
    body: Body,
) -> Result<Response, Problem> {
    let mut context = parse_context(&read_body(body, uri).await?, uri)?;
    if context.contains_key("contextId") {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            uri,
            "contextId: leave it out of a new AppContext; the MEC system assigns it",
        ));
    }
    let name = context["appInfo"]["appName"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let offer = mec.controller.offer();
    let Some(computers) = offer.lambdas.get(&name) else {
        return Err(problem(
            StatusCode::NOT_FOUND,
            uri,
            format!(
                "appInfo.appName '{}': no such application; GET {BASE}/app_list lists those on offer",
                lambdaroute_core::text::clip(&name)
            ),
        ));
    };
    if let Some(provider) = context["appInfo"]
        .get("appProvider")
        .and_then(Value::as_str)
        && provider != PROVIDER
    {
        return Err(problem(
            StatusCode::NOT_FOUND,
            uri,
            format!(
                "appInfo.appProvider '{}': the applications here are provided by '{PROVIDER}'",
                lambdaroute_core::text::clip(provider)
            ),
        ));
    }
    let Some((router, why)) = choose_router(&offer.routers, device, mec.distances.as_ref()) else {
        return Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            uri,
            "no router has announced itself to the controller yet: try again later",
        ));
    };
    let id = format!("{:032x}", rand::random::<u128>());
    let reference = format!("http://{router}");
    let mut info = app_info(&name, *computers);
    if let (Value::Object(info), Some(Value::Object(asked))) = (&mut info, context.get("appInfo")) {
        // The device's own descriptive fields are kept; the instance is the MEC system's.
        for (k, v) in asked {
            if k != "userAppInstanceInfo" && k != "appName" {
                info.insert(k.clone(), v.clone());
            }
        }
        info.insert(
            "userAppInstanceInfo".into(),
            json!([{ "appInstanceId": format!("{name}@{router}"), "referenceURI": reference }]),
        );
    }
    context.insert("contextId".into(), Value::String(id.clone()));
    context.insert("appInfo".into(), info);
    for field in ["appLocationUpdates", "appAutoInstantiation"] {
        context.entry(field).or_insert(Value::Bool(false));
    }
    let context = Value::Object(context);
    {
        let mut contexts = mec.contexts.lock();
        if contexts.len() >= MAX_CONTEXTS {
            return Err(problem(
                StatusCode::TOO_MANY_REQUESTS,
                uri,
                format!(
                    "{MAX_CONTEXTS} application contexts are open: DELETE those no longer used"
                ),
            ));
        }
        contexts.insert(id.clone(), context.clone());
    }
    info!(context = %id, lambda = %name, %device, %router, reason = %why, "MEC application context created");
    let mut response = json_response(StatusCode::CREATED, &context);
    if let Ok(location) = format!("{BASE}/app_contexts/{id}").parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn update(
    State(mec): State<Arc<Mec>>,
    Path(id): Path<String>,
    uri: Uri,
    body: Body,
) -> Response {
    let result = async {
        let asked = parse_context(&read_body(body, &uri).await?, &uri)?;
        let mut contexts = mec.contexts.lock();
        let Some(Value::Object(context)) = contexts.get_mut(&id) else {
            return Err(problem(StatusCode::NOT_FOUND, &uri, format!("no application context '{}'", lambdaroute_core::text::clip(&id))));
        };
        if asked.get("contextId").is_some_and(|c| c.as_str() != Some(id.as_str())) {
            return Err(problem(StatusCode::BAD_REQUEST, &uri, "contextId: must be the context's id of the URI"));
        }
        if asked.get("associateDevAppId") != context.get("associateDevAppId")
            || asked["appInfo"].get("appName") != context["appInfo"].get("appName")
        {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                &uri,
                "only callbackReference may change: send the context's associateDevAppId and appInfo.appName as they are",
            ));
        }
        match asked.get("callbackReference") {
            Some(reference) => context.insert("callbackReference".into(), reference.clone()),
            None => context.remove("callbackReference"),
        };
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn delete(State(mec): State<Arc<Mec>>, Path(id): Path<String>, uri: Uri) -> Response {
    if mec.contexts.lock().remove(&id).is_some() {
        info!(context = %id, "MEC application context deleted");
        StatusCode::NO_CONTENT.into_response()
    } else {
        problem(
            StatusCode::NOT_FOUND,
            &uri,
            format!(
                "no application context '{}'",
                lambdaroute_core::text::clip(&id)
            ),
        )
        .into_response()
    }
}

// ===== the device's side =====

/// An application context a device holds: the router to call.
#[derive(Clone, Debug)]
pub struct DeviceContext {
    /// The context's `Location` (URL), to delete it.
    pub url: String,
    /// `contextId`.
    pub id: String,
    /// `referenceURI` as given.
    pub reference_uri: String,
    /// The router's lambda endpoint, `host:port`.
    pub router: String,
}

/// Asks the MEC 016 service at `base` (`http://host:port`, with or without `/dev_app/v1`)
/// for an application context of `lambda` for the device application `device_app_id`, and
/// returns the router its `referenceURI` names.
pub async fn open_context(
    base: &str,
    lambda: &str,
    device_app_id: &str,
) -> anyhow::Result<DeviceContext> {
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix(BASE).unwrap_or(base);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{base}{BASE}/app_contexts");
    let request = json!({
        "associateDevAppId": device_app_id,
        "appLocationUpdates": false,
        "appAutoInstantiation": false,
        "appInfo": {"appName": lambda, "appProvider": PROVIDER},
    });
    let response = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(request.to_string())
        .send()
        .await
        .with_context(|| format!("cannot reach the MEC service at {url}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("POST {url}: HTTP {status}, no answer body"))?;
    let body: Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "POST {url}: HTTP {status}, the answer is not JSON: {}",
            lambdaroute_core::text::clip(&text)
        )
    })?;
    if status != reqwest::StatusCode::CREATED {
        anyhow::bail!(
            "POST {url}: HTTP {status}: {}",
            body["detail"].as_str().unwrap_or("no detail")
        );
    }
    let id = body["contextId"]
        .as_str()
        .context("the AppContext has no contextId")?
        .to_owned();
    let reference_uri = body["appInfo"]["userAppInstanceInfo"][0]["referenceURI"]
        .as_str()
        .context("the AppContext has no appInfo.userAppInstanceInfo[0].referenceURI")?
        .to_owned();
    let router = reference_uri
        .split_once("://")
        .map_or(reference_uri.as_str(), |(_, rest)| rest)
        .trim_end_matches('/')
        .to_owned();
    Ok(DeviceContext {
        url: format!("{url}/{id}"),
        id,
        reference_uri,
        router,
    })
}

/// Deletes a context opened by [`open_context`].
pub async fn close_context(context: &DeviceContext) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .delete(&context.url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("DELETE {}", context.url))?;
    if response.status() != reqwest::StatusCode::NO_CONTENT {
        warn!(context = %context.id, status = %response.status(), "the MEC service did not delete the context");
        anyhow::bail!("DELETE {}: HTTP {}", context.url, response.status());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambdaroute_core::controller::NodeKey;

    #[test]
    fn the_nearest_router_by_distance_else_by_address() {
        let routers = vec!["10.0.0.1:6473".to_owned(), "10.0.0.9:6473".to_owned()];
        let nodes: Vec<NodeKey> = ["10.0.0.1", "10.0.0.9", "10.0.0.5"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let distances = Distances::new(
            nodes,
            vec![
                vec![Some(0), Some(4), Some(3)],
                vec![Some(4), Some(0), Some(1)],
                vec![Some(3), Some(1), Some(0)],
            ],
        )
        .unwrap();
        let (router, why) =
            choose_router(&routers, "10.0.0.5".parse().unwrap(), Some(&distances)).unwrap();
        assert_eq!(router, "10.0.0.9:6473");
        assert!(why.contains("1 hops"), "{why}");
        // Not in the matrix: by address (10.0.0.8 shares 31 bits with 10.0.0.9, 28 with .1)
        let (router, _) =
            choose_router(&routers, "10.0.0.8".parse().unwrap(), Some(&distances)).unwrap();
        assert_eq!(router, "10.0.0.9:6473");
        let (router, why) = choose_router(&routers, "10.0.0.2".parse().unwrap(), None).unwrap();
        assert_eq!(router, "10.0.0.1:6473");
        assert!(why.contains("prefix"), "{why}");
        assert!(choose_router(&[], "10.0.0.2".parse().unwrap(), None).is_none());
    }
}
