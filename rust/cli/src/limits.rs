//! `--max-calls`, `--max-bytes-in-flight`, `--handshake-timeout`, shared by `lambdaroute router`
//! and `computer` (docs/security.md, "Resource limits").

use clap::Args;
use lambdaroute_node::limits::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_BYTES_IN_FLIGHT, DEFAULT_MAX_CALLS, Limits,
};

/// What each lambda listener lets its peers use.
#[derive(Args, Debug, Clone)]
pub struct LimitsArgs {
    /// Calls served at once on the lambda listener; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = DEFAULT_MAX_CALLS)]
    max_calls: usize,
    /// Bytes of calls in flight on the lambda listener, the node's memory for calls: each
    /// call counts twice its request's size until it is answered (a router: half of this for
    /// requests, half for its destinations' answers, each counted twice too); a call that
    /// would pass it is refused with RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = DEFAULT_MAX_BYTES_IN_FLIGHT)]
    max_bytes_in_flight: usize,
    /// Time a new connection has to start HTTP/2 before it is closed (e.g. 10s, 500ms; a
    /// plain number is seconds).
    #[arg(long, default_value_t = DEFAULT_HANDSHAKE_TIMEOUT.into(), value_parser = human_duration)]
    handshake_timeout: humantime::Duration,
}

fn human_duration(text: &str) -> Result<humantime::Duration, String> {
    crate::duration::parse(text).map(humantime::Duration::from)
}

impl LimitsArgs {
    /// The limits, checked.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        let limits = Limits {
            max_calls: self.max_calls,
            max_bytes_in_flight: self.max_bytes_in_flight,
            handshake_timeout: self.handshake_timeout.into(),
        };
        limits.validate().map_err(anyhow::Error::msg)?;
        Ok(limits)
    }
}
