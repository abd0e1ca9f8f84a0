//! `lambdaroute bench --peer --smoke`: the side-by-side benchmark against the original
//! prototype, end to end with short windows, when its binaries are here (`SOE_BIN=dir`, with
//! their runtime libraries installed). Without them it says it skipped, on stderr (`make
//! test-peer` runs it with `--nocapture` so that the line shows). Checks the shape of the
//! results, never the speed.

use std::collections::HashMap;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_lambdaroute");

#[test]
fn peer_smoke_runs_the_grid_against_the_original_or_says_it_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["--log", "warn", "bench", "--peer", "--smoke", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench --peer failed:\n{stdout}\n{stderr}"
    );
    if stdout.contains("SKIPPED") {
        eprintln!("SKIPPED peer smoke test: {}", stdout.trim());
        return;
    }
    let mut reader = csv::Reader::from_path(dir.path().join("peer.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<HashMap<String, String>> = reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect();
    // 2 computers x 2 load generators x 2 client counts x 4 targets (direct, the original's
    // router, lambdaroute --threads 1 and 0).
    assert_eq!(rows.len(), 2 * 2 * 2 * 4, "{rows:#?}");
    for row in &rows {
        let rate: f64 = row["rate"].parse().unwrap();
        assert!(rate > 0.0, "no call went through: {row:?}");
        let (p50, p99): (f64, f64) = (
            row["p50_us"].parse().unwrap(),
            row["p99_us"].parse().unwrap(),
        );
        assert!(p50 > 0.0 && p99 >= p50, "{row:?}");
    }
    for target in ["direct", "soe-router", "lambdaroute-t1", "lambdaroute-t0"] {
        assert!(
            rows.iter().any(|r| r["target"] == target),
            "{target} missing"
        );
    }
    assert!(stdout.contains("vs original"), "{stdout}");
}
