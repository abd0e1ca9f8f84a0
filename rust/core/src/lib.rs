//! Pure logic of lambdaroute: everything a router, a computer and a controller decide, with no
//! sockets, no files and no clock, so that it is tested fast and deterministically.
//!
//! lambdaroute routes serverless function calls ("lambdas") across edge computers. Its crates
//! are layered, each using only those below it; this one is `lambdaroute-core`:
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
//! Time is always passed in: a [`clock::Time`] is a duration since an origin the caller picks
//! (the node layer maps tokio's clock onto it, tests step it by hand).
//!
//! # What is here
//!
//! - [`table`]: the router's e-table. [`table::ETable`] holds, per lambda, the destinations a
//!   call may go to and their weights (estimated latencies in seconds), in two tables,
//!   [`table::TableKind::Overall`] (for calls from clients) and [`table::TableKind::Final`]
//!   (for calls forwarded by another router). It probes new entries once, keeps congestion
//!   marks, and drives a policy and an estimator per lambda.
//! - [`policy`]: how one destination is picked per call. [`policy::Policy`] is the trait,
//!   [`policy::PolicyKind`] names the four implementations: random proportional, least
//!   impedance, weighted round robin, power of two choices.
//! - [`estimator`]: how measured latencies become weights ([`estimator::EstimatorKind`]).
//! - [`computer_model`]: the simulated e-computer, processors shared by containers
//!   ([`computer_model::ComputerModel`], configured by a [`computer_model::ComputerConfig`] or a
//!   [`computer_model::Preset`]); [`busy`]: the load of a computer that runs real code (HTTP
//!   functions, face detection), from its calls in flight.
//! - [`controller`]: the controller's decisions: which entries each router should hold (flat
//!   or two-tier installer), the difference from what it holds, congestion marks, and the
//!   distance and path files they come from.
//! - [`workload`]: the clients' arrival processes and payload sizes; [`stats`]: latency
//!   summaries.
//!
//! The repository's `docs/` explains the behaviour: `docs/policies.md` for the table, policies
//! and estimators, `docs/computer.md` for the computer model, `docs/controller.md` for the
//! installers.
//!
//! # One call through the e-table
//!
//! What a router does per call: [`table::ETable::choose`] a destination, resolve it with
//! [`table::ETable::destination_of`], forward the call, then report its end with
//! [`table::ETable::complete_choice`], exactly once per choice (`None` instead of a latency
//! for a call that did not succeed).
//!
//! ```
//! use std::time::Duration;
//!
//! use lambdaroute_core::{ETable, EstimatorKind, PolicyKind, TableKind, Time};
//!
//! // Least impedance over the async EWMA (alpha 0.95); 7 seeds the policies' random draws.
//! let estimator: EstimatorKind = "ewma:0.95".parse().unwrap();
//! let mut table = ETable::new(PolicyKind::LeastImpedance, estimator, 7);
//!
//! // Two computers run clambda0 (final entries), installed at 1 s as the controller does.
//! table.change("clambda0", "10.0.0.2:10000", 1.0, true)?;
//! table.change("clambda0", "10.0.0.3:10000", 1.0, true)?;
//!
//! // The installed weights are placeholders: each new entry gets one call first, in order.
//! let mut now = Time::ZERO;
//! for (expected, latency_ms) in [("10.0.0.2:10000", 20), ("10.0.0.3:10000", 5)] {
//!     let choice = table.choose("clambda0", TableKind::Overall, now)?;
//!     let destination = table.destination_of("clambda0", choice).unwrap();
//!     assert_eq!(&**destination, expected);
//!     // ... the router forwards the call to `destination` and measures its latency ...
//!     let latency = Duration::from_millis(latency_ms);
//!     now = now + latency;
//!     table.complete_choice("clambda0", choice, TableKind::Overall, Some(latency), now);
//! }
//!
//! // The first sample of an entry becomes its weight (seconds), in both tables.
//! assert_eq!(table.weight("clambda0", "10.0.0.3:10000", TableKind::Final), Some(0.005));
//!
//! // From now on the policy decides: least impedance takes the smallest weight.
//! let choice = table.choose("clambda0", TableKind::Overall, now)?;
//! assert_eq!(&**table.destination_of("clambda0", choice).unwrap(), "10.0.0.3:10000");
//! // A call that fails, or that the caller gave up on, is completed without a sample.
//! table.complete_choice("clambda0", choice, TableKind::Overall, None, now);
//!
//! // An unknown lambda is an error the router passes back to the caller.
//! assert!(table.choose("nope", TableKind::Overall, now).is_err());
//! # Ok::<(), lambdaroute_core::TableError>(())
//! ```

pub mod busy;
pub mod clock;
pub mod computer_model;
pub mod controller;
pub mod estimator;
pub mod policy;
pub mod stats;
pub mod table;
pub mod text;
pub mod workload;
pub mod yaml;

// The types most users need, at the crate root; the modules hold the rest.
pub use clock::Time;
pub use computer_model::{ComputerConfig, ComputerModel, Preset};
pub use estimator::{EstimatorKind, Stat};
pub use policy::{Fairness, Policy, PolicyKind};
pub use table::{Choice, ETable, Entry, TableError, TableKind};
