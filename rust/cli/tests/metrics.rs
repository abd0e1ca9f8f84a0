//! `--metrics-listen`: a controller, a router and a computer as real processes on loopback,
//! each node's `/metrics` scraped before and after calls; and without the flag, nothing more
//! listens.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;

use support::{BIN, eventually, free_address, start, wait_ready};

fn fast_computer() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/computers/fast.yaml")
        .to_str()
        .unwrap()
        .to_owned()
}

/// `GET /metrics` by hand (HTTP/1.1, one request per connection): the Content-Type and body.
fn scrape(address: SocketAddr) -> (String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (content_type, body.to_owned())
}

/// The value of the series `name{labels}` in Prometheus text, `None` if absent.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let series = if labels.is_empty() {
        name.to_owned()
    } else {
        let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{name}{{{}}}", inner.join(","))
    };
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (s, v) = l.rsplit_once(' ')?;
        (s == series).then(|| v.parse().unwrap())
    })
}

#[test]
fn each_nodes_counters_move_by_the_calls_made() {
    let (controller, controller_metrics) = (free_address(), free_address());
    let (router, table, router_metrics) = (free_address(), free_address(), free_address());
    let (computer, util, computer_metrics) = (free_address(), free_address(), free_address());
    let mut controller_process = start(&[
        "controller",
        "--listen",
        &controller.to_string(),
        "--metrics-listen",
        &controller_metrics.to_string(),
    ]);
    wait_ready(controller, &mut controller_process);
    wait_ready(controller_metrics, &mut controller_process);
    let mut router_process = start(&[
        "router",
        "--listen",
        &router.to_string(),
        "--table-listen",
        &table.to_string(),
        "--controller",
        &controller.to_string(),
        "--check-interval",
        "0.2",
        "--metrics-listen",
        &router_metrics.to_string(),
    ]);
    wait_ready(table, &mut router_process);
    wait_ready(router_metrics, &mut router_process);
    let mut computer_process = start(&[
        "computer",
        "--listen",
        &computer.to_string(),
        "--util-listen",
        &util.to_string(),
        "--config",
        &fast_computer(),
        "--controller",
        &controller.to_string(),
        "--check-interval",
        "0.2",
        "--metrics-listen",
        &computer_metrics.to_string(),
    ]);
    wait_ready(computer, &mut computer_process);
    wait_ready(computer_metrics, &mut computer_process);

    // fast.yaml runs clambda0 and glambda0: the flat installer gives the router both, final.
    eventually(Duration::from_secs(15), "both entries installed", || {
        let (_, text) = scrape(router_metrics);
        value(
            &text,
            "lambdaroute_router_table_entries",
            &[("table", "overall")],
        ) == Some(2.0)
    });
    let (content_type, before) = scrape(router_metrics);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let lambda = [("lambda", "clambda0")];
    let router_calls = |text: &str| value(text, "lambdaroute_router_calls_total", &lambda);
    let latency_count =
        |text: &str| value(text, "lambdaroute_router_latency_seconds_count", &lambda);
    assert_eq!(router_calls(&before), None, "no call yet:\n{before}");
    assert_eq!(
        value(
            &before,
            "lambdaroute_router_table_entries",
            &[("table", "final")]
        ),
        Some(2.0)
    );
    let endpoint = computer.to_string();
    let at_computer = [("computer", endpoint.as_str()), ("lambda", "clambda0")];
    let (_, computer_before) = scrape(computer_metrics);
    assert_eq!(
        value(
            &computer_before,
            "lambdaroute_computer_calls_total",
            &at_computer
        ),
        Some(0.0),
        "the computer's lambdas are keyed at start:\n{computer_before}"
    );

    const CALLS: usize = 25;
    let output = Command::new(BIN)
        .args([
            "client",
            "--router",
            &router.to_string(),
            "--lambda",
            "clambda0",
            "--threads",
            "2",
            "--sizes",
            "20",
            "--duration",
            "0",
            "--max-calls",
            &CALLS.to_string(),
        ])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && summary.starts_with(&format!("calls {CALLS}  errors 0")),
        "{summary}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // One call for a lambda nobody runs: refused before any entry, no series of its own.
    let unknown = Command::new(BIN)
        .args([
            "client",
            "--router",
            &router.to_string(),
            "--lambda",
            "nolambda",
            "--duration",
            "0",
            "--max-calls",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&unknown.stdout).starts_with("calls 1  errors 1"),
        "{}",
        String::from_utf8_lossy(&unknown.stdout)
    );

    let n = CALLS as f64;
    let (_, after) = scrape(router_metrics);
    assert_eq!(router_calls(&after), Some(n), "{after}");
    assert_eq!(latency_count(&after), Some(n), "{after}");
    assert_eq!(
        value(&after, "lambdaroute_router_errors_total", &lambda),
        Some(0.0)
    );
    assert_eq!(
        value(&after, "lambdaroute_router_retries_total", &lambda),
        Some(0.0)
    );
    assert_eq!(
        value(&after, "lambdaroute_router_unrouted_calls_total", &[]),
        Some(1.0)
    );
    assert!(!after.contains("nolambda"), "{after}");
    assert_eq!(
        value(&after, "lambdaroute_router_calls_in_flight", &[]),
        Some(0.0)
    );
    let sum = value(&after, "lambdaroute_router_latency_seconds_sum", &lambda).unwrap();
    assert!(sum > 0.0 && sum < n * 10.0, "latency sum {sum} s");
    let inf = [("lambda", "clambda0"), ("le", "+Inf")];
    assert_eq!(
        value(&after, "lambdaroute_router_latency_seconds_bucket", &inf),
        Some(n)
    );

    let (_, computer_after) = scrape(computer_metrics);
    assert_eq!(
        value(
            &computer_after,
            "lambdaroute_computer_calls_total",
            &at_computer
        ),
        Some(n),
        "{computer_after}"
    );
    let here = [("computer", endpoint.as_str())];
    assert_eq!(
        value(&computer_after, "lambdaroute_computer_errors_total", &here),
        Some(0.0)
    );
    assert_eq!(
        value(
            &computer_after,
            "lambdaroute_computer_calls_in_flight",
            &here
        ),
        Some(0.0)
    );
    // The utilization is sampled once a second: the xeon's series appears within two.
    eventually(Duration::from_secs(3), "a utilization sample", || {
        let (_, text) = scrape(computer_metrics);
        value(
            &text,
            "lambdaroute_computer_utilization",
            &[("computer", endpoint.as_str()), ("processor", "xeon")],
        )
        .is_some_and(|u| (0.0..=1.0).contains(&u))
    });

    let (_, controller_text) = scrape(controller_metrics);
    assert_eq!(
        value(&controller_text, "lambdaroute_controller_routers", &[]),
        Some(1.0),
        "{controller_text}"
    );
    assert_eq!(
        value(&controller_text, "lambdaroute_controller_computers", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &controller_text,
            "lambdaroute_controller_installs_total",
            &[]
        ),
        Some(2.0),
        "one entry per lambda"
    );
    assert_eq!(
        value(
            &controller_text,
            "lambdaroute_controller_congestion_marks",
            &[]
        ),
        Some(0.0)
    );
}

