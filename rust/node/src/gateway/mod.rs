//! The OpenWhisk-compatible front door (`lambdaroute gateway`, docs/openwhisk.md): Apache
//! OpenWhisk's REST API in front of a router, so that OpenWhisk's clients (its CLI `wsk`, its
//! JavaScript client) invoke lambdas unchanged and lambdaroute dispatches them to the edge.
//!
//! - `POST /api/v1/namespaces/{ns}/actions/{action}?blocking=&result=`: a call of the lambda
//!   through the router's `EdgeServer` ([`mapping`] says how parameters and answers map);
//!   blocking with `result=true` answers the result, blocking without it the activation
//!   record, non-blocking `202 {"activationId"}`;
//! - `GET .../activations[/{id}[/result|/logs]]`: earlier calls, kept for a bounded time and
//!   count ([`activations`]);
//! - `GET .../actions[/{action}]`: the lambdas of the router's table 0 (its table service);
//! - basic authentication with OpenWhisk's `uuid:key` keys ([`keys`]), `_` for the key's own
//!   namespace, OpenWhisk's JSON error bodies and status codes.

pub mod activations;
pub mod keys;
pub mod mapping;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lambdaroute_proto::RETCODE_OK;
use lambdaroute_proto::uiiit::edge_router_client::EdgeRouterClient;
use lambdaroute_proto::uiiit::edge_server_client::EdgeServerClient;
use lambdaroute_proto::uiiit::{LambdaResponse, TableId};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tracing::{debug, info, warn};

use crate::destinations::endpoint;
use activations::Activations;
use keys::{AuthError, Keys, Subject};
use mapping::{Finished, Outcome};

/// Default address of the gateway (OpenWhisk's API host listens on 443/80; 3233 is the port
/// of OpenWhisk's standalone server).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:3233";
/// How long a blocking invocation waits before it answers `202` with the activation id.
pub const DEFAULT_BLOCKING_TIMEOUT: Duration = Duration::from_secs(60);
/// Time limit of one call to the router.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Calls in flight at most; more are refused with 429.
pub const DEFAULT_MAX_CALLS: usize = 1024;
/// Largest request body (OpenWhisk's default payload limit, 1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Activation records kept at most.
pub const DEFAULT_ACTIVATIONS: usize = 10_000;
/// How long an activation record is kept.
pub const DEFAULT_ACTIVATION_TTL: Duration = Duration::from_secs(600);
/// Largest answer accepted from the router.
const MAX_ANSWER_BYTES: usize = 16 << 20;
/// How long the router's list of lambdas is reused before it is read again.
const ACTIONS_FRESH: Duration = Duration::from_millis(500);

/// How a gateway runs.
#[derive(Clone, Debug)]
pub struct GatewayOptions {
    /// Address to serve the OpenWhisk API on.
    pub listen: SocketAddr,
    /// The router's lambda service (`host:port`).
    pub router: String,
    /// The router's table service (`host:port`), for the list of actions.
    pub router_table: String,
    /// Accepted keys; `None`: no authentication, every namespace open (tests).
    pub keys: Option<Keys>,
    /// See [`DEFAULT_BLOCKING_TIMEOUT`].
    pub blocking_timeout: Duration,
    /// See [`DEFAULT_CALL_TIMEOUT`].
    pub call_timeout: Duration,
    /// See [`DEFAULT_MAX_CALLS`].
    pub max_calls: usize,
    /// See [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// See [`DEFAULT_ACTIVATIONS`].
    pub activations: usize,
    /// See [`DEFAULT_ACTIVATION_TTL`].
    pub activation_ttl: Duration,
}

impl GatewayOptions {
    /// A gateway on `listen` in front of the router at `router`, its table service on the
    /// same host at port 6474, with the defaults above and no authentication.
    pub fn new(listen: SocketAddr, router: &str) -> Self {
        let host = router.rsplit_once(':').map_or(router, |(host, _)| host);
        GatewayOptions {
            listen,
            router: router.to_owned(),
            router_table: format!("{host}:6474"),
            keys: None,
            blocking_timeout: DEFAULT_BLOCKING_TIMEOUT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_calls: DEFAULT_MAX_CALLS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            activations: DEFAULT_ACTIVATIONS,
            activation_ttl: DEFAULT_ACTIVATION_TTL,
        }
    }
}

