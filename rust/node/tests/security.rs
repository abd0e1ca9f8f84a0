//! Secured mode on loopback, in-process (docs/security.md): a secured controller, router and
//! computer work end to end, and intruders (no certificate, a certificate of another role or
//! of another host, a certificate of another CA) change nothing: calls keep going to the real
//! computer. Lambda calls without a certificate or token are refused when the listener wants
//! one, in secured and in plain mode. A managed router's tables are the controller's: entries
//! installed or removed there by hand are undone at the controller's next audit.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lambdaroute_core::computer_model::Preset;
use lambdaroute_core::controller::Installer;
use lambdaroute_node::certs::{self, NodeSpec};
use lambdaroute_node::client::{self, ClientOptions, Report};
use lambdaroute_node::computer::{self, ComputerHandle, ComputerOptions};
use lambdaroute_node::controller::view::CongestionClientConn;
use lambdaroute_node::controller::{self, ControllerHandle, ControllerOptions};
use lambdaroute_node::membership::{Announcer, Member};
use lambdaroute_node::router::{self, RouterHandle, RouterOptions};
use lambdaroute_node::table_tool::TableClient;
use lambdaroute_node::tls::{CallTokens, ClientSecurity, Role, Security, TlsFiles};
use lambdaroute_proto::uiiit::edge_controller_client::EdgeControllerClient;
use lambdaroute_proto::uiiit::{ComputerInfo, Container, RouterInfo};

const CHECK: Duration = Duration::from_millis(100);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A CA and the certificates of the test's nodes, all on 127.0.0.1 but the intruders, who
/// hold certificates for 127.0.0.2 (another host of the loopback network); and `foreign`, a
/// controller's certificate of another CA.
struct Pki {
    dir: tempfile::TempDir,
    other: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        certs::make_ca(dir.path(), false).unwrap();
        certs::make_ca(other.path(), false).unwrap();
        let node = |dir: &Path, name: &str, role: Role, ip: &str| {
            certs::make_node(
                dir,
                &NodeSpec {
                    name: name.into(),
                    role,
                    ips: vec![ip.parse().unwrap()],
                    dns: vec![],
                },
            )
            .unwrap();
        };
        for (name, role) in [
            ("controller", Role::Controller),
            ("router", Role::Router),
            ("computer", Role::Computer),
            ("operator", Role::Operator),
            ("monitor", Role::Monitor),
            ("client", Role::Client),
        ] {
            node(dir.path(), name, role, "127.0.0.1");
        }
        node(dir.path(), "intruder-computer", Role::Computer, "127.0.0.2");
        node(dir.path(), "intruder-router", Role::Router, "127.0.0.2");
        node(other.path(), "foreign", Role::Controller, "127.0.0.1");
        Pki { dir, other }
    }

    fn security(&self, name: &str) -> Security {
        Security::secured(TlsFiles::in_dir(self.dir.path(), name).load().unwrap())
    }

    fn client(&self, name: &str) -> ClientSecurity {
        self.security(name).client().unwrap()
    }

    /// A controller certificate of another CA, trusting that CA.
    fn foreign(&self) -> ClientSecurity {
        Security::secured(
            TlsFiles::in_dir(self.other.path(), "foreign")
                .load()
                .unwrap(),
        )
        .client()
        .unwrap()
    }
}

