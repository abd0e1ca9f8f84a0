"""Link delay and loss: netem where the kernel has it, else lambdaroute's NFQUEUE element.

:func:`choose` picks the mechanism: ``netem`` when the kernel has the qdisc (TCLink then puts
delay, loss and queue length on both ends of every link, as Mininet does), else ``nfqueue``.

With ``nfqueue``, packets are held in the *hosts*, never in the switches (the userspace switches
share one datapath that iptables does not see). A packet from host ``a`` to host ``b`` crosses
``a``'s access link, the switch links of the static path from ``a`` to ``b``, and ``b``'s access
link; the plan holds it for all of them at once, in ``b``, as it arrives: ``b``'s mangle
PREROUTING has one rule per source, ``-s <a>``, to the queue of that total, and one last rule
for any other source, to the queue of ``b``'s access link alone (queue 1).

Why at the receiver: a packet held in its sender's OUTPUT is still charged to the sending socket,
and TCP's small-queue limit then lets only a few packets per socket wait below it: a TCP flow over
a 20 ms hold reached 2.2 Mbit/s whatever the link's bandwidth (netem's qdisc frees the packet
from its socket before it waits; an NFQUEUE rule cannot). Held on arrival, the packet belongs to
no socket, and the same flow reached 528 Mbit/s on an unshaped veth. PREROUTING, not INPUT, so
that packets the NAT gateway forwards wait too.

Losses combine the same way (``1 - prod(1 - p)``), drawn at the receiver. So a one-way trip waits
the sum of the delays on its path, exactly as with netem; what differs: the delay of a switch link
is paid per flow at the receiving host (two flows that share a link do not queue behind each other
in the delay), queue lengths are not emulated, and traffic from addresses outside the scenario
only pays the receiver's access link. Bandwidth is HTB in both cases (TCLink).

One ``lambdaroute netem --namespaces FILE`` serves the queues of every host with anything to
delay (it opens each host's queue socket inside the host's namespace), or, with a binary
without that option, each such host runs its own element (all started together); the element
is ready (it logs ``ready``) before any rule goes in (one ``iptables-restore --noflush`` per
host); rules use ``--queue-bypass`` so a host
whose element is gone still passes traffic. Host namespaces die with the network, and with them
the rules; the elements are stopped by handle before that.
"""

from __future__ import annotations

import logging
import math
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaroute.scenario import Scenario
from lambdaroute.testbed.batch import iptables_restore
from lambdaroute.testbed.cleanup import Cleanup, RunState, process_id, stop_process
from lambdaroute.testbed.features import Features

__all__ = ["choose", "DelayPlan", "HostQueues", "plan", "serves_namespaces", "start_elements", "remove_rules",
           "MECHANISMS"]

log = logging.getLogger(__name__)

MECHANISMS = ("auto", "netem", "nfqueue", "none")

#: The queue of every host's access link alone (packets from outside the scenario); the
#: queues of the paths from other hosts are numbered from 2.
ACCESS_QUEUE = 1


def choose(requested: str, features: Features) -> str:
    """The mechanism for ``requested`` (``auto``, ``netem``, ``nfqueue``, ``none``)."""
    if requested not in MECHANISMS:
        raise ValueError(f"delay mechanism `{requested}`: expected one of {', '.join(MECHANISMS)}")
    if requested == "auto":
        return "netem" if features.netem else "nfqueue"
    if requested == "netem" and not features.netem:
        raise RuntimeError(
            "delay mechanism `netem` asked for, but this kernel has no netem qdisc; "
            "use `auto` or `nfqueue` (lambdaroute's NFQUEUE element)"
        )
    return requested


def _combine_loss(percents: list[float]) -> float:
    keep = math.prod(1.0 - p / 100.0 for p in percents)
    return (1.0 - keep) * 100.0


@dataclass
class HostQueues:
    """What one host's element does: queue number -> (delay ms, loss %), and the iptables
    rules that feed the queues."""

    host: str
    queues: dict[int, tuple[float, float]] = field(default_factory=dict)
    rules: list[list[str]] = field(default_factory=list)

    def queue_args(self) -> list[str]:
        args = []
        for number, (delay, loss) in sorted(self.queues.items()):
            args += ["--queue", f"{number}:{delay:g}:{loss:g}" if loss else f"{number}:{delay:g}"]
        return args


