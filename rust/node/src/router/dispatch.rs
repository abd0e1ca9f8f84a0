//! The router's lambda service: per call, pick a destination from the e-table, forward the
//! call, measure its latency and feed it back; on a failed destination, drop it and retry
//! elsewhere.

use std::sync::Arc;
use std::time::Duration;

use lambdaroute_core::table::{Choice, TableError, TableKind};
use lambdaroute_proto::RETCODE_OK;
use lambdaroute_proto::uiiit::edge_server_server::EdgeServer;
use lambdaroute_proto::uiiit::{LambdaRequest, LambdaResponse};
use tonic::{Code, Request, Response, Status};
use tracing::{debug, warn};

use super::{RouterState, forward};
use crate::limits::CallBudget;
use crate::metrics::{LambdaMetrics, RouterMetrics};

/// A request that has crossed more routers than this is answered "loop detected" (upstream's rule).
pub const LOOP_HOPS: u32 = 254;

pub(crate) struct Dispatcher {
    state: Arc<RouterState>,
}

impl Dispatcher {
    pub fn new(state: Arc<RouterState>) -> Self {
        Self { state }
    }
}

/// An answer that carries an error in `retcode`, as upstream does.
fn error_response(retcode: String, hops: u32) -> LambdaResponse {
    LambdaResponse {
        retcode,
        hops,
        ..Default::default()
    }
}

/// What became of one attempt at one destination.
enum Attempt {
    /// The destination answered (successfully or with an application error in retcode).
    Answered(LambdaResponse),
    /// The request itself is at fault (too big, malformed): no destination would take it.
    Rejected(Status),
    /// The destination failed: unreachable, timed out, or a transport error.
    Failed(String),
}

#[tonic::async_trait]
impl EdgeServer for Dispatcher {
    async fn run_lambda(
        &self,
        request: Request<LambdaRequest>,
    ) -> Result<Response<LambdaResponse>, Status> {
        let taken = tokio::time::Instant::now();
        // The answers this call receives count in its listener's bytes in flight.
        let budget = request.extensions().get::<CallBudget>().cloned();
        let request = request.into_inner();
        let state = &self.state;
        let metrics = state.options.metrics.as_ref();
        let _in_flight = metrics.map(RouterMetrics::in_flight);
        if request.name.is_empty() {
            if let Some(metrics) = metrics {
                metrics.unrouted();
            }
            return Ok(Response::new(error_response(
                "Error: empty lambda name".into(),
                request.hops,
            )));
        }
        if request.hops > LOOP_HOPS {
            if let Some(metrics) = metrics {
                metrics.unrouted();
            }
            return Ok(Response::new(error_response(
                format!("Error: loop detected (hops {})", request.hops),
                request.hops,
            )));
        }
        // Clients look in the overall table; calls forwarded by another router only in the final
        // one, so a call crosses at most two routers.
        let table = if request.forward {
            TableKind::Final
        } else {
            TableKind::Overall
        };
        // Shared by every attempt: an attempt encodes it straight from here, so a call's
        // request is held once, never copied, whatever the retries.
        let forwarded = LambdaRequest {
            forward: true,
            hops: request.hops + 1,
            ..request
        };

        // The lambda's series, from the first pass on (None without metrics).
        let mut series: Option<Arc<LambdaMetrics>> = None;
        let mut first = true;
        loop {
            let now = state.now();
            let selected = {
                let mut t = state.table.lock();
                let selected = t.etable.choose(&forwarded.name, table, now).map(|choice| {
                    let destination = t.etable.destination_of(&forwarded.name, choice).cloned();
                    (choice, destination.expect("just chosen"))
                });
                if first
                    && metrics.is_some()
                    && !matches!(selected, Err(TableError::UnknownLambda(_)))
                {
                    series = t.lambda_metrics(&forwarded.name);
                }
                selected
            };
            let retry = !std::mem::take(&mut first);
            if !retry {
                match (&series, metrics) {
                    (Some(series), _) => {
                        series.calls.inc();
                    }
                    (None, Some(metrics)) => metrics.unrouted(),
                    (None, None) => {}
                }
            }
            let (choice, destination) = match selected {
                Ok(selected) => {
                    if retry && let Some(series) = &series {
                        series.retries.inc();
                    }
                    selected
                }
                Err(error @ (TableError::UnknownLambda(_) | TableError::Empty(_))) => {
                    if let Some(series) = &series {
                        series.errors.inc();
                    }
                    return Ok(Response::new(error_response(
                        format!("Error: {error}"),
                        forwarded.hops,
                    )));
                }
                Err(error) => return Err(Status::internal(error.to_string())),
            };
            // From here on the call is completed exactly once, also when this future is
            // dropped at an `.await` below (see `PendingCall`).
            let pending = PendingCall {
                state,
                lambda: &forwarded.name,
                choice,
                table,
                open: true,
            };
            if state.options.fake {
                // Benchmark fake mode (RouterOptions::fake): answer here, after the decision;
                // the decision time is the latency sample, so the estimator keeps working.
                let decided = taken.elapsed();
                pending.complete(Some(decided));
                if let Some(series) = &series {
                    series.latency.observe(decided.as_secs_f64());
                }
                return Ok(Response::new(LambdaResponse {
                    retcode: RETCODE_OK.into(),
                    responder: destination.to_string(),
                    hops: forwarded.hops,
                    ..Default::default()
                }));
            }

            let started = tokio::time::Instant::now();
            let attempt = self
                .forward(&destination, &forwarded, budget.as_ref())
                .await;
            let latency = started.elapsed();
            match attempt {
                Attempt::Answered(response) => {
                    // A dry run's latency says nothing about a real call's.
                    let ok = response.retcode == RETCODE_OK && !forwarded.dry;
                    pending.complete(ok.then_some(latency));
                    if let Some(series) = &series {
                        if response.retcode == RETCODE_OK {
                            series.latency.observe(taken.elapsed().as_secs_f64());
                        } else {
                            series.errors.inc();
                        }
                    }
                    debug!(lambda = %forwarded.name, %destination, latency_ms = latency.as_secs_f64() * 1e3, ok, "call answered");
                    return Ok(Response::new(response));
                }
                Attempt::Rejected(status) => {
                    pending.complete(None);
                    if let Some(series) = &series {
                        series.errors.inc();
                    }
                    return Err(status);
                }
                Attempt::Failed(reason) => {
                    // Its entries go, policy state included: completing the call first would
                    // only be undone.
                    let removed = {
                        let mut t = state.table.lock();
                        let removed = t.etable.remove_destination(&destination);
                        t.entries_changed();
                        removed
                    };
                    pending.abandon();
                    state.destinations.forget(&destination);
                    state.failures.report(&destination);
                    warn!(lambda = %forwarded.name, %destination, %reason, removed, "destination failed: removed from the tables, retrying elsewhere");
                }
            }
        }
    }
}

