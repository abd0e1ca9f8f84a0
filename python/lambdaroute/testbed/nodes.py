"""The lambdaroute processes of a run, each in its Mininet host with its own log.

- :func:`computer_command`, :func:`router_command`, :func:`controller_command`,
  :func:`client_command` build the command lines from the scenario;
- :class:`Nodes` starts them (the controller, then computers, then routers), waits until each
  listens by probing its TCP ports from inside its host (never a fixed sleep), waits until every
  router holds the tables it should (:meth:`Nodes.wait_tables`), and stops them by handle, in
  the order that lets computers leave the controller (:meth:`Nodes.stop_all`);
- without a controller (none in the scenario, or a binary that has no ``controller``
  subcommand) :meth:`Nodes.install_flat_tables` installs the flat tables itself with
  ``lambdaroute table --router ... change``, as the flat installer would;
- :func:`write_controller_files` writes the distances and paths files the controller reads;
- face computers (``computer: {executor: face}``) get the face function
  (``python -m lambdaroute.facerec``) beside them, on 127.0.0.1 of their host;
- with ``metrics`` on, the controller, routers and computers serve Prometheus metrics on
  ``<host ip>:9464`` (:data:`METRICS_PORT`), and :meth:`Nodes.start_scraper` scrapes them from
  inside a host into ``metrics.csv`` (:mod:`.scrape`);
- :meth:`Nodes.start_external` runs the scenario's ``external`` computers on this machine,
  outside Mininet: they listen on the NAT gateway's machine address, announce themselves to the
  controller through its outside address, with the gateway's scenario address as the endpoint
  the routers use (docs/real-computers.md).
"""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lambdaroute import _native
from lambdaroute.scenario import Host, Scenario, Workload
from lambdaroute.testbed.cleanup import Cleanup, RunState, process_id, stop_process

__all__ = [
    "Nodes",
    "NodeProcess",
    "ROUTER_PORT",
    "TABLE_PORT",
    "COMPUTER_PORT",
    "UTIL_PORT",
    "CONTROLLER_PORT",
    "METRICS_PORT",
    "binary_has_option",
    "computer_endpoints",
    "computer_lambdas",
    "computer_config",
    "conditions_text",
    "scenario_speed",
    "router_flags",
    "write_controller_files",
    "binary_has",
    "endpoint",
    "parse_view",
    "parse_table_dump",
    "expected_tables",
    "ControllerView",
    "TablesNotReady",
    "FACE_LAMBDAS",
    "FUNCTION_PORT",
    "external_endpoints",
    "gateway_command",
    "openwhisk_routers",
    "GATEWAY_PORT",
    "OPENWHISK_KEY",
]

log = logging.getLogger(__name__)

ROUTER_PORT = 6473
TABLE_PORT = 6474
CONTROLLER_PORT = 6475
UTIL_PORT = 6476
COMPUTER_PORT = 10000
#: Port of every node's Prometheus metrics (``--metrics-listen``) when the run scrapes them.
METRICS_PORT = 9464
#: Port of the face function beside a face computer inside a host (on its 127.0.0.1).
FUNCTION_PORT = 8090
#: Port of the OpenWhisk-compatible gateway (``lambdaroute gateway``) on a router's host, for
#: workloads with ``api: openwhisk`` (OpenWhisk's standalone server's port).
GATEWAY_PORT = 3233
#: The API key of every run's gateways (``uuid:key``, namespace guest), written to the run's
#: ``openwhisk-keys.txt``; OpenWhisk's clients inside the emulated network use it.
OPENWHISK_KEY = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:lambdaroute-testbed-key"
#: What a face computer runs (and announces).
FACE_LAMBDAS = ["clambda0", "eyerec0", "facerec0"]

