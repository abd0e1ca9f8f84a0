//! The e-controller's pure logic (docs/controller.md: installers, congestion): which entries each
//! router should hold, which of them are marked, and the files that feed those decisions.
//!
//! - [`key`]: how a node of a file (`A.B.C.D` or `A.B.C.D:PORT`) matches an endpoint.
//! - [`distances`]: the hop-distance matrix of the two-tier installer.
//! - [`paths`]: the links of each (router, computer) path, for congestion steering.
//! - [`plan`]: the installers (flat, two-tier with its home-router choice), the tables they
//!   want on each router, the difference from what a router holds, and the marks.
//!
//! The node layer (`lambdaroute-node`'s controller) owns the sockets: it keeps the
//! [`plan::Topology`] of announced routers and computers, asks [`plan::plan`] for the wanted
//! tables after every change and pushes the difference to the routers.

pub mod distances;
pub mod key;
pub mod paths;
pub mod plan;

use std::fmt;

pub use distances::Distances;
pub use key::NodeKey;
pub use paths::Paths;
pub use plan::{Installer, Objective, Placement, Plan, Topology};

/// A distances or paths file that cannot be used: where, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct FileError {
    /// The file, as the user named it.
    pub file: String,
    /// 1-based line of the problem; 0 when unknown.
    pub line: u64,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl FileError {
    pub(crate) fn new(file: &str, line: u64, message: impl Into<String>) -> Self {
        FileError {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }

    /// A YAML or schema error from serde-saphyr, with its location when it has one.
    pub(crate) fn yaml(file: &str, error: &serde_saphyr::Error, format: &str) -> Self {
        let line = error.location().map_or(0, |l| l.line());
        let text = error.to_string();
        let message = strip_location(first_line(&text));
        FileError::new(file, line, format!("{message}; the format is {format}"))
    }
}

/// serde-saphyr's message without its "error: line L column C: " prefix (the line is ours).
fn strip_location(message: &str) -> &str {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    match message.strip_prefix("line ") {
        Some(rest) => rest
            .split_once(": ")
            .filter(|(place, _)| place.contains("column"))
            .map_or(message, |(_, text)| text),
        None => message,
    }
}

/// The first line of a multi-line message (serde-saphyr appends a source snippet).
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text).trim()
}
