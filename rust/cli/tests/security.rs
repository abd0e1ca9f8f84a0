//! Secured mode through the binary: `lambdaroute certs`, a secured controller, router and
//! computer, the client with its certificate, the table tool refused without the operator's,
//! and errors on bad certificate files that name the file and the fix.

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use support::{BIN, eventually, free_address, start, wait_ready};

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_secured_network_by_hand_serves_calls_and_refuses_the_table_tool_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(run(&["certs", "--out", d, "--ca"]).status.success());
    for (name, role) in [
        ("controller", "controller"),
        ("router", "router"),
        ("computer", "computer"),
        ("operator", "operator"),
        ("client", "client"),
    ] {
        let made = run(&[
            "certs",
            "--out",
            d,
            "--node",
            name,
            "--role",
            role,
            "--ip",
            "127.0.0.1",
        ]);
        assert!(made.status.success(), "{}", text(&made));
    }
    let (ctl, lambdas, tables) = (free_address(), free_address(), free_address());
    let (computer, util) = (free_address(), free_address());
    let (ctl_s, lambdas_s, tables_s) = (ctl.to_string(), lambdas.to_string(), tables.to_string());
    let (computer_s, util_s) = (computer.to_string(), util.to_string());
    let mut controller = start(&["controller", "--listen", &ctl_s, "--tls-dir", d]);
    wait_ready(ctl, &mut controller);
    let mut router = start(&[
        "router",
        "--listen",
        &lambdas_s,
        "--table-listen",
        &tables_s,
        "--controller",
        &ctl_s,
        "--check-interval",
        "0.2",
        "--tls-dir",
        d,
    ]);
    wait_ready(tables, &mut router);
    let mut comp = start(&[
        "computer",
        "--listen",
        &computer_s,
        "--util-listen",
        &util_s,
        "--preset",
        "raspberry",
        "--controller",
        &ctl_s,
        "--check-interval",
        "0.2",
        "--tls-dir",
        d,
    ]);
    wait_ready(computer, &mut comp);

    eventually(
        Duration::from_secs(15),
        "the controller installs the computer",
        || {
            text(&run(&[
                "table",
                "--router",
                &tables_s,
                "--tls-dir",
                d,
                "dump",
            ]))
            .contains(&computer_s)
        },
    );
    let calls = run(&[
        "client",
        "--router",
        &lambdas_s,
        "--lambda",
        "clambda0",
        "--max-calls",
        "5",
        "--duration",
        "0",
        "--tls-dir",
        d,
    ]);
    assert!(calls.status.success(), "{}", text(&calls));
    assert!(
        text(&calls).contains("calls 5  errors 0"),
        "{}",
        text(&calls)
    );

    // Without a certificate: the table tool and the client are refused.
    let intruder = run(&[
        "table",
        "--router",
        &tables_s,
        "change",
        "--lambda",
        "clambda0",
        "--destination",
        "127.0.0.1:9",
        "--final",
    ]);
    assert!(!intruder.status.success());
    let anonymous = run(&[
        "client",
        "--router",
        &lambdas_s,
        "--lambda",
        "clambda0",
        "--max-calls",
        "2",
        "--duration",
        "0",
        "--tls-ca",
        &format!("{d}/ca.pem"),
    ]);
    assert!(
        text(&anonymous).contains("calls 2  errors 2"),
        "{}",
        text(&anonymous)
    );
    // With the client's certificate but not the operator's: refused, saying which role.
    let client_cert = run(&[
        "table",
        "--router",
        &tables_s,
        "--tls-dir",
        d,
        "--tls-name",
        "client",
        "change",
        "--lambda",
        "clambda0",
        "--destination",
        "127.0.0.1:9",
        "--final",
    ]);
    assert!(
        text(&client_cert).contains("controller or operator"),
        "{}",
        text(&client_cert)
    );
    let dump = text(&run(&[
        "table",
        "--router",
        &tables_s,
        "--tls-dir",
        d,
        "dump",
    ]));
    assert!(!dump.contains("127.0.0.1:9 "), "{dump}");
}

#[test]
fn bad_certificate_files_are_refused_naming_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let missing = run(&["router", "--tls-dir", d]);
    assert!(!missing.status.success());
    assert!(text(&missing).contains("ca.pem"), "{}", text(&missing));
    assert!(
        text(&missing).contains("lambdaroute certs"),
        "{}",
        text(&missing)
    );

    assert!(run(&["certs", "--out", d, "--ca"]).status.success());
    assert!(
        run(&["certs", "--out", d, "--node", "router", "--role", "router"])
            .status
            .success()
    );
    // A key in place of the certificate.
    std::fs::copy(
        dir.path().join("router-key.pem"),
        dir.path().join("router.pem"),
    )
    .unwrap();
    let swapped = run(&["router", "--tls-dir", d]);
    assert!(text(&swapped).contains("router.pem"), "{}", text(&swapped));
    assert!(
        text(&swapped).contains("no certificate"),
        "{}",
        text(&swapped)
    );
    let half = run(&["router", "--tls-cert", &format!("{d}/router.pem")]);
    assert!(
        text(&half).contains("--tls-ca, --tls-cert and --tls-key"),
        "{}",
        text(&half)
    );
    let again = run(&["certs", "--out", d, "--ca"]);
    assert!(text(&again).contains("--force"), "{}", text(&again));
}
