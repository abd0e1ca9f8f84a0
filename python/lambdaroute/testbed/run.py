"""One run of an experiment, from an empty machine state back to an empty machine state.

:func:`start_testbed` is the network part as a context manager (network, delay elements, NAT gateway,
all undone on exit); :func:`run` is the whole experiment:

1. results folder ``results/<experiment>/<timestamp>/`` with the scenario and experiment copies;
   the offered load against the computers' capacity printed (a warning above 100 %);
2. the network (:mod:`.network`), delay (:mod:`.delay`), NAT gateway (:mod:`.nat`);
3. the controller (when the scenario has one and the binary has the subcommand;
   otherwise the testbed installs flat tables with the table tool), routers, computers (:mod:`.nodes`),
   then a wait until every router holds its tables (:meth:`.nodes.Nodes.wait_tables`);
4. the monitor (:mod:`.monitor`), the metrics scraper (with ``metrics:``, :mod:`.scrape`), background traffic (:mod:`.traffic`), then the clients, each at
   its workload's start, and the scenario's timed events, each at its time (:mod:`.events`), with
   a progress line until the last client ends;
5. final tables and the controller's view; clients, computers, routers, the controller stopped in
   that order (computers leave the controller); the traffic; summary, plot, ``metadata.json``
   (:mod:`.report`);
6. cleanup, always (:mod:`.cleanup`), and a check that nothing of the run is left.
"""

from __future__ import annotations

import json
import math
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from lambdaroute.scenario import Scenario
from lambdaroute.testbed import delay as delay_mod
from lambdaroute.testbed import report
from lambdaroute.testbed.cluster import Cluster, ClusterSpec
from lambdaroute.testbed.cleanup import Cleanup, RunState, clean_stale, leftovers, new_tag, stop_process, terminate_on_sigterm
from lambdaroute.testbed import faults
from lambdaroute.testbed.events import EventRunner
from lambdaroute.testbed.experiment import Experiment, find_binary
from lambdaroute.testbed.features import Features, detect, require_tools
from lambdaroute.testbed.monitor import Monitor, Reporter, Transition, controller_reporter
from lambdaroute.testbed.nat import Gateway, start_gateway
from lambdaroute.testbed.network import EmulatedNetwork
from lambdaroute.testbed.nodes import (
    CONTROLLER_PORT,
    METRICS_PORT,
    NODE_ENV,
    ROUTER_PORT,
    NodeProcess,
    Nodes,
    binary_has,
    binary_has_option,
    client_command,
    openwhisk_routers,
    computer_endpoints,
    endpoint,
    parse_view,
    external_endpoints,
    write_controller_files,
)
from lambdaroute.testbed.traffic import Background, schedules

__all__ = ["Bed", "start_testbed", "run", "RunResult", "format_timings"]

log = logging.getLogger(__name__)

#: Seconds the routers have to hold their tables after the nodes listen, at least (then the
#: run fails, naming what is missing); :func:`tables_timeout` adds time per router and computer.
TABLES_TIMEOUT = 20.0
#: Seconds more per router and per computer: each router's tables are read once per poll, and
#: the controller installs for every member (measured: 21 s for the 71 sites of aot-chicago).
TABLES_TIMEOUT_PER_NODE = 0.25
#: Seconds more per (router, computer) pair under the flat installer, where every router
#: connects to every computer (measured: 285 s for 71 routers x 1,065 computers).
TABLES_TIMEOUT_PER_FLAT_PAIR = 0.005


def tables_timeout(scenario: Scenario) -> float:
    """How long the routers have to hold their tables: :data:`TABLES_TIMEOUT`, plus
    :data:`TABLES_TIMEOUT_PER_NODE` per router and computer of the scenario, plus (flat
    installer) :data:`TABLES_TIMEOUT_PER_FLAT_PAIR` per router and computer pair."""
    routers = len(scenario.hosts_with("router"))
    computers = sum(len(computer_endpoints(h)) for h in scenario.hosts_with("computer"))
    flat = scenario.control.get("installer", "flat") == "flat"
    return round(TABLES_TIMEOUT + TABLES_TIMEOUT_PER_NODE * (routers + computers)
                 + (TABLES_TIMEOUT_PER_FLAT_PAIR * routers * computers if flat else 0.0), 3)