/// A call that the e-table handed out and that is not completed yet: the policy counts it in
/// flight (power of two choices) or waits for its answer (round robin's probe of an idle
/// destination). [`PendingCall::complete`] ends it with the call's outcome; dropped without
/// it, when the future serving the call is dropped (the client gave up, or an upstream
/// router's timeout cancelled the call), it completes with no latency sample, as tower's
/// `PeakEwma` handle does, so that no count stays raised and no probe stays open.
struct PendingCall<'a> {
    state: &'a RouterState,
    lambda: &'a str,
    choice: Choice,
    table: TableKind,
    open: bool,
}

impl PendingCall<'_> {
    /// End the call: `Some(latency)` feeds the estimator, `None` is a call with no sample.
    fn complete(mut self, latency: Option<Duration>) {
        self.finish(latency);
    }

    /// The entry is gone (its destination failed and was removed): nothing to complete.
    fn abandon(mut self) {
        self.open = false;
    }

    fn finish(&mut self, latency: Option<Duration>) {
        if std::mem::take(&mut self.open) {
            let now = self.state.now();
            self.state.table.lock().etable.complete_choice(
                self.lambda,
                self.choice,
                self.table,
                latency,
                now,
            );
        }
    }
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        if self.open {
            debug!(lambda = %self.lambda, "call dropped before its answer: completed with no sample");
            self.finish(None);
        }
    }
}

impl Dispatcher {
    async fn forward(
        &self,
        destination: &Arc<str>,
        request: &LambdaRequest,
        budget: Option<&CallBudget>,
    ) -> Attempt {
        let target = match self.state.destinations.get(destination) {
            Ok(target) => target,
            Err(reason) => return Attempt::Failed(reason),
        };
        let options = &self.state.options;
        let Ok(_slot) = target.slots.acquire().await else {
            return Attempt::Failed("destination closed".into());
        };
        let call = async {
            let sender = target.sender().await.map_err(Status::unavailable)?;
            forward::run_lambda(&target, sender, request, options.max_request_bytes, budget).await
        };
        match tokio::time::timeout(options.call_timeout, call).await {
            Ok(Ok(response)) => Attempt::Answered(response),
            Ok(Err(status)) if is_request_error(&status) => Attempt::Rejected(status),
            Ok(Err(status)) => Attempt::Failed(format!("{}: {}", status.code(), status.message())),
            Err(_) => Attempt::Failed(format!(
                "no answer within {}",
                humanize(options.call_timeout)
            )),
        }
    }
}

/// Errors caused by the request, not by the destination: retrying elsewhere would not help.
fn is_request_error(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::InvalidArgument | Code::ResourceExhausted | Code::OutOfRange
    )
}

fn humanize(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}
