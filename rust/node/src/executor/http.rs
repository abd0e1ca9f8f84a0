//! The HTTP executor: each call to an HTTP function (see the module documentation above).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine as _;
use lambdaroute_core::busy::BusyMeter;
use lambdaroute_core::clock::Time;
use lambdaroute_core::computer_model::{
    ComputerConfig, ContainerConfig, LambdaConfig, LambdaOutput, Load, ProcessorConfig,
    ProcessorType,
};
use lambdaroute_proto::RETCODE_OK;
use parking_lot::Mutex;
use reqwest::Url;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, warn};

/// Where the functions are.
#[derive(Clone, Debug, PartialEq)]
pub enum Platform {
    /// An OpenFaaS-style gateway: lambda `f` is `POST {gateway}/function/f`.
    OpenFaas {
        /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
        gateway: String,
    },
    /// An Apache OpenWhisk API host: lambda `f` is the action
    /// `POST {api}/api/v1/namespaces/{namespace}/actions/f?blocking=true&result=true`.
    OpenWhisk {
        /// The API host's base URL, e.g. `https://openwhisk.example:443`.
        api: String,
        /// The namespace; `_` is the one of the credentials.
        namespace: String,
        /// Basic authentication `uuid:key`, if the host asks for it.
        auth: Option<String>,
    },
    /// One URL per lambda, called with `POST`.
    Urls(BTreeMap<String, String>),
}

/// How errors read in `retcode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStyle {
    /// lambdaroute's: `Error: ...`, naming the lambda, the URL and what went wrong (the
    /// status and the function's message, a time limit, a connection that failed).
    Lambdaroute,
    /// serverlessonedge's `edgecomputerfacerec`: a function's error answer is the retcode as
    /// it is (e.g. `Could not read image (size 7 bytes)`); an unknown lambda is
    /// `Unsupported lambda: NAME (supported lambdas: a,b)`.
    Original,
}

/// An HTTP computer: its functions, limits and error style.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpConfig {
    /// Where the functions are.
    pub platform: Platform,
    /// The lambdas served by the platform (for [`Platform::Urls`], its keys are added).
    pub lambdas: Vec<String>,
    /// Lambdas answered at once with "OK" and no output, without calling anything
    /// (`edgecomputerfacerec`'s dummy lambda `clambda0`).
    pub instant: Vec<String>,
    /// Time limit of one function call.
    pub timeout: Duration,
    /// Calls in flight at most; more wait in FIFO order. Also the connections kept open.
    pub workers: u32,
    /// How errors read.
    pub errors: ErrorStyle,
    /// The processor name under which the load is reported (`StreamUtil`, announcements).
    pub processor: String,
    /// The body is always `datain` (the face function takes the image only, as the original
    /// reads `datain` only); otherwise `datain` when the call has one, else `input`.
    pub datain_only: bool,
    /// Largest answer read from a function; a larger one is an error (it could not be sent
    /// on anyway: the computer's `--max-request-bytes` bounds its messages both ways).
    pub max_answer_bytes: usize,
}

/// Default time limit of one function call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of calls in flight at once.
pub const DEFAULT_WORKERS: u32 = 4;
/// Default largest answer of a function: the computer's default largest message.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = crate::computer::DEFAULT_MAX_REQUEST_BYTES;

impl HttpConfig {
    /// Functions behind `platform` with the default limits and lambdaroute's errors.
    pub fn new(platform: Platform, lambdas: Vec<String>) -> Self {
        HttpConfig {
            platform,
            lambdas,
            instant: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            workers: DEFAULT_WORKERS,
            errors: ErrorStyle::Lambdaroute,
            processor: "http".into(),
            datain_only: false,
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
        }
    }

    /// The face and eye detection computer in front of the face function at `function` (the
    /// base URL of `python -m lambdaroute.facerec`): `facerec0`, `eyerec0`, `clambda0` at once,
    /// serverlessonedge's error texts.
    pub fn face(function: impl Into<String>) -> Self {
        HttpConfig {
            platform: Platform::OpenFaas {
                gateway: function.into(),
            },
            lambdas: vec!["facerec0".into(), "eyerec0".into()],
            instant: vec!["clambda0".into()],
            timeout: DEFAULT_TIMEOUT,
            workers: DEFAULT_WORKERS,
            errors: ErrorStyle::Original,
            processor: "face".into(),
            datain_only: true,
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
        }
    }

