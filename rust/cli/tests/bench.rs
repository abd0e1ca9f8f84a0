//! `lambdaroute bench --smoke`: the benchmark harness end to end at tiny sizes, so that it
//! cannot rot. Checks the shape of the results, never the speed (no timing assertion).

use std::collections::HashMap;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_lambdaroute");

fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

#[test]
fn smoke_run_writes_every_point_with_calls_and_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["--log", "warn", "bench", "--smoke", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("fake-mode router / bare server"),
        "{stdout}"
    );
    assert!(
        stdout.contains("failed calls over all points: 0"),
        "{stdout}"
    );

    let (header, rows) = read_csv(&dir.path().join("bench.csv"));
    assert_eq!(
        header,
        lambdaroute_columns(),
        "bench.csv columns changed: update docs/benchmarks.md and bench_plot.py too"
    );
    // Per policy (5) and series (fake/lambdas, normal/lambdas, fake/destinations): per client
    // count (1, 2), one floor point, one 0-entry point and one 40-entry point.
    assert_eq!(rows.len(), 5 * 3 * 2 * 3, "{rows:#?}");
    for row in &rows {
        let rate: f64 = row["rate"].parse().unwrap();
        assert!(rate > 0.0, "no call went through: {row:?}");
        assert_eq!(row["errors"], "0", "{row:?}");
        assert!(row["rss_kb"].parse::<u64>().unwrap() > 0, "{row:?}");
        let p50: f64 = row["p50_us"].parse().unwrap();
        let p99: f64 = row["p99_us"].parse().unwrap();
        assert!(p50 > 0.0 && p99 >= p50, "{row:?}");
    }
    for (series, entries, installed) in [
        ("fake/lambdas", "40", "40"),
        ("normal/lambdas", "0", "1"),
        ("fake/destinations", "40", "40"),
    ] {
        assert!(
            rows.iter().any(|r| r["series"] == series
                && r["target"] == "router"
                && r["entries"] == entries
                && r["installed"] == installed),
            "no {series} point at {entries} entries"
        );
    }
    let shapes: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["target"] == "router" && r["entries"] == "40")
        .map(|r| (r["shape"].as_str(), r["lambdas"].as_str()))
        .collect();
    assert!(shapes.contains(&("lambdas", "4")) && shapes.contains(&("destinations", "1")));

    let (_, memory) = read_csv(&dir.path().join("memory.csv"));
    let phases: Vec<&str> = memory.iter().map(|r| r["phase"].as_str()).collect();
    assert_eq!(&phases[..3], ["started", "installed", "warm"]);
    assert_eq!(phases.len(), 3 + 10);
    assert_eq!(memory.last().unwrap()["calls"], "2000");
    assert!(
        memory
            .iter()
            .all(|r| r["rss_kb"].parse::<u64>().unwrap() > 0)
    );
}

fn lambdaroute_columns() -> Vec<String> {
    [
        "target",
        "mode",
        "shape",
        "series",
        "policy",
        "entries",
        "installed",
        "lambdas",
        "destinations",
        "pair",
        "clients",
        "calls",
        "errors",
        "seconds",
        "rate",
        "p50_us",
        "p99_us",
        "router_cpu_us",
        "answer_cpu_us",
        "load_cpu_us",
        "rss_kb",
    ]
    .map(String::from)
    .to_vec()
}
