//! The controller's files: the first byte picks the distances file (even) or the paths file
//! (odd), the rest is its text. A file that loads is queried as the controller does.
#![no_main]

use lambdaroute_core::controller::{Distances, NodeKey, Paths};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if selector % 2 == 0 {
        let Ok(distances) = Distances::from_yaml(text, "distances.yaml") else {
            return;
        };
        let n = distances.len();
        assert_eq!(distances.nodes().len(), n);
        for i in 0..n {
            assert_eq!(distances.hops(i, i), Some(0));
            for j in 0..n {
                let _ = distances.hops(i, j);
            }
        }
        // Every endpoint node is found by its own text; a host node by its host with a port,
        // unless that exact endpoint is a node of its own.
        for (i, node) in distances.nodes().iter().enumerate() {
            let (endpoint, exact) = match node {
                NodeKey::Endpoint(e) => (e.clone(), true),
                NodeKey::Host(h) if h.contains(':') => (format!("[{h}]:1"), false),
                NodeKey::Host(h) => (format!("{h}:1"), false),
            };
            let found = distances.lookup(&endpoint);
            if exact {
                assert_eq!(found, Some(i), "node {node}");
            } else if found != Some(i) {
                let other = found.map(|j| &distances.nodes()[j]);
                assert!(
                    matches!(other, Some(NodeKey::Endpoint(_))),
                    "host node {node}: {endpoint} found {other:?}"
                );
            }
        }
    } else {
        let Ok(paths) = Paths::from_yaml(text, "paths.yaml") else {
            return;
        };
        let _ = (paths.len(), paths.is_empty(), paths.has_link("s1-s2"));
        let _ = paths.links("r1", "c1");
    }
});
