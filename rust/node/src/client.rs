//! The client: sends lambda calls to a router with a given arrival pattern and records one row
//! per call (time, latency, load1, responder, lambda, hops, status, objects).
//!
//! With [`ImageCalls`] each call sends an image instead of a text payload (in `datain`, as
//! serverlessonedge's face detection clients do), and, with `eyes`, one more call per face the
//! answer lists, with that face cropped out of the image (PNG): `facerecclient --eyes`.
//!
//! With [`ClientOptions::fallback`] routers the client fails over: calls go to the first
//! router; a call that fails on the transport (the router cannot be reached: connection
//! refused or reset, unavailable, no answer within the timeout) switches every later call to
//! the next router and is sent there once more; lambda errors the router answers with do not.
//! While a fallback is in use, a dry call to the preferred router every second (the last
//! lambda that succeeded) brings the calls back to it once it answers OK. Each record names
//! the router its answer came from (the last one tried, for an error).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lambdaroute_core::stats::CallSummary;
use lambdaroute_core::workload::{Arrivals, Sizes, TraceRow};
use lambdaroute_proto::RETCODE_OK;
use lambdaroute_proto::uiiit::edge_server_client::EdgeServerClient;
use lambdaroute_proto::uiiit::{LambdaRequest, LambdaResponse};
use lambdaroute_trace::schedule::{ScheduleReader, ScheduledCall};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::tls::{ClientSecurity, Security};

/// How calls are generated.
#[derive(Clone, Debug)]
pub enum Pattern {
    /// `threads` callers, each with one call outstanding at a time.
    ClosedLoop {
        /// Number of callers.
        threads: usize,
    },
    /// Open loop: calls start at the times of an arrival process, whatever the answers.
    /// With ON/OFF, `sources` independent sources each follow the process.
    Open {
        /// The arrival process each source follows.
        arrivals: Arrivals,
        /// Number of independent sources (at least 1).
        sources: usize,
    },
    /// Replay of a trace; each row names its lambda, router and size.
    Trace(Vec<TraceRow>),
    /// The calls of a schedule file (`lambdaroute trace aot schedule`, or the testbed's per
    /// client), streamed: each is sent at its time whatever the answers (open loop), calling its
    /// lambda with its rows or `size` bytes as input, and recorded with its node.
    Schedule(PathBuf),
}

/// A client run.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Router to call (`host:port`): the preferred one.
    pub router: String,
    /// Routers to fail over to, in order, when the one in use cannot be reached (see the
    /// module's notes); empty: no failover.
    pub fallback: Vec<String>,
    /// The lambda to call (a trace names its own per row).
    pub lambda: String,
    /// How calls are generated.
    pub pattern: Pattern,
    /// Size of each call's input, bytes (the input is that many `A`s).
    pub sizes: Sizes,
    /// Stop starting calls after this long (calls already started are awaited).
    pub duration: Option<Duration>,
    /// Stop after this many calls.
    pub max_calls: Option<u64>,
    /// Seed of the random draws (arrival times and sizes).
    pub seed: u64,
    /// Time limit of one call; past it the call counts as an error.
    pub timeout: Duration,
    /// Ask for an estimate only (`dry=true`).
    pub dry: bool,
    /// Largest message sent or received on a call, bytes.
    pub max_request_bytes: usize,
    /// Send images (face detection) instead of text payloads; `None`: text of `sizes` bytes.
    pub images: Option<ImageCalls>,
    /// Plain or secured ([`Security`]): TLS with the client's certificate, the call token.
    pub security: Security,
    /// Send every call through this OpenWhisk API host (lambdaroute's gateway, or OpenWhisk
    /// itself) instead of a router's gRPC service; `None`: gRPC to `router`.
    pub openwhisk: Option<OpenWhiskApi>,
}

