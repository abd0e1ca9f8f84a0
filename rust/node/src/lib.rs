//! The roles of lambdaroute as network services, over tokio and tonic: the e-router, the
//! simulated e-computer, the e-controller, the client and the table tool. The `lambdaroute`
//! binary only parses the command line and calls into here; tests and benchmarks start the
//! same roles in-process.
//!
//! This crate is `lambdaroute-node`: it owns the sockets and the clock, and leaves every
//! decision to the pure `lambdaroute-core` (the e-table, the policies, the computer model, the
//! controller's plans). Its messages are those of `lambdaroute-proto`.
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
//! # The roles
//!
//! Each role module has `spawn` (start in the background on the current tokio runtime, return
//! a handle with the bound addresses, so port 0 works, and an async `shutdown`) and
//! `serve_until` (serve until a future completes: what the binary runs).
//!
//! - [`router`]: the e-router. [`router::RouterOptions`] (policy, estimator, listeners,
//!   limits), [`router::spawn`] → [`router::RouterHandle`]. Per call it asks its
//!   `ETable` for a destination, forwards the call on a shared HTTP/2 channel
//!   ([`destinations`]), measures the latency and feeds it back; it serves its tables
//!   (`uiiit.rpc.EdgeRouter`) and congestion marks (`lambdaroute.rpc.Marks`) on a second
//!   listener.
//! - [`computer`]: the simulated e-computer: a `ComputerModel` run in real time behind
//!   `EdgeServer.RunLambda` and `EdgeComputer.StreamUtil`. [`computer::ComputerOptions`],
//!   [`computer::spawn`] → [`computer::ComputerHandle`]; with an [`executor::HttpExecutor`] it
//!   runs real code instead: HTTP functions (OpenFaaS, OpenWhisk, plain URLs) and the face and
//!   eye detection function.
//! - [`controller`]: the e-controller: announcements, installers, failures, congestion.
//! - [`membership`]: how routers and computers started with a controller announce themselves
//!   and stay known ([`membership::Announcer`]).
//! - [`limits`]: what a node lets its peers use: descriptors, accepts, handshakes, calls and
//!   request bytes in flight (docs/security.md).
//! - [`tls`]: secured mode: TLS on every listener and connection, mutual authentication and
//!   roles on the control surfaces, certificates or tokens for lambda calls
//!   (docs/security.md); [`certs`] makes the CA and the nodes' certificates.
//! - [`metrics`]: Prometheus metrics of the router, the computer and the controller
//!   ([`metrics::RouterMetrics`] and the others, in the roles' options) and the `/metrics`
//!   listener ([`metrics::spawn`]); docs/metrics.md.
//! - [`client`]: sends calls with an arrival pattern and records one row per call
//!   ([`client::run`] → [`client::Report`]).
//! - [`table_tool`]: reads and changes a router's tables ([`table_tool::TableClient`]).
//! - [`bench`](mod@bench): the router benchmark (`lambdaroute bench`).
//!
//! The repository's `docs/` has the details: `docs/architecture.md` (the per-call path, the
//! control plane), `docs/protocol.md`, `docs/computer.md`, `docs/controller.md`.
//!
//! # A router in front of a computer
//!
//! A simulated Raspberry Pi, a router with one entry towards it, and one call, all on
//! loopback:
//!
//! ```
//! use lambdaroute_core::computer_model::Preset;
//! use lambdaroute_node::computer::{self, ComputerOptions};
//! use lambdaroute_node::router::{self, RouterOptions};
//! use lambdaroute_node::table_tool::TableClient;
//! use lambdaroute_proto::uiiit::LambdaRequest;
//! use lambdaroute_proto::uiiit::edge_server_client::EdgeServerClient;
//!
//! # fn main() -> anyhow::Result<()> {
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime.block_on(async {
//!     // Port 0: the system picks free ports; the handles say which.
//!     let loopback = "127.0.0.1:0".parse()?;
//!     let computer = computer::spawn(ComputerOptions::new(loopback, Preset::Raspberry.config()))
//!         .await?;
//!     let router = router::spawn(RouterOptions {
//!         listen: loopback,
//!         table_listen: loopback,
//!         ..RouterOptions::default()
//!     })
//!     .await?;
//!
//!     // Install clambda0 -> the computer, final, at 1 s (what the controller would do).
//!     let mut table = TableClient::connect(&router.table_listen.to_string()).await?;
//!     table.change("clambda0", computer.endpoint(), 1.0, true).await?;
//!
//!     // A client's call: hops 0 and forward false; the router sends it on with hops 1.
//!     let mut client = EdgeServerClient::connect(format!("http://{}", router.listen)).await?;
//!     let request = LambdaRequest {
//!         name: "clambda0".into(),
//!         input: "hello".into(),
//!         ..Default::default()
//!     };
//!     let response = client.run_lambda(request).await?.into_inner();
//!     assert_eq!(response.retcode, "OK");
//!     assert_eq!(response.output, "hello"); // clambda0 echoes its input
//!     assert_eq!(response.responder, computer.endpoint());
//!     assert_eq!(response.hops, 2); // the router and the computer
//!     // 4e6 + 1e6 x 5 bytes = 9e6 operations at 1e9 ops/s: 9 ms on an idle computer.
//!     assert_eq!(response.ptime, 9);
//!
//!     drop(client);
//!     router.shutdown().await?;
//!     computer.shutdown().await?;
//!     Ok(())
//! })
//! # }
//! ```
pub mod bench;
pub mod certs;
pub mod client;
pub mod computer;
pub mod controller;
mod destinations;
pub mod executor;
pub mod gateway;
pub mod limits;
pub mod membership;
pub mod metrics;
pub mod router;
pub mod table_tool;
pub mod tls;

// The handles and options of each role, at the crate root; the modules hold the rest.
pub use client::{ClientOptions, Report};
pub use computer::{ComputerHandle, ComputerOptions};
pub use controller::{ControllerHandle, ControllerOptions};
pub use router::{RouterHandle, RouterOptions};
pub use table_tool::TableClient;
