"""The lambdaroute processes of a run, each in its Mininet host with its own log.

- :func:`computer_command`, :func:`router_command`, :func:`controller_command`,
  :func:`client_command` build the command lines from the scenario;
- :class:`Nodes` starts them (computers, then the controller, then routers), waits until each
  listens by probing its TCP ports from inside its host (never a fixed sleep), and stops them
  by handle;
- without a controller (none in the scenario, or a binary that has no ``controller``
  subcommand) :meth:`Nodes.install_flat_tables` installs the flat tables itself with
  ``lambdaroute table --router ... change``, as the flat installer would;
- :func:`write_controller_files` writes the distances and paths files the controller reads.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
    "computer_lambdas",
    "computer_config",
    "write_controller_files",
    "binary_has",
    "endpoint",
]

log = logging.getLogger(__name__)

ROUTER_PORT = 6473
TABLE_PORT = 6474
CONTROLLER_PORT = 6475
UTIL_PORT = 6476
COMPUTER_PORT = 10000

#: Scenario policy names -> the router's --policy flag.
POLICY_FLAGS = {"random-proportional": "rp", "least-impedance": "li", "round-robin": "rr", "p2c": "p2c"}

NODE_ENV = {"NO_COLOR": "1", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

# The presets of rust/core/src/computer_model/preset.rs, expanded here only when a scenario
# overrides the main processor or the number of lambdas (otherwise `--preset` is used).
_PRESETS: dict[str, dict[str, Any]] = {
    "raspberry": {
        "main": {"name": "arm", "type": "cpu", "speed": 1e9, "cores": 4, "memory": 512 << 20},
        "gpu": {"name": "gpu", "type": "gpu", "speed": 1e9, "cores": 1, "memory": 512 << 20},
    },
    "intel-server": {
        "main": {"name": "xeon", "type": "cpu", "speed": 4e9, "cores": 20, "memory": 128 << 30},
    },
}


def endpoint(host: Host, port: int) -> str:
    return f"{host.ip}:{port}"


def computer_lambdas(host: Host) -> list[str]:
    """The lambdas a computer runs (its preset's, ``lambdas`` of each kind)."""
    spec = host.computer or {}
    n = max(int(spec.get("lambdas") or 1), 1)
    if spec.get("preset", "raspberry") == "intel-server":
        return ["clambda0"]
    return [f"{kind}lambda{i}" for i in range(n) for kind in ("c", "g")]


def computer_config(host: Host) -> dict[str, Any] | None:
    """The computer's configuration (as ``lambdaroute computer --config`` reads it) when the
    scenario overrides its preset; None when ``--preset`` says it all."""
    spec = host.computer or {}
    preset = spec.get("preset", "raspberry")
    overrides = {k: spec[k] for k in ("speed", "cores", "memory") if spec.get(k) is not None}
    lambdas = max(int(spec.get("lambdas") or 1), 1)
    if not overrides and lambdas == 1:
        return None
    main = dict(_PRESETS[preset]["main"], **overrides)
    processors = [main]
    containers: list[dict[str, Any]] = []
    lambda_cfgs: list[dict[str, Any]] = []
    kinds = [("c", main["name"], main["cores"], 4e6)]
    if preset == "raspberry":
        processors.append(dict(_PRESETS[preset]["gpu"]))
        kinds.append(("g", "gpu", 1, 1e6))
    else:
        lambdas = 1
    for i in range(lambdas):
        for prefix, processor, workers, op_offset in kinds:
            containers.append({"name": f"{prefix}container{i}", "processor": processor,
                               "lambda": f"{prefix}lambda{i}", "num_workers": int(workers)})
            lambda_cfgs.append({"name": f"{prefix}lambda{i}", "op_offset": op_offset, "op_coeff": 1e6,
                                "mem_offset": 0.0, "mem_coeff": 100.0, "output": "echo"})
    return {"processors": processors, "containers": containers, "lambdas": lambda_cfgs}


def binary_has(binary: str, subcommand: str) -> bool:
    """Whether ``binary`` has ``subcommand`` (``lambdaroute SUB --help`` succeeds)."""
    try:
        done = subprocess.run([binary, subcommand, "--help"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def write_controller_files(scenario: Scenario, out: Path) -> tuple[Path, Path]:
    """Writes ``distances.yaml`` and ``paths.yaml`` for the controller; returns their paths.

    Keys are the endpoints the controller knows the nodes by: a router's lambda endpoint
    ``IP:6473``, a computer's ``IP:10000``.
    """
    def key(name: str) -> str:
        h = scenario.host(name)
        return endpoint(h, ROUTER_PORT if h.role == "router" else COMPUTER_PORT)

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

    # ----- processes -----

    def spawn(self, host: str, role: str, args: list[str], log_name: str, listens: list[str] = ()) -> NodeProcess:  # type: ignore[assignment]
        node = self.network.node(host)
        log_path = self.logs / log_name
        command = [self.binary, *args]
        with open(log_path, "wb") as log_file:
            log_file.write(("$ " + " ".join(command) + "\n").encode())
            log_file.flush()
            proc = node.popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=dict(NODE_ENV))
        np = NodeProcess(host, role, command, log_path, proc, list(listens))
        self.running.append(np)
        self.cleanup.push(f"stop {role} on {host}", lambda: stop_process(proc))
        if self.state is not None and (pid := process_id(proc.pid)):
            self.state.add("pids", pid)
        return np

    def wait_listening(self, np: NodeProcess, timeout: float = 15.0) -> None:
        """Probes the node's ports from inside its host until they accept connections."""
        if not np.listens:
            return
        probe = self.network.node(np.host).popen(
            [sys.executable, "-c", _PROBE, str(timeout), *np.listens],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout + 5
        while probe.poll() is None:
            if np.proc.poll() is not None:
                stop_process(probe, 1)
                raise RuntimeError(
                    f"{np.role} on {np.host} exited ({np.proc.returncode}) before listening on "
                    f"{', '.join(np.listens)}; see {np.log}"
                )
            if time.monotonic() > deadline:
                stop_process(probe, 1)
                break
            time.sleep(0.02)
        if probe.returncode != 0:
            raise RuntimeError(
                f"{np.role} on {np.host}: nothing listens on {', '.join(np.listens)} after {timeout:g} s; "
                f"see {np.log}"
            )

    def stop_all(self) -> None:
        """Stops every node, clients first, by handle (SIGTERM, then SIGKILL)."""
        order = {"client": 0, "router": 1, "controller": 2, "computer": 3}
        for np in sorted(self.running, key=lambda n: order.get(n.role, 9)):
            stop_process(np.proc)

    # ----- roles -----

    def start_computers(self, controller: str | None) -> list[NodeProcess]:
        started = []
        configs = self.out / "computers"
        for h in self.scenario.hosts_with("computer"):
            listen, util = endpoint(h, COMPUTER_PORT), endpoint(h, UTIL_PORT)
            args = ["computer", "--listen", listen, "--util-listen", util]
            config = computer_config(h)
            if config is None:
                args += ["--preset", (h.computer or {}).get("preset", "raspberry")]
            else:
                configs.mkdir(exist_ok=True)
                path = configs / f"{h.name}.yaml"
                path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
                args += ["--config", str(path)]
            if controller:
                args += ["--controller", controller]
            started.append(self.spawn(h.name, "computer", args, f"computer-{h.name}.log", [listen, util]))
        for np in started:
            self.wait_listening(np)
        return started

    def start_controller(self, host: Host, distances: Path, paths: Path) -> NodeProcess:
        control = self.scenario.control
        listen = endpoint(host, CONTROLLER_PORT)
        args = ["controller", "--listen", listen, "--installer", control.get("installer", "flat"),
                "--distances", str(distances), "--paths", str(paths)]
        if control.get("installer") == "two-tier" and control.get("objective"):
            args += ["--objective", control["objective"]]
        np = self.spawn(host.name, "controller", args, f"controller-{host.name}.log", [listen])
        self.wait_listening(np)
        return np

    def start_routers(self, controller: str | None) -> list[NodeProcess]:
        control = self.scenario.control
        policy = POLICY_FLAGS.get(control.get("policy", "round-robin"), "rr")
        estimator = control.get("estimator", "ewma")
        if estimator == "ewma":
            estimator = f"ewma:{control.get('alpha', 0.95)}"
        else:
            estimator = f"periodic:{control.get('period', 5)}:{control.get('stat', 'min')}"
        started = []
        for i, h in enumerate(self.scenario.hosts_with("router")):
            listen, table = endpoint(h, ROUTER_PORT), endpoint(h, TABLE_PORT)
            args = ["router", "--listen", listen, "--table-listen", table, "--policy", policy,
                    "--estimator", estimator, "--seed", str(self.router_seed + i)]
            if controller:
                args += ["--controller", controller]
            started.append(self.spawn(h.name, "router", args, f"router-{h.name}.log", [listen, table]))
        for np in started:
            self.wait_listening(np)
        return started

    def table(self, router: Host, *args: str) -> str:
        """Runs ``lambdaroute table --router <router's table service> ARGS`` in the router's host."""
        command = [self.binary, "table", "--router", endpoint(router, TABLE_PORT), *args]
        proc = self.network.node(router.name).popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(NODE_ENV))
        out, err = proc.communicate(timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` on {router.name} failed: {err.decode().strip()}")
        return out.decode()

    def install_flat_tables(self) -> int:
        """The flat installer, by the table tool: every (lambda, computer) on every router,
        final, weight 1.0. Returns the number of entries installed."""
        n = 0
        computers = self.scenario.hosts_with("computer")
        for r in self.scenario.hosts_with("router"):
            for c in computers:
                for lam in computer_lambdas(c):
                    self.table(r, "change", "--lambda", lam, "--destination", endpoint(c, COMPUTER_PORT), "--final")
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


def client_command(workload: Workload, router: Host, output: Path, duration: float, seed: int) -> list[str]:
    """``lambdaroute client`` arguments for a workload (after the binary)."""
    args = ["client", "--router", endpoint(router, ROUTER_PORT), "--lambda", workload.lambda_,
            "--duration", f"{duration:g}", "--seed", str(seed), "--output", str(output)]
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
    else:
        raise ValueError(f"workload of {workload.client}: unknown pattern `{workload.pattern}`")
    return args