/// An OpenWhisk API host the client calls actions on (`POST
/// {url}/api/v1/namespaces/{namespace}/actions/{lambda}?blocking=true`, the parameters
/// `{"input": ..., "datain": base64}`), reading the answer from the activation record
/// (docs/openwhisk.md).
#[derive(Clone, Debug)]
pub struct OpenWhiskApi {
    /// Base URL, e.g. `http://10.0.0.3:3233`.
    pub url: String,
    /// The namespace (`_`: the key's own).
    pub namespace: String,
    /// `uuid:key` for basic authentication; `None`: none.
    pub auth: Option<(String, String)>,
}

/// Images to send, one per call in turn, in `datain` (the lambda's input is empty).
#[derive(Clone, Debug)]
pub struct ImageCalls {
    /// The images, in the order they are sent.
    pub images: Vec<ClientImage>,
    /// After each call, call this lambda once per object of its answer
    /// (`{"objects":[{"x":..,"y":..,"w":..,"h":..}]}`) with that region of the image.
    pub eyes: Option<String>,
}

/// An image the client sends.
#[derive(Clone, Debug)]
pub struct ClientImage {
    /// Its file, for messages.
    pub name: String,
    /// The encoded file (JPEG or PNG), sent as it is.
    pub bytes: Arc<Vec<u8>>,
    /// The decoded image, to crop faces from.
    pub decoded: Arc<image::DynamicImage>,
}

impl ImageCalls {
    /// Reads the image files; an unreadable or undecodable file is an error naming it.
    pub fn read(paths: &[std::path::PathBuf], eyes: Option<String>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !paths.is_empty(),
            "--image: expected at least one image file"
        );
        let mut images = Vec::new();
        for path in paths {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read image {}", path.display()))?;
            let decoded = image::load_from_memory(&bytes).with_context(|| {
                format!(
                    "{}: not a JPEG or PNG image this client can read",
                    path.display()
                )
            })?;
            images.push(ClientImage {
                name: path.display().to_string(),
                bytes: Arc::new(bytes),
                decoded: Arc::new(decoded),
            });
        }
        Ok(ImageCalls { images, eyes })
    }
}

/// A region of an image, in pixels, as a face detector answers it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
pub struct Region {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

#[derive(serde::Deserialize)]
struct Objects {
    objects: Vec<Region>,
}

/// The objects of a detector's answer `{"objects":[...]}`; `None` if the output is not one.
pub fn parse_objects(output: &str) -> Option<Vec<Region>> {
    serde_json::from_str::<Objects>(output)
        .ok()
        .map(|o| o.objects)
}

/// `region` cut out of `img` and encoded as PNG; `None` when the region lies outside it.
pub fn crop_png(img: &image::DynamicImage, region: Region) -> Option<Vec<u8>> {
    let (x, y) = (region.x.max(0.0) as u32, region.y.max(0.0) as u32);
    if x >= img.width() || y >= img.height() || region.w < 1.0 || region.h < 1.0 {
        return None;
    }
    let w = (region.w as u32).min(img.width() - x);
    let h = (region.h as u32).min(img.height() - y);
    let crop = img.crop_imm(x, y, w, h);
    let mut out = std::io::Cursor::new(Vec::new());
    crop.write_to(&mut out, image::ImageFormat::Png).ok()?;
    Some(out.into_inner())
}

impl ClientOptions {
    /// Calls of `lambda` to `router`: one caller in a closed loop, inputs of 100 bytes, for
    /// 10 s, each call timed out after 60 s.
    pub fn new(router: impl Into<String>, lambda: impl Into<String>) -> Self {
        Self {
            router: router.into(),
            fallback: Vec::new(),
            lambda: lambda.into(),
            pattern: Pattern::ClosedLoop { threads: 1 },
            sizes: Sizes::Fixed(100),
            duration: Some(Duration::from_secs(10)),
            max_calls: None,
            seed: 1,
            timeout: Duration::from_secs(60),
            dry: false,
            max_request_bytes: crate::router::DEFAULT_MAX_REQUEST_BYTES,
            images: None,
            security: Security::plain(),
            openwhisk: None,
        }
    }
}

/// The columns of the calls CSV: the fields of [`CallRecord`], in order.
pub const CSV_HEADER: [&str; 11] = [
    "time",
    "latency",
    "load1",
    "responder",
    "lambda",
    "hops",
    "status",
    "objects",
    "scheduled",
    "node",
    "router",
];

/// One call, as recorded in the results.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CallRecord {
    /// When the call started, in seconds since the start of the run.
    pub time: f64,
    /// Seconds from sending the call to its answer.
    pub latency: f64,
    /// The executing computer's load (0-100) over the last second.
    pub load1: u32,
    /// Endpoint of the computer that executed the call; empty when no answer came back.
    pub responder: String,
    /// The lambda called.
    pub lambda: String,
    /// Nodes the call crossed, the responder included; 0 when no answer came back.
    pub hops: u32,
    /// "OK" or the error.
    pub status: String,
    /// Objects a detector found (faces, eyes): the length of the answer's `objects`; empty
    /// when the answer has none.
    pub objects: Option<u32>,
    /// When the call was due, in seconds since the start of the run (its arrival time in an
    /// open-loop pattern); None in a closed loop, where a call starts when the last one ends.
    pub scheduled: Option<f64>,
    /// The Array of Things node whose readings the call carries (schedules); empty otherwise.
    pub node: String,
    /// The router the call went to last: the one that answered, or for an error the last one
    /// tried (with failover, the fallback it was retried on).
    pub router: String,
}

