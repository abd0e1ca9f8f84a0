//! Pure logic of lambdaroute, with no I/O: tested fast, shared by the node binaries and the
//! Python bindings. Time is always passed in explicitly (see [`clock`]).

pub mod clock;
pub mod computer_model;
pub mod stats;
pub mod workload;
pub mod table;
pub mod policy;
pub mod estimator;