    /// The lambdas that call a function, sorted.
    pub fn function_lambdas(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.lambdas.iter().cloned().collect();
        if let Platform::Urls(urls) = &self.platform {
            names.extend(urls.keys().cloned());
        }
        names.into_iter().collect()
    }

    /// Every lambda this computer answers, sorted.
    pub fn lambda_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.function_lambdas().into_iter().collect();
        names.extend(self.instant.iter().cloned());
        names.into_iter().collect()
    }

    /// The URL each function lambda is called at; an error names what is wrong and the fix.
    fn targets(&self) -> Result<HashMap<String, Url>, ExecutorError> {
        let base = |what: &str, text: &str| -> Result<Url, ExecutorError> {
            let url = Url::parse(text).map_err(|e| ExecutorError::Url {
                what: what.to_string(),
                url: text.to_string(),
                reason: e.to_string(),
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ExecutorError::Url {
                    what: what.to_string(),
                    url: text.to_string(),
                    reason: "expected an http:// or https:// URL".into(),
                });
            }
            Ok(url)
        };
        let join = |base: &Url, path: &str| -> Url {
            let mut url = base.clone();
            let prefix = url.path().trim_end_matches('/').to_string();
            url.set_path(&format!("{prefix}/{path}"));
            url
        };
        let mut out = HashMap::new();
        match &self.platform {
            Platform::OpenFaas { gateway } => {
                let gateway = base("the gateway", gateway)?;
                for name in &self.lambdas {
                    out.insert(name.clone(), join(&gateway, &format!("function/{name}")));
                }
            }
            Platform::OpenWhisk {
                api,
                namespace,
                auth,
            } => {
                let api = base("the OpenWhisk API host", api)?;
                if namespace.is_empty() || namespace.contains('/') {
                    return Err(ExecutorError::Invalid(format!(
                        "OpenWhisk namespace `{namespace}`: expected a name without `/` (`_` is the credentials' own)"
                    )));
                }
                if auth.as_ref().is_some_and(|a| !a.contains(':')) {
                    return Err(ExecutorError::Invalid(
                        "OpenWhisk auth: expected `uuid:key` (as in `wsk property get --auth`)"
                            .into(),
                    ));
                }
                for name in &self.lambdas {
                    let mut url = join(
                        &api,
                        &format!("api/v1/namespaces/{namespace}/actions/{name}"),
                    );
                    url.set_query(Some("blocking=true&result=true"));
                    out.insert(name.clone(), url);
                }
            }
            Platform::Urls(urls) => {
                for name in &self.lambdas {
                    if !urls.contains_key(name) {
                        return Err(ExecutorError::Invalid(format!(
                            "lambda `{name}` has no URL: give it one as NAME=URL"
                        )));
                    }
                }
                for (name, url) in urls {
                    out.insert(name.clone(), base(&format!("the URL of `{name}`"), url)?);
                }
            }
        }
        Ok(out)
    }

    /// Checks the configuration; each error names the field and the fix.
    pub fn validate(&self) -> Result<(), ExecutorError> {
        let functions = self.function_lambdas();
        if functions.is_empty() {
            return Err(ExecutorError::Invalid(
                "no lambdas: name the functions this computer serves (e.g. --lambdas f,g)".into(),
            ));
        }
        for name in functions.iter().chain(&self.instant) {
            if name.is_empty() || name.contains(['/', '?', '#', ' ', ',']) {
                return Err(ExecutorError::Invalid(format!(
                    "lambda name `{name}`: expected a non-empty name without `/`, `?`, `#`, `,` or spaces"
                )));
            }
        }
        if let Some(both) = self.instant.iter().find(|n| functions.contains(n)) {
            return Err(ExecutorError::Invalid(format!(
                "lambda `{both}` is both answered at once and a function: pick one"
            )));
        }
        if self.workers == 0 {
            return Err(ExecutorError::Invalid(
                "workers: expected at least 1 call in flight".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(ExecutorError::Invalid(
                "timeout: expected a time limit longer than 0".into(),
            ));
        }
        if self.processor.is_empty() {
            return Err(ExecutorError::Invalid("processor: expected a name".into()));
        }
        self.targets().map(|_| ())
    }

    /// What the computer announces to the controller: one container per lambda on one
    /// processor named [`HttpConfig::processor`] with [`HttpConfig::workers`] cores. (Only the
    /// announcement and the processor's name are used: no model runs.)
    pub fn computer_config(&self) -> ComputerConfig {
        let names = self.lambda_names();
        ComputerConfig {
            processors: vec![ProcessorConfig {
                name: self.processor.clone(),
                kind: ProcessorType::Cpu,
                speed: 1.0,
                cores: self.workers.max(1),
                memory: 1,
            }],
            containers: names
                .iter()
                .map(|name| ContainerConfig {
                    name: format!("{name}-container"),
                    processor: self.processor.clone(),
                    lambda: name.clone(),
                    num_workers: self.workers.max(1),
                })
                .collect(),
            lambdas: names
                .iter()
                .map(|name| LambdaConfig {
                    name: name.clone(),
                    op_offset: 1.0,
                    op_coeff: 0.0,
                    mem_offset: 0.0,
                    mem_coeff: 0.0,
                    output: LambdaOutput::Echo,
                })
                .collect(),
        }
    }
}

/// An HTTP computer that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// A URL that cannot be used.
    #[error("{what}: `{url}` is not a usable URL: {reason}")]
    Url {
        /// Whose URL.
        what: String,
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// Anything else, with the fix.
    #[error("{0}")]
    Invalid(String),
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The answer to one call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    /// "OK" or the error.
    pub retcode: String,
    /// Text output.
    pub output: String,
    /// Binary output.
    pub dataout: Vec<u8>,
    /// From taking the call to its answer (waiting for a worker included); for a dry run, the
    /// last measured time of the lambda.
    pub ptime: Duration,
    /// The load of the workers.
    pub load: Load,
}

/// Runs calls on HTTP functions (see the module documentation).
#[derive(Debug)]
pub struct HttpExecutor {
    config: HttpConfig,
    client: reqwest::Client,
    targets: HashMap<String, Url>,
    openwhisk_auth: Option<(String, String)>,
    workers: Semaphore,
    meter: Mutex<BusyMeter>,
    origin: Instant,
    last_ptime: Mutex<HashMap<String, Duration>>,
}

impl HttpExecutor {
    /// Checks `config` and builds the HTTP client.
    pub fn new(config: HttpConfig) -> Result<Self, ExecutorError> {
        config.validate()?;
        let targets = config.targets()?;
        let openwhisk_auth = match &config.platform {
            Platform::OpenWhisk {
                auth: Some(auth), ..
            } => auth
                .split_once(':')
                .map(|(u, k)| (u.to_string(), k.to_string())),
            _ => None,
        };
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(config.workers as usize)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("lambdaroute/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let origin = Instant::now();
        Ok(HttpExecutor {
            workers: Semaphore::new(config.workers as usize),
            meter: Mutex::new(BusyMeter::new(config.workers, Time::ZERO)),
            config,
            client,
            targets,
            openwhisk_auth,
            origin,
            last_ptime: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    fn now(&self) -> Time {
        Time::from_duration(self.origin.elapsed())
    }

    /// Takes a utilization sample (called once a second): the processor's busy fraction.
    pub fn sample(&self) -> HashMap<String, f32> {
        let now = self.now();
        let u = self.meter.lock().sample(now);
        HashMap::from([(self.config.processor.clone(), u)])
    }

    /// The current load.
    pub fn load(&self) -> Load {
        self.meter.lock().load()
    }

    fn error(&self, name: &str, answer: Answer, message: String) -> Answer {
        warn!(lambda = %name, "call failed: {message}");
        Answer {
            retcode: message,
            ptime: answer.ptime,
            load: self.load(),
            ..Default::default()
        }
    }

    /// Runs one call: `name` with `input` and `datain` (or, `dry`, says how long it took last).
    pub async fn call(&self, name: &str, input: &str, datain: &[u8], dry: bool) -> Answer {
        let taken = Instant::now();
        if self.config.instant.iter().any(|n| n == name) {
            return Answer {
                retcode: RETCODE_OK.into(),
                load: self.load(),
                ..Default::default()
            };
        }
        let Some(url) = self.targets.get(name) else {
            let name = lambdaroute_core::text::clip(name);
            let retcode = match self.config.errors {
                ErrorStyle::Original => format!(
                    "Unsupported lambda: {name} (supported lambdas: {})",
                    self.config.function_lambdas().join(",")
                ),
                ErrorStyle::Lambdaroute => format!(
                    "Error: unknown lambda '{name}'; this computer runs: {}",
                    self.config.lambda_names().join(", ")
                ),
            };
            return Answer {
                retcode,
                load: self.load(),
                ..Default::default()
            };
        };
        if dry {
            return Answer {
                retcode: RETCODE_OK.into(),
                ptime: self
                    .last_ptime
                    .lock()
                    .get(name)
                    .copied()
                    .unwrap_or_default(),
                load: self.load(),
                ..Default::default()
            };
        }
        let Ok(_worker) = self.workers.acquire().await else {
            return Answer {
                retcode: "Error: the computer is shutting down; retry elsewhere".into(),
                ..Default::default()
            };
        };
        self.meter.lock().start(self.now());
        // Finished also when this future is dropped (the caller went away): the request to the
        // function is dropped with it, and the load must not count it for ever.
        let finish = Finish(self);
        let result = self.send(url, input, datain).await;
        drop(finish);
        let ptime = taken.elapsed();
        let partial = Answer {
            ptime,
            ..Default::default()
        };
        match result {
            Ok(Reply {
                status,
                content_type,
                body,
            }) if status.is_success() => {
                self.last_ptime.lock().insert(name.to_string(), ptime);
                let binary = content_type.starts_with("application/octet-stream")
                    || content_type.starts_with("image/");
                let (output, dataout) = if binary {
                    (String::new(), body)
                } else {
                    match String::from_utf8(body) {
                        Ok(text) => (text, Vec::new()),
                        Err(e) => (String::new(), e.into_bytes()),
                    }
                };
                debug!(lambda = %name, ptime_ms = ptime.as_millis(), "function answered");
                Answer {
                    retcode: RETCODE_OK.into(),
                    output,
                    dataout,
                    ptime,
                    load: self.load(),
                }
            }
            Ok(Reply { status, body, .. }) => {
                let detail = error_detail(&body);
                let message = match self.config.errors {
                    ErrorStyle::Original if !detail.is_empty() => detail,
                    _ => format!(
                        "Error: {name}: HTTP {} from {url}{}",
                        status.as_u16(),
                        if detail.is_empty() {
                            String::new()
                        } else {
                            format!(": {detail}")
                        }
                    ),
                };
                self.error(name, partial, message)
            }
            Err(SendError::TooLarge) => {
                let message = format!(
                    "Error: {name}: the answer of {url} is larger than {} bytes, the largest \
                     this computer sends on (--max-request-bytes)",
                    self.config.max_answer_bytes
                );
                self.error(name, partial, message)
            }
            Err(SendError::Http(e)) if e.is_timeout() => {
                let message = format!(
                    "Error: {name}: no answer from {url} within {} s",
                    fmt_secs(self.config.timeout)
                );
                self.error(name, partial, message)
            }
            Err(SendError::Http(e)) => {
                let message = format!("Error: {name}: cannot call {url}: {}", chain(&e));
                self.error(name, partial, message)
            }
        }
    }

    async fn send(&self, url: &Url, input: &str, datain: &[u8]) -> Result<Reply, SendError> {
        let request = match &self.config.platform {
            Platform::OpenWhisk { .. } => {
                let mut params = match serde_json::from_str::<serde_json::Value>(input) {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ => {
                        let mut map = serde_json::Map::new();
                        if !input.is_empty() {
                            map.insert("input".into(), input.into());
                        }
                        map
                    }
                };
                if !datain.is_empty() {
                    params.insert(
                        "datain".into(),
                        base64::engine::general_purpose::STANDARD
                            .encode(datain)
                            .into(),
                    );
                }
                let body = serde_json::Value::Object(params).to_string();
                let mut request = self
                    .client
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body);
                if let Some((user, key)) = &self.openwhisk_auth {
                    request = request.basic_auth(user, Some(key));
                }
                request
            }
            Platform::OpenFaas { .. } | Platform::Urls(_) => {
                let (content_type, body) = if datain.is_empty() && !self.config.datain_only {
                    ("text/plain; charset=utf-8", input.as_bytes().to_vec())
                } else {
                    ("application/octet-stream", datain.to_vec())
                };
                self.client
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(body)
            }
        };
        let response = request.send().await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let body = read_at_most(response, self.config.max_answer_bytes).await?;
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }
}

struct Reply {
    status: reqwest::StatusCode,
    content_type: String,
    body: Vec<u8>,
}

/// Why a function's answer could not be had.
enum SendError {
    Http(reqwest::Error),
    /// Larger than [`HttpConfig::max_answer_bytes`]: not read further.
    TooLarge,
}

impl From<reqwest::Error> for SendError {
    fn from(e: reqwest::Error) -> Self {
        SendError::Http(e)
    }
}

/// The body of `response`, refused as soon as it is known to pass `max` bytes (from its
/// `Content-Length`, or as it arrives): a function cannot make the computer hold more.
async fn read_at_most(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, SendError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(SendError::TooLarge);
    }
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(SendError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What an error answer says: the `error` of a JSON body (OpenWhisk's), else the text, on one
/// line and at most 300 characters.
fn error_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(map)) => match map.get("error") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => text.to_string(),
        },
        _ => text.to_string(),
    };
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// An error with its causes, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

/// Ends a call on the executor's meter when dropped.
struct Finish<'a>(&'a HttpExecutor);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.meter.lock().finish(self.0.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_each_platform() {
        let faas = HttpConfig::new(
            Platform::OpenFaas {
                gateway: "http://127.0.0.1:8080/".into(),
            },
            vec!["f".into()],
        );
        assert_eq!(
            faas.targets().unwrap()["f"].as_str(),
            "http://127.0.0.1:8080/function/f"
        );
        let ow = HttpConfig::new(
            Platform::OpenWhisk {
                api: "https://ow.example/base".into(),
                namespace: "guest".into(),
                auth: Some("u:k".into()),
            },
            vec!["hello".into()],
        );
        assert_eq!(
            ow.targets().unwrap()["hello"].as_str(),
            "https://ow.example/base/api/v1/namespaces/guest/actions/hello?blocking=true&result=true"
        );
    }

    #[test]
    fn bad_configurations_say_what_to_fix() {
        let mut c = HttpConfig::new(
            Platform::OpenFaas {
                gateway: "ftp://x".into(),
            },
            vec!["f".into()],
        );
        assert!(c.validate().unwrap_err().to_string().contains("http://"));
        c.platform = Platform::OpenFaas {
            gateway: "http://x".into(),
        };
        c.lambdas.clear();
        assert!(c.validate().unwrap_err().to_string().contains("--lambdas"));
        c.lambdas = vec!["f".into()];
        c.instant = vec!["f".into()];
        assert!(c.validate().unwrap_err().to_string().contains("both"));
        c.instant.clear();
        c.platform = Platform::OpenWhisk {
            api: "http://x".into(),
            namespace: "_".into(),
            auth: Some("nocolon".into()),
        };
        assert!(c.validate().unwrap_err().to_string().contains("uuid:key"));
        c.platform = Platform::Urls(BTreeMap::new());
        assert!(c.validate().unwrap_err().to_string().contains("NAME=URL"));
    }

    #[test]
    fn the_face_computer_announces_its_lambdas() {
        let face = HttpConfig::face("http://127.0.0.1:8090");
        face.validate().unwrap();
        assert_eq!(face.lambda_names(), ["clambda0", "eyerec0", "facerec0"]);
        let config = face.computer_config();
        config.validate().unwrap();
        assert_eq!(config.containers.len(), 3);
        assert_eq!(config.processors[0].name, "face");
    }

    #[test]
    fn error_details_are_short_and_on_one_line() {
        assert_eq!(error_detail(b"{\"error\":\"boom\",\"code\":7}"), "boom");
        assert_eq!(error_detail(b"line one\nline two"), "line one line two");
        assert_eq!(error_detail(&[b'x'; 400]).len(), 303);
    }
}
