//! The malformed corpus: every file in `tests/malformed/` starts with
//! `# error: LINE:COLUMN: FIELD: FRAGMENT`
//! (the fragment may be anywhere in the message) and must give exactly that error, never a panic.

use std::path::Path;

use lambdaroute_scenario::{Scenario, ScenarioError};

#[test]
fn every_malformed_file_gives_one_located_error_naming_the_field() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the corpus has {} files", files.len());
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# error: "))
            .unwrap_or_else(|| panic!("{} lacks its `# error:` line", path.display()));
        let name = path.file_name().unwrap().to_str().unwrap();
        let result = std::panic::catch_unwind(|| Scenario::from_yaml(&text, name));
        match result {
            Err(_) => failures.push(format!("{name}: panicked")),
            Ok(Ok(_)) => failures.push(format!("{name}: loaded without error")),
            Ok(Err(e @ ScenarioError::Invalid { .. })) => {
                let msg = e.to_string();
                // `LINE:COLUMN: FIELD: FRAGMENT`: the place and field exactly, the fragment anywhere.
                let mut parts = expect.splitn(4, ": ");
                let (at, field, fragment) = (
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                    parts.next().unwrap_or(""),
                );
                let prefix = format!("{name}:{at}: {field}: ");
                if !msg.starts_with(&prefix) || !msg.contains(fragment) || msg.lines().count() != 1
                {
                    failures.push(format!(
                        "{name}:\n   got: {msg}\n  want: {prefix}...{fragment}..."
                    ));
                }
            }
            Ok(Err(e)) => failures.push(format!("{name}: unexpected error kind: {e}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
