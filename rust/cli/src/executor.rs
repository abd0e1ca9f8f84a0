//! The flags of `lambdaroute computer` that choose how calls run: simulated (the default), on
//! HTTP functions, or on the face and eye detection function (docs/real-computers.md).

use std::collections::BTreeMap;
use std::time::Duration;

use clap::ValueEnum;
use lambdaroute_node::executor::{HttpConfig, HttpExecutor, Platform};

/// How a computer runs its calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// The processor-sharing model (--config or --preset).
    #[default]
    Simulated,
    /// Each lambda is an HTTP function: --openfaas, --openwhisk or --function-url.
    Http,
    /// Face and eye detection (facerec0, eyerec0; clambda0 at once) on the face function at
    /// --function (python -m lambdaroute.facerec).
    Face,
}

/// Real execution (docs/real-computers.md).
#[derive(clap::Args, Debug, Default)]
pub struct ExecutorArgs {
    /// How calls run: simulated, http or face.
    #[arg(long, value_enum, default_value_t = ExecutorKind::Simulated)]
    pub executor: ExecutorKind,
    /// http: an OpenFaaS-style gateway; lambda F is POST URL/function/F.
    #[arg(long, value_name = "URL", conflicts_with_all = ["openwhisk", "function_url"])]
    pub openfaas: Option<String>,
    /// http: an Apache OpenWhisk API host; lambda F is the action F of --openwhisk-namespace.
    #[arg(long, value_name = "URL", conflicts_with = "function_url")]
    pub openwhisk: Option<String>,
    /// http, OpenWhisk: the namespace (`_`: the credentials' own).
    #[arg(long, value_name = "NS", default_value = "_")]
    pub openwhisk_namespace: String,
    /// http, OpenWhisk: basic authentication UUID:KEY (better in the environment).
    #[arg(
        long,
        value_name = "UUID:KEY",
        env = "LAMBDAROUTE_OPENWHISK_AUTH",
        hide_env_values = true
    )]
    pub openwhisk_auth: Option<String>,
    /// http: a lambda served by a plain URL, NAME=URL (repeat for more).
    #[arg(long, value_name = "NAME=URL", value_parser = parse_name_url)]
    pub function_url: Vec<(String, String)>,
    /// http with --openfaas or --openwhisk: the lambdas (functions, actions), comma-separated.
    #[arg(long, value_name = "F,G", value_delimiter = ',')]
    pub lambdas: Vec<String>,
    /// face: base URL of the face function (python -m lambdaroute.facerec).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8090")]
    pub function: String,
    /// face: a lambda answered at once with success, as the original's `--dummy-lambda`
    /// (empty: none).
    #[arg(long, value_name = "NAME", default_value = "clambda0")]
    pub dummy_lambda: String,
    /// http and face: time limit of one function call (`30s`, `500ms`, or seconds).
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse)]
    pub http_timeout: Duration,
    /// http and face: calls in flight at most (more wait); also the connections kept open.
    #[arg(long, default_value_t = 4)]
    pub workers: u32,
}

fn parse_name_url(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, url)) if !name.is_empty() && !url.is_empty() => {
            Ok((name.to_string(), url.to_string()))
        }
        _ => Err(format!(
            "expected NAME=URL, e.g. hello=http://127.0.0.1:8080/hello; got `{s}`"
        )),
    }
}

impl ExecutorArgs {
    /// The HTTP executor these flags ask for, reading answers of at most `max_answer_bytes`
    /// (the computer's largest message); `None` for the simulated computer. Errors name the
    /// flag and the fix.
    pub fn http_executor(&self, max_answer_bytes: usize) -> anyhow::Result<Option<HttpExecutor>> {
        let http_flags = self.openfaas.is_some()
            || self.openwhisk.is_some()
            || !self.function_url.is_empty()
            || !self.lambdas.is_empty();
        let mut config = match self.executor {
            ExecutorKind::Simulated => {
                anyhow::ensure!(
                    !http_flags,
                    "--openfaas, --openwhisk, --function-url and --lambdas need --executor http"
                );
                return Ok(None);
            }
            ExecutorKind::Face => {
                anyhow::ensure!(
                    !http_flags,
                    "--executor face serves facerec0 and eyerec0 on --function URL; --openfaas, --openwhisk, --function-url and --lambdas are for --executor http"
                );
                let mut config = HttpConfig::face(&self.function);
                config.instant = if self.dummy_lambda.is_empty() {
                    Vec::new()
                } else {
                    vec![self.dummy_lambda.clone()]
                };
                config
            }
            ExecutorKind::Http => {
                let platform = match (&self.openfaas, &self.openwhisk) {
                    (Some(gateway), _) => Platform::OpenFaas {
                        gateway: gateway.clone(),
                    },
                    (None, Some(api)) => Platform::OpenWhisk {
                        api: api.clone(),
                        namespace: self.openwhisk_namespace.clone(),
                        auth: self.openwhisk_auth.clone(),
                    },
                    (None, None) if !self.function_url.is_empty() => {
                        let mut urls = BTreeMap::new();
                        for (name, url) in &self.function_url {
                            anyhow::ensure!(
                                urls.insert(name.clone(), url.clone()).is_none(),
                                "--function-url: lambda `{name}` is given twice"
                            );
                        }
                        Platform::Urls(urls)
                    }
                    (None, None) => anyhow::bail!(
                        "--executor http needs where the functions are: --openfaas URL, --openwhisk URL or --function-url NAME=URL"
                    ),
                };
                HttpConfig::new(platform, self.lambdas.clone())
            }
        };
        config.timeout = self.http_timeout;
        config.workers = self.workers;
        config.max_answer_bytes = max_answer_bytes;
        Ok(Some(HttpExecutor::new(config)?))
    }
}
