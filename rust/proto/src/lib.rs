//! The gRPC protocol of lambdaroute: the messages and services every node speaks, generated
//! at build time from `proto/` by tonic and prost (with a vendored `protoc`, so building needs
//! no system protobuf compiler).
//!
//! This crate is `lambdaroute-proto`, the bottom of the network side:
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
//! - [`uiiit`] is serverlessonedge's `uiiit.rpc` package, with identical names and field
//!   numbers, so the original C++ prototype and lambdaroute call each other:
//!   `EdgeServer.RunLambda` (calling a lambda: `LambdaRequest` → `LambdaResponse`),
//!   `EdgeComputer.StreamUtil` (utilization), `EdgeController` (announcements) and
//!   `EdgeRouter` (table configuration). Each service has a `*_client` and a `*_server`
//!   module, as tonic generates them.
//! - [`lambdaroute`] is this project's own package `lambdaroute.rpc`: congestion reports and the
//!   controller's view (`Congestion`), presence checks (`Presence`), router marks (`Marks`).
//!
//! Conventions kept from upstream: errors of a call travel in `LambdaResponse.retcode`
//! (anything but [`RETCODE_OK`]) and in `Return.msg` (`"Error: ..."`), with gRPC status OK.
//! New fields of `uiiit.rpc` messages are numbered 100 and up; `LambdaRequest` fields 7 to 13
//! are reserved for upstream's. Every message and field, and what each node does with it: the
//! repository's `docs/protocol.md`.

/// serverlessonedge's `uiiit.rpc` package.
pub mod uiiit {
    tonic::include_proto!("uiiit.rpc");
}

/// lambdaroute's own package `lambdaroute.rpc`.
pub mod lambdaroute {
    tonic::include_proto!("lambdaroute.rpc");
}

/// The retcode of a successful call.
pub const RETCODE_OK: &str = "OK";