/// A gateway running in this process.
pub struct GatewayHandle {
    /// Bound address.
    pub listen: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl GatewayHandle {
    /// Stops serving and waits.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.context("gateway task panicked")?
    }
}

/// Starts a gateway in the background; returns once it listens.
pub async fn spawn(options: GatewayOptions) -> anyhow::Result<GatewayHandle> {
    let listener = bind(options.listen).await?;
    let listen = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(serve(options, listener, async {
        let _ = stopped.await;
    }));
    Ok(GatewayHandle {
        listen,
        stop: Some(stop),
        task,
    })
}

/// Runs a gateway until `shutdown` completes.
pub async fn serve_until(
    options: GatewayOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = bind(options.listen).await?;
    serve(options, listener, shutdown).await
}

async fn bind(listen: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (--listen)"))
}

async fn serve(
    options: GatewayOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = endpoint(&options.router, Duration::from_secs(5))
        .map_err(|e| anyhow::anyhow!("--router: {e}"))?
        .connect_lazy();
    let table = endpoint(&options.router_table, Duration::from_secs(5))
        .map_err(|e| anyhow::anyhow!("--router-table: {e}"))?
        .connect_lazy();
    let state = Arc::new(Gateway {
        router: EdgeServerClient::new(router)
            .max_decoding_message_size(MAX_ANSWER_BYTES)
            .max_encoding_message_size(MAX_ANSWER_BYTES),
        table: EdgeRouterClient::new(table),
        activations: Activations::new(options.activations, options.activation_ttl),
        calls: Arc::new(Semaphore::new(options.max_calls.max(1))),
        lambdas: tokio::sync::Mutex::new(None),
        options,
    });
    info!(
        listen = %listener.local_addr()?,
        router = %state.options.router,
        router_table = %state.options.router_table,
        auth = state.options.keys.is_some(),
        "gateway ready: OpenWhisk API on /api/v1"
    );
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("gateway failed")?;
    info!("gateway stopped");
    Ok(())
}

fn app(state: Arc<Gateway>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1", get(api_info))
        .route("/api/v1/namespaces", get(namespaces))
        .route("/api/v1/namespaces/{ns}/actions", get(list_actions))
        .route(
            "/api/v1/namespaces/{ns}/actions/{*name}",
            get(get_action)
                .post(invoke)
                .put(read_only)
                .delete(read_only),
        )
        .route("/api/v1/namespaces/{ns}/activations", get(list_activations))
        .route(
            "/api/v1/namespaces/{ns}/activations/{id}",
            get(get_activation),
        )
        .route(
            "/api/v1/namespaces/{ns}/activations/{id}/{part}",
            get(get_activation_part),
        )
        .fallback(not_found)
        .with_state(state)
}

/// The lambdas of a router's table 0, with their number of destinations.
type Lambdas = Arc<BTreeMap<String, usize>>;

struct Gateway {
    options: GatewayOptions,
    router: EdgeServerClient<Channel>,
    table: EdgeRouterClient<Channel>,
    activations: Activations,
    calls: Arc<Semaphore>,
    /// The lambdas of the router's table 0 (with their number of destinations), and when
    /// they were read.
    lambdas: tokio::sync::Mutex<Option<(Instant, Lambdas)>>,
}

/// An OpenWhisk error answer: status and `{"error", "code"}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.0, &mapping::error_body(&self.1, &transaction_id()))
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

fn transaction_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn not_found_error() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.".into(),
    )
}