@dataclass
class DelayPlan:
    """The per-host queues of a scenario (empty when nothing has delay or loss)."""

    hosts: dict[str, HostQueues]

    def as_dict(self) -> dict[str, Any]:
        return {
            name: {"queues": {str(n): {"delay_ms": d, "loss_pct": p} for n, (d, p) in hq.queues.items()},
                   "rules": [" ".join(r) for r in hq.rules]}
            for name, hq in self.hosts.items()
        }


def plan(scenario: Scenario, link_delays: dict[str, float] | None = None) -> DelayPlan:
    """The host-side queues that reproduce the scenario's link delays and losses;
    ``link_delays`` (link name -> ms) replaces the delay of those links (a ``link-set`` event)."""
    links = {link.name: link for link in scenario.links}
    delay_of = {name: float((link_delays or {}).get(name, link.delay)) for name, link in links.items()}
    hosts = scenario.hosts
    out: dict[str, HostQueues] = {}
    for h in hosts:
        hq = HostQueues(h.name)
        interface = f"{h.name}-eth0"
        access = (round(float(h.link.delay), 6), round(float(h.link.loss), 6))
        # Sources grouped by the (delay, loss) of their whole path to h.
        classes: dict[tuple[float, float], list[str]] = defaultdict(list)
        for g in hosts:
            if g is h:
                continue
            path = [links[name] for name in scenario.path(g.name, h.name)]
            delay = float(g.link.delay) + sum(delay_of[link.name] for link in path) + access[0]
            loss = _combine_loss([float(g.link.loss)] + [link.loss for link in path] + [access[1]])
            classes[(round(delay, 6), round(loss, 6))].append(g.ip)
        has_access = access[0] > 0 or access[1] > 0
        if has_access:
            hq.queues[ACCESS_QUEUE] = access
        for (delay, loss), ips in sorted(classes.items()):
            # Sources with nothing to wait, or only h's access link, take the last rule.
            if (delay <= 0 and loss <= 0) or (has_access and (delay, loss) == access):
                continue
            number = ACCESS_QUEUE + len(hq.queues) + (0 if has_access else 1)
            hq.queues[number] = (delay, loss)
            for ip in ips:
                hq.rules.append(["-t", "mangle", "-A", "PREROUTING", "-i", interface, "-s", ip,
                                 "-j", "NFQUEUE", "--queue-num", str(number), "--queue-bypass"])
        if has_access:
            hq.rules.append(["-t", "mangle", "-A", "PREROUTING", "-i", interface,
                             "-j", "NFQUEUE", "--queue-num", str(ACCESS_QUEUE), "--queue-bypass"])
        if hq.queues:
            out[h.name] = hq
    return DelayPlan(out)


def _delete_command(rule: list[str]) -> str:
    """The ``iptables`` command deleting ``rule`` (``[-t TABLE] -A CHAIN ...``)."""
    table = rule[:2] if rule[:1] == ["-t"] else []
    rest = rule[len(table):]
    return " ".join(["iptables", "-w", *table, "-D", *rest[1:]])


def _is_ready(proc: subprocess.Popen[Any], log_path: Path, host: str) -> bool:
    if log_path.exists() and "netem element ready" in log_path.read_text(errors="replace"):
        return True
    if proc.poll() is not None:
        raise RuntimeError(
            f"host {host}: the netem element exited ({proc.returncode}) before binding its "
            f"queues; see {log_path}"
        )
    return False


def _wait_ready(procs: dict[str, tuple[subprocess.Popen[Any], Path]], timeout: float = 20.0) -> None:
    """Waits until every element (host -> process, log) logged that it is ready."""
    deadline = time.monotonic() + timeout
    pending = dict(procs)
    while pending:
        for host, (proc, log_path) in list(pending.items()):
            if _is_ready(proc, log_path, host):
                del pending[host]
        if not pending:
            return
        if time.monotonic() > deadline:
            host, (_, log_path) = next(iter(pending.items()))
            raise RuntimeError(f"host {host}: the netem element is not ready after {timeout:g} s; see {log_path}")
        time.sleep(0.02)


