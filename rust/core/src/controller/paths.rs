//! The links of each (router, computer) path, for congestion steering (docs/controller.md):
//!
//! ```yaml
//! paths:
//!   - { router: 10.0.0.1, computer: 10.0.0.7, links: [s1-s2, s2-s5] }
//!   - router: 127.0.0.1:6473
//!     computer: 127.0.0.1:10001
//!     links: [l1]
//! ```
//!
//! Router and computer are [`NodeKey`]s, matched against the router's lambda endpoint and the
//! destination endpoint of its entries. A `computer` may also be another router (the
//! destination of a two-tier non-final entry). Link names are free text, the same the network
//! monitor reports.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{FileError, NodeKey};

const FORMAT: &str =
    "`paths: [{router: KEY, computer: KEY, links: [LINK, ...]}, ...]`, KEY an address or host:port";

/// The static path of every (router, computer) pair, as link names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Paths {
    by_pair: HashMap<(NodeKey, NodeKey), Vec<String>>,
    links: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    paths: Vec<Spanned<RawPath>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    router: String,
    computer: String,
    links: Vec<String>,
}

impl Paths {
    /// Paths from (router, computer, links) triples; a pair listed twice is an error.
    pub fn new(
        paths: impl IntoIterator<Item = (NodeKey, NodeKey, Vec<String>)>,
    ) -> Result<Self, String> {
        let mut out = Paths::default();
        for (router, computer, links) in paths {
            out.insert(router, computer, links)?;
        }
        Ok(out)
    }

    fn insert(
        &mut self,
        router: NodeKey,
        computer: NodeKey,
        links: Vec<String>,
    ) -> Result<(), String> {
        if self
            .by_pair
            .contains_key(&(router.clone(), computer.clone()))
        {
            return Err(format!(
                "the path from router '{router}' to computer '{computer}' is listed twice: list each pair once"
            ));
        }
        self.links.extend(links.iter().cloned());
        self.by_pair.insert((router, computer), links);
        Ok(())
    }

    /// Parses the YAML of a paths file; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Self, FileError> {
        let raw: Raw =
            crate::yaml::from_str(text).map_err(|e| FileError::yaml(file, &e, FORMAT))?;
        let mut out = Paths::default();
        for (i, path) in raw.paths.into_iter().enumerate() {
            let line = path.referenced.line();
            let at = |field: &str, e: String| {
                FileError::new(file, line, format!("paths[{i}].{field}: {e}"))
            };
            let router = path
                .value
                .router
                .parse::<NodeKey>()
                .map_err(|e| at("router", e))?;
            let computer = path
                .value
                .computer
                .parse::<NodeKey>()
                .map_err(|e| at("computer", e))?;
            if let Some(empty) = path.value.links.iter().position(|l| l.trim().is_empty()) {
                return Err(at(
                    &format!("links[{empty}]"),
                    "empty link name: give the name the network monitor reports".into(),
                ));
            }
            out.insert(router, computer, path.value.links)
                .map_err(|e| FileError::new(file, line, e))?;
        }
        Ok(out)
    }

    /// The links of the path from `router` to `destination` (endpoints), if the file has it:
    /// exact endpoint keys first, then host keys.
    pub fn links(&self, router: &str, destination: &str) -> Option<&[String]> {
        let routers = NodeKey::candidates(router)?;
        let destinations = NodeKey::candidates(destination)?;
        for r in &routers {
            for d in &destinations {
                if let Some(links) = self.by_pair.get(&(r.clone(), d.clone())) {
                    return Some(links);
                }
            }
        }
        None
    }

    /// Whether `link` is on any path.
    pub fn has_link(&self, link: &str) -> bool {
        self.links.contains(link)
    }

    /// Number of (router, computer) paths.
    pub fn len(&self) -> usize {
        self.by_pair.len()
    }

    /// Whether there are no (router, computer) paths.
    pub fn is_empty(&self) -> bool {
        self.by_pair.is_empty()
    }
}