@dataclass
class Bed:
    """A running emulated network and what came with it."""

    scenario: Scenario
    network: EmulatedNetwork
    features: Features
    mechanism: str
    tag: str
    state: RunState
    cleanup: Cleanup
    binary: str
    workdir: Path
    delay_plan: delay_mod.DelayPlan | None = None
    #: Host -> the delay element serving its queues (nfqueue).
    delay_procs: dict[str, Any] = field(default_factory=dict)
    gateway: Gateway | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "features": self.features.as_dict(),
            "datapath": self.features.datapath,
            "delay_mechanism": self.mechanism,
            "delay_plan": self.delay_plan.as_dict() if self.delay_plan else None,
            "bridges": self.network.bridges,
            "queue_limits": self.network.queue_limits,
            "nat": self.gateway.as_dict() if self.gateway else None,
            "cluster": self.network.cluster.as_dict() if self.network.cluster else None,
            "timings_s": self.timings,
        }


@contextmanager
def start_testbed(scenario: Scenario, workdir: Path, delay: str = "auto", binary: str | None = None,
            seed: int | None = None, cluster: ClusterSpec | None = None) -> Iterator[Bed]:
    """The scenario's network, with delay and NAT, undone on exit (also on error and Ctrl-C);
    spread over the servers of ``cluster`` when given (:mod:`lambdaroute.testbed.cluster`)."""
    require_tools()
    binary = find_binary(binary)
    features = detect()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    for item in clean_stale():
        log.warning("removed a leftover of a run that died: %s", item)
    tag = new_tag()
    servers: Cluster | None = None
    if cluster is not None:
        _check_cluster_scenario(scenario)
        servers = Cluster(cluster, scenario, tag, workdir)
        servers.check()
        # netem only where every server has it: one mechanism for the whole network.
        features = Features(features.kernel, features.netem and all(f["netem"] for f in servers.features.values()),
                            features.ovs_kernel)
    mechanism = delay_mod.choose(delay, features)
    state = RunState(tag)
    cleanup = Cleanup()
    cleanup.push("remove the run state file", state.remove)
    if servers is not None:
        cleanup.push("close the SSH connections to the other servers", servers.close)
        cleanup.push("remove the PID files on the other servers", servers.remove_remote_files)
        servers.install(binary)
    network = EmulatedNetwork(scenario, features, tag, mechanism, workdir, state, servers)
    bed = Bed(scenario, network, features, mechanism, tag, state, cleanup, binary, workdir)
    with terminate_on_sigterm():
        try:
            t = time.monotonic()
            try:
                network.start(cleanup)
            finally:
                bed.timings["network"] = round(time.monotonic() - t, 3)
                bed.timings.update(network.timings)
            if mechanism == "nfqueue":
                t = time.monotonic()
                bed.delay_plan = delay_mod.plan(scenario)
                bed.delay_procs = delay_mod.start_elements(
                    network, bed.delay_plan, binary, workdir / "logs",
                    scenario.seed if seed is None else seed, cleanup, state)
                bed.timings["delay"] = round(time.monotonic() - t, 3)
            t = time.monotonic()
            bed.gateway = start_gateway(network, scenario, tag, cleanup, state)
            bed.timings["nat"] = round(time.monotonic() - t, 3)
            yield bed
        finally:
            t = time.monotonic()
            errors = cleanup.run()
            bed.timings["cleanup"] = round(time.monotonic() - t, 3)
            if "teardown" in network.timings:
                bed.timings["teardown"] = network.timings["teardown"]
            bed.timings["cleanup_errors"] = float(len(errors))


def _check_cluster_scenario(scenario: Scenario) -> None:
    """What a run across servers does not do yet, refused before anything starts."""
    if list(scenario.events):
        raise RuntimeError("events: not supported across servers yet; run the scenario on one machine "
                           "(drop `servers:`) or drop its `events:`")
    for h in scenario.hosts_with("computer"):
        if (h.computer or {}).get("executor") == "face":
            raise RuntimeError(f"host {h.name}: face computers need this machine's Python and OpenCV: not "
                               "supported across servers yet")


#: The setup phases in the order they run, as :func:`format_timings` shows them.
SETUP_PHASES = ("hosts", "links", "shaping", "addresses", "switches", "flows", "arp", "queues", "ethtool",
                "network", "delay", "nat", "nodes", "tables")


