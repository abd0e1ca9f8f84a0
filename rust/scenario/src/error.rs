//! The one error type of the crate.

use thiserror::Error;

/// Why a scenario could not be loaded or generated.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ScenarioError {
    /// Something in a scenario file: where it is, which field, what was wrong and what is expected.
    #[error("{file}:{line}:{column}: {field}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        /// The path of the field, e.g. `links[3].bw`; `(document)` for the whole file.
        field: String,
        message: String,
    },
    /// The file could not be read.
    #[error("{file}: cannot read: {message}")]
    Io { file: String, message: String },
    /// A generator or importer was given something it cannot build.
    #[error("{0}")]
    Generator(String),
}

pub type Result<T, E = ScenarioError> = std::result::Result<T, E>;
