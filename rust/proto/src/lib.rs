//! The gRPC protocol of lambdaroute.
//!
//! `uiiit` is serverlessonedge's `uiiit.rpc` package, with identical names and field numbers,
//! so the original C++ prototype and lambdaroute call each other. `lambdaroute` is this
//! project's own package `lambdaroute.rpc` (congestion reports, the controller's view,
//! presence checks, router marks).

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