async fn eventually<F, Fut>(deadline: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(
            start.elapsed() < deadline,
            "not within {deadline:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Network {
    controller: ControllerHandle,
    router: RouterHandle,
    computer: ComputerHandle,
    announcer: Announcer,
}

impl Network {
    async fn start(security: impl Fn(&str) -> Security) -> Network {
        let controller = controller::spawn(ControllerOptions {
            security: security("controller"),
            audit_interval: Duration::from_millis(300),
            resync_grace: Duration::ZERO,
            ..ControllerOptions::new(loopback(), Installer::Flat)
        })
        .await
        .unwrap();
        let router = router::spawn(RouterOptions {
            listen: loopback(),
            table_listen: loopback(),
            controller: Some(controller.listen.to_string()),
            check_interval: CHECK,
            security: security("router"),
            ..RouterOptions::default()
        })
        .await
        .unwrap();
        let config = Preset::Raspberry.config();
        let computer_security = security("computer");
        let computer = computer::spawn(ComputerOptions {
            security: computer_security.clone(),
            ..ComputerOptions::new(loopback(), config.clone())
        })
        .await
        .unwrap();
        let announcer = Announcer::spawn_with(
            &controller.listen.to_string(),
            Member::computer(computer.endpoint(), &config),
            CHECK,
            None,
            &computer_security.client().unwrap(),
        )
        .unwrap();
        Network {
            controller,
            router,
            computer,
            announcer,
        }
    }

    async fn destinations(&self, operator: &ClientSecurity) -> Vec<String> {
        let mut table = TableClient::connect_with(&self.router.table_listen.to_string(), operator)
            .await
            .unwrap();
        let mut destinations: Vec<String> = table
            .table(0)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.lambda == "clambda0")
            .map(|e| e.destination)
            .collect();
        destinations.sort();
        destinations
    }

    async fn installed(&self, operator: &ClientSecurity) {
        let computer = self.computer.endpoint().to_owned();
        eventually(
            Duration::from_secs(10),
            "the computer installed",
            || async { self.destinations(operator).await == vec![computer.clone()] },
        )
        .await;
    }

    async fn calls(&self, security: Security, n: u64) -> Report {
        client::run(ClientOptions {
            duration: None,
            max_calls: Some(n),
            sizes: lambdaroute_core::workload::Sizes::Fixed(10),
            timeout: Duration::from_secs(5),
            security,
            ..ClientOptions::new(self.router.listen.to_string(), "clambda0")
        })
        .await
        .unwrap()
    }

    async fn shutdown(self) {
        self.announcer.stop().await;
        self.router.shutdown().await.unwrap();
        self.computer.shutdown().await.unwrap();
        self.controller.shutdown().await.unwrap();
    }
}

fn all_at(report: &Report, responder: &str) -> bool {
    !report.calls.is_empty()
        && report
            .calls
            .iter()
            .all(|c| c.status == "OK" && c.responder == responder)
}

/// What an intruder tries on the table port: point clambda0 at itself, remove the computer.
async fn table_attack(router: &RouterHandle, computer: &str, security: &ClientSecurity) -> bool {
    let Ok(mut table) = TableClient::connect_with(&router.table_listen.to_string(), security).await
    else {
        return false;
    };
    let changed = table
        .change("clambda0", "127.0.0.2:9", 1.0, true)
        .await
        .is_ok();
    let removed = table.remove("", computer).await.is_ok();
    changed || removed
}

