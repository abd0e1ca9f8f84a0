"""Background traffic: iperf3 UDP flows between hosts, at a rate that changes over time.

A flow's rate over time is a list of :class:`Segment` (start, stop, Mbit/s), made by one of:

- :func:`constant`: ``rate`` from ``start`` to ``stop``;
- :func:`on_off`: seeded synthetic ON/OFF: exponential ON and OFF periods (means ``on``, ``off``
  s), ``rate`` during ON, nothing during OFF; the same seed gives the same periods;
- :func:`from_trace`: a trace file (docs/testbed.md, "Background traffic"): CSV ``time_s,rate_mbps`` with a header,
  times increasing from 0; each row holds until the next row (the last until the flow stops);
  times are relative to the flow's ``start``; a rate of 0 is silence.

:class:`Background` drives the flows in real time: an iperf3 server in each sink (one port per
flow), and for each segment an ``iperf3 -u -b RATE`` client in the source, started when the
segment starts and stopped (by handle) when it ends. Each process logs to its own file.
"""

from __future__ import annotations

import csv
import logging
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdaroute.scenario import Scenario
from lambdaroute.testbed.cleanup import Cleanup, RunState, process_id, stop_process

__all__ = ["Segment", "constant", "on_off", "from_trace", "read_trace", "Background", "schedules", "BASE_PORT"]

log = logging.getLogger(__name__)

#: iperf3 port of the first background flow; flow i uses BASE_PORT + i.
BASE_PORT = 5201


@dataclass(frozen=True)
class Segment:
    """``rate`` Mbit/s from ``start`` to ``stop`` (s since the start of the run)."""

    start: float
    stop: float
    rate: float


def constant(rate: float, start: float, stop: float) -> list[Segment]:
    return [Segment(start, stop, rate)] if rate > 0 and stop > start else []


def on_off(rate: float, on: float, off: float, start: float, stop: float, seed: int) -> list[Segment]:
    """Exponential ON (mean ``on`` s) and OFF (mean ``off`` s) periods, ON first."""
    rng = random.Random(seed)
    segments = []
    t = start
    while t < stop:
        length = rng.expovariate(1.0 / on)
        end = min(t + length, stop)
        if end > t:
            segments.append(Segment(t, end, rate))
        t = end + rng.expovariate(1.0 / off)
    return segments


def read_trace(path: str | Path) -> list[tuple[float, float]]:
    """Rows ``(time_s, rate_mbps)`` of a trace file; raises ValueError naming file and line."""
    rows: list[tuple[float, float]] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["time_s", "rate_mbps"]:
            raise ValueError(f"{path}:1: expected the header `time_s,rate_mbps`, found {header!r}")
        for line, row in enumerate(reader, start=2):
            if not row or row[0].lstrip().startswith("#"):
                continue
            try:
                t, r = float(row[0]), float(row[1])
            except (ValueError, IndexError):
                raise ValueError(f"{path}:{line}: expected `time_s,rate_mbps` numbers, found {row!r}") from None
            if t < 0 or r < 0 or (rows and t <= rows[-1][0]):
                raise ValueError(f"{path}:{line}: times must increase from 0 and rates be >= 0, found {row!r}")
            rows.append((t, r))
    return rows


def from_trace(path: str | Path, start: float, stop: float) -> list[Segment]:
    rows = read_trace(path)
    segments = []
    for i, (t, rate) in enumerate(rows):
        begin = start + t
        end = start + rows[i + 1][0] if i + 1 < len(rows) else stop
        end = min(end, stop)
        if rate > 0 and end > begin:
            segments.append(Segment(begin, end, rate))
    return segments


def schedules(scenario: Scenario, base: Path, seed: int) -> list[tuple[dict[str, Any], list[Segment]]]:
    """Each background flow of the scenario with its segments (trace paths relative to ``base``)."""
    out = []
    for i, flow in enumerate(scenario.background):
        start = float(flow.get("start") or 0.0)
        stop = float(flow.get("stop") or scenario.duration)
        if flow.get("trace"):
            trace = Path(flow["trace"])
            segments = from_trace(trace if trace.is_absolute() else base / trace, start, stop)
        elif flow.get("on_off"):
            on, off = flow["on_off"]
            segments = on_off(float(flow["rate"]), float(on), float(off), start, stop, seed + i)
        else:
            segments = constant(float(flow["rate"]), start, stop)
        out.append((flow, segments))
    return out


class Background:
    """Runs the background flows; call :meth:`tick` with the run's clock."""

    def __init__(
        self,
        network: Any,
        scenario: Scenario,
        flows: list[tuple[dict[str, Any], list[Segment]]],
        logs: Path,
        cleanup: Cleanup,
        state: RunState | None = None,
    ) -> None:
        self.network = network
        self.scenario = scenario
        self.flows = flows
        self.logs = logs
        self.cleanup = cleanup
        self.state = state
        self.servers: list[subprocess.Popen[Any]] = []
        self._clients: dict[int, tuple[Segment, subprocess.Popen[Any]]] = {}
        self._next = [0] * len(flows)
        self.segments_started = 0
        # One undo action for every iperf3 process this makes (stop() knows them all).
        cleanup.push("stop the background traffic", self.stop)

    def _popen(self, host: str, args: list[str], log_name: str) -> subprocess.Popen[Any]:
        with open(self.logs / log_name, "ab") as log_file:
            proc = self.network.node(host).popen(args, stdout=log_file, stderr=subprocess.STDOUT)
        if self.state is not None and (pid := process_id(proc.pid)):
            self.state.add("pids", pid)
        return proc

    def start_servers(self) -> None:
        for i, (flow, _) in enumerate(self.flows):
            sink = self.scenario.host(flow["sink"])
            self.servers.append(self._popen(
                sink.name, ["iperf3", "-s", "-B", sink.ip, "-p", str(BASE_PORT + i)], f"iperf3-server-{i}-{sink.name}.log"))

    def server_addresses(self) -> list[tuple[str, str]]:
        """``(sink host, ip:port)`` of every server, for readiness probes."""
        return [(f["sink"], f"{self.scenario.host(f['sink']).ip}:{BASE_PORT + i}") for i, (f, _) in enumerate(self.flows)]

    def tick(self, now: float) -> None:
        """Starts and stops iperf3 clients so each flow follows its segments at ``now``."""
        for i, (flow, segments) in enumerate(self.flows):
            running = self._clients.get(i)
            if running and (now >= running[0].stop or running[1].poll() is not None):
                stop_process(running[1], 2)
                del self._clients[i]
                running = None
            while self._next[i] < len(segments) and segments[self._next[i]].stop <= now:
                self._next[i] += 1  # missed entirely (a slow tick)
            if running is None and self._next[i] < len(segments) and segments[self._next[i]].start <= now:
                seg = segments[self._next[i]]
                self._next[i] += 1
                source, sink = self.scenario.host(flow["source"]), self.scenario.host(flow["sink"])
                seconds = max(int(seg.stop - now + 2), 1)  # stopped by handle at seg.stop
                proc = self._popen(source.name, [
                    "iperf3", "-c", sink.ip, "-B", source.ip, "-p", str(BASE_PORT + i), "-u",
                    "-b", f"{seg.rate:g}M", "-l", "1400", "-t", str(seconds), "--forceflush",
                ], f"iperf3-client-{i}-{source.name}.log")
                self._clients[i] = (seg, proc)
                self.segments_started += 1

    def stop(self) -> None:
        for _, proc in self._clients.values():
            stop_process(proc, 2)
        self._clients.clear()
        for proc in self.servers:
            stop_process(proc, 2)
