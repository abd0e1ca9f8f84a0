//! Array of Things traces: what the AoT sensors of Chicago reported, and when, replayed as
//! lambda calls.
//!
//! This crate is `lambdaroute-trace`. It knows the published format of the AoT "complete"
//! digests (`AoT_Chicago.complete`: `data.csv[.gz]`, `nodes.csv`, `sensors.csv`) and nothing of
//! the network; the scenario crate maps its nodes onto sites, the testbed and `lambdaroute
//! trace` drive it:
//!
//! ```text
//! lambdaroute (rust/cli)          `lambdaroute trace aot generate|read|schedule`, `client --pattern aot`
//! |-- lambdaroute-node            the client sends a schedule's calls on time (open loop)
//! `-- lambdaroute-scenario        `pattern: aot` workloads; which AoT nodes feed which client
//!     `-- lambdaroute-trace       this crate: format, reader, sites, replay, schedules, generator
//! ```
//!
//! - [`reader::Reader`] streams `data.csv` or `data.csv.gz` row by row (never the whole file),
//!   checks the header, the timestamps and their order, counts unknown node ids, and filters by
//!   time window, node and sensor; errors name the file, the line and the field.
//! - [`nodes`] reads `nodes.csv` and `sensors.csv` and applies upstream's 0.010-degree merge
//!   rule ([`nodes::sites`]): the sites the AoT scenario is built from.
//! - [`replay::replay`] turns the samples of each target's nodes into calls in one pass: one per
//!   reading, per node and timestamp, or per subsystem; a lambda per subsystem or sensor; the
//!   rows themselves or a size as the input; trace time divided by a speed-up factor.
//! - [`schedule`] writes and reads the per-client schedule files `lambdaroute client` sends.
//! - [`generate::generate`] writes a `data.csv` in the same format, deterministic by seed.
//!
//! The crate is pure but for opening the files it is asked to read ([`reader::Reader::open`]).
//! The format, the mapping and the commands are documented in the repository's
//! `docs/traces.md`.

pub mod error;
pub mod generate;
pub mod nodes;
pub mod reader;
pub mod replay;
pub mod schedule;
pub mod time;

pub use error::{Result, TraceError};
pub use nodes::{Node, NodeList, Sensor, Site};
pub use reader::{Filter, OwnedSample, ReadStats, Reader, Sample, SensorFilter};
pub use replay::{Call, Group, LambdaRule, NodeSet, Payload, ReplayConfig, ReplayStats, Target};
pub use time::{TimeSpec, Timestamp, Window};
