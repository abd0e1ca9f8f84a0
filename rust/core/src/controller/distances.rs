//! The hop-distance matrix of the two-tier installer (docs/controller.md), as the testbed
//! writes it:
//!
//! ```yaml
//! nodes: [10.0.0.1, 10.0.0.2, 10.0.0.3]   # or endpoints: 127.0.0.1:6473, ...
//! hops:
//!   - [0, 1, 2]
//!   - [1, 0, 1]
//!   - [2, 1, 0]
//! ```
//!
//! `hops[i][j]` is the number of links on a shortest path from `nodes[i]` to `nodes[j]`; `null`
//! marks a node that cannot be reached. Nodes are [`NodeKey`]s.

use std::collections::HashMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{FileError, NodeKey};

const FORMAT: &str = "`nodes: [KEY, ...]` and `hops: [[...], ...]`, a square matrix of hop counts (or null) in the order of nodes";

/// Hop distances among the nodes of a network.
#[derive(Clone, Debug, PartialEq)]
pub struct Distances {
    nodes: Vec<NodeKey>,
    /// Row-major, `None` = unreachable.
    hops: Vec<Option<u32>>,
    index: HashMap<NodeKey, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    nodes: Vec<Spanned<String>>,
    hops: Vec<Spanned<Vec<Option<u32>>>>,
}

impl Distances {
    /// A matrix over `nodes`; `hops` must be square, in the order of `nodes`, with zeros on
    /// the diagonal.
    pub fn new(nodes: Vec<NodeKey>, hops: Vec<Vec<Option<u32>>>) -> Result<Self, String> {
        let n = nodes.len();
        let mut index = HashMap::with_capacity(n);
        for (i, key) in nodes.iter().enumerate() {
            if let Some(first) = index.insert(key.clone(), i) {
                return Err(format!(
                    "node '{key}' is listed twice (nodes {first} and {i}, from 0): list each node once"
                ));
            }
        }
        if hops.len() != n {
            return Err(format!(
                "hops has {} rows but there are {n} nodes: give one row per node",
                hops.len()
            ));
        }
        for (i, row) in hops.iter().enumerate() {
            if row.len() != n {
                return Err(format!(
                    "hops row {i} (from 0, node '{}') has {} entries, expected {n}: one per node",
                    nodes[i],
                    row.len()
                ));
            }
            if row[i] != Some(0) {
                return Err(format!(
                    "hops[{i}][{i}] (node '{}' to itself) must be 0",
                    nodes[i]
                ));
            }
        }
        Ok(Distances {
            nodes,
            hops: hops.into_iter().flatten().collect(),
            index,
        })
    }

    /// Parses the YAML of a distances file; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Self, FileError> {
        let raw: Raw =
            crate::yaml::from_str(text).map_err(|e| FileError::yaml(file, &e, FORMAT))?;
        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for node in &raw.nodes {
            let key = node
                .value
                .parse::<NodeKey>()
                .map_err(|e| FileError::new(file, node.referenced.line(), format!("nodes: {e}")))?;
            nodes.push(key);
        }
        let n = nodes.len();
        if n == 0 {
            return Err(FileError::new(
                file,
                0,
                format!("no nodes; expected {FORMAT}"),
            ));
        }
        if raw.hops.len() != n {
            let line = raw.hops.last().map_or(0, |r| r.referenced.line());
            return Err(FileError::new(
                file,
                line,
                format!(
                    "hops has {} rows but nodes lists {n} nodes: give one row per node, in the order of nodes",
                    raw.hops.len()
                ),
            ));
        }
        // Check rows here too, to name the row's line.
        let mut hops = Vec::with_capacity(n);
        for (i, row) in raw.hops.into_iter().enumerate() {
            let line = row.referenced.line();
            if row.value.len() != n {
                return Err(FileError::new(
                    file,
                    line,
                    format!(
                        "hops row {} (node '{}') has {} entries, expected {n}: one per node, in the order of nodes",
                        i + 1,
                        nodes[i],
                        row.value.len()
                    ),
                ));
            }
            if row.value[i] != Some(0) {
                return Err(FileError::new(
                    file,
                    line,
                    format!(
                        "hops row {} (node '{}'): its distance to itself (entry {}) must be 0",
                        i + 1,
                        nodes[i],
                        i + 1
                    ),
                ));
            }
            hops.push(row.value);
        }
        let lines: Vec<u64> = raw.nodes.iter().map(|n| n.referenced.line()).collect();
        Distances::new(nodes, hops).map_err(|message| {
            // Only a duplicate node is left to find: point at its second listing.
            let line = duplicate_line(&raw.nodes, &lines);
            FileError::new(file, line, format!("nodes: {message}"))
        })
    }

    /// Number of nodes (the N of the two-tier installer's cost).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the matrix has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The nodes of the matrix, in the order of its rows and columns.
    pub fn nodes(&self) -> &[NodeKey] {
        &self.nodes
    }

    /// Hops from node `i` to node `j`; None when unreachable.
    pub fn hops(&self, i: usize, j: usize) -> Option<u32> {
        self.hops[i * self.nodes.len() + j]
    }

    /// The node of `endpoint`: its exact `HOST:PORT` key, else its `HOST` key.
    pub fn lookup(&self, endpoint: &str) -> Option<usize> {
        NodeKey::candidates(endpoint)?
            .iter()
            .find_map(|key| self.index.get(key).copied())
    }
}

fn duplicate_line(nodes: &[Spanned<String>], lines: &[u64]) -> u64 {
    let mut seen = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let key = node.value.parse::<NodeKey>().ok();
        if seen.insert(key, i).is_some() {
            return lines[i];
        }
    }
    0
}