impl Gateway {
    /// The caller's subject, and the namespace it asked for, resolved (`_` is its own).
    fn authorize(
        &self,
        headers: &HeaderMap,
        namespace: &str,
    ) -> Result<(Subject, String), ApiError> {
        let subject = match &self.options.keys {
            None => Subject {
                namespace: keys::DEFAULT_NAMESPACE.to_owned(),
                any_namespace: true,
            },
            Some(keys) => keys
                .check(
                    headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok()),
                )
                .map_err(|error| {
                    ApiError(
                        StatusCode::UNAUTHORIZED,
                        match error {
                            AuthError::Missing => "The resource requires authentication, which was not supplied with the request.",
                            AuthError::Invalid => "The supplied authentication is invalid.",
                        }
                        .into(),
                    )
                })?,
        };
        let resolved = if namespace == "_" {
            subject.namespace.clone()
        } else {
            namespace.to_owned()
        };
        if resolved != subject.namespace && !subject.any_namespace {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("The supplied authentication is not authorized to access '{resolved}'."),
            ));
        }
        if resolved.is_empty() || resolved.contains('/') {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "The namespace '{resolved}' is not valid: give a name without `/`, or `_`."
                ),
            ));
        }
        Ok((subject, resolved))
    }

    /// The lambdas of the router's table 0 and their destinations, read again when older
    /// than [`ACTIONS_FRESH`] or when `refresh` asks for it.
    async fn lambdas(&self, refresh: bool) -> Result<Lambdas, ApiError> {
        let mut cached = self.lambdas.lock().await;
        if let Some((at, lambdas)) = cached.as_ref()
            && !refresh
            && at.elapsed() < ACTIONS_FRESH
        {
            return Ok(Arc::clone(lambdas));
        }
        let mut client = self.table.clone();
        let table = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_table(TableId { value: 0 }),
        )
        .await
        .map_err(|_| "no answer within 5 s".to_owned())
        .and_then(|r| r.map_err(|status| status.message().to_owned()))
        .map_err(|error| {
            warn!(router_table = %self.options.router_table, %error, "cannot read the router's table");
            ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "The router's table service at {} cannot be read: {error}",
                    self.options.router_table
                ),
            )
        })?;
        let mut lambdas = BTreeMap::new();
        for entry in table.into_inner().entries {
            *lambdas.entry(entry.lambda).or_insert(0) += 1;
        }
        let lambdas = Arc::new(lambdas);
        *cached = Some((Instant::now(), Arc::clone(&lambdas)));
        Ok(lambdas)
    }

    /// Whether the router can dispatch `lambda` (the table read again on a miss); `true` when
    /// the table cannot be read, so that the call decides.
    async fn knows(&self, lambda: &str) -> bool {
        for refresh in [false, true] {
            match self.lambdas(refresh).await {
                Ok(lambdas) if lambdas.contains_key(lambda) => return true,
                Ok(_) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

async fn api_info() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "description": "lambdaroute: OpenWhisk API in front of an e-router",
            "api_paths": ["/api/v1"],
            "runtime": {},
            "limits": {"actions_per_minute": null, "triggers_per_minute": null, "concurrent_actions": null},
        }),
    )
}

async fn namespaces(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    match gw.authorize(&headers, "_") {
        Ok((_, namespace)) => json_response(StatusCode::OK, &json!([namespace])),
        Err(error) => error.into_response(),
    }
}

async fn not_found() -> Response {
    not_found_error().into_response()
}

async fn read_only(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path((ns, _)): Path<(String, String)>,
) -> Response {
    if let Err(error) = gw.authorize(&headers, &ns) {
        return error.into_response();
    }
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        "lambdaroute's gateway does not create, update or delete actions: the lambdas are those of the router's table (installed by its controller or `lambdaroute table`).".into(),
    )
    .into_response()
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    limit: Option<String>,
    skip: Option<String>,
    name: Option<String>,
}

fn parse_query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri).map(|q| q.0).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("The query string is malformed: {e}"),
        )
    })
}

fn number(value: &Option<String>, field: &str, default: usize) -> Result<usize, ApiError> {
    match value {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "The query parameter `{field}` must be a whole number, not '{}'.",
                    lambdaroute_core::text::clip(text)
                ),
            )
        }),
    }
}

fn action_doc(namespace: &str, name: &str, destinations: usize) -> Value {
    json!({
        "namespace": namespace,
        "name": name,
        "version": mapping::VERSION,
        "publish": false,
        "exec": {"kind": "lambdaroute", "binary": false},
        "annotations": [
            {"key": "exec", "value": "lambdaroute"},
            {"key": "destinations", "value": destinations},
        ],
        "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
        "parameters": [],
        "updated": 0,
    })
}

