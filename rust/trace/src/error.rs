//! The one error type of the crate.

/// Why a trace, a node list, a sensor list or a schedule could not be read or written. Every
/// message names the file and, where there is one, the line and the field, says what was found
/// and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A row (or the header) of a file is wrong.
    #[error("{file}:{line}: {field}: {message}")]
    Row {
        /// The file, as named to the reader.
        file: String,
        /// Line in the (decompressed) text, from 1 (the header is line 1).
        line: u64,
        /// The column or part at fault (`header`, `timestamp`, `node_id`, ...).
        field: String,
        /// What was found, what is expected and how to fix it.
        message: String,
    },
    /// Something about a file as a whole (cannot open, corrupt or truncated compression).
    #[error("{file}: {message}")]
    File {
        /// The file, as named to the reader.
        file: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A setting (filter, window, rule) that cannot be used.
    #[error("{0}")]
    Setting(String),
}

impl TraceError {
    pub(crate) fn row(
        file: &str,
        line: u64,
        field: &str,
        message: impl Into<String>,
    ) -> TraceError {
        TraceError::Row {
            file: file.to_owned(),
            line,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn file(file: &str, message: impl Into<String>) -> TraceError {
        TraceError::File {
            file: file.to_owned(),
            message: message.into(),
        }
    }
}

/// A result whose error is a [`TraceError`].
pub type Result<T, E = TraceError> = std::result::Result<T, E>;
