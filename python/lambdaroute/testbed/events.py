"""The scenario's timed events, applied on schedule during a run (``events:`` in the scenario,
``docs/scenario.md``; how each is applied: ``docs/testbed.md``).

:class:`EventRunner` is ticked by the run loop (as the clients' start times are); each event
whose time has come is applied at once, in time order, and recorded: when it was due, when it
began and how long it took, what it did, and its error if it failed (a failed event does not
stop the run). :meth:`EventRunner.write_csv` writes ``events.csv``; :meth:`EventRunner.as_dicts`
goes to ``metadata.json``.

- ``link-down``/``link-up``: both ends of the link (switch ports, in the root namespace) set
  down/up with ``ip link``; the static flows stay, so packets whose path crosses the link are lost.
- ``link-set``: ``bw`` changes the HTB class of both ends (``tc class change``; added where the
  link had no limit); ``delay`` with the NFQUEUE element re-plans the host queues with the new
  delay, stops the element, swaps the iptables rules and starts it again (with ``--queue-bypass``
  packets pass undelayed for that moment); with netem, Mininet's ``TCIntf.config`` of both ends.
- ``computer-stop``/``computer-start``: the computer's process stopped by handle (SIGTERM: it
  leaves the controller), started again with the same command (it announces itself again) and
  the scenario's conditions (speed factor 1, no background load).
- ``computer-speed``/``computer-load``: live, no restart. The computer's conditions file
  (``conditions/<host>.yaml``, its ``--conditions``) is rewritten with the new speed factor
  (``factor``, or ``speed`` over the scenario's speed of its main processor; it scales every
  processor) or background load (``load``), and its process gets SIGHUP; the event waits until
  its log confirms the change. Calls in flight continue at the new rate; the computer stays in
  the tables. Face computers cannot change speed: the event fails.
- ``computer-freeze``/``computer-thaw``: the computer's process suspended with SIGSTOP and
  resumed with SIGCONT (by handle, as SIGHUP): it is not killed, its sockets stay open, calls
  to it wait unanswered (the router gives up after its ``--call-timeout``). A computer still
  frozen at the end is thawed before the nodes stop (:meth:`EventRunner.thaw_all`).
- ``router-restart``: the router's process stopped and started again; its tables come from the
  controller (it announces itself) or, without one, from the testbed's flat installer.

Without a controller the testbed also puts a restarted computer back into every router's table.
"""

from __future__ import annotations

import csv
import logging
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lambdaroute.scenario import Event, Host, Scenario
from lambdaroute.testbed import delay as delay_mod
from lambdaroute.testbed.batch import htb, pfifo_queues
from lambdaroute.testbed.cleanup import stop_process
from lambdaroute.testbed.network import USERSPACE_QUEUE
from lambdaroute.testbed.nodes import Nodes, scenario_speed

__all__ = ["EventRunner", "Applied", "CSV_HEADER"]

log = logging.getLogger(__name__)

CSV_HEADER = ["at", "applied", "took", "kind", "target", "detail", "error"]


@dataclass
class Applied:
    """One event as applied: due ``at`` s, began at ``applied`` s (run time), took ``took`` s."""

    at: float
    applied: float
    took: float
    kind: str
    target: str
    detail: str
    error: str = ""


#: What a computer's log says when it applied new conditions, and when it refused them.
CONDITIONS_CHANGED = "conditions changed"
CONDITIONS_REFUSED = "the conditions stay as they were"


def _log_count(log: Path, text: str) -> int:
    try:
        return log.read_text(encoding="utf-8", errors="replace").count(text)
    except FileNotFoundError:
        return 0