impl CallRecord {
    /// Whether the call succeeded (status "OK").
    pub fn ok(&self) -> bool {
        self.status == RETCODE_OK
    }
}

/// The calls of a run, in the order they ended.
#[derive(Debug, Default)]
pub struct Report {
    /// One record per call, in the order the calls ended.
    pub calls: Vec<CallRecord>,
    /// What stopped the run before its end (a schedule row that does not parse, ...).
    pub problems: Vec<String>,
}

impl Report {
    /// Calls, errors and latency percentiles, overall and per responder.
    pub fn summary(&self) -> CallSummary {
        CallSummary::from_calls(
            self.calls
                .iter()
                .map(|c| (c.responder.as_str(), c.latency, c.ok())),
        )
    }

    /// Per lambda whose answers listed objects (a detector's): the answers that did and the
    /// objects found in them, e.g. `facerec0 -> (10, 10)`, `eyerec0 -> (10, 20)`.
    pub fn objects(&self) -> std::collections::BTreeMap<String, (u64, u64)> {
        let mut out = std::collections::BTreeMap::new();
        for call in &self.calls {
            if let Some(n) = call.objects.filter(|_| call.ok()) {
                let entry = out.entry(call.lambda.clone()).or_insert((0, 0));
                entry.0 += 1;
                entry.1 += u64::from(n);
            }
        }
        out
    }

    /// Write the calls as CSV with a header (also when there are none).
    pub fn write_csv(&self, writer: impl Write) -> anyhow::Result<()> {
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(writer);
        csv.write_record(CSV_HEADER)?;
        for call in &self.calls {
            csv.serialize(call)?;
        }
        csv.flush()?;
        Ok(())
    }

