//! Apache OpenWhisk's official JavaScript client (npm `openwhisk`, pinned in
//! rust/cli/tests/openwhisk/package.json) against `lambdaroute gateway`, with a router and computers on
//! loopback: every call of docs/openwhisk.md. The client is installed by `make test`
//! (`make openwhisk-client`: `npm ci` in rust/cli/tests/openwhisk); without it this test says so and
//! passes, unless LAMBDAROUTE_OPENWHISK_CLIENT=required (what `make test` sets).

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

use support::{BIN, free_address, start, wait_ready};

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openwhisk")
}

fn table(table: &str, lambda: &str, destination: &str) {
    let output = Command::new(BIN)
        .args([
            "table",
            "--router",
            table,
            "change",
            "--lambda",
            lambda,
            "--destination",
            destination,
            "--final",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_official_openwhisk_client_invokes_lambdas_through_the_gateway() {
    let dir = client_dir();
    if !dir.join("node_modules/openwhisk/package.json").exists() {
        let required = std::env::var("LAMBDAROUTE_OPENWHISK_CLIENT").is_ok_and(|v| v == "required");
        assert!(
            !required,
            "the OpenWhisk client is not installed: run `make openwhisk-client` (npm ci in {})",
            dir.display()
        );
        eprintln!(
            "SKIPPED: the OpenWhisk client is not installed; run `make openwhisk-client` (npm ci in {})",
            dir.display()
        );
        return;
    }
    let (computer, router, router_table, failing, gateway) = (
        free_address(),
        free_address(),
        free_address(),
        free_address(),
        free_address(),
    );
    let mut computer_process = start(&[
        "computer",
        "--listen",
        &computer.to_string(),
        "--util-listen",
        &free_address().to_string(),
        "--preset",
        "intel-server",
    ]);
    // A real computer whose function nobody serves: every call fails with an error retcode.
    let nowhere = free_address();
    let mut failing_process = start(&[
        "computer",
        "--executor",
        "http",
        "--function-url",
        &format!("broken=http://{nowhere}/broken"),
        "--listen",
        &failing.to_string(),
        "--util-listen",
        &free_address().to_string(),
    ]);
    let mut router_process = start(&[
        "router",
        "--listen",
        &router.to_string(),
        "--table-listen",
        &router_table.to_string(),
    ]);
    let keys = tempfile::NamedTempFile::new().unwrap();
    let key = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
    std::fs::write(
        keys.path(),
        format!("# the guest key of OpenWhisk's quick start\n{key}\nab:cd other\n"),
    )
    .unwrap();
    let mut gateway_process = start(&[
        "gateway",
        "--listen",
        &gateway.to_string(),
        "--router",
        &router.to_string(),
        "--router-table",
        &router_table.to_string(),
        "--keys",
        keys.path().to_str().unwrap(),
    ]);
    wait_ready(computer, &mut computer_process);
    wait_ready(failing, &mut failing_process);
    wait_ready(router_table, &mut router_process);
    wait_ready(gateway, &mut gateway_process);
    table(&router_table.to_string(), "clambda0", &computer.to_string());
    table(&router_table.to_string(), "broken", &failing.to_string());

    let output = Command::new("node")
        .arg("client_test.mjs")
        .current_dir(&dir)
        .env("OW_APIHOST", format!("http://{gateway}"))
        .env("OW_KEY", key)
        .env("OW_FAILING", "broken")
        .output()
        .expect("node must be installed to run the OpenWhisk client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the OpenWhisk client's checks failed:\n{stdout}"
    );
    assert!(stdout.contains("13 of 13 checks passed"), "{stdout}");
}
