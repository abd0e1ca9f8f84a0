//! Files from elsewhere: a "billion laughs" of nested aliases, a named file that is missing,
//! text that is not UTF-8. Each is refused quickly with the file, the line and the field.

use std::time::{Duration, Instant};

use lambdaroute_scenario::{Scenario, ScenarioError};

/// Ten lines whose aliases expand to 9^9 (387 million) strings.
const BILLION_LAUGHS: &str = "\
a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
name: boom
";

fn invalid(error: ScenarioError) -> (String, usize, usize, String, String) {
    match error {
        ScenarioError::Invalid {
            file,
            line,
            column,
            field,
            message,
        } => (file, line, column, field, message),
        other => panic!("expected a located error, got {other}"),
    }
}

#[test]
fn a_billion_laughs_is_refused_in_milliseconds_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.yaml");
    std::fs::write(&path, BILLION_LAUGHS).unwrap();
    let started = Instant::now();
    let error = Scenario::load(&path).unwrap_err();
    let took = started.elapsed();
    // Milliseconds in a release build; the bound leaves room for a debug build on a busy CI.
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let text = error.to_string();
    let (file, line, _, _, message) = invalid(error);
    assert!(file.ends_with("bomb.yaml"), "{text}");
    assert!((2..=10).contains(&line), "the line of an alias: {text}");
    assert!(message.contains("alias"), "{text}");
    eprintln!("{text} ({took:?})");
}

#[test]
fn a_missing_trace_file_is_refused_at_load_with_its_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = "\
name: missing
switches: [{name: s1}]
hosts:
  - {name: u1, role: client, switch: s1}
  - {name: r1, role: router, switch: s1}
  - {name: c1, role: computer, switch: s1}
workloads:
  - {client: u1, router: r1, lambda: clambda0, pattern: trace, trace: traces/calls.txt}
";
    let path = dir.path().join("missing.yaml");
    std::fs::write(&path, scenario).unwrap();
    // Valid as text: only the file is missing.
    Scenario::from_yaml(scenario, "missing.yaml").unwrap();
    let error = Scenario::load(&path).unwrap_err();
    let text = error.to_string();
    let (_, line, _, field, message) = invalid(error);
    assert_eq!((line, field.as_str()), (8, "workloads[0].trace"), "{text}");
    assert!(message.contains("traces/calls.txt"), "{text}");
    // Relative to the scenario's directory, wherever the reader runs.
    std::fs::create_dir(dir.path().join("traces")).unwrap();
    std::fs::write(dir.path().join("traces/calls.txt"), "0 clambda0 r1 10\n").unwrap();
    Scenario::load(&path).unwrap();
}

#[test]
fn invalid_utf8_is_refused_with_its_line_and_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.yaml");
    std::fs::write(&path, b"name: ok\nswitches: [s1]\ndescription: caf\xe9\n").unwrap();
    let error = Scenario::load(&path).unwrap_err();
    let text = error.to_string();
    let (_, line, column, _, message) = invalid(error);
    assert_eq!((line, column), (3, 17), "{text}");
    assert!(message.contains("byte offset 40"), "{text}");
}

/// One router, one client, a computer `c1` with `computer` and a NAT gateway, then `external`.
fn with_computer(computer: &str, external: &str) -> String {
    format!(
        "name: big\nswitches: [{{name: s1}}]\nhosts:\n  - {{name: u1, role: client, switch: s1}}\n  \
         - {{name: r1, role: router, switch: s1}}\n  - {{name: n1, role: nat, switch: s1}}\n  \
         - {{name: c1, role: computer, switch: s1, computer: {computer}}}\n{external}"
    )
}

// Found reviewing the scenario loader for its fuzz target (docs/fuzzing.md): a preset
// computer with 100 million lambdas passed, and the offered load then built 200 million
// containers (the fuzz target timed out on it).
#[test]
fn a_computer_with_too_many_lambdas_is_refused_at_its_field() {
    let text = with_computer("{preset: raspberry, lambdas: 100000000}", "");
    let started = Instant::now();
    let error = Scenario::from_yaml(&text, "big.yaml").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    let text = error.to_string();
    let (_, line, _, field, message) = invalid(error);
    assert_eq!(
        (line, field.as_str()),
        (7, "hosts[3].computer.lambdas"),
        "{text}"
    );
    assert!(message.contains("1 to 1000"), "{text}");
    let scenario = Scenario::from_yaml(
        &with_computer("{preset: raspberry, lambdas: 1000}", ""),
        "big.yaml",
    )
    .unwrap();
    assert_eq!(scenario.offered_load().computers, 1);
}

#[test]
fn counts_past_32_bits_are_refused_not_truncated() {
    let error = Scenario::from_yaml(
        &with_computer("{preset: raspberry, cores: 4294967297}", ""),
        "big.yaml",
    )
    .unwrap_err();
    let (_, _, _, field, _) = invalid(error);
    assert_eq!(field, "hosts[3].computer.cores");
}

#[test]
fn external_computers_past_the_default_ports_are_refused_not_wrapped() {
    // 10100 + 2 × 27718 is past 65534: the 27719th external computer has no default port.
    let external: String = (0..27_720)
        .map(|i| format!("  - {{name: e{i}}}\n"))
        .collect();
    let text = with_computer("{preset: raspberry}", &format!("external:\n{external}"));
    let error = Scenario::from_yaml(&text, "big.yaml").unwrap_err();
    let text = error.to_string();
    let (_, _, _, field, message) = invalid(error);
    assert_eq!(field, "external[27718]", "{text}");
    assert!(message.contains("give it a `port`"), "{text}");
}
