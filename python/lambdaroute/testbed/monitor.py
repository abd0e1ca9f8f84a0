"""The network monitor: switch port counters -> per-link throughput -> congested / cleared.

Every ``interval`` s, :class:`Monitor` reads the transmit byte counters of every switch port
(``ovs-ofctl --no-names dump-ports``), turns them into the throughput of every switch link in
each direction (a link ``a-b`` sends a->b out of ``a``'s port and b->a out of ``b``'s), and
writes one CSV row per link and sample. A :class:`CongestionDetector` decides, per link, on the
busier direction's utilization (throughput / link bandwidth):

- a clear link becomes *congested* after ``samples`` consecutive readings at or above
  ``threshold`` (``control.congestion-threshold`` of the scenario);
- a congested link becomes *clear* after ``samples`` consecutive readings below
  ``threshold * (1 - hysteresis)``;

so a link hovering around the threshold does not flap. Links without a bandwidth are never
congested. Each transition goes to a *reporter*, a plain function ``(event, link)``: by default
:func:`controller_reporter`, which runs ``lambdaroute congestion --controller ADDR congested|cleared
LINK`` in the controller's host; tests pass their own to capture the reports.
"""

from __future__ import annotations

import csv
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from lambdaroute.scenario import Scenario

__all__ = [
    "CongestionDetector",
    "Transition",
    "Monitor",
    "Reporter",
    "parse_dump_ports",
    "controller_reporter",
]

log = logging.getLogger(__name__)

#: ``reporter(event, link)`` with event ``"congested"`` or ``"cleared"``; it may return the
#: answer it got (a string, kept in ``congestion.csv``); it raises when the report failed.
Reporter = Callable[[str, str], str | None]


@dataclass(frozen=True)
class Transition:
    """A link changed state at ``time`` (s since the start), at ``utilization``; the reporter
    returned at ``reported`` (s since the start; None without a reporter, or when it failed)."""

    time: float
    link: str
    event: str
    utilization: float
    reported: float | None = None
    answer: str | None = None


class CongestionDetector:
    """Threshold with hysteresis and a debounce of ``samples`` readings, per link."""

    def __init__(
        self, bandwidths: dict[str, float | None], threshold: float, hysteresis: float = 0.2, samples: int = 2
    ) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"congestion threshold {threshold}: expected a fraction in (0, 1]")
        if not 0 <= hysteresis < 1:
            raise ValueError(f"hysteresis {hysteresis}: expected a fraction in [0, 1)")
        if samples < 1:
            raise ValueError(f"samples {samples}: expected at least 1")
        self.bandwidths = bandwidths
        self.high = threshold
        self.low = threshold * (1.0 - hysteresis)
        self.samples = samples
        self.congested: set[str] = set()
        self._streak: dict[str, int] = {}

    def update(self, now: float, throughput: dict[str, float]) -> list[Transition]:
        """Feeds one reading (link -> Mbit/s of its busier direction); returns the transitions."""
        out = []
        for link, mbps in throughput.items():
            bw = self.bandwidths.get(link)
            if not bw:
                continue
            u = mbps / bw
            if link in self.congested:
                crossing = u < self.low
            else:
                crossing = u >= self.high
            self._streak[link] = self._streak.get(link, 0) + 1 if crossing else 0
            if self._streak[link] >= self.samples:
                self._streak[link] = 0
                if link in self.congested:
                    self.congested.discard(link)
                    out.append(Transition(now, link, "cleared", u))
                else:
                    self.congested.add(link)
                    out.append(Transition(now, link, "congested", u))
        return out


def parse_dump_ports(text: str) -> dict[int, int]:
    """Port number -> transmitted bytes, from ``ovs-ofctl --no-names dump-ports`` output
    (the ``LOCAL`` port is skipped)."""
    out: dict[int, int] = {}
    port: int | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("port"):
            head = line[4:].split(":", 1)[0].strip().strip('"')
            port = int(head) if head.isdigit() else None
        elif line.startswith("tx") and port is not None:
            for item in line[2:].split(","):
                key, _, value = item.strip().partition("=")
                if key == "bytes" and value.isdigit():
                    out[port] = int(value)
    return out


def controller_reporter(run_in_host: Callable[[list[str]], tuple[int, str]], binary: str, controller: str,
                        tls_dir: Path | None = None) -> Reporter:
    """A reporter that tells the controller: ``lambdaroute congestion --controller ADDR EVENT LINK``,
    run through ``run_in_host`` (a host that reaches the controller); in secured mode
    (``tls_dir``) with the ``monitor`` certificate."""
    tls = ["--tls-dir", str(tls_dir), "--tls-name", "monitor"] if tls_dir is not None else []

    def report(event: str, link: str) -> str:
        rc, output = run_in_host([binary, "congestion", "--controller", controller, *tls, event, link])
        if rc != 0:
            raise RuntimeError(f"`lambdaroute congestion {event} {link}` failed ({rc}): {output.strip()}")
        log.info("reported %s %s to the controller: %s", event, link, output.strip())
        return output.strip()

    return report