async fn list_actions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(ns): Path<String>,
    uri: Uri,
) -> Response {
    let result = async {
        let (subject, namespace) = gw.authorize(&headers, &ns)?;
        let query: ListQuery = parse_query(&uri)?;
        let limit = number(&query.limit, "limit", 30)?;
        let skip = number(&query.skip, "skip", 0)?;
        let lambdas = gw.lambdas(false).await?;
        let docs: Vec<Value> = lambdas
            .iter()
            .filter_map(|(lambda, destinations)| {
                let (ns, name) = mapping::action_of_lambda(&subject.namespace, &namespace, lambda)?;
                Some(action_doc(&ns, &name, *destinations))
            })
            .skip(skip)
            .take(if limit == 0 { usize::MAX } else { limit })
            .collect();
        Ok::<_, ApiError>(json_response(StatusCode::OK, &Value::Array(docs)))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn get_action(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    let result = async {
        let (subject, namespace) = gw.authorize(&headers, &ns)?;
        mapping::check_action_name(&name).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
        let lambda = mapping::lambda_name(&subject.namespace, &namespace, &name);
        let lambdas = gw.lambdas(true).await?;
        let destinations = *lambdas.get(&lambda).ok_or_else(not_found_error)?;
        let (ns, short) = mapping::action_of_lambda(&subject.namespace, &namespace, &lambda)
            .ok_or_else(not_found_error)?;
        Ok::<_, ApiError>(json_response(
            StatusCode::OK,
            &action_doc(&ns, &short, destinations),
        ))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Default, Deserialize)]
struct InvokeQuery {
    blocking: Option<String>,
    result: Option<String>,
}

fn flag(value: &Option<String>, field: &str) -> Result<bool, ApiError> {
    match value.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "The query parameter `{field}` must be `true` or `false`, not '{}'.",
                lambdaroute_core::text::clip(other)
            ),
        )),
    }
}

async fn invoke(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    uri: Uri,
    body: Body,
) -> Response {
    invoke_inner(gw, headers, ns, name, uri, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn invoke_inner(
    gw: Arc<Gateway>,
    headers: HeaderMap,
    ns: String,
    name: String,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let (subject, namespace) = gw.authorize(&headers, &ns)?;
    let query: InvokeQuery = parse_query(&uri)?;
    let blocking = flag(&query.blocking, "blocking")?;
    let want_result = flag(&query.result, "result")?;
    mapping::check_action_name(&name).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let limit = gw.options.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request content was too large (limit: {limit} bytes)."),
        )
    })?;
    let params: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("The request content was malformed:\n{e}"),
            )
        })?
    };
    let lambda = mapping::lambda_name(&subject.namespace, &namespace, &name);
    let request =
        mapping::request(&lambda, params).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    if !gw.knows(&lambda).await {
        return Err(not_found_error());
    }
    let permit = Arc::clone(&gw.calls).try_acquire_owned().map_err(|_| {
        ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many concurrent requests in flight (allowed: {}).",
                gw.options.max_calls
            ),
        )
    })?;
    let (record_ns, short) = match name.split_once('/') {
        Some((package, action)) => (format!("{namespace}/{package}"), action.to_owned()),
        None => (namespace.clone(), name.clone()),
    };
    let id = format!("{:032x}", rand::random::<u128>());
    let start = now_ms();
    let (done, finished) = oneshot::channel();
    let task_gw = Arc::clone(&gw);
    let task_id = id.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let mut client = task_gw.router.clone();
        let call =
            tokio::time::timeout(task_gw.options.call_timeout, client.run_lambda(request)).await;
        let (outcome, result, answer) = classify(call, task_gw.options.call_timeout);
        let finished = Finished {
            id: task_id.clone(),
            namespace: record_ns,
            name: short,
            subject: subject.namespace,
            start,
            end: now_ms(),
            outcome,
            result,
            answer,
        };
        debug!(activation = %task_id, lambda = %lambda, status = outcome.status(), "activation");
        let record = mapping::activation(&finished);
        task_gw
            .activations
            .insert(task_id, record.clone(), Instant::now());
        let _ = done.send((finished, record));
    });
    let accepted = || {
        let mut response = json_response(StatusCode::ACCEPTED, &json!({"activationId": id}));
        if let Ok(value) = HeaderValue::from_str(&id) {
            response
                .headers_mut()
                .insert("x-openwhisk-activation-id", value);
        }
        response
    };
    if !blocking {
        return Ok(accepted());
    }
    let Ok(Ok((finished, record))) =
        tokio::time::timeout(gw.options.blocking_timeout, finished).await
    else {
        return Ok(accepted());
    };
    let status = match finished.outcome {
        Outcome::Success => StatusCode::OK,
        Outcome::ApplicationError | Outcome::DeveloperError => StatusCode::BAD_GATEWAY,
        Outcome::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut response = if want_result {
        json_response(status, &finished.result)
    } else {
        json_response(status, &record)
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert("x-openwhisk-activation-id", value);
    }
    Ok(response)
}