def _root(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what}: `{' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")


class EventRunner:
    """Applies a scenario's events during a run (see the module's notes)."""

    def __init__(self, bed: Any, nodes: Nodes, scenario: Scenario, controller: str | None,
                 seed: int) -> None:
        self.bed = bed
        self.nodes = nodes
        self.scenario = scenario
        self.controller = controller
        self.seed = seed
        self.pending: list[Event] = list(scenario.events)
        self.applied: list[Applied] = []
        self.links = {link.name: link for link in scenario.links}
        #: Current bandwidth (None: unlimited) and delay of each link, as events changed them.
        self.bw: dict[str, float | None] = {name: link.bw for name, link in self.links.items()}
        self.delay: dict[str, float] = {name: link.delay for name, link in self.links.items()}
        self._restarts: dict[str, int] = {}
        #: Current (speed factor, background load) of each computer, as events changed them.
        self.conditions: dict[str, tuple[float, float]] = {}
        #: Computers frozen by ``computer-freeze`` and not thawed yet.
        self.frozen: set[str] = set()

    # ----- the schedule -----

    def tick(self, now: float, origin: float) -> list[Applied]:
        """Applies every pending event due at ``now`` (s since ``origin``, a monotonic time);
        returns those it applied."""
        done = []
        while self.pending and self.pending[0].at <= now:
            event = self.pending.pop(0)
            began = time.monotonic()
            target = event.host or event.link or ""
            try:
                detail = self.apply(event)
                error = ""
            except Exception as e:  # noqa: BLE001 - recorded; the run goes on
                detail, error = "", f"{type(e).__name__}: {e}"
                log.warning("event %s %s at %g s failed: %s", event.kind, target, event.at, error)
            applied = Applied(event.at, round(began - origin, 3), round(time.monotonic() - began, 3),
                              event.kind, target, detail, error)
            self.applied.append(applied)
            done.append(applied)
        return done

    def apply(self, event: Event) -> str:
        """Applies one event now; returns what it did."""
        kind = event.kind
        if kind in ("link-down", "link-up"):
            return self._link_state(event.link or "", "down" if kind == "link-down" else "up")
        if kind == "link-set":
            return self._link_set(event.link or "", event.bw, event.delay)
        if kind == "computer-stop":
            stopped = self.nodes.stop_host(event.host or "", "computer")
            if not stopped:
                raise RuntimeError(f"computer {event.host} is not running")
            return f"stopped (exit {stopped[0].proc.returncode})"
        if kind == "computer-start":
            return self._start_computer(event.host or "")
        if kind == "computer-speed":
            return self._computer_speed(event.host or "", event.factor, event.speed)
        if kind == "computer-load":
            if event.load is None:
                raise ValueError("a computer-load event needs `load`")
            return self._computer_load(event.host or "", event.load)
        if kind == "computer-freeze":
            return self._freeze(event.host or "")
        if kind == "computer-thaw":
            return self._thaw(event.host or "")
        if kind == "router-restart":
            return self._restart_router(event.host or "")
        raise ValueError(f"unknown event kind `{kind}`")

    # ----- links -----

    def ends(self, link: str) -> list[str]:
        """The interfaces of both ends of a switch link (switch ports, root namespace)."""
        lk = self.links[link]
        bridges = self.bed.network.bridges
        return [f"{bridges[lk.a]}-eth{lk.port_a}", f"{bridges[lk.b]}-eth{lk.port_b}"]

    def _link_state(self, link: str, state: str) -> str:
        ends = self.ends(link)
        for intf in ends:
            _root(["ip", "link", "set", intf, state], f"link {link}")
        return f"{' and '.join(ends)} {state}"

    def _link_set(self, link: str, bw: float | None, delay: float | None) -> str:
        did = []
        mechanism = self.bed.mechanism
        if mechanism == "netem" and not self.bed.network.batched:
            # Mininet's TCLink: bandwidth and delay (netem) on both ends, as it configured them.
            params: dict[str, Any] = {}
            new_bw = bw if bw is not None else self.bw[link]
            if new_bw is not None:
                params["bw"] = new_bw
            params["delay"] = f"{delay if delay is not None else self.delay[link]:g}ms"
            for intf in self.ends(link):
                self._intf(intf).config(**params)
            did.append(f"tc (netem) {params}")
        else:
            if bw is not None:
                did.append(self._set_bw(link, bw))
            if delay is not None:
                did.append(self._set_delay(link, delay))
        if bw is not None:
            self.bw[link] = bw
        if delay is not None:
            self.delay[link] = delay
        return "; ".join(did)

    def _intf(self, name: str) -> Any:
        for sw in self.bed.network.net.switches:
            for intf in sw.intfList():
                if str(intf) == name:
                    return intf
        raise KeyError(name)

    def _set_bw(self, link: str, bw: float) -> str:
        ends = self.ends(link)
        if self.bw[link] is not None:
            text = "".join(f"class change dev {intf} parent 5:0 classid 5:1 htb rate {bw:f}Mbit burst 15k\n"
                           for intf in ends)
        else:
            # Unlimited until now: TCLink's HTB, and the queue the testbed gives shaped ports.
            lk = self.links[link]
            queue = lk.queue if lk.queue is not None else (
                USERSPACE_QUEUE if self.bed.features.datapath == "user" else None)
            text = "".join(htb(intf, bw) for intf in ends)
            if queue is not None:
                text += pfifo_queues((intf, int(queue)) for intf in ends)
        path = Path(self.bed.workdir) / f".event-{link}.tc"
        path.write_text(text, encoding="utf-8")
        try:
            _root(["tc", "-batch", str(path)], f"bandwidth of link {link}")
        finally:
            path.unlink()
        return f"bw {bw:g} Mbit/s on {' and '.join(ends)} (HTB)"

    def _set_delay(self, link: str, delay: float) -> str:
        bed = self.bed
        if bed.mechanism != "nfqueue":
            raise RuntimeError(f"link {link}: delay {delay:g} ms not applied: delay mechanism `{bed.mechanism}`")
        delays = dict(self.delay)
        delays[link] = delay
        new_plan = delay_mod.plan(self.scenario, delays)
        logs = Path(bed.workdir) / "logs"
        # The old element(s) stop, their rules go; the new plan's element(s) and rules come in.
        for proc in {id(p): p for p in bed.delay_procs.values()}.values():
            stop_process(proc)
        if bed.delay_plan is not None:
            delay_mod.remove_rules(bed.network, bed.delay_plan, logs)
        n = self._restarts["netem"] = self._restarts.get("netem", 0) + 1
        for old in logs.glob("netem*.log"):
            if "-before-" not in old.name:
                old.rename(old.with_name(f"{old.stem}-before-{n}.log"))
        bed.delay_procs = delay_mod.start_elements(bed.network, new_plan, bed.binary, logs, self.seed,
                                                   bed.cleanup, bed.state)
        bed.delay_plan = new_plan
        queues = sum(len(hq.queues) for hq in new_plan.hosts.values())
        return f"delay {delay:g} ms: NFQUEUE element restarted with {queues} queues on {len(new_plan.hosts)} hosts"

    # ----- processes -----

    def _log_name(self, role: str, host: str) -> str:
        key = f"{role}-{host}"
        n = self._restarts[key] = self._restarts.get(key, 1) + 1
        return f"{key}-{n}.log"

    def _start_computer(self, host: str) -> str:
        if any(n.host == host and n.role == "computer" and n.proc.poll() is None for n in self.nodes.running):
            raise RuntimeError(f"computer {host} is already running")
        h = self.scenario.host(host)
        log_name = self._log_name("computer", host)
        # computer_args writes the scenario's conditions: it starts at the scenario's speed.
        args, listens = self.nodes.computer_args(h, self.controller)
        self.conditions.pop(host, None)
        self.nodes.restart(host, "computer", args, listens, log_name)
        if self.controller is None:
            self.nodes.install_flat_tables(computers=[h])
        return "started" + ("" if self.controller else "; entries installed by the testbed")

    def _freeze(self, host: str) -> str:
        if host in self.frozen:
            raise RuntimeError(f"computer {host} is already frozen")
        group = self.nodes.signal_computer(host, signal.SIGSTOP)
        self.frozen.add(host)
        return f"SIGSTOP to {len(group)} process{'es' if len(group) != 1 else ''} (suspended, not killed)"

    def _thaw(self, host: str) -> str:
        if host not in self.frozen:
            raise RuntimeError(f"computer {host} is not frozen")
        group = self.nodes.signal_computer(host, signal.SIGCONT)
        self.frozen.discard(host)
        return f"SIGCONT to {len(group)} process{'es' if len(group) != 1 else ''} (resumed)"

    def thaw_all(self, origin: float) -> list[Applied]:
        """Thaws every computer still frozen (a ``computer-freeze`` without its thaw, or the run
        ended before it), so that it stops as the others do; recorded as ``computer-thaw``
        events due now (``origin``: the run's time 0, a monotonic time)."""
        done = []
        for host in sorted(self.frozen):
            began = time.monotonic()
            try:
                detail, error = self._thaw(host) + "; at the end of the run", ""
            except Exception as e:  # noqa: BLE001 - recorded; the stop goes on
                detail, error = "", f"{type(e).__name__}: {e}"
                self.frozen.discard(host)
            now = round(began - origin, 3)
            applied = Applied(now, now, round(time.monotonic() - began, 3), "computer-thaw", host, detail, error)
            self.applied.append(applied)
            done.append(applied)
        return done

    def _simulated(self, host: str, kind: str) -> Host:
        h = self.scenario.host(host)
        executor = (h.computer or {}).get("executor", "simulated")
        if executor != "simulated":
            raise RuntimeError(f"computer {host} runs `executor: {executor}` (real code at its own speed): "
                               f"a {kind} event changes a simulated computer")
        return h

    def _computer_speed(self, host: str, factor: float | None, speed: float | None) -> str:
        h = self._simulated(host, "computer-speed")
        if factor is None:
            if speed is None:
                raise ValueError("a computer-speed event needs `factor` or `speed`")
            factor = speed / scenario_speed(h)
        background = self.conditions.get(host, (1.0, 0.0))[1]
        self._change_conditions(host, factor, background)
        via = "" if speed is None else f"{speed:g} ops/s per core; "
        return f"speed factor {factor:g} ({via}live, no restart)"

    def _computer_load(self, host: str, load: float) -> str:
        self._simulated(host, "computer-load")
        factor = self.conditions.get(host, (1.0, 0.0))[0]
        self._change_conditions(host, factor, load)
        return f"background load {load:g} (live)"

    def _change_conditions(self, host: str, factor: float, background: float, timeout: float = 5.0) -> None:
        """Rewrites the conditions file of ``host``, sends SIGHUP to its process(es) and waits
        until each log says the conditions changed (or that it refused them)."""
        running = [n for n in self.nodes.running if n.host == host and n.role == "computer" and n.proc.poll() is None]
        if not running:
            raise RuntimeError(f"computer {host} is not running")
        before = {id(n): _log_count(n.log, CONDITIONS_CHANGED) for n in running}
        refused = {id(n): _log_count(n.log, CONDITIONS_REFUSED) for n in running}
        self.nodes.write_conditions(host, factor, background)
        self.nodes.signal_computer(host, signal.SIGHUP)
        self.conditions[host] = (factor, background)
        deadline = time.monotonic() + timeout
        for n in running:
            while _log_count(n.log, CONDITIONS_CHANGED) <= before[id(n)]:
                if _log_count(n.log, CONDITIONS_REFUSED) > refused[id(n)]:
                    raise RuntimeError(f"computer {host} refused its new conditions; see {n.log}")
                if n.proc.poll() is not None:
                    raise RuntimeError(f"computer {host} exited (code {n.proc.returncode}); see {n.log}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"computer {host}: no `{CONDITIONS_CHANGED}` in {n.log} "
                                       f"{timeout:g} s after SIGHUP")
                time.sleep(0.02)

    def _restart_router(self, host: str) -> str:
        routers = self.scenario.hosts_with("router")
        index = [r.name for r in routers].index(host)
        stopped = self.nodes.stop_host(host, "router")
        args, listens = self.nodes.router_args(routers[index], index, self.controller)
        self.nodes.restart(host, "router", args, listens, self._log_name("router", host))
        if self.controller is None:
            self.nodes.install_flat_tables(routers=[routers[index]])
        return (f"stopped ({len(stopped)} process), started; tables from "
                + ("the controller" if self.controller else "the testbed"))

    # ----- records -----

    def write_csv(self, path: Path) -> None:
        """``events.csv``: one row per applied event, and those never due (run ended early)."""
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(CSV_HEADER)
            for a in self.applied:
                w.writerow([f"{a.at:g}", f"{a.applied:.3f}", f"{a.took:.3f}", a.kind, a.target, a.detail, a.error])
            for e in self.pending:
                w.writerow([f"{e.at:g}", "", "", e.kind, e.host or e.link or "", "", "not applied: the run ended"])

    def as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(a) for a in self.applied] + [
            {"at": e.at, "kind": e.kind, "target": e.host or e.link or "", "error": "not applied: the run ended"}
            for e in self.pending]