class Monitor:
    """Polls the switches in a thread; writes ``links.csv`` and ``congestion.csv``."""

    def __init__(
        self,
        scenario: Scenario,
        bridges: dict[str, str],
        out: Path,
        reporter: Reporter | None = None,
        interval: float = 1.0,
        hysteresis: float = 0.2,
        samples: int = 2,
        clock: Callable[[], float] | None = None,
        origin: float | None = None,
        root_command: Callable[[str, list[str]], list[str]] | None = None,
    ) -> None:
        self.scenario = scenario
        self.bridges = bridges
        #: Switch, command -> the command run where the switch is (across servers: over SSH).
        self.root_command = root_command or (lambda _switch, args: args)
        self.interval = interval
        self.reporter = reporter
        self.clock = clock or time.monotonic
        self.origin = self.clock() if origin is None else origin
        self.links = scenario.links
        threshold = float(scenario.control.get("congestion_threshold", 0.8))
        self.detector = CongestionDetector({lk.name: lk.bw for lk in self.links}, threshold, hysteresis, samples)
        self.transitions: list[Transition] = []
        self.latest: dict[str, float] = {}
        self._links_file: TextIO = open(out / "links.csv", "w", newline="", encoding="utf-8")
        self._links_csv = csv.writer(self._links_file)
        self._links_csv.writerow(["time", "link", "a_to_b_mbps", "b_to_a_mbps", "utilization", "congested"])
        self._events_file: TextIO = open(out / "congestion.csv", "w", newline="", encoding="utf-8")
        self._events_csv = csv.writer(self._events_file)
        self._events_csv.writerow(["time", "link", "event", "utilization", "reported", "answer"])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: tuple[float, dict[str, dict[int, int]]] | None = None
        self.errors: list[str] = []

    def _read(self) -> dict[str, dict[int, int]]:
        procs = {
            sw: subprocess.Popen(self.root_command(sw, ["ovs-ofctl", "--no-names", "dump-ports", br]),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for sw, br in self.bridges.items()
        }
        counters = {}
        for sw, proc in procs.items():
            out, err = proc.communicate(timeout=10)
            if proc.returncode != 0:
                raise RuntimeError(f"dump-ports of {sw} ({self.bridges[sw]}): {err.strip()}")
            counters[sw] = parse_dump_ports(out)
        return counters

    def sample(self) -> list[Transition]:
        """Takes one reading; from the second on, writes throughput and reports transitions."""
        now = self.clock()
        counters = self._read()
        previous, self._previous = self._previous, (now, counters)
        if previous is None:
            return []
        dt = now - previous[0]
        if dt <= 0:
            return []
        t = now - self.origin
        busier: dict[str, float] = {}

        def rate(sw: str, port: int) -> float:
            delta = counters[sw].get(port, 0) - previous[1][sw].get(port, 0)
            return max(delta, 0) * 8 / dt / 1e6

        rows = []
        for lk in self.links:
            ab, ba = rate(lk.a, lk.port_a), rate(lk.b, lk.port_b)
            busier[lk.name] = max(ab, ba)
            rows.append((lk, ab, ba))
        transitions = self.detector.update(t, busier)
        self.latest = busier
        for lk, ab, ba in rows:
            u = max(ab, ba) / lk.bw if lk.bw else ""
            self._links_csv.writerow([f"{t:.3f}", lk.name, f"{ab:.3f}", f"{ba:.3f}",
                                      f"{u:.4f}" if u != "" else "", int(lk.name in self.detector.congested)])
        self._links_file.flush()
        done = []
        for tr in transitions:
            log.info("link %s %s (utilization %.2f)", tr.link, tr.event, tr.utilization)
            if self.reporter is not None:
                try:
                    answer = self.reporter(tr.event, tr.link)
                    tr = replace(tr, reported=self.clock() - self.origin,
                                 answer=answer if isinstance(answer, str) else None)
                except Exception as e:  # noqa: BLE001 - the monitor keeps monitoring
                    self.errors.append(f"reporting {tr.event} {tr.link}: {e}")
                    log.warning("monitor: reporting %s %s: %s", tr.event, tr.link, e)
            self._events_csv.writerow([f"{tr.time:.3f}", tr.link, tr.event, f"{tr.utilization:.4f}",
                                       "" if tr.reported is None else f"{tr.reported:.3f}", tr.answer or ""])
            self._events_file.flush()
            self.transitions.append(tr)
            done.append(tr)
        return done

    def _loop(self) -> None:
        next_at = self.clock()
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as e:  # noqa: BLE001 - a failed reading is recorded, not fatal
                self.errors.append(str(e))
                log.warning("monitor: %s", e)
            next_at += self.interval
            self._stop.wait(max(next_at - self.clock(), 0.0))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._links_file.close()
        self._events_file.close()

    @property
    def congested(self) -> set[str]:
        return set(self.detector.congested)

    def as_dict(self) -> dict[str, Any]:
        return {"interval": self.interval, "threshold": self.detector.high, "clear_below": self.detector.low,
                "samples": self.detector.samples, "errors": self.errors[:20]}
