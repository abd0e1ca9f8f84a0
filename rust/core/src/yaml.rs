//! The limits every YAML file lambdaroute reads is held to (scenario files, computer
//! configurations, the controller's distances and paths): a file from elsewhere must fail with a
//! clear error, quickly, rather than eat the memory — e.g. a "billion laughs" of nested aliases.
//!
//! serde-saphyr's [`Budget`] bounds the parser's events, nodes, depth, anchors and aliases;
//! its alias limits bound how much aliases may replay. Pure: no I/O.

use serde::de::DeserializeOwned;
use serde_saphyr::options::AliasLimits;
use serde_saphyr::{Budget, Options};

/// Most nodes (scalars, lists, mappings) a file may hold, counting every node an alias repeats.
pub const MAX_NODES: usize = 250_000;
/// Deepest nesting of lists and mappings.
pub const MAX_DEPTH: usize = 64;
/// Most aliases (`*name`) in a file.
pub const MAX_ALIASES: usize = 1_000;
/// Most parser events aliases may replay in all (serde-saphyr replays an alias's events).
pub const MAX_REPLAYED_EVENTS: usize = 50_000;

/// The parser's budget for lambdaroute's files.
pub fn budget() -> Budget {
    let mut budget = Budget::default();
    budget.max_nodes = MAX_NODES;
    budget.max_events = 4 * MAX_NODES;
    budget.max_depth = MAX_DEPTH;
    budget.max_aliases = MAX_ALIASES;
    budget.max_anchors = MAX_ALIASES;
    budget.max_documents = 1;
    budget.max_recorded_anchor_events = 2 * MAX_REPLAYED_EVENTS;
    budget
}

/// serde-saphyr options with [`budget`] and alias replay bounded by [`MAX_REPLAYED_EVENTS`].
pub fn options() -> Options {
    let mut options = Options::default();
    options.budget = Some(budget());
    let mut limits = AliasLimits::default();
    limits.max_total_replayed_events = MAX_REPLAYED_EVENTS;
    limits.max_replay_stack_depth = 16;
    limits.max_alias_expansions_per_anchor = MAX_ALIASES;
    options.alias_limits = limits;
    options
}

/// Deserializes YAML text within [`options`].
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, options())
}
