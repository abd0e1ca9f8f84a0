//! The lambdaroute scenario: one model of the emulated network, its roles and its workloads,
//! from which the testbed builds a run.
//!
//! This crate is `lambdaroute-scenario`, the pure bottom of the testbed side. The Python
//! package reaches it through the `lambdaroute._native` module (`lambdaroute-py`):
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
//! A [`Scenario`] is what a scenario file says: switches, hosts with their [`Role`]s, links,
//! workloads, background traffic and the [`Control`] choices (policy, estimator, installer,
//! routing, congestion threshold). A [`Network`] is what the testbed derives from it.
//!
//! - [`Scenario::from_yaml`] / [`Scenario::load`] read and validate a scenario file (errors name
//!   file, line, column and field); [`Scenario::to_yaml`] writes it back.
//! - [`Scenario::offered_load`] compares the workloads' calls with the computers' capacity.
//! - [`Network`] derives addresses, switch ports, shortest paths, static flow entries, the hop
//!   distance matrix and the (router, computer) paths.
//! - [`generators`] builds the papers' topologies: line, pods, ring-tree, grid, Array of Things
//!   (Chicago), and imports BRITE files.
//! - [`replay`] says which Array of Things nodes feed each `pattern: aot` workload (the nodes
//!   merged into its client's site) and groups those workloads into passes over their traces
//!   (`lambdaroute-trace` reads them).
//!
//! The crate is pure: no I/O but reading the file [`Scenario::load`] is asked to load. The file
//! format and the generators are documented in the repository's `docs/scenario.md`.

pub mod error;
pub mod generators;
pub mod load;
pub mod model;
pub mod network;
mod parse;
pub mod replay;
mod write;
pub mod yaml;

pub use error::{Result, ScenarioError};
pub use load::{LambdaLoad, OfferedLoad};
pub use model::*;
pub use network::{DistanceMatrix, FlowEntry, Match, Network, Peer, Port};
pub use parse::MAX_NAME_LEN;

impl Scenario {
    /// Parses and validates scenario text; `file` names it in error messages.
    pub fn from_yaml(text: &str, file: &str) -> Result<Scenario> {
        parse::from_yaml(text, file)
    }

    /// Validates a scenario given as a YAML tree (built by a program, not read from text) with
    /// the checks of [`Scenario::from_yaml`]. Errors name `source` and the field path (e.g.
    /// `links[0].bw`); their line and column are the positions the tree's nodes carry.
    pub fn from_tree(root: &yaml::Node, source: &str) -> Result<Scenario> {
        parse::from_tree(root, source)
    }

    /// Reads and validates a scenario file, and checks that the files it names (traces, AoT
    /// digests, images; relative paths from the file's directory) exist, naming the line and
    /// field of one that does not. Text that is not UTF-8 is refused with the line and byte
    /// of its first invalid byte.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Scenario> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ScenarioError::Io {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let text = lambdaroute_core::text::utf8(bytes).map_err(|e| ScenarioError::Invalid {
            file: file.clone(),
            line: e.line,
            column: e.column,
            field: "(text)".into(),
            message: e.to_string(),
        })?;
        let (scenario, files) = parse::from_yaml_with_files(&text, &file)?;
        let base = path.parent().unwrap_or(std::path::Path::new(""));
        for named in files {
            let target = base.join(&named.path);
            if !target.is_file() {
                return Err(ScenarioError::Invalid {
                    file,
                    line: named.pos.line,
                    column: named.pos.column,
                    field: named.field,
                    message: format!(
                        "no file {} (relative paths are from the scenario file's directory)",
                        target.display()
                    ),
                });
            }
        }
        Ok(scenario)
    }

    /// The scenario as YAML, in the format [`Scenario::from_yaml`] reads.
    pub fn to_yaml(&self) -> String {
        write::to_yaml(self)
    }

    /// The workloads' peak offered load against the computers' capacity ([`load`]).
    pub fn offered_load(&self) -> OfferedLoad {
        load::offered_load(self)
    }

    /// Addresses, ports, paths and flows of this scenario's network.
    pub fn network(&self) -> Network {
        Network::new(self)
    }
}