def serves_namespaces(binary: str) -> bool:
    """Whether ``binary``'s element serves several namespaces (``netem --namespaces FILE``)."""
    try:
        out = subprocess.run([binary, "netem", "--help"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--namespaces" in out.stdout


def start_elements(
    network: Any,
    delay_plan: DelayPlan,
    binary: str,
    logs: Path,
    seed: int,
    cleanup: Cleanup,
    state: RunState | None = None,
) -> dict[str, subprocess.Popen[Any]]:
    """Starts the delay element(s) and waits until they are ready, then installs each host's
    iptables rules (one ``iptables-restore --noflush`` per host). Returns host -> the process
    that serves its queues.

    One element serves every host (``netem --namespaces``: it opens each host's queue socket in
    the host's namespace, ``/proc/<shell pid>/ns/net``) where the binary can; otherwise each host
    runs its own, all started together. Either way the ``i``-th host (by name) draws its losses
    from seed ``seed + i``."""
    hosts = sorted(delay_plan.hosts.items())
    if not hosts:
        return {}
    env = {"NO_COLOR": "1", "RUST_LOG": "info", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    procs: dict[str, subprocess.Popen[Any]] = {}
    logged: dict[str, tuple[subprocess.Popen[Any], Path]] = {}

    def started(what: str, proc: subprocess.Popen[Any]) -> None:
        cleanup.push(f"stop the netem element of {what}", lambda p=proc: stop_process(p))
        if state is not None and (pid := process_id(proc.pid)):
            state.add("pids", pid)

    cluster = getattr(network, "cluster", None)
    # Hosts on other servers (across servers): an element of their own each, started there.
    here = [(name, hq) for name, hq in hosts if cluster is None or not cluster.is_remote(name)]
    if serves_namespaces(binary) and here:
        plan_path = logs / "netem-namespaces.txt"
        plan_path.write_text("".join(
            f"/proc/{network.node(name).pid}/ns/net {' '.join(hq.queue_args()[1::2])}  # {name}\n"
            for name, hq in here), encoding="utf-8")
        log_path = logs / "netem.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen([binary, "netem", "--namespaces", str(plan_path), "--seed", str(seed)],
                                    stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        started(f"{len(here)} hosts", proc)
        procs = {name: proc for name, _ in here}
        logged = {"all hosts": (proc, log_path)}
    for i, (name, hq) in enumerate(hosts):
        if name in procs:
            continue
        log_path = logs / f"netem-{name}.log"
        with open(log_path, "wb") as log_file:
            proc = network.node(name).popen(
                [binary, "netem", *hq.queue_args(), "--seed", str(seed + i)],
                stdout=log_file, stderr=subprocess.STDOUT, env=env,
            )
        procs[name] = proc
        logged[name] = (proc, log_path)
        started(name, proc)
    _wait_ready(logged)
    # Rules only once the elements are bound (--queue-bypass would pass packets undelayed).
    _run_host_files(network, [(name, logs / f"iptables-{name}.rules", iptables_restore(hq.rules),
                               "iptables-restore -w --noflush {path}", "`iptables-restore` of its delay rules")
                              for name, hq in hosts if hq.rules])
    return procs


def remove_rules(network: Any, delay_plan: DelayPlan, logs: Path) -> None:
    """Deletes the iptables rules of ``delay_plan`` from every host (``iptables -D``, exactly
    the rules :func:`start_elements` appended; other rules of the host stay)."""
    _run_host_files(network, [(name, logs / f"iptables-{name}-remove.sh",
                               "".join(_delete_command(rule) + "\n" for rule in hq.rules),
                               "sh -e {path}", "removing its delay rules")
                              for name, hq in sorted(delay_plan.hosts.items()) if hq.rules])


def _run_host_files(network: Any, jobs: list[tuple[str, Path, str, str, str]]) -> None:
    """For each ``(host, path, text, command, what)``: writes ``text`` to ``path``, then runs
    ``command`` (``{path}`` in it replaced) in the host; the files go afterwards. Across servers
    the run folder is copied out once, after writing them all."""
    try:
        for _, path, text, _, _ in jobs:
            path.write_text(text, encoding="utf-8")
        cluster = getattr(network, "cluster", None)
        if cluster is not None and jobs:
            cluster.sync()
        for name, path, _, command, what in jobs:
            out = network.node(name).cmd(command.format(path=path) + " 2>&1; echo rc=$?").strip()
            if not out.endswith("rc=0"):
                raise RuntimeError(f"host {name}: {what} failed: {out}")
    finally:
        for _, path, _, _, _ in jobs:
            path.unlink(missing_ok=True)
