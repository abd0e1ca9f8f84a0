//! The gRPC protocol of lambdaroute.
//!
//! `uiiit` is serverlessonedge's `uiiit.rpc` package, with identical names and field numbers,
//! so the original C++ prototype and lambdaroute call each other.

/// serverlessonedge's `uiiit.rpc` package.
pub mod uiiit {
    tonic::include_proto!("uiiit.rpc");
}

/// The retcode of a successful call.
pub const RETCODE_OK: &str = "OK";