/// The TCP sockets `pid` listens on (Linux: its socket inodes against its namespace's table).
#[cfg(target_os = "linux")]
fn listening_sockets(pid: u32) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        // Column 3 is the state (0A: LISTEN), column 9 the inode.
        .filter(|cells| cells.len() > 9 && cells[3] == "0A" && inodes.contains(&cells[9]))
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn without_the_flag_each_role_listens_only_on_its_own_ports() {
    let computer_config = fast_computer();
    let mut counted = Vec::new();
    for metrics in [false, true] {
        let (controller, router, table, computer, util) = (
            free_address(),
            free_address(),
            free_address(),
            free_address(),
            free_address(),
        );
        let (controller, router, table, computer, util) = (
            controller.to_string(),
            router.to_string(),
            table.to_string(),
            computer.to_string(),
            util.to_string(),
        );
        let roles: [(Vec<&str>, &str); 3] = [
            (vec!["controller", "--listen", &controller], &controller),
            (
                vec!["router", "--listen", &router, "--table-listen", &table],
                &table,
            ),
            (
                vec![
                    "computer",
                    "--listen",
                    &computer,
                    "--util-listen",
                    &util,
                    "--config",
                    &computer_config,
                ],
                &util,
            ),
        ];
        for (mut args, last) in roles {
            let metrics_address = free_address();
            let metrics_address = metrics_address.to_string();
            if metrics {
                args.extend(["--metrics-listen", &metrics_address]);
            }
            let mut process = start(&args);
            wait_ready(last.parse().unwrap(), &mut process);
            let scraped = TcpStream::connect(&metrics_address).is_ok();
            assert_eq!(scraped, metrics, "{args:?}");
            counted.push((
                args[0].to_owned(),
                metrics,
                listening_sockets(process.0.id()),
            ));
        }
    }
    assert_eq!(
        counted,
        vec![
            ("controller".to_owned(), false, 1),
            ("router".to_owned(), false, 2),
            ("computer".to_owned(), false, 2),
            ("controller".to_owned(), true, 2),
            ("router".to_owned(), true, 3),
            ("computer".to_owned(), true, 3),
        ]
    );
}
