//! Real execution for `lambdaroute computer` (docs/real-computers.md): instead of simulating a
//! processor, each call goes to an HTTP function.
//!
//! - [`HttpConfig`] says where the functions are: an OpenFaaS-style gateway
//!   (`POST {gateway}/function/{name}`, as serverlessonedge's `--computer-type http`), an Apache
//!   OpenWhisk API host (`POST {api}/api/v1/namespaces/{ns}/actions/{name}?blocking=true&result=true`,
//!   basic auth `uuid:key`), or one plain URL per lambda.
//! - [`HttpConfig::face`] is the face and eye detection computer, wire-compatible with
//!   serverlessonedge's `edgecomputerfacerec`: lambdas `facerec0` and `eyerec0` go to the face
//!   function (`python -m lambdaroute.facerec`, an OpenFaaS-style server), `clambda0` is answered
//!   at once, and the errors are the original's texts.
//! - [`HttpExecutor`] runs the calls: one `reqwest` client (kept-open connections, a time limit per
//!   call), at most `workers` calls in flight (the others wait in FIFO order), the time from
//!   taking the call to its answer as `ptime`, and the load of its workers ([`BusyMeter`]) in
//!   the answers and on `StreamUtil`.

mod http;

pub use http::{Answer, ErrorStyle, ExecutorError, HttpConfig, HttpExecutor, Platform};

pub use lambdaroute_core::busy::BusyMeter;
