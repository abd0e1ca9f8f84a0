//! Pure logic of lambdaroute, with no I/O: tested fast, shared by the node binaries and the
//! Python bindings. Time is always passed in explicitly (see [`clock`]).

pub mod clock;
pub mod computer_model;
pub mod controller;
pub mod estimator;
pub mod policy;
pub mod stats;
pub mod table;
pub mod workload;
pub mod yaml;