    /// Write the calls as CSV with a header to the file at `path`, replacing it.
    pub fn save_csv(&self, path: &Path) -> anyhow::Result<()> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        self.write_csv(std::io::BufWriter::new(file))
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Shared by the tasks of a run.
struct Run {
    options: ClientOptions,
    start: Instant,
    records: mpsc::UnboundedSender<CallRecord>,
    /// Calls started so far, to honour `max_calls`.
    started: std::sync::atomic::AtomicU64,
    /// Images sent so far: the next call sends the next image.
    images_sent: std::sync::atomic::AtomicU64,
    /// Turns true when the run is asked to stop early: no new call starts.
    stopping: tokio::sync::watch::Receiver<bool>,
    channels: Mutex<std::collections::HashMap<String, Channel>>,
    /// The HTTP client of `options.openwhisk`.
    http: reqwest::Client,
    problems: Mutex<Vec<String>>,
    /// How calls connect and authenticate.
    security: ClientSecurity,
    /// The routers in order of preference and the one in use.
    failover: Failover,
}

/// How often a client that failed over asks its preferred router whether it answers again.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The routers of a client (the preferred one first, then its fallbacks) and which one calls
/// go to now.
struct Failover {
    routers: Vec<String>,
    /// Index in `routers` of the router in use.
    active: std::sync::atomic::AtomicUsize,
    /// The lambda of the last call that succeeded: what the probe asks for (dry).
    last_lambda: Mutex<String>,
}

impl Failover {
    fn active(&self) -> usize {
        self.active.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The router at `failed` did not answer: calls move to the next one (unless another call
    /// moved them already); returns the router in use now.
    fn fail(&self, failed: usize, reason: &str) -> usize {
        let next = (failed + 1) % self.routers.len();
        match self.active.compare_exchange(
            failed,
            next,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        ) {
            Ok(_) => {
                tracing::warn!(failed = %self.routers[failed], next = %self.routers[next], %reason, "router unreachable: failing over");
                next
            }
            Err(current) => current,
        }
    }

    /// The preferred router answered a probe: calls go back to it.
    fn recover(&self) {
        let was = self.active.swap(0, std::sync::atomic::Ordering::AcqRel);
        if was != 0 {
            tracing::info!(router = %self.routers[0], from = %self.routers[was], "preferred router answers again: calls go back to it");
        }
    }
}

/// Why an attempt at a router failed.
enum Failure {
    /// The router could not be reached or did not answer in time: worth another router.
    Transport(String),
    /// Anything else (an invalid endpoint, a request the router refuses).
    Other(String),
}

impl Failure {
    fn into_text(self) -> String {
        match self {
            Failure::Transport(text) | Failure::Other(text) => text,
        }
    }
}

/// gRPC statuses that say the router was not reached or went away (the router's own service
/// never answers with these: its errors are in `retcode`, or `InvalidArgument`,
/// `ResourceExhausted`, `OutOfRange`, `Internal`).
fn is_transport(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::Cancelled
            | tonic::Code::DeadlineExceeded
    )
}

/// The input of a call.
enum Input {
    /// This many `A`s.
    Filler(usize),
    /// This text (a schedule's rows).
    Text(String),
}

/// What one call sends, and what the record says of it beyond the answer.
struct CallSpec<'a> {
    /// A router of its own (a trace row's endpoint); None: the client's routers, with failover.
    router: Option<&'a str>,
    lambda: &'a str,
    input: Input,
    scheduled: Option<Duration>,
    node: String,
}

impl<'a> CallSpec<'a> {
    fn filler(router: Option<&'a str>, lambda: &'a str, size: usize) -> Self {
        CallSpec {
            router,
            lambda,
            input: Input::Filler(size),
            scheduled: None,
            node: String::new(),
        }
    }

    fn at(self, scheduled: Duration) -> Self {
        CallSpec {
            scheduled: Some(scheduled),
            ..self
        }
    }
}

/// What a call's records say beyond the answer: when it was due, and its node.
struct Mark {
    scheduled: Option<f64>,
    node: String,
}

impl Run {
    /// Whether another call may start now.
    fn may_start(&self) -> bool {
        if *self.stopping.borrow() {
            return false;
        }
        if let Some(duration) = self.options.duration
            && self.start.elapsed() >= duration
        {
            return false;
        }
        let started = self
            .started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.options.max_calls.is_none_or(|max| started < max)
    }

    /// Wait until `offset` after the start; false if the run ends first.
    async fn wait_until(&self, offset: Duration) -> bool {
        if self.options.duration.is_some_and(|d| offset >= d) {
            return false;
        }
        let mut stopping = self.stopping.clone();
        tokio::select! {
            _ = tokio::time::sleep_until(self.start + offset) => self.may_start(),
            _ = stopping.wait_for(|stop| *stop) => false,
        }
    }