def format_timings(timings: dict[str, float]) -> str:
    """One line of the setup phases in ``timings`` (seconds), e.g. ``hosts 1.2 s, links 3.4 s
    (shaping 2.0 s), ..., network 9.9 s, delay 1.0 s, ...``; phases not in it are left out."""
    parts = []
    for name in SETUP_PHASES:
        if name == "shaping" or name not in timings:
            continue
        text = f"{name} {timings[name]:.1f} s"
        if name == "links" and "shaping" in timings:
            text += f" (shaping {timings['shaping']:.1f} s)"
        if name == "network":
            text = "= " + text + ";"
        parts.append(text)
    return ", ".join(parts).replace(", =", " =").replace(";,", ";")


# ----- progress -----

class Progress:
    """A one-line progress bar on a terminal; a line every 5 s elsewhere (CI logs)."""

    def __init__(self, total: float, stream: TextIO, enabled: bool = True) -> None:
        self.total = total
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self._last = -1e9

    def update(self, now: float, note: str) -> None:
        if not self.enabled:
            return
        frac = min(max(now / self.total, 0.0), 1.0) if self.total > 0 else 1.0
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        line = f"[{bar}] {now:6.1f}/{self.total:.0f} s  {note}"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
            self.stream.flush()
        elif now - self._last >= 5.0:
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last = now

    def done(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ----- the whole experiment -----

@dataclass
class RunResult:
    out: Path
    summaries: list[report.ClientSummary]
    metadata: dict[str, Any]
    transitions: list[Transition]
    plot: Path
    summary_text: str
    calls: list[report.Call]


def _version(args: list[str]) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def _versions(binary: str) -> dict[str, str]:
    from importlib import metadata as md

    import mininet.net

    try:
        package = md.version("lambdaroute")
    except md.PackageNotFoundError:
        package = "unknown"
    return {
        "lambdaroute": _version([binary, "--version"]),
        "lambdaroute_python": package,
        "python": sys.version.split()[0],
        "mininet": getattr(mininet.net, "VERSION", "unknown"),
        "openvswitch": _version(["ovs-vsctl", "--version"]),
        "iperf3": _version(["iperf3", "--version"]),
        "git": _version(["git", "-C", str(Path(__file__).resolve().parent), "describe", "--always", "--dirty"]),
    }


def outside_addresses(scenario: Scenario, gateway: Gateway, controller: bool) -> dict[str, Any]:
    """How programs on this machine reach the run (docs/real-computers.md): the routers' and the
    controller's outside addresses, and the flags of a computer that attaches itself."""
    nat = scenario.hosts_with("nat")[0]
    routers = {h.name: f"{gateway.outside[h.name]}:6473" for h in scenario.hosts_with("router")}
    ctl = scenario.hosts_with("controller")
    out: dict[str, Any] = {"routers": routers, "machine_address": gateway.machine_address, "gateway": nat.ip}
    lines = [f"routers {', '.join(f'{n} {a}' for n, a in routers.items())}"]
    if controller and ctl:
        out["controller"] = f"{gateway.outside[ctl[0].name]}:{CONTROLLER_PORT}"
        lines.append(f"attach a computer with `lambdaroute computer --listen {gateway.machine_address}:PORT "
                     f"--util-listen {gateway.machine_address}:PORT2 --advertise {nat.ip}:PORT "
                     f"--controller {out['controller']} ...`")
    out["lines"] = lines
    return out


def _congestion_intervals(transitions: list[Transition], end: float) -> list[tuple[float, float, str]]:
    open_at: dict[str, float] = {}
    out = []
    for tr in transitions:
        if tr.event == "congested":
            open_at[tr.link] = tr.time
        elif tr.link in open_at:
            out.append((open_at.pop(tr.link), tr.time, tr.link))
    out += [(start, end, link) for link, start in open_at.items()]
    return out


def _figures(scenario: Scenario, calls: list[report.Call], metadata: dict[str, Any],
             names: dict[str, str]) -> report.RunFigures:
    """The run's figures (:func:`.report.run_figures`): table entries when the tables were
    complete, the calls, and the links each call crossed, from the scenario's static paths and
    the controller's placements (its view at the end of the run)."""
    routers = {endpoint(h, ROUTER_PORT): h.name for h in scenario.hosts_with("router")}
    host_of = {**names, **routers}
    homes: dict[str, str] = {}
    if metadata.get("controller_view"):
        for computer, (_, placement) in parse_view(metadata["controller_view"]).computers.items():
            if placement.startswith("home router "):
                homes[computer] = placement[len("home router "):].strip()
    cache: dict[tuple[str, str], int | None] = {}

    def links(a: str, b: str) -> int | None:
        a, b = host_of.get(a, a), host_of.get(b, b)
        if (a, b) not in cache:
            try:
                cache[(a, b)] = len(scenario.path(a, b))
            except Exception:  # noqa: BLE001 - an unknown host or path: the figure is left out
                cache[(a, b)] = None
        return cache[(a, b)]

    return report.run_figures(calls, float(metadata.get("duration_s") or scenario.duration),
                              metadata["tables_ready"]["entries"], len(names), links, homes)


def offered_load(scenario: Scenario) -> dict[str, Any]:
    """The scenario's peak offered load against its computers' capacity (computed by the Rust
    scenario crate, :meth:`Scenario.offered_load`), with ``utilization_pct``; infinite numbers
    (no computer runs a lambda) become None so that ``metadata.json`` stays valid JSON."""
    load = scenario.offered_load()

    def finite(x: Any) -> Any:
        return None if isinstance(x, float) and not math.isfinite(x) else x

    out = {k: finite(v) for k, v in load.items() if k != "lambdas"}
    out["lambdas"] = [{k: finite(v) for k, v in lam.items()} for lam in load["lambdas"]]
    out["utilization_pct"] = finite(round(load["utilization"] * 100, 1)) if math.isfinite(load["utilization"]) else None
    return out


def _aot_results(scenario: Scenario, files: dict[int, Path],
                 clients: list[tuple[NodeProcess, float, str, str, Path]], calls: list[report.Call], out: Path,
                 title: str) -> None:
    """``sites.csv`` and ``sites.png``: per site (the client's switch) and second, the trace's
    arrivals (the schedule's due times) next to the calls sent and answered."""
    started = {str(p): t0 for _, t0, _, _, p in clients}
    site_of = {h.name: h.switch for h in scenario.hosts_with("client")}
    arrivals: dict[str, list[float]] = {}
    for i, path in files.items():
        w = scenario.workloads[i]
        t0 = started.get(str(out / "clients" / f"{w.client}-{i}.csv"), w.start)
        arrivals.setdefault(site_of[w.client], []).extend(t0 + t for t in report.read_schedule_times(path))
    counts = report.site_counts(arrivals, [c for c in calls if c.node], site_of, scenario.duration)
    with open(out / "sites.csv", "w", encoding="utf-8") as f:
        f.write("time,site,arrivals,sent,ok\n")
        for t, site, a, n, ok in counts:
            f.write(f"{t:g},{site},{a},{n},{ok}\n")
    order = [sw.name for sw in scenario.switches if sw.name in arrivals]
    report.plot_sites(counts, out / "sites.png", title, order)


def run(
    experiment: Experiment,
    reporter: Reporter | None = None,
    stream: TextIO = sys.stderr,
    progress: bool = True,
    results: Path | None = None,
    folder: Path | None = None,
) -> RunResult:
    """Runs ``experiment``; returns its results (also on disk), in ``folder`` when given (a
    sweep's run: it must not exist yet), else in ``<results>/<name>/<timestamp>``. ``reporter``
    replaces the controller reporter of the monitor (tests capture reports with it)."""
    scenario = experiment.scenario
    if folder is not None:
        out = folder
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        root = results or experiment.results
        out = root / experiment.name / stamp
        n = 1
        while out.exists():
            n += 1
            out = root / experiment.name / f"{stamp}-{n}"
    out.mkdir(parents=True)
    scenario.save(out / "scenario.yaml")
    (out / "experiment.yaml").write_text(
        __import__("yaml").safe_dump(experiment.raw, sort_keys=False), encoding="utf-8")
    for sub in ("clients", "tables", "flows"):
        (out / sub).mkdir()
    metadata: dict[str, Any] = {
        "experiment": experiment.name,
        "description": experiment.description,
        "scenario": scenario.name,
        "scenario_source": str(experiment.source) if experiment.source else None,
        "seed": scenario.seed,
        "duration_s": scenario.duration,
        "started": datetime.now().isoformat(timespec="seconds"),
        "control": scenario.control,
    }
    if experiment.labels:
        metadata["sweep"] = experiment.labels
    stream.write(f"lambdaroute-testbed: {experiment.name} ({scenario.name}, {scenario.duration:g} s) -> {out}\n")
    load = offered_load(scenario)
    metadata["offered_load"] = load
    stream.write(f"  {load['text']}\n")
    if load["saturated"]:
        stream.write("  WARNING: the workloads offer more than the computers can serve: latencies will grow "
                     "without bound; lower the rates or add computers\n")
    events: EventRunner | None = None
    figures_of_faults: list[faults.FaultFigures] = []
    t_start = time.monotonic()
    calls: list[report.Call] = []
    transitions: list[Transition] = []
    summary_text = ""
    plot = out / "latency.png"
    bed_meta: dict[str, Any] = {}
    state_data: dict[str, Any] = {}
    clients: list[tuple[NodeProcess, float, str, str, Path]] = []
    # Responders by host: a host serving several computers is one row of the summary.
    names = {e: h.name for h in scenario.hosts_with("computer") for e in computer_endpoints(h)}
    names.update(external_endpoints(scenario))
    metadata["computers"] = names
    aot_schedules: dict[int, Path] = {}
    base = experiment.source.parent if experiment.source else experiment.base
    try:
        if any(w.pattern == "aot" for w in scenario.workloads):
            # Array of Things replays: every schedule before the network, one pass per trace.
            t = time.monotonic()
            written = scenario.write_schedules(base, out / "schedules")
            aot_schedules = {f["workload"]: Path(f["path"]) for f in written["files"]}
            metadata["aot"] = {**written, "schedules_s": round(time.monotonic() - t, 3)}
            for tr in written["traces"]:
                unknown = f", {tr['unknown_rows']} rows of unknown node ids" if tr["unknown_rows"] else ""
                stream.write(f"  trace {os.path.normpath(tr['path'])}: {tr['rows']} rows read from {tr['first']}{unknown}; "
                             f"{sum(f['calls'] for f in written['files'])} calls scheduled for "
                             f"{len(written['files'])} clients\n")
        with start_testbed(scenario, out, experiment.delay, experiment.binary, cluster=experiment.cluster) as bed:
            state_data = bed.state.data
            metadata["versions"] = _versions(bed.binary)
            stream.write(f"  network up in {bed.timings['network']:.1f} s: datapath {bed.features.datapath}, "
                         f"delay {bed.mechanism}, bridges l{bed.tag}s*\n")
            for sw in scenario.switches:
                (out / "flows" / f"{sw.name}.txt").write_text(bed.network.dump_flows(sw.name), encoding="utf-8")
            nodes = Nodes(bed.network, scenario, bed.binary, out, bed.cleanup, bed.state, router_seed=scenario.seed)
            if experiment.metrics is not None:
                if not binary_has_option(bed.binary, "router", "--metrics-listen"):
                    raise RuntimeError(f"metrics: the binary {bed.binary} has no --metrics-listen: build a newer one "
                                       f"(`make release`) or drop `metrics:` from the experiment")
                nodes.metrics = True
            if experiment.secure:
                if not binary_has(bed.binary, "certs"):
                    raise RuntimeError(f"secure: the binary {bed.binary} has no `certs` subcommand: build a newer "
                                       f"one (`make release`) or drop `secure:` from the experiment")
                nodes.make_certs()
                metadata["secure"] = True
            nodes.call_timeout = experiment.timeouts.get("call")
            if experiment.timeouts:
                metadata["timeouts"] = experiment.timeouts

            # Tables: the controller if there is one and the binary has it, else the testbed.
            ctl_hosts = scenario.hosts_with("controller")
            has_controller = binary_has(bed.binary, "controller")
            distances, paths = write_controller_files(scenario, out)
            if experiment.tables == "controller" and not (ctl_hosts and has_controller):
                raise RuntimeError("tables: controller, but the scenario has no controller host "
                                   "or the binary has no `controller` subcommand")
            use_controller = bool(ctl_hosts and has_controller and experiment.tables != "testbed")
            controller = endpoint(ctl_hosts[0], CONTROLLER_PORT) if use_controller else None
            metadata["tables"] = "controller" if use_controller else "testbed (flat, lambdaroute table)"
            t = time.monotonic()
            if use_controller:
                nodes.start_controller(ctl_hosts[0], distances, paths)
            # Routers first: a two-tier controller then places each computer once, among every router.
            nodes.start_routers(controller)
            nodes.start_computers(controller)
            if scenario.external:
                if bed.gateway is None:
                    raise RuntimeError("external computers need the NAT gateway: add a host whose role is `nat`")
                outside_controller = (f"{bed.gateway.outside[ctl_hosts[0].name]}:{CONTROLLER_PORT}"
                                      if use_controller else None)
                nodes.start_external(bed.gateway.machine_address, outside_controller)
            if not use_controller:
                if scenario.control.get("installer") == "two-tier":
                    log.warning("two-tier installer needs the controller; installing flat tables")
                metadata["entries_installed"] = nodes.install_flat_tables()
            # OpenWhisk-compatible gateways in front of the routers that `api: openwhisk` workloads call.
            if nodes.start_gateways():
                metadata["gateways"] = [h.name for h in openwhisk_routers(scenario)]
            bed.timings["nodes"] = round(time.monotonic() - t, 3)
            # No client starts before every router holds what it should.
            ready = nodes.wait_tables(timeout=tables_timeout(scenario))
            metadata["tables_ready"] = ready
            metadata["tables_installed_by_controller"] = use_controller
            bed.timings["tables"] = ready["tables_ready_s"]
            sizes = list(ready["entries"].values())
            if len(sizes) > report.BRIEF_CLIENTS:
                entries = f"{len(sizes)} routers, min {min(sizes)}, mean {sum(sizes) / len(sizes):g}, max {max(sizes)}"
            else:
                entries = ", ".join(f"{r}: {n}" for r, n in ready["entries"].items()) or "no routers"
            stream.write(f"  nodes ready in {bed.timings['nodes']:.1f} s; tables by {metadata['tables']}, "
                         f"complete after {ready['tables_ready_s']:.2f} s more (entries {entries})\n")
            stream.write(f"  setup: {format_timings(bed.timings)}\n")
            if bed.gateway is not None:
                metadata["outside"] = outside_addresses(scenario, bed.gateway, use_controller)
                stream.write("  from outside: " + "; ".join(metadata["outside"]["lines"]) + "\n")

            if not experiment.report_congestion:
                reporter = None
                metadata["congestion_reports"] = "off (monitor.report: false): congested links recorded only"
            elif reporter is None and use_controller and binary_has(bed.binary, "congestion"):
                ctl_node = bed.network.node(ctl_hosts[0].name)

                def run_in_controller_host(args: list[str]) -> tuple[int, str]:
                    p = ctl_node.popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(NODE_ENV))
                    text, _ = p.communicate(timeout=30)
                    return p.returncode, text.decode(errors="replace")

                reporter = controller_reporter(run_in_controller_host, bed.binary, controller or "", nodes.tls_dir)
                metadata["congestion_reports"] = "controller"
            else:
                metadata["congestion_reports"] = "injected reporter" if reporter else "recorded only (no controller)"
            # Time 0 of the run, shared by the monitor (links.csv, congestion.csv), the
            # background schedule and the clients' start times (client CSVs shifted by them).
            origin = time.monotonic()
            monitor = Monitor(scenario, bed.network.bridges, out, reporter, origin=origin,
                              root_command=bed.network.root_command,
                              **experiment.monitor)  # type: ignore[arg-type]
            monitor.start()
            bed.cleanup.push("stop the monitor", monitor.stop)
            if experiment.metrics is not None:
                # From inside the emulated network, where the nodes listen: the controller's host
                # (any host reaches every other through the static flows); on this machine.
                candidates = ctl_hosts + scenario.hosts_with("router") + scenario.hosts_with("computer")
                scrape_host = next((h.name for h in candidates if not (bed.network.cluster and
                                                                       bed.network.cluster.is_remote(h.name))),
                                   candidates[0].name)
                targets = nodes.metrics_targets()
                nodes.start_scraper(scrape_host, targets, experiment.metrics, origin, out / "metrics.csv")
                metadata["metrics"] = {"interval_s": experiment.metrics, "host": scrape_host, "port": METRICS_PORT,
                                       "targets": targets, "csv": "metrics.csv"}

            background = Background(bed.network, scenario, schedules(scenario, experiment.source.parent if experiment.source else experiment.base, scenario.seed),
                                    out / "logs", bed.cleanup, bed.state)
            background.start_servers()
            for (sink, address), server in zip(background.server_addresses(), background.servers):
                nodes.wait_listening(NodeProcess(sink, "iperf3 server", [], out / "logs", server, [address]))
            # Cleanup stops the nodes (clients, computers, routers, controller) before the traffic.
            bed.cleanup.push("stop the nodes", nodes.stop_all)
            events = EventRunner(bed, nodes, scenario, controller, scenario.seed)

            # The run: clients at their start times, background segments, a progress line.
            pending = sorted(enumerate(scenario.workloads), key=lambda iw: iw[1].start)
            bar = Progress(scenario.duration, stream, progress)
            while True:
                now = time.monotonic() - origin
                for applied in events.tick(now, origin):
                    stream.write(f"  event at {applied.at:g} s: {applied.kind} {applied.target}: "
                                 f"{applied.error or applied.detail} (applied at {applied.applied:.2f} s, "
                                 f"took {applied.took:.2f} s)\n")
                    now = time.monotonic() - origin
                while pending and pending[0][1].start <= now:
                    i, w = pending.pop(0)
                    stop = w.stop if w.stop is not None else scenario.duration
                    csv_path = out / "clients" / f"{w.client}-{i}.csv"
                    args = client_command(w, scenario.host(w.router), csv_path, max(stop - now, 0.1),
                                          scenario.seed * 1000 + i, base, aot_schedules.get(i), nodes.tls_dir,
                                          fallback=[scenario.host(r) for r in w.fallback],
                                          timeout=experiment.timeouts.get("client"))
                    np = nodes.spawn(w.client, "client", args, f"client-{w.client}-{i}.log")
                    clients.append((np, now, w.client, w.router, csv_path))
                background.tick(now)
                alive = sum(1 for c in clients if c[0].proc.poll() is None)
                congested = ",".join(sorted(monitor.congested)) or "-"
                bar.update(now, f"clients {alive}/{len(scenario.workloads)}  congested {congested}")
                if not pending and alive == 0 and now >= scenario.duration:
                    break
                if now > scenario.duration + experiment.grace:
                    log.warning("clients still running %.0f s after the end: stopping them", experiment.grace)
                    for np, *_ in clients:
                        stop_process(np.proc, 10)
                    break
                time.sleep(0.1)
            bar.done()
            bed.timings["run"] = round(time.monotonic() - origin, 3)
            # The end, in order: final tables and view, clients, computers (they leave the
            # controller), routers, the controller; then the traffic and the monitor.
            nodes.dump_tables(out / "tables")
            if use_controller:
                try:
                    view_text = nodes.view()
                except Exception as e:  # noqa: BLE001 - recorded, not fatal
                    view_text = f"cannot read the controller's view: {e}\n"
                (out / "controller-view.txt").write_text(view_text, encoding="utf-8")
                metadata["controller_view"] = view_text
            if experiment.metrics is not None:
                # Its last round, after the clients ended and before any node stops.
                nodes.stop_role("scraper", timeout=15)
                metadata["metrics"]["scraper_exit"] = next(
                    (n.proc.returncode for n in nodes.running if n.role == "scraper"), None)
            # A computer still frozen (computer-freeze without its thaw) resumes, so that it
            # stops as the others do (SIGTERM, leaving the controller).
            for applied in (events.thaw_all(origin) if events is not None else []):
                stream.write(f"  at the end: {applied.kind} {applied.target}: {applied.error or applied.detail}\n")
            stopped = nodes.stop_role("client") + nodes.stop_role("computer")
            if use_controller:
                # RemoveComputer of each stopped computer reached the controller?
                metadata["computers_known_after_stop"] = nodes.wait_computers_left()
            stopped += nodes.stop_role("router") + nodes.stop_role("controller")
            metadata["stop_order"] = stopped
            background.stop()
            monitor.stop()
            if bed.network.cluster is not None:
                # What the nodes on other servers wrote (client CSVs) comes back here.
                bed.network.cluster.pull()
            transitions = list(monitor.transitions)
            metadata["monitor"] = monitor.as_dict()
            metadata["clients"] = [
                {"client": c, "started_s": round(t0, 3), "command": np.command, "exit": np.proc.returncode,
                 "csv": str(p.relative_to(out))} for np, t0, c, _, p in clients]
            metadata["background_segments"] = background.segments_started
            # The router that answered each call (its CSV's endpoint; with failover not always
            # the workload's), by host name.
            router_names = {endpoint(h, ROUTER_PORT): h.name for h in scenario.hosts_with("router")}
            for np, t0, client, router, path in clients:
                if path.exists():
                    calls += [report.Call(**{**c.__dict__, "time": c.time + t0,
                                             "router": router_names.get(c.router, router),
                                             "scheduled": None if c.scheduled is None else c.scheduled + t0})
                              for c in report.read_calls(path, client)]
            if aot_schedules:
                metadata["aot"]["lag"] = report.lag([c for c in calls if c.node])
                _aot_results(scenario, aot_schedules, clients, calls, out,
                             f"{experiment.name}: {scenario.name}, calls per site")
            bed_meta = bed.metadata()
    except BaseException as e:
        metadata["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        if events is not None:
            events.write_csv(out / "events.csv")
            metadata["events"] = events.as_dicts()
            run_faults = faults.faults_from_events(metadata["events"], scenario.duration)
            if run_faults:
                # What each fault cost: calls lost, time to recover, latency during (faults.csv).
                figures_of_faults = faults.analyse_by_client(faults.calls_from_report(calls), run_faults,
                                                             max([scenario.duration, *(c.time for c in calls)]))
                faults.write_csv(figures_of_faults, out / "faults.csv")
                metadata["faults"] = [f.as_dict() for f in figures_of_faults]
        metadata.update(bed_meta)
        metadata["wall_time_s"] = round(time.monotonic() - t_start, 3)
        if state_data:
            left = leftovers(state_data)
            metadata["leftovers"] = left
            if left:
                stream.write(f"  WARNING: left behind: {', '.join(left)}\n")
        policy = scenario.control.get("policy", "")
        summaries = report.summarize(calls, policy, names)
        found = report.objects_found(calls, names)
        summary_text = report.format_summary(summaries) + report.format_objects(found)
        if figures_of_faults:
            summary_text += "\nfaults (faults.csv; docs/reliability.md):\n" + faults.format_table(figures_of_faults)
        if found:
            metadata["objects_found"] = found
        if "tables_ready" in metadata:
            figures = _figures(scenario, calls, metadata, names)
            metadata["figures"] = figures.as_dict()
            summary_text += "\n" + report.format_figures(figures)
        (out / "summary.txt").write_text(summary_text, encoding="utf-8")
        report.write_calls(calls, out / "calls.csv", names)
        metadata["summary"] = report.as_dict(summaries)
        with open(out / "utilization.csv", "w", encoding="utf-8") as f:
            f.write("time,computer,load1\n")
            for t, c, u in report.utilization(calls, names):
                f.write(f"{t:.3f},{c},{u:g}\n")
        if (out / "metrics.csv").exists():
            try:
                rows = report.read_metrics(out / "metrics.csv")
                metadata.setdefault("metrics", {})["rows"] = len(rows)
                if report.plot_metrics(rows, out / "metrics.png", f"{experiment.name}: {scenario.name}, policy {policy}"):
                    metadata["metrics"]["plot"] = "metrics.png"
            except (OSError, ValueError, KeyError) as e:
                metadata.setdefault("metrics", {})["error"] = f"{type(e).__name__}: {e}"
        if calls:
            report.plot_latency(calls, plot, f"{experiment.name}: {scenario.name}, policy {policy}", names,
                                _congestion_intervals(transitions, scenario.duration))
        (out / "metadata.json").write_text(json.dumps(metadata, indent=2, default=str), encoding="utf-8")
    if len(summaries) > report.BRIEF_CLIENTS + 1:
        shown = report.format_summary(summaries, brief=True) + f"(every client and responder: {out / 'summary.txt'})\n"
        if "figures" in metadata:
            shown += "\n" + report.format_figures(report.RunFigures(**metadata["figures"]))
    else:
        shown = summary_text
    stream.write("\n" + shown)
    stream.write(f"\nresults: {out}\nplot:    {plot}\n")
    return RunResult(out, summaries, metadata, transitions, plot, summary_text, calls)