/// What an intruder tries on the controller: RemoveComputer of the real computer, announce
/// the real computer's endpoint with another lambda, announce a router of its own, report
/// congestion. Returns the calls that were accepted.
async fn controller_attack(
    controller: SocketAddr,
    computer: &str,
    security: &ClientSecurity,
) -> Vec<&'static str> {
    let mut accepted = Vec::new();
    let channel = match security.endpoint(&controller.to_string(), Duration::from_secs(2)) {
        Ok(endpoint) => endpoint.connect().await,
        Err(e) => panic!("{e}"),
    };
    if let Ok(channel) = channel {
        let mut client = EdgeControllerClient::new(channel);
        let info = ComputerInfo {
            edge_server_endpoint: computer.to_owned(),
            containers: vec![],
        };
        if client.remove_computer(info).await.is_ok() {
            accepted.push("RemoveComputer");
        }
        let foreign = ComputerInfo {
            edge_server_endpoint: computer.to_owned(),
            containers: vec![Container {
                name: "evil".into(),
                processor: "cpu".into(),
                lambda: "evil0".into(),
                num_workers: 1,
            }],
        };
        if client.announce_computer(foreign).await.is_ok() {
            accepted.push("AnnounceComputer");
        }
        let router = RouterInfo {
            edge_server_endpoint: "127.0.0.1:9".into(),
            forwarding_table_endpoint: "127.0.0.1:9".into(),
        };
        if client.announce_router(router).await.is_ok() {
            accepted.push("AnnounceRouter");
        }
    }
    if let Ok(mut congestion) =
        CongestionClientConn::connect_with(&controller.to_string(), security).await
        && congestion.report("s1-s2", true).await.is_ok()
    {
        accepted.push("Congestion.Report");
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secured_network_serves_calls_and_refuses_every_intruder() {
    let pki = Pki::new();
    let net = Network::start(|name| pki.security(name)).await;
    let operator = pki.client("operator");
    net.installed(&operator).await;
    let computer = net.computer.endpoint().to_owned();

    // The secured path: a client with its certificate, through the router, to the computer.
    let report = net.calls(pki.security("client"), 20).await;
    assert!(all_at(&report, &computer), "{:?}", &report.calls[..1]);

    // Intruders: no certificate at all (plaintext), a computer's certificate of another host,
    // a router's certificate of another host, a controller's certificate of another CA.
    let intruders = [
        ("no certificate", ClientSecurity::plain()),
        (
            "a computer of another host",
            pki.client("intruder-computer"),
        ),
        ("a router of another host", pki.client("intruder-router")),
        ("a controller of another CA", pki.foreign()),
    ];
    for (who, security) in &intruders {
        assert!(
            !table_attack(&net.router, &computer, security).await,
            "{who} changed the router's tables"
        );
        let accepted = controller_attack(net.controller.listen, &computer, security).await;
        // A router of another host may report any destination failed (that is a router's
        // job): its RemoveComputer without containers is the one call it may make.
        let expected: &[&str] = if *who == "a router of another host" {
            &["RemoveComputer"]
        } else {
            &[]
        };
        assert_eq!(accepted, expected, "{who}");
    }
    // The real computer is (back) in the table, alone, and takes every call.
    net.installed(&operator).await;
    let report = net.calls(pki.security("client"), 20).await;
    assert!(all_at(&report, &computer), "{:?}", &report.calls[..1]);

    // The operator may change the tables (and the controller's audit undoes it).
    assert!(table_attack(&net.router, &computer, &operator).await);
    net.installed(&operator).await;

    // The computer's own certificate speaks for its host: it may remove and announce itself
    // (here with another lambda), and nothing else.
    let accepted =
        controller_attack(net.controller.listen, &computer, &pki.client("computer")).await;
    assert_eq!(
        accepted,
        ["RemoveComputer", "AnnounceComputer"],
        "the computer itself"
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_calls_need_a_certificate_or_a_token_unless_open() {
    let pki = Pki::new();
    let tokens = Arc::new(CallTokens::new(["s3cret".to_owned()]));
    let net = Network::start(|name| Security {
        call_tokens: (name == "router").then(|| Arc::clone(&tokens)),
        ..pki.security(name)
    })
    .await;
    net.installed(&pki.client("operator")).await;
    let computer = net.computer.endpoint().to_owned();
    let ca_only = || Security {
        tls: Some(Arc::new(
            TlsFiles::load_ca_only(&pki.dir.path().join("ca.pem")).unwrap(),
        )),
        ..Security::default()
    };

    let without = net.calls(ca_only(), 3).await;
    assert!(
        without
            .calls
            .iter()
            .all(|c| c.status.contains("call token")),
        "{:?}",
        without.calls
    );
    let wrong = net
        .calls(
            Security {
                call_token: Some("guess".into()),
                ..ca_only()
            },
            3,
        )
        .await;
    assert!(wrong.calls.iter().all(|c| c.status != "OK"));
    let with_token = net
        .calls(
            Security {
                call_token: Some("s3cret".into()),
                ..ca_only()
            },
            5,
        )
        .await;
    assert!(all_at(&with_token, &computer), "{:?}", with_token.calls);
    // Straight to the computer without a certificate: refused too (it wants one, or a token).
    let direct = client::run(ClientOptions {
        duration: None,
        max_calls: Some(2),
        security: ca_only(),
        ..ClientOptions::new(computer.clone(), "clambda0")
    })
    .await
    .unwrap();
    assert!(direct.calls.iter().all(|c| c.status != "OK"));
    net.shutdown().await;

    // Plain mode with a token file: the token is wanted, in clear.
    let net = Network::start(|name| Security {
        call_tokens: (name == "router").then(|| Arc::clone(&tokens)),
        ..Security::plain()
    })
    .await;
    net.installed(&ClientSecurity::plain()).await;
    let without = net.calls(Security::plain(), 3).await;
    assert!(
        without
            .calls
            .iter()
            .all(|c| c.status.contains("call token")),
        "{:?}",
        without.calls
    );
    let with_token = net
        .calls(
            Security {
                call_token: Some("s3cret".into()),
                ..Security::plain()
            },
            3,
        )
        .await;
    assert!(all_at(&with_token, net.computer.endpoint()));
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_mode_is_open_as_upstream_and_the_controller_undoes_hand_changes() {
    let net = Network::start(|_| Security::plain()).await;
    let plain = ClientSecurity::plain();
    net.installed(&plain).await;
    let computer = net.computer.endpoint().to_owned();
    let report = net.calls(Security::plain(), 10).await;
    assert!(all_at(&report, &computer));

    // Anyone may change a plain router's tables (serverlessonedge's behaviour) ...
    assert!(table_attack(&net.router, &computer, &plain).await);
    // ... but a managed router's tables are the controller's: the audit restores them.
    net.installed(&plain).await;
    let report = net.calls(Security::plain(), 10).await;
    assert!(all_at(&report, &computer));
    net.shutdown().await;
}