    fn channel(&self, router: &str) -> Result<Channel, String> {
        let mut channels = self.channels.lock();
        if let Some(channel) = channels.get(router) {
            return Ok(channel.clone());
        }
        let channel = self
            .security
            .endpoint(router, Duration::from_secs(5))?
            .connect_lazy();
        channels.insert(router.to_owned(), channel.clone());
        Ok(channel)
    }

    /// One call through an OpenWhisk API host: the answer rebuilt from the activation record
    /// (its result, and the `responder`, `hops`, `ptime`, `load1` annotations of lambdaroute's
    /// gateway); an HTTP error other than a failed function is an `Err`.
    async fn invoke_openwhisk(
        &self,
        api: &OpenWhiskApi,
        request: LambdaRequest,
    ) -> Result<LambdaResponse, String> {
        use base64::Engine as _;
        let url = format!(
            "{}/api/v1/namespaces/{}/actions/{}?blocking=true",
            api.url.trim_end_matches('/'),
            api.namespace,
            request.name
        );
        let mut params = serde_json::Map::new();
        params.insert("input".into(), request.input.into());
        if !request.datain.is_empty() {
            params.insert(
                "datain".into(),
                base64::engine::general_purpose::STANDARD
                    .encode(&request.datain)
                    .into(),
            );
        }
        let mut call = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::Value::Object(params).to_string());
        if let Some((user, key)) = &api.auth {
            call = call.basic_auth(user, Some(key));
        }
        let response = call
            .send()
            .await
            .map_err(|e| format!("OpenWhisk API: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("OpenWhisk API: HTTP {status}: {e}"))?;
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if status == reqwest::StatusCode::ACCEPTED {
            return Err("HTTP 202: the activation did not end within the blocking time".into());
        }
        let Some(record) = body.get("response") else {
            return Err(format!(
                "HTTP {status}: {}",
                body["error"].as_str().map_or_else(
                    || lambdaroute_core::text::clip(&text).into_owned(),
                    str::to_owned
                )
            ));
        };
        let annotation = |key: &str| {
            body["annotations"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["key"] == key))
                .map(|x| x["value"].clone())
                .unwrap_or_default()
        };
        let number =
            |key: &str| u32::try_from(annotation(key).as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
        let mut answer = LambdaResponse {
            responder: annotation("responder")
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            hops: number("hops"),
            ptime: number("ptime"),
            load1: number("load1"),
            ..Default::default()
        };
        let mut result = record["result"].clone();
        if record["success"] == true {
            answer.retcode = RETCODE_OK.into();
            if let Some(object) = result.as_object_mut() {
                if let Some(data) = object.remove("dataout") {
                    answer.dataout = base64::engine::general_purpose::STANDARD
                        .decode(data.as_str().unwrap_or_default())
                        .unwrap_or_default();
                }
                answer.output = match object.get("output") {
                    Some(serde_json::Value::String(text)) if object.len() == 1 => text.clone(),
                    _ if object.is_empty() => String::new(),
                    _ => result.to_string(),
                };
            }
        } else {
            answer.retcode = result["error"]
                .as_str()
                .map_or_else(|| format!("Error: {}", record["status"]), str::to_owned);
        }
        Ok(answer)
    }

    /// Make one call (with images: one image, then its eye calls) and record it.
    async fn call(&self, spec: CallSpec<'_>) {
        let (router, lambda) = (spec.router, spec.lambda);
        let mark = Mark {
            scheduled: spec.scheduled.map(|d| d.as_secs_f64()),
            node: spec.node,
        };
        let Some(images) = &self.options.images else {
            let request = LambdaRequest {
                name: lambda.to_owned(),
                input: match spec.input {
                    Input::Filler(size) => "A".repeat(size),
                    Input::Text(text) => text,
                },
                dry: self.options.dry,
                ..Default::default()
            };
            self.send(router, request, &mark).await;
            return;
        };
        let turn = self
            .images_sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let image = &images.images[turn as usize % images.images.len()];
        let request = LambdaRequest {
            name: lambda.to_owned(),
            datain: image.bytes.to_vec(),
            dry: self.options.dry,
            ..Default::default()
        };
        let Some(response) = self.send(router, request, &mark).await else {
            return;
        };
        let Some(eyes) = &images.eyes else { return };
        for face in parse_objects(&response.output).unwrap_or_default() {
            if *self.stopping.borrow() {
                return;
            }
            let Some(crop) = crop_png(&image.decoded, face) else {
                continue;
            };
            let request = LambdaRequest {
                name: eyes.clone(),
                datain: crop,
                dry: self.options.dry,
                ..Default::default()
            };
            self.send(router, request, &mark).await;
        }
    }

    /// One attempt at one router.
    async fn attempt(
        &self,
        router: &str,
        request: LambdaRequest,
    ) -> Result<LambdaResponse, Failure> {
        let channel = self.channel(router).map_err(Failure::Other)?;
        let mut client = EdgeServerClient::new(channel)
            .max_decoding_message_size(self.options.max_request_bytes)
            .max_encoding_message_size(self.options.max_request_bytes);
        let mut request = tonic::Request::new(request);
        self.security.authorize(&mut request);
        match tokio::time::timeout(self.options.timeout, client.run_lambda(request)).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => {
                let text = format!("{}: {}", status.code(), status.message());
                Err(if is_transport(&status) {
                    Failure::Transport(text)
                } else {
                    Failure::Other(text)
                })
            }
            Err(_) => Err(Failure::Transport(format!(
                "timeout after {:.1} s",
                self.options.timeout.as_secs_f64()
            ))),
        }
    }

