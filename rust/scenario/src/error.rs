//! The one error type of the crate.

use thiserror::Error;

/// Why a scenario could not be loaded or generated.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ScenarioError {
    /// Something in a scenario file: where it is, which field, what was wrong and what is expected.
    #[error("{file}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The file as named to the reader, or the source of a tree built by a program.
        file: String,
        /// Line of the offending key or value, from 1; 0 when the tree carries no position.
        line: usize,
        /// Column of the offending key or value, from 1; 0 when the tree carries no position.
        column: usize,
        /// The path of the field, e.g. `links[3].bw`; `(document)` for the whole file.
        field: String,
        /// What was found and what is expected.
        message: String,
    },
    /// The file could not be read.
    #[error("{file}: cannot read: {message}")]
    Io {
        /// The path of the file.
        file: String,
        /// The operating system's reason.
        message: String,
    },
    /// A generator or importer was given something it cannot build.
    #[error("{0}")]
    Generator(String),
    /// An `aot` workload that cannot be replayed on this scenario (its client is on no AoT
    /// site, or its settings are impossible).
    #[error("{0}")]
    Replay(String),
}

/// A result whose error is a [`ScenarioError`].
pub type Result<T, E = ScenarioError> = std::result::Result<T, E>;
