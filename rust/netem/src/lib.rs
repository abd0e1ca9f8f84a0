//! lambdaroute's delay element, for kernels without the netem qdisc: it adds a link's delay
//! and loss in the Mininet testbed where `tc ... netem` is not available (the testbed detects
//! it; see the repository's `docs/testbed.md`, "Delay and loss"). One `lambdaroute netem
//! --namespaces FILE` serves the queues of every host, each in its own network namespace
//! ([`element::run_namespaces`]).
//!
//! This crate is `lambdaroute-netem`, used only by the binary:
//!
//! ```text
//! lambdaroute (rust/cli)          the `lambdaroute` binary: command-line parsing only
//! |-- lambdaroute-node            tokio/tonic roles: router, computer, controller, client
//! |   |-- lambdaroute-core        pure logic: tables, policies, estimators, computer model
//! |   `-- lambdaroute-proto       the gRPC protocol: uiiit.rpc, lambdaroute.rpc
//! `-- lambdaroute-netem           the testbed's NFQUEUE delay element
//!
//! Python package lambdaroute      scenarios, topologies, the Mininet testbed
//! `-- lambdaroute-py              the module lambdaroute._native
//!     `-- lambdaroute-scenario    scenario files, topologies, static flows
//! ```
//!
//! iptables rules send packets to NFQUEUE queues; the element takes each queued packet, decides
//! at once whether it is lost (probability `loss`, from a seeded generator), and otherwise holds
//! it for the queue's `delay` and then accepts it. Every packet of one queue waits the same
//! delay, so a queue releases its packets in the order they arrived.
//!
//! - [`delay_line`]: the pure part, what to hold, drop and release when, under an injected
//!   clock (tested without sockets or sleeps);
//! - [`element`] (Linux): the NFQUEUE loop over the `nfq` crate that drives a [`DelayLine`] in
//!   real time.

pub mod delay_line;
#[cfg(target_os = "linux")]
pub mod element;

pub use delay_line::{Admission, DelayLine, QueueSpec, SpecError};
