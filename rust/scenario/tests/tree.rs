//! `Scenario::from_tree`: a tree built by a program goes through exactly the checks of a file.

use std::path::Path;

use lambdaroute_scenario::yaml::{self, Node, Pos, Value};
use lambdaroute_scenario::{Scenario, ScenarioError};

/// The same tree with every position erased, as a program would build it.
fn without_positions(node: &Node) -> Node {
    let value = match &node.value {
        Value::Seq(items) => Value::Seq(items.iter().map(without_positions).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, _, v)| (k.clone(), Pos::default(), without_positions(v)))
                .collect(),
        ),
        other => other.clone(),
    };
    Node {
        pos: Pos::default(),
        value,
    }
}

/// The field and the message, without the ` at line N` that only text can give.
fn field_and_message(e: ScenarioError) -> (String, String) {
    match e {
        ScenarioError::Invalid { field, message, .. } => {
            let message = match message.split_once(" at line ") {
                Some((head, tail)) => {
                    format!(
                        "{head}{}",
                        tail.trim_start_matches(|c: char| c.is_ascii_digit())
                    )
                }
                None => message,
            };
            (field, message)
        }
        other => panic!("not a field error: {other}"),
    }
}

#[test]
fn a_tree_gives_the_scenario_and_the_errors_of_its_text() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let full = std::fs::read_to_string(dir.join("valid/full.yaml")).unwrap();
    let tree = without_positions(&yaml::parse(&full).unwrap());
    assert_eq!(
        Scenario::from_tree(&tree, "full.yaml").unwrap(),
        Scenario::from_yaml(&full, "full.yaml").unwrap()
    );

    let mut compared = 0;
    for entry in std::fs::read_dir(dir.join("malformed")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(root) = yaml::parse(&text) else {
            continue; // syntax errors have no tree
        };
        let from_text = Scenario::from_yaml(&text, "x.yaml").unwrap_err();
        let from_tree = Scenario::from_tree(&without_positions(&root), "x.yaml").unwrap_err();
        assert_eq!(
            field_and_message(from_tree),
            field_and_message(from_text),
            "{}",
            path.display()
        );
        compared += 1;
    }
    assert!(compared >= 10, "compared {compared} malformed files");
}