/// How a call to the router ended: the outcome, the result and the answer.
fn classify(
    call: Result<
        Result<tonic::Response<LambdaResponse>, tonic::Status>,
        tokio::time::error::Elapsed,
    >,
    timeout: Duration,
) -> (Outcome, Value, Option<LambdaResponse>) {
    match call {
        Ok(Ok(answer)) => {
            let answer = answer.into_inner();
            if answer.retcode == RETCODE_OK {
                (Outcome::Success, mapping::result(&answer), Some(answer))
            } else {
                let outcome = if answer.retcode.starts_with("Error: unknown lambda") {
                    Outcome::DeveloperError
                } else {
                    Outcome::ApplicationError
                };
                (outcome, json!({"error": answer.retcode}), Some(answer))
            }
        }
        Ok(Err(status)) => {
            let outcome = match status.code() {
                tonic::Code::InvalidArgument
                | tonic::Code::ResourceExhausted
                | tonic::Code::OutOfRange => Outcome::DeveloperError,
                _ => Outcome::InternalError,
            };
            (
                outcome,
                json!({"error": format!("the router refused the call: {}: {}", status.code(), status.message())}),
                None,
            )
        }
        Err(_) => (
            Outcome::InternalError,
            json!({"error": format!("the router did not answer within {:.0} s", timeout.as_secs_f64())}),
            None,
        ),
    }
}

async fn list_activations(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(ns): Path<String>,
    uri: Uri,
) -> Response {
    let result = async {
        let (_, namespace) = gw.authorize(&headers, &ns)?;
        let query: ListQuery = parse_query(&uri)?;
        let limit = number(&query.limit, "limit", 30)?.clamp(1, 200);
        let skip = number(&query.skip, "skip", 0)?;
        let name = query.name.clone();
        let records = gw.activations.list(Instant::now(), skip, limit, |record| {
            in_namespace(record, &namespace)
                && name.as_deref().is_none_or(|n| {
                    record["name"] == n
                        || format!(
                            "{}/{}",
                            record["namespace"].as_str().unwrap_or(""),
                            record["name"].as_str().unwrap_or("")
                        )
                        .ends_with(n)
                })
        });
        Ok::<_, ApiError>(json_response(
            StatusCode::OK,
            &Value::Array(records.iter().map(|r| (**r).clone()).collect()),
        ))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Whether an activation record belongs to `namespace` (its own, or one of its packages).
fn in_namespace(record: &Value, namespace: &str) -> bool {
    record["namespace"].as_str().is_some_and(|ns| {
        ns == namespace
            || ns
                .strip_prefix(namespace)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

fn find_activation(
    gw: &Gateway,
    headers: &HeaderMap,
    ns: &str,
    id: &str,
) -> Result<Arc<Value>, ApiError> {
    let (_, namespace) = gw.authorize(headers, ns)?;
    gw.activations
        .get(id, Instant::now())
        .filter(|record| in_namespace(record, &namespace))
        .ok_or_else(not_found_error)
}

async fn get_activation(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path((ns, id)): Path<(String, String)>,
) -> Response {
    match find_activation(&gw, &headers, &ns, &id) {
        Ok(record) => json_response(StatusCode::OK, &record),
        Err(error) => error.into_response(),
    }
}

async fn get_activation_part(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path((ns, id, part)): Path<(String, String, String)>,
) -> Response {
    let record = match find_activation(&gw, &headers, &ns, &id) {
        Ok(record) => record,
        Err(error) => return error.into_response(),
    };
    match part.as_str() {
        "result" => json_response(StatusCode::OK, &record["response"]),
        "logs" => json_response(StatusCode::OK, &json!({"logs": record["logs"]})),
        _ => not_found_error().into_response(),
    }
}