    /// Sends a request to the router in use; on a transport failure, fails over and sends it
    /// once more to the router in use then. The outcome and the router it came from.
    async fn attempt_with_failover(
        &self,
        request: LambdaRequest,
    ) -> (Result<LambdaResponse, String>, &str) {
        let failover = &self.failover;
        let first = failover.active();
        if failover.routers.len() < 2 {
            let router = &failover.routers[first];
            return (
                self.attempt(router, request)
                    .await
                    .map_err(Failure::into_text),
                router,
            );
        }
        match self
            .attempt(&failover.routers[first], request.clone())
            .await
        {
            Err(Failure::Transport(reason)) => {
                let next = failover.fail(first, &reason);
                let router = &failover.routers[next];
                (
                    self.attempt(router, request)
                        .await
                        .map_err(Failure::into_text),
                    router,
                )
            }
            outcome => (
                outcome.map_err(Failure::into_text),
                &failover.routers[first],
            ),
        }
    }

    /// Send one request and record it; the answer if it succeeded.
    async fn send(
        &self,
        router: Option<&str>,
        request: LambdaRequest,
        mark: &Mark,
    ) -> Option<LambdaResponse> {
        let time = self.start.elapsed().as_secs_f64();
        let lambda = request.name.clone();
        let sent = Instant::now();
        let (outcome, router) = match (&self.options.openwhisk, router) {
            (Some(api), router) => {
                let outcome = match tokio::time::timeout(
                    self.options.timeout,
                    self.invoke_openwhisk(api, request),
                )
                .await
                {
                    Ok(result) => result,
                    Err(_) => Err(format!(
                        "timeout after {:.1} s",
                        self.options.timeout.as_secs_f64()
                    )),
                };
                (outcome, router.unwrap_or(&self.failover.routers[0]))
            }
            (None, Some(router)) => (
                self.attempt(router, request)
                    .await
                    .map_err(Failure::into_text),
                router,
            ),
            (None, None) => self.attempt_with_failover(request).await,
        };
        let latency = sent.elapsed().as_secs_f64();
        let router = router.to_owned();
        if matches!(&outcome, Ok(response) if response.retcode == RETCODE_OK)
            && self.failover.routers.len() > 1
        {
            let mut last = self.failover.last_lambda.lock();
            if *last != lambda {
                last.clone_from(&lambda);
            }
        }
        let (record, answer) = match outcome {
            Ok(response) => (
                CallRecord {
                    time,
                    latency,
                    load1: response.load1,
                    responder: response.responder.clone(),
                    lambda,
                    hops: response.hops,
                    status: response.retcode.clone(),
                    objects: parse_objects(&response.output).map(|o| o.len() as u32),
                    scheduled: mark.scheduled,
                    node: mark.node.clone(),
                    router,
                },
                (response.retcode == RETCODE_OK).then_some(response),
            ),
            Err(status) => (
                CallRecord {
                    time,
                    latency,
                    load1: 0,
                    responder: String::new(),
                    lambda,
                    hops: 0,
                    status,
                    objects: None,
                    scheduled: mark.scheduled,
                    node: mark.node.clone(),
                    router,
                },
                None,
            ),
        };
        let _ = self.records.send(record);
        answer
    }
}

/// While a fallback router is in use: every [`PROBE_INTERVAL`], a dry call of the last lambda
/// that succeeded to the preferred router (one interval to answer); an OK brings the calls back
/// to it. Runs until aborted.
async fn probe(run: Arc<Run>) {
    let mut ticks = tokio::time::interval(PROBE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if run.failover.active() == 0 {
            continue;
        }
        let Ok(channel) = run.channel(&run.failover.routers[0]) else {
            continue;
        };
        let request = LambdaRequest {
            name: run.failover.last_lambda.lock().clone(),
            dry: true,
            ..Default::default()
        };
        let mut client =
            EdgeServerClient::new(channel).max_decoding_message_size(run.options.max_request_bytes);
        if let Ok(Ok(answer)) =
            tokio::time::timeout(PROBE_INTERVAL, client.run_lambda(request)).await
            && answer.get_ref().retcode == RETCODE_OK
        {
            run.failover.recover();
        }
    }
}

/// Sleeps until `deadline` with the operating system's precise sleep, in slices short enough
/// to notice a stop; false if the run is asked to stop first.
fn sleep_until(
    deadline: std::time::Instant,
    stopping: &tokio::sync::watch::Receiver<bool>,
) -> bool {
    const SLICE: Duration = Duration::from_millis(20);
    loop {
        if *stopping.borrow() {
            return false;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(SLICE));
    }
}

/// Sends a schedule's calls on time: a thread of its own reads the file row by row, sleeps
/// until each call is due (the OS's sleep, finer than the runtime's millisecond timer) and
/// hands the call to the runtime, which sends it without waiting for earlier answers. The
/// returned task ends when every call made has been answered (or has failed).
fn replay_schedule(run: &Arc<Run>, path: PathBuf) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let file = path.display().to_string();
    let source = lambdaroute_trace::reader::open_decompressed(&path)?;
    let schedule = ScheduleReader::new(source, &file)?;
    let runtime = tokio::runtime::Handle::current();
    let (handles_tx, mut handles_rx) = mpsc::unbounded_channel::<tokio::task::JoinHandle<()>>();
    let dispatcher = Arc::clone(run);
    std::thread::Builder::new()
        .name("schedule".into())
        .spawn(move || {
            let run = dispatcher;
            let start = run.start.into_std();
            for call in schedule {
                let call: ScheduledCall = match call {
                    Ok(call) => call,
                    Err(problem) => {
                        tracing::error!("schedule: {problem}");
                        run.problems.lock().push(problem.to_string());
                        break;
                    }
                };
                let offset = Duration::from_secs_f64(call.time);
                if run.options.duration.is_some_and(|d| offset >= d)
                    || !sleep_until(start + offset, &run.stopping)
                    || !run.may_start()
                {
                    break;
                }
                let run = Arc::clone(&run);
                let task = runtime.spawn(async move {
                    let input = match call.rows {
                        Some(rows) => Input::Text(rows),
                        None => Input::Filler(call.size as usize),
                    };
                    let spec = CallSpec {
                        router: None,
                        lambda: &call.lambda,
                        input,
                        scheduled: Some(offset),
                        node: call.node,
                    };
                    run.call(spec).await
                });
                if handles_tx.send(task).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the schedule's thread")?;
    Ok(tokio::spawn(async move {
        while let Some(call) = handles_rx.recv().await {
            let _ = call.await;
        }
    }))
}

/// Run a client to the end and return its calls.
pub async fn run(options: ClientOptions) -> anyhow::Result<Report> {
    run_until(options, std::future::pending()).await
}

/// Run a client until its end or until `stop` completes; then no new call starts, the calls
/// in flight are awaited, and every call made is in the report.
pub async fn run_until(
    options: ClientOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Report> {
    let security = options.security.client()?;
    let routers: Vec<String> = std::iter::once(options.router.clone())
        .chain(options.fallback.iter().cloned())
        .collect();
    for router in &routers {
        security
            .endpoint(router, Duration::from_secs(5))
            .map_err(anyhow::Error::msg)?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let run = Arc::new(Run {
        options: options.clone(),
        start: Instant::now(),
        records: tx,
        started: 0.into(),
        images_sent: 0.into(),
        stopping: stop_rx,
        channels: Mutex::new(Default::default()),
        http: reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?,
        problems: Mutex::new(Vec::new()),
        security,
        failover: Failover {
            routers,
            active: 0.into(),
            last_lambda: Mutex::new(options.lambda.clone()),
        },
    });
    let prober = (run.failover.routers.len() > 1).then(|| tokio::spawn(probe(Arc::clone(&run))));
    let stopper = tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(true);
    });
    let mut rng = SmallRng::seed_from_u64(options.seed);
    let mut tasks = tokio::task::JoinSet::new();

    match options.pattern.clone() {
        Pattern::ClosedLoop { threads } => {
            for _ in 0..threads.max(1) {
                let run = Arc::clone(&run);
                let mut rng = SmallRng::seed_from_u64(rng.random());
                tasks.spawn(async move {
                    while run.may_start() {
                        let size = run.options.sizes.draw(&mut rng);
                        let options = &run.options;
                        run.call(CallSpec::filler(None, &options.lambda, size))
                            .await;
                    }
                });
            }
        }
        Pattern::Open { arrivals, sources } => {
            for _ in 0..sources.max(1) {
                let run = Arc::clone(&run);
                let arrivals = arrivals.clone();
                let mut rng = SmallRng::seed_from_u64(rng.random());
                let schedule_rng = SmallRng::seed_from_u64(rng.random());
                tasks.spawn(async move {
                    let mut calls = tokio::task::JoinSet::new();
                    for offset in arrivals.schedule(schedule_rng) {
                        if !run.wait_until(offset).await {
                            break;
                        }
                        let size = run.options.sizes.draw(&mut rng);
                        let run = Arc::clone(&run);
                        calls.spawn(async move {
                            let options = &run.options;
                            run.call(CallSpec::filler(None, &options.lambda, size).at(offset))
                                .await
                        });
                    }
                    calls.join_all().await;
                });
            }
        }
        Pattern::Trace(rows) => {
            let run = Arc::clone(&run);
            tasks.spawn(async move {
                let mut calls = tokio::task::JoinSet::new();
                for row in rows {
                    if !run.wait_until(row.time).await {
                        break;
                    }
                    let run = Arc::clone(&run);
                    calls.spawn(async move {
                        let router = row.endpoint.as_deref();
                        run.call(CallSpec::filler(router, &row.lambda, row.size).at(row.time))
                            .await
                    });
                }
                calls.join_all().await;
            });
        }
        Pattern::Schedule(path) => {
            let replay = replay_schedule(&run, path)?;
            tasks.spawn(async move {
                let _ = replay.await;
            });
        }
    }
    let problems = Arc::clone(&run);
    drop(run);
    tasks.join_all().await;
    stopper.abort();
    let _ = stopper.await;
    if let Some(prober) = prober {
        prober.abort();
        let _ = prober.await;
    }

    let mut report = Report {
        problems: std::mem::take(&mut *problems.problems.lock()),
        ..Report::default()
    };
    drop(problems);
    while let Some(record) = rx.recv().await {
        report.calls.push(record);
    }
    Ok(report)
}