NODE_ENV = {"NO_COLOR": "1", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

def endpoint(host: Host, port: int) -> str:
    return f"{host.ip}:{port}"


def computer_endpoints(host: Host) -> list[str]:
    """The lambda endpoints of a computer host: ``endpoints`` consecutive ports from
    :data:`COMPUTER_PORT`, each a computer of its own."""
    n = max(int((host.computer or {}).get("endpoints") or 1), 1)
    return [endpoint(host, COMPUTER_PORT + i) for i in range(n)]


def computer_lambdas(host: Host | dict[str, Any]) -> list[str]:
    """The lambdas a computer (a host, or an external computer's ``computer`` mapping) runs: its
    preset's, ``lambdas`` of each kind, as core builds them; a face computer's
    :data:`FACE_LAMBDAS`."""
    spec = (host if isinstance(host, dict) else host.computer) or {}
    if spec.get("executor") == "face":
        return list(FACE_LAMBDAS)
    return _native.preset_lambdas(spec.get("preset", "raspberry"), max(int(spec.get("lambdas") or 1), 1))


def computer_config(host: Host | dict[str, Any]) -> str | None:
    """The computer's configuration as YAML (what ``lambdaroute computer --config`` reads), built
    by core, when the scenario overrides its preset; None when ``--preset`` says it all (or it
    is a face computer)."""
    spec = (host if isinstance(host, dict) else host.computer) or {}
    if spec.get("executor") == "face":
        return None
    overrides = {k: spec[k] for k in ("speed", "cores", "memory") if spec.get(k) is not None}
    lambdas = max(int(spec.get("lambdas") or 1), 1)
    if not overrides and lambdas == 1:
        return None
    return _native.computer_config(spec.get("preset", "raspberry"), lambdas, **overrides)


#: The controller's limit on one call to a router (its default), before the round trips.
ROUTER_TIMEOUT = 2.0
#: Round trips a first call to a router may take: TCP, HTTP/2, the call, and as much again
#: while the links queue.
ROUTER_TIMEOUT_RTTS = 6


def scenario_speed(host: Host | dict[str, Any]) -> float:
    """The speed of a simulated computer's main processor as the scenario gives it, ops/s per
    core: its ``speed``, else its preset's."""
    spec = (host.computer if isinstance(host, Host) else host) or {}
    if spec.get("speed") is not None:
        return float(spec["speed"])
    config = yaml.safe_load(_native.computer_config(spec.get("preset", "raspberry"),
                                                    max(int(spec.get("lambdas") or 1), 1)))
    return float(config["processors"][0]["speed"])


def conditions_text(speed_factor: float = 1.0, background: float = 0.0) -> str:
    """A computer's conditions file (``lambdaroute computer --conditions``, docs/computer.md)."""
    return f"speed-factor: {speed_factor!r}\nbackground: {background!r}\n"


def router_timeout(scenario: Scenario, controller: Host) -> float:
    """The controller's ``--router-timeout``: :data:`ROUTER_TIMEOUT` plus
    :data:`ROUTER_TIMEOUT_RTTS` round trips to the farthest router (link and access delays of
    the static path), so that a router many slow links away is not taken for a dead one."""
    delays = {link.name: link.delay for link in scenario.links}
    rtt_ms = 0.0
    for router in scenario.hosts_with("router"):
        one_way = sum(delays.get(name, 0.0) for name in scenario.path(controller.name, router.name))
        one_way += controller.link.delay + router.link.delay
        rtt_ms = max(rtt_ms, 2 * one_way)
    return round(ROUTER_TIMEOUT + ROUTER_TIMEOUT_RTTS * rtt_ms / 1000, 1)


def external_endpoints(scenario: Scenario) -> dict[str, str]:
    """Each external computer's endpoint as the routers reach it (the NAT gateway's scenario
    address and the computer's port) -> its name."""
    nat = scenario.hosts_with("nat")
    if not nat:
        return {}
    return {f"{nat[0].ip}:{e.port}": e.name for e in scenario.external}


def router_flags(scenario: Scenario) -> tuple[str, str]:
    """The router's ``--policy`` and ``--estimator``: the scenario's control choices in the
    canonical form core reads (``rr``, ``ewma:0.95``)."""
    control = scenario.control
    return control["policy"], control["estimator"]


def binary_has(binary: str, subcommand: str) -> bool:
    """Whether ``binary`` has ``subcommand`` (``lambdaroute SUB --help`` succeeds)."""
    try:
        done = subprocess.run([binary, subcommand, "--help"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def binary_has_option(binary: str, subcommand: str, option: str) -> bool:
    """Whether ``lambdaroute SUBCOMMAND --help`` lists ``option`` (an older binary may lack it)."""
    try:
        done = subprocess.run([binary, subcommand, "--help"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and option in done.stdout


def write_controller_files(scenario: Scenario, out: Path) -> tuple[Path, Path]:
    """Writes ``distances.yaml`` and ``paths.yaml`` for the controller; returns their paths.

    Keys are the endpoints the controller knows the nodes by: a router's lambda endpoint
    ``IP:6473``, a computer's ``IP:10000``; a host serving several computers is keyed by its
    address alone, which matches each of its endpoints.
    """
    def key(name: str) -> str:
        h = scenario.host(name)
        if h.role == "router":
            return endpoint(h, ROUTER_PORT)
        endpoints = computer_endpoints(h)
        return endpoints[0] if len(endpoints) == 1 else h.ip

    names, hops = scenario.distance_matrix()
    distances = out / "distances.yaml"
    distances.write_text(yaml.safe_dump({"nodes": [key(n) for n in names], "hops": hops},
                                        default_flow_style=None, sort_keys=False), encoding="utf-8")
    paths = out / "paths.yaml"
    paths.write_text(yaml.safe_dump({"paths": [
        {"router": key(p.router), "computer": key(p.computer), "links": list(p.links)}
        for p in scenario.router_computer_paths()
    ]}, default_flow_style=None, sort_keys=False), encoding="utf-8")
    return distances, paths


# ----- what the controller and the routers say -----

@dataclass
class ControllerView:
    """``lambdaroute view`` parsed: routers (endpoint -> entries), computers (endpoint ->
    (lambdas, placement)), congested links, marks (router, destination, links)."""

    routers: dict[str, int] = field(default_factory=dict)
    computers: dict[str, tuple[list[str], str]] = field(default_factory=dict)
    congested: list[str] = field(default_factory=list)
    marks: list[tuple[str, str, str]] = field(default_factory=list)


_SECTION = re.compile(r"^(routers|computers|lambdas|marks): (\d+)$")


def parse_view(text: str) -> ControllerView:
    """Parses the output of ``lambdaroute controller-view`` (rust/node/src/controller/view.rs)."""
    view = ControllerView()
    section = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            m = _SECTION.match(line.strip())
            section = m.group(1) if m else None
            if line.startswith("congested links:"):
                rest = line.split(":", 1)[1].strip()
                view.congested = [] if rest == "none" else [x.strip() for x in rest.split(",")]
            continue
        cells = line.split()
        if section == "routers" and cells[0] != "endpoint" and len(cells) >= 3:
            view.routers[cells[0]] = int(cells[-1])
        elif section == "computers" and cells[0] != "endpoint" and len(cells) >= 2:
            parts = line.split(None, 2)
            view.computers[parts[0]] = (parts[1].split(","), parts[2].strip() if len(parts) > 2 else "")
        elif section == "marks" and cells[0] != "router" and len(cells) >= 2:
            view.marks.append((cells[0], cells[1], cells[2] if len(cells) > 2 else ""))
    return view


#: An e-table entry as the testbed compares them: (lambda, destination, final).
Entry = tuple[str, str, bool]


def parse_table_dump(text: str, table: int = 0) -> set[Entry]:
    """The entries of table ``table`` in the output of ``lambdaroute table dump``."""
    entries: set[Entry] = set()
    current = None
    for line in text.splitlines():
        if line.startswith("table "):
            current = int(line.split()[1])
            continue
        cells = line.split()
        if current != table or len(cells) < 4 or cells[0] == "lambda":
            continue
        entries.add((cells[0], cells[1], cells[-1] == "yes"))
    return entries


def expected_tables(routers: list[str], computers: dict[str, list[str]],
                    placements: dict[str, str] | None = None) -> dict[str, set[Entry]]:
    """What each router (lambda endpoint) should hold, as the controller plans it
    (rust/core/src/controller/plan.rs): a computer placed ``home router H`` is final on H and
    reached through H (non-final) from every other router; any other placement (flat, or a
    two-tier fallback) is final on every router. ``placements`` None: flat."""
    out: dict[str, set[Entry]] = {r: set() for r in routers}
    for computer, lambdas in computers.items():
        placement = (placements or {}).get(computer, "")
        home = placement[len("home router "):].strip() if placement.startswith("home router ") else None
        for r in routers:
            for lam in lambdas:
                out[r].add((lam, home, False) if home and home != r else (lam, computer, True))
    return out


class TablesNotReady(RuntimeError):
    """The routers did not get their tables before the deadline."""


# ----- readiness -----

_PROBE = """
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[1])
for address in sys.argv[2:]:
    host, port = address.rsplit(":", 1)
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                print(address); sys.exit(1)
            time.sleep(0.02)
"""


@dataclass
class NodeProcess:
    """A running node: its host, role, command, log and listening addresses."""

    host: str
    role: str
    command: list[str]
    log: Path
    proc: subprocess.Popen[Any]
    listens: list[str] = field(default_factory=list)
    #: Runs on this machine, outside Mininet (an external computer and its function).
    outside: bool = False


class Nodes:
    """Starts and stops the lambdaroute processes of a run."""

    def __init__(
        self,
        network: Any,
        scenario: Scenario,
        binary: str,
        out: Path,
        cleanup: Cleanup,
        state: RunState | None = None,
        router_seed: int = 1,
    ) -> None:
        self.network = network
        self.scenario = scenario
        self.binary = binary
        self.out = out
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.cleanup = cleanup
        self.state = state
        self.router_seed = router_seed
        self.running: list[NodeProcess] = []
        self.controller: tuple[Host, str, NodeProcess] | None = None
        #: Every controller, router and computer started from now on serves ``/metrics``.
        self.metrics = False
        #: Secured mode: the directory of ``lambdaroute certs`` (:meth:`make_certs`); every node
        #: and tool started from now on speaks TLS with its host's certificate.
        self.tls_dir: Path | None = None
        #: The routers' ``--call-timeout`` in s (the experiment's ``timeouts.call``); None: the
        #: router's default (60 s).
        self.call_timeout: float | None = None
        # Every node is stopped by stop_all, in order (clients, computers, routers, controller);
        # run() pushes it again after the traffic so that nodes go before the traffic.
        cleanup.push("stop the nodes", self.stop_all)

    # ----- processes -----

    def spawn(self, host: str, role: str, args: list[str], log_name: str, listens: list[str] = (),  # type: ignore[assignment]
              program: list[str] | None = None, outside: bool = False) -> NodeProcess:
        """Starts ``program`` (default: the lambdaroute binary) with ``args`` in ``host``, or on
        this machine outside Mininet (``outside``), its output in ``logs/<log_name>``."""
        log_path = self.logs / log_name
        command = [*(program or [self.binary]), *args]
        with open(log_path, "wb") as log_file:
            log_file.write(("$ " + " ".join(command) + "\n").encode())
            log_file.flush()
            if outside:
                proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=dict(NODE_ENV),
                                        stdin=subprocess.DEVNULL)
            else:
                proc = self.network.node(host).popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                                     env=dict(NODE_ENV))
        np = NodeProcess(host, role, command, log_path, proc, list(listens), outside)
        self.running.append(np)
        if self.state is not None and (pid := process_id(proc.pid)):
            self.state.add("pids", pid)
        return np

    def python(self, host: str, outside: bool = False) -> str:
        """The Python that runs the testbed's standard-library scripts in ``host``: this one,
        or ``python3`` where the host lives on another server (this venv is not there)."""
        cluster = getattr(self.network, "cluster", None)
        return "python3" if cluster is not None and not outside and cluster.is_remote(host) else sys.executable

    def make_certs(self) -> Path:
        """Secured mode: ``lambdaroute certs`` into ``<run>/certs``: a CA, a certificate per
        router, computer, controller and client host at its address, and ``operator`` and
        ``monitor`` (the testbed's tools, run in the hosts); later nodes start secured."""
        out = self.out / "certs"
        for command in certs_commands(self.binary, out, self.scenario):
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
        self.tls_dir = out
        return out

    def tls_args(self, name: str) -> list[str]:
        """``--tls-dir DIR --tls-name NAME`` in secured mode, else nothing."""
        return tls_args(self.tls_dir, name)

    def metrics_args(self, h: Host) -> tuple[list[str], list[str]]:
        """``--metrics-listen <host ip>:9464`` and that address, when :attr:`metrics` is on."""
        if not self.metrics:
            return [], []
        listen = endpoint(h, METRICS_PORT)
        return ["--metrics-listen", listen], [listen]

    def metrics_targets(self) -> dict[str, str]:
        """Node name -> metrics address of the controller (when it runs), every router and
        every computer host of the scenario (a host serving several computers is one target;
        external computers, outside the emulated network, are not scraped)."""
        hosts = ([self.controller[0]] if self.controller else []) + self.scenario.hosts_with("router") \
            + self.scenario.hosts_with("computer")
        return {h.name: endpoint(h, METRICS_PORT) for h in hosts}

    def start_scraper(self, host: str, targets: dict[str, str], interval: float, origin: float,
                      out: Path) -> NodeProcess:
        """The scraper (:mod:`.scrape`, a standard-library script) in ``host``, writing ``out``;
        it ends after one last round on SIGTERM (:meth:`stop_role` ``"scraper"``)."""
        from lambdaroute.testbed import scrape

        args = [arg for name, address in targets.items() for arg in ("--target", f"{name}={address}")]
        args += ["--interval", f"{interval:g}", "--origin", repr(origin), "--out", str(out)]
        return self.spawn(host, "scraper", args, "metrics-scraper.log",
                          program=[sys.executable, "-I", str(Path(scrape.__file__).resolve())])

    def wait_listening(self, np: NodeProcess, timeout: float = 15.0) -> None:
        """Probes the node's ports from inside its host until they accept connections."""
        self.wait_all_listening([np], timeout)

    def wait_all_listening(self, nps: list[NodeProcess], timeout: float = 15.0) -> None:
        """Probes the ports of every node in ``nps`` from inside its host, all at once (one
        probe process per node, started together), until each accepts connections; raises
        naming the first node that exited or does not listen after ``timeout`` s."""
        probes: list[tuple[NodeProcess, subprocess.Popen[Any]]] = []
        try:
            for np in nps:
                if np.listens:
                    probe = [self.python(np.host, np.outside), "-c", _PROBE, str(timeout), *np.listens]
                    probes.append((np, subprocess.Popen(probe, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                                   if np.outside else self.network.node(np.host).popen(
                                       probe, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
            deadline = time.monotonic() + timeout + 5
            pending = list(probes)
            while pending:
                for np, probe in list(pending):
                    if probe.poll() is not None:
                        pending.remove((np, probe))
                        if probe.returncode != 0:
                            raise RuntimeError(
                                f"{np.role} on {np.host}: nothing listens on {', '.join(np.listens)} "
                                f"after {timeout:g} s; see {np.log}"
                            )
                    elif np.proc.poll() is not None:
                        raise RuntimeError(
                            f"{np.role} on {np.host} exited ({np.proc.returncode}) before listening on "
                            f"{', '.join(np.listens)}; see {np.log}"
                        )
                    elif time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{np.role} on {np.host}: nothing listens on {', '.join(np.listens)} "
                            f"after {timeout:g} s; see {np.log}"
                        )
                if pending:
                    time.sleep(0.02)
        finally:
            for _, probe in probes:
                if probe.poll() is None:
                    stop_process(probe, 1)
                elif probe.stdout is not None:
                    probe.stdout.close()

    #: The order nodes stop in: the metrics scraper (its last round sees the nodes still up),
    #: clients; computers while the controller and the routers still run (their RemoveComputer
    #: reaches the controller, which takes them off the routers); then routers; the controller last.
    STOP_ORDER = ("scraper", "client", "gateway", "computer", "router", "controller")

    def stop_role(self, role: str, timeout: float = 5.0) -> list[str]:
        """Stops every running node of ``role`` by handle: SIGTERM to all, wait up to
        ``timeout`` s, SIGKILL the rest. Returns ``"role host"`` for each it stopped."""
        group = [n for n in self.running if n.role == role and n.proc.poll() is None]
        for np in group:
            try:
                np.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for np in group:
            stop_process(np.proc, max(deadline - time.monotonic(), 0.1))
        return [f"{role} {np.host}" for np in group]

    def stop_all(self, timeout: float = 5.0) -> list[str]:
        """Stops every node, one role at a time in :attr:`STOP_ORDER`. Returns what it stopped."""
        roles = [*self.STOP_ORDER, *sorted({n.role for n in self.running} - set(self.STOP_ORDER))]
        return [what for role in roles for what in self.stop_role(role, timeout)]

    def wait_computers_left(self, timeout: float = 5.0) -> list[str]:
        """After the computers stopped: polls the controller's view until it knows no computer
        (their RemoveComputer arrived); returns those it still knows after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                known = sorted(parse_view(self.view()).computers)
            except Exception as e:  # noqa: BLE001
                known = [f"(no view: {e})"]
            if not known or time.monotonic() > deadline:
                return known
            time.sleep(0.05)

    # ----- roles -----

    def _computer_args(self, name: str, spec: dict[str, Any] | None, function: str | None) -> list[str]:
        """How the computer ``name`` runs: ``--preset``, ``--config`` (written to
        ``computers/<name>.yaml``) or ``--executor face --function URL``."""
        spec = spec or {}
        if spec.get("executor") == "face":
            return ["--executor", "face", "--function", function or ""]
        config = computer_config(spec)
        if config is None:
            return ["--preset", spec.get("preset", "raspberry")]
        configs = self.out / "computers"
        configs.mkdir(exist_ok=True)
        path = configs / f"{name}.yaml"
        path.write_text(config, encoding="utf-8")
        return ["--config", str(path)]

    def start_functions(self) -> list[NodeProcess]:
        """The face function of every face computer in a host, on its 127.0.0.1; waits until each
        listens (loading OpenCV takes a second or two)."""
        started = []
        for h in self.scenario.hosts_with("computer"):
            if (h.computer or {}).get("executor") == "face":
                listen = f"127.0.0.1:{FUNCTION_PORT}"
                started.append(self.spawn(h.name, "function", ["--listen", listen], f"facerec-{h.name}.log",
                                          [listen], program=[sys.executable, "-m", "lambdaroute.facerec"]))
        self.wait_all_listening(started, timeout=60)
        return started

    def conditions_path(self, host: str) -> Path:
        """The conditions file of computer ``host``'s process (``--conditions``):
        ``conditions/<host>.yaml`` in the run's folder."""
        return self.out / "conditions" / f"{host}.yaml"

    def write_conditions(self, host: str, speed_factor: float = 1.0, background: float = 0.0) -> Path:
        """Writes the conditions file of computer ``host``: its speed factor (times the scenario's
        speed) and background load; the process reads it when it starts and on SIGHUP."""
        path = self.conditions_path(host)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(conditions_text(speed_factor, background), encoding="utf-8")
        tmp.replace(path)  # the process never reads a half-written file
        return path

    def signal_computer(self, host: str, sig: int = signal.SIGHUP) -> list[NodeProcess]:
        """Sends ``sig`` to the running computer process(es) of ``host`` (by handle: the Popen
        is the process itself, Mininet's ``mnexec`` execs it); returns them. RuntimeError when
        none runs."""
        group = [n for n in self.running if n.host == host and n.role == "computer" and n.proc.poll() is None]
        if not group:
            raise RuntimeError(f"computer {host} is not running")
        for np in group:
            np.proc.send_signal(sig)
        return group

    def computer_args(self, h: Host, controller: str | None) -> tuple[list[str], list[str]]:
        """``lambdaroute computer`` arguments for computer host ``h`` and the addresses it listens
        on. A simulated computer gets ``--conditions conditions/<host>.yaml``, (re)written here
        with the scenario's conditions (speed factor 1, no background load): every start is at
        the scenario's speed; ``computer-speed`` and ``computer-load`` change the file live."""
        listen, util = endpoint(h, COMPUTER_PORT), endpoint(h, UTIL_PORT)
        args = ["computer", "--listen", listen, "--util-listen", util]
        n = len(computer_endpoints(h))
        if n > 1:
            # The process binds its ports in order: the last ones listening means all do.
            args += ["--endpoints", str(n)]
        spec = h.computer or {}
        args += self._computer_args(h.name, spec, f"http://127.0.0.1:{FUNCTION_PORT}")
        if spec.get("executor") != "face":
            args += ["--conditions", str(self.write_conditions(h.name))]
        if controller:
            args += ["--controller", controller]
        args += self.tls_args(h.name)
        listens = [listen, util] if n == 1 else [listen, endpoint(h, COMPUTER_PORT + n - 1),
                                                 endpoint(h, UTIL_PORT + n - 1)]
        metrics, metrics_listen = self.metrics_args(h)
        return args + metrics, listens + metrics_listen

    def start_computers(self, controller: str | None) -> list[NodeProcess]:
        self.start_functions()
        started = []
        for h in self.scenario.hosts_with("computer"):
            args, listens = self.computer_args(h, controller)
            started.append(self.spawn(h.name, "computer", args, f"computer-{h.name}.log", listens))
        self.wait_all_listening(started)
        return started

    def start_external(self, machine_address: str, controller: str | None) -> list[NodeProcess]:
        """The scenario's external computers, on this machine outside Mininet: each listens on
        ``machine_address`` (the NAT gateway's root end) at its port (its utilization stream at
        port + 1), answers and announces as the gateway's scenario address and that port, and
        announces to ``controller`` (the controller's outside address) if there is one. A face
        computer gets its face function on 127.0.0.1 of this machine, on a free port."""
        nat = self.scenario.hosts_with("nat")
        if not self.scenario.external:
            return []
        if not nat:
            raise RuntimeError("external computers need the NAT gateway: add a host whose role is `nat`")
        functions: dict[str, tuple[NodeProcess, Path]] = {}
        for e in self.scenario.external:
            if e.computer.get("executor") == "face":
                port_file = self.logs / f"facerec-{e.name}.port"
                port_file.unlink(missing_ok=True)
                np = self.spawn(f"outside:{e.name}", "function",
                                ["--listen", "127.0.0.1:0", "--port-file", str(port_file)],
                                f"facerec-{e.name}.log", program=[sys.executable, "-m", "lambdaroute.facerec"],
                                outside=True)
                functions[e.name] = (np, port_file)
        deadline = time.monotonic() + 60
        urls: dict[str, str] = {}
        for name, (np, port_file) in functions.items():
            while not (port_file.exists() and port_file.read_text().strip()):
                if np.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the face function of external computer {name} did not start; see {np.log}")
                time.sleep(0.05)
            urls[name] = f"http://127.0.0.1:{port_file.read_text().strip()}"
        started = []
        for e in self.scenario.external:
            listen, util = f"{machine_address}:{e.port}", f"{machine_address}:{e.port + 1}"
            args = ["computer", "--listen", listen, "--util-listen", util, "--endpoint", f"{nat[0].ip}:{e.port}",
                    *self._computer_args(e.name, e.computer, urls.get(e.name))]
            if controller:
                args += ["--controller", controller]
            started.append(self.spawn(f"outside:{e.name}", "computer", args, f"computer-{e.name}.log",
                                      [listen, util], outside=True))
        self.wait_all_listening(started)
        return started

    def stop_host(self, host: str, role: str, timeout: float = 5.0) -> list[NodeProcess]:
        """Stops the running ``role`` processes of ``host`` by handle (SIGTERM, then SIGKILL
        after ``timeout`` s) and forgets them; returns them."""
        group = [n for n in self.running if n.host == host and n.role == role and n.proc.poll() is None]
        for np in group:
            stop_process(np.proc, timeout)
            self.running.remove(np)
        return group

    def restart(self, host: str, role: str, args: list[str], listens: list[str], log_name: str) -> NodeProcess:
        """Starts ``role`` on ``host`` again (after :meth:`stop_host`) and waits until it listens."""
        np = self.spawn(host, role, args, log_name, listens)
        self.wait_listening(np)
        return np

    def router_args(self, h: Host, index: int, controller: str | None) -> tuple[list[str], list[str]]:
        """``lambdaroute router`` arguments for the ``index``-th router host ``h`` and the
        addresses it listens on."""
        policy, estimator = router_flags(self.scenario)
        listen, table = endpoint(h, ROUTER_PORT), endpoint(h, TABLE_PORT)
        args = ["router", "--listen", listen, "--table-listen", table, "--policy", policy,
                "--estimator", estimator, "--seed", str(self.router_seed + index)]
        if controller:
            args += ["--controller", controller]
        args += self.tls_args(h.name)
        if self.call_timeout is not None:
            args += ["--call-timeout", f"{self.call_timeout:g}s"]
        metrics, metrics_listen = self.metrics_args(h)
        return args + metrics, [listen, table, *metrics_listen]

    def start_controller(self, host: Host, distances: Path, paths: Path) -> NodeProcess:
        control = self.scenario.control
        listen = endpoint(host, CONTROLLER_PORT)
        args = ["controller", "--listen", listen, "--installer", control.get("installer", "flat"),
                "--distances", str(distances), "--paths", str(paths)]
        if control.get("installer") == "two-tier" and control.get("objective"):
            args += ["--objective", control["objective"]]
        args += ["--router-timeout", f"{router_timeout(self.scenario, host)}s"]
        args += self.tls_args(host.name)
        metrics, metrics_listen = self.metrics_args(host)
        np = self.spawn(host.name, "controller", args + metrics, f"controller-{host.name}.log",
                        [listen, *metrics_listen])
        self.wait_listening(np)
        self.controller = (host, listen, np)
        return np

    def view(self) -> str:
        """``lambdaroute view`` of the controller, run in the controller's host."""
        if self.controller is None:
            raise RuntimeError("no controller in this run")
        host, address, _ = self.controller
        command = [self.binary, "view", "--controller", address, *self.tls_args("operator")]
        proc = self.network.node(host.name).popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(NODE_ENV))
        out, err = proc.communicate(timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` on {host.name} failed: {err.decode().strip()}")
        return out.decode()

    def wait_tables(self, timeout: float = 20.0, interval: float = 0.05) -> dict[str, Any]:
        """Waits until every router holds the entries it should (table 0), polling the
        controller's view (every router and computer known; two-tier placements) and each
        router's tables (``lambdaroute table dump``). Without a controller: the flat tables.
        Raises :class:`TablesNotReady`, naming what is missing, after ``timeout`` s."""
        routers = {endpoint(h, ROUTER_PORT): h for h in self.scenario.hosts_with("router")}
        computers = {e: computer_lambdas(h) for h in self.scenario.hosts_with("computer")
                     for e in computer_endpoints(h)}
        outside = external_endpoints(self.scenario)
        computers.update({ep: computer_lambdas(self.scenario.external_computer(name).computer)
                          for ep, name in outside.items()})
        start = time.monotonic()
        polls = 0
        while True:
            polls += 1
            missing: list[str] = []
            placements: dict[str, str] | None = None
            if self.controller is not None:
                try:
                    view = parse_view(self.view())
                except Exception as e:  # noqa: BLE001 - not answering yet is "not ready"
                    view = ControllerView()
                    missing.append(f"the controller's view ({e})")
                missing += [f"the controller does not know router {routers[r].name} ({r})"
                            for r in routers if r not in view.routers]
                missing += [f"the controller does not know computer {c}" for c in computers if c not in view.computers]
                placements = {c: p for c, (_, p) in view.computers.items()}
            if not missing:
                want = expected_tables(list(routers), computers, placements)
                for r, host in routers.items():
                    try:
                        have = parse_table_dump(self.table(host, "dump"))
                    except Exception as e:  # noqa: BLE001
                        missing.append(f"router {host.name}: cannot read its tables ({e})")
                        continue
                    missing += [f"router {host.name} lacks {lam} -> {dest} ({'final' if fin else 'non-final'})"
                                for lam, dest, fin in sorted(want[r] - have)]
            if not missing:
                return {"tables_ready_s": round(time.monotonic() - start, 3), "polls": polls,
                        "entries": {routers[r].name: len(e) for r, e in want.items()}}
            dead = [f"{n.role} on {n.host} (exit {n.proc.returncode}, see {n.log})"
                    for n in self.running if n.role != "client" and n.proc.poll() is not None]
            if dead or time.monotonic() - start > timeout:
                who = "the controller" if self.controller is not None else "the testbed"
                why = f"nodes exited: {'; '.join(dead)}" if dead else f"not after {timeout:g} s"
                shown = "; ".join(missing[:10]) + (f"; and {len(missing) - 10} more" if len(missing) > 10 else "")
                raise TablesNotReady(f"tables installed by {who} are incomplete ({why}): {shown}")
            time.sleep(interval)

    def start_routers(self, controller: str | None) -> list[NodeProcess]:
        started = []
        for i, h in enumerate(self.scenario.hosts_with("router")):
            args, listens = self.router_args(h, i, controller)
            started.append(self.spawn(h.name, "router", args, f"router-{h.name}.log", listens))
        self.wait_all_listening(started)
        return started

    def start_gateways(self) -> list[NodeProcess]:
        """An OpenWhisk-compatible gateway on the host of every router that a workload with
        ``api: openwhisk`` calls (:func:`openwhisk_routers`), with the run's key
        (:data:`OPENWHISK_KEY`); waits until each listens."""
        routers = openwhisk_routers(self.scenario)
        if not routers:
            return []
        keys = self.out / "openwhisk-keys.txt"
        keys.write_text(f"# the run's OpenWhisk API key (docs/openwhisk.md)\n{OPENWHISK_KEY} guest\n",
                        encoding="utf-8")
        started = []
        for h in routers:
            args, listens = gateway_command(h, keys)
            started.append(self.spawn(h.name, "gateway", args, f"gateway-{h.name}.log", listens))
        self.wait_all_listening(started)
        return started

    def table(self, router: Host, *args: str) -> str:
        """Runs ``lambdaroute table --router <router's table service> ARGS`` in the router's host."""
        command = [self.binary, "table", "--router", endpoint(router, TABLE_PORT), *self.tls_args("operator"), *args]
        proc = self.network.node(router.name).popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(NODE_ENV))
        out, err = proc.communicate(timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` on {router.name} failed: {err.decode().strip()}")
        return out.decode()

    def install_flat_tables(self, routers: list[Host] | None = None, computers: list[Host] | None = None) -> int:
        """The flat installer, by the table tool: every (lambda, computer) on every router,
        final, weight 1.0 (only ``routers``/``computers`` when given: after a restart). Returns
        the number of entries installed."""
        n = 0
        hosts = self.scenario.hosts_with("computer") if computers is None else computers
        destinations = [(e, computer_lambdas(c)) for c in hosts for e in computer_endpoints(c)]
        if computers is None:
            destinations += [(ep, computer_lambdas(self.scenario.external_computer(name).computer))
                             for ep, name in external_endpoints(self.scenario).items()]
        for r in self.scenario.hosts_with("router") if routers is None else routers:
            for ep, lambdas in destinations:
                for lam in lambdas:
                    self.table(r, "change", "--lambda", lam, "--destination", ep, "--final")
                    n += 1
        return n

    def dump_tables(self, out: Path) -> None:
        """Writes every router's tables to ``out/<router>.txt`` (best effort)."""
        out.mkdir(exist_ok=True)
        for r in self.scenario.hosts_with("router"):
            try:
                text = self.table(r, "dump")
            except Exception as e:  # noqa: BLE001 - a dead router must not stop the collection
                text = f"cannot dump the tables of {r.name}: {e}\n"
            (out / f"{r.name}.txt").write_text(text, encoding="utf-8")


#: The scenario roles that get a certificate, and the certificate role of each.
CERT_ROLES = {"router": "router", "computer": "computer", "controller": "controller", "client": "client"}


def certs_commands(binary: str, out: Path, scenario: Scenario) -> list[list[str]]:
    """The ``lambdaroute certs`` commands of a run in secured mode: the CA, one certificate per
    router, computer, controller and client host (named after the host, for its address), and
    ``operator`` (the table and view tools) and ``monitor`` (congestion reports), which the
    testbed runs inside the hosts, so each names every host address."""
    commands = [[binary, "certs", "--out", str(out), "--ca"]]
    addresses = []
    for role, cert_role in CERT_ROLES.items():
        for h in scenario.hosts_with(role):
            commands.append([binary, "certs", "--out", str(out), "--node", h.name, "--role", cert_role,
                             "--ip", h.ip])
            addresses.append(h.ip)
    tools = ",".join(["127.0.0.1", *sorted(set(addresses))])
    for tool in ("operator", "monitor"):
        commands.append([binary, "certs", "--out", str(out), "--node", tool, "--role", tool, "--ip", tools])
    return commands


def tls_args(tls_dir: Path | None, name: str) -> list[str]:
    """``--tls-dir DIR --tls-name NAME`` when ``tls_dir`` is set (secured mode), else nothing."""
    return ["--tls-dir", str(tls_dir), "--tls-name", name] if tls_dir is not None else []


def openwhisk_routers(scenario: Scenario) -> list[Host]:
    """The routers that workloads with ``api: openwhisk`` call, in the scenario's order: each
    gets a gateway on its host."""
    names = {w.router for w in scenario.workloads if w.api == "openwhisk"}
    return [h for h in scenario.hosts_with("router") if h.name in names]


def gateway_command(router: Host, keys: Path) -> tuple[list[str], list[str]]:
    """``lambdaroute gateway`` arguments (after the binary) for the gateway on ``router``'s host,
    in front of that router, and the address it listens on."""
    listen = endpoint(router, GATEWAY_PORT)
    args = ["gateway", "--listen", listen, "--router", endpoint(router, ROUTER_PORT),
            "--router-table", endpoint(router, TABLE_PORT), "--keys", str(keys)]
    return args, [listen]


def client_command(workload: Workload, router: Host, output: Path, duration: float, seed: int,
                   base: Path | None = None, schedule: Path | None = None,
                   tls_dir: Path | None = None, fallback: list[Host] | None = None,
                   timeout: float | None = None) -> list[str]:
    """``lambdaroute client`` arguments for a workload (after the binary); image paths relative
    to ``base`` (default: the current directory); an ``aot`` workload sends the calls of its
    ``schedule`` (written by :func:`lambdaroute.aot.write_schedules`); in secured mode
    (``tls_dir``) with the client host's certificate. ``fallback``: the workload's fallback
    routers, after ``router`` in ``--router A,B`` (the client fails over to them in order);
    ``timeout``: the client's ``--timeout`` in s (None: its default)."""
    routers = ",".join(endpoint(r, ROUTER_PORT) for r in [router, *(fallback or [])])
    args = ["client", "--router", routers, "--lambda", workload.lambda_,
            "--duration", f"{duration:g}", "--seed", str(seed), "--output", str(output),
            *tls_args(tls_dir, workload.client)]
    if timeout is not None:
        args += ["--timeout", f"{timeout:g}s"]
    lo, hi = workload.size
    args += ["--sizes", f"{lo}" if lo == hi else f"{lo}-{hi}"]
    p = workload.params
    if workload.pattern == "closed-loop":
        args += ["--pattern", "closed", "--threads", str(p.get("threads", 1))]
    elif workload.pattern == "poisson":
        args += ["--pattern", "poisson", "--rate", f"{p['rate']:g}"]
    elif workload.pattern == "on-off":
        # Inside ON, calls spaced U[0.5/rate, 1.5/rate]: `rate` calls/s on average.
        rate = float(p["rate"])
        args += ["--pattern", "on-off", "--on-mean", f"{p['on']:g}", "--off-mean", f"{p['off']:g}",
                 "--gap-min", f"{0.5 / rate:g}", "--gap-max", f"{1.5 / rate:g}"]
    elif workload.pattern == "trace":
        args += ["--pattern", "trace", "--trace", str(p["trace"])]
    elif workload.pattern == "aot":
        if schedule is None:
            raise ValueError(f"workload of {workload.client}: pattern aot needs its schedule "
                             f"(lambdaroute.aot.write_schedules)")
        args += ["--pattern", "aot", "--schedule", str(schedule)]
    else:
        raise ValueError(f"workload of {workload.client}: unknown pattern `{workload.pattern}`")
    if workload.images:
        paths = [Path(i) if Path(i).is_absolute() else (base or Path.cwd()) / i for i in workload.images]
        missing = [str(i) for i in paths if not i.is_file()]
        if missing:
            raise FileNotFoundError(f"workload of {workload.client}: no image file {', '.join(missing)}")
        args += ["--image", ",".join(str(i.resolve()) for i in paths)]
        if workload.eyes:
            args += ["--eyes", workload.eyes]
    if workload.api == "openwhisk":
        # OpenWhisk's REST API through the gateway on the router's host (Nodes.start_gateways).
        args += ["--openwhisk", f"http://{endpoint(router, GATEWAY_PORT)}", "--openwhisk-auth", OPENWHISK_KEY]
    elif workload.api != "grpc":
        raise ValueError(f"workload of {workload.client}: unknown api `{workload.api}` (grpc or openwhisk)")
    return args
