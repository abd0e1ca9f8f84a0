"""Faults of a run and what they cost: calls lost, time to recover, latency during
(``docs/reliability.md`` defines every figure).

A **fault** is a timed event that takes something away, paired with the event that gives it
back: ``link-down``/``link-up`` of a link, ``computer-stop``/``computer-start`` and
``computer-freeze``/``computer-thaw`` of a computer, and ``router-restart`` (its own repair: the
router listens again when the event's ``took`` is over). Times are the events' ``applied`` times
in run time (s), as in ``events.csv``. A fault whose repair never came is repaired at the end of
the run (``repaired`` false).

From the calls of the run (every client, run time, by the time each was sent):

- **baseline**: the calls sent in the ``baseline`` seconds before the fault (after the first
  ``warmup`` seconds of calls, and after the previous fault's window): their rate of successes
  (OK calls per second) and their median latency.
- **recovered at**: the fault splits the time after it into bins of ``bin`` seconds, the first
  starting at the fault. The first bin from which ``hold`` bins in a row each have a success
  rate of at least ``rate_share`` (0.9) of the baseline's and a median latency of at most
  ``latency_factor`` (2) times the baseline's is where the calls recovered; its start is the
  recovery time (the fault's start if the calls never suffered). None: not within the run.
- **window**: from the fault to the later of its repair and its recovery (the end of the run
  when there is none).
- **lost**: calls that failed (status not OK) among those sent in the window or in flight when
  the fault came (sent before it, answered after it).
- **stalled**: calls of the window (or in flight at the fault) whose latency, answered or not, is
  above ``stall_factor`` (10) times the baseline's median and above ``stall_min`` (1 s).
- **latency during**: median, 95th percentile and largest latency of the OK calls sent between
  the fault and its repair.

:func:`faults_from_events` pairs the events, :func:`analyse` measures each fault
(:func:`analyse_by_client`: over all calls, then each client's), :func:`write_csv` writes
``faults.csv``; :func:`from_results` does it all for a results folder.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from lambdaroute.testbed.report import percentile

__all__ = ["Fault", "Sample", "FaultFigures", "faults_from_events", "read_events", "analyse", "analyse_by_client",
           "calls_from_report", "read_run_calls", "write_csv",
           "format_table", "from_results", "CSV_HEADER"]

#: The kind of event that starts a fault -> the kind that repairs it (None: it repairs itself).
REPAIRS: dict[str, str | None] = {
    "link-down": "link-up",
    "computer-stop": "computer-start",
    "computer-freeze": "computer-thaw",
    "router-restart": None,
}

CSV_HEADER = ["client", "kind", "target", "start", "repair", "repaired", "baseline_rate", "baseline_p50_ms", "calls", "lost",
              "stalled", "p50_ms", "p95_ms", "max_ms", "recovered_at", "recovered_s", "after_repair_s"]


@dataclass(frozen=True)
class Fault:
    """A fault: ``kind`` (the event that started it), ``target`` (link or host), its ``start``
    and ``repair`` times (s of run time), whether the repair happened (else ``repair`` is the
    end of the run)."""

    kind: str
    target: str
    start: float
    repair: float
    repaired: bool = True


@dataclass(frozen=True)
class Sample:
    """One call: sent at ``time`` (s of run time), ``latency`` s (nan: no answer), ``ok``, by
    ``client``."""

    time: float
    latency: float
    ok: bool
    client: str = ""


@dataclass
class FaultFigures:
    """What a fault cost (see the module's notes); times in s of run time, latencies in ms."""

    kind: str
    target: str
    start: float
    repair: float
    repaired: bool
    baseline_rate: float
    baseline_p50_ms: float
    calls: int
    lost: int
    stalled: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    recovered_at: float | None
    #: From the fault to the recovery, s; None: no recovery within the run.
    recovered_s: float | None
    #: From the repair to the recovery, s, 0 when the calls recovered before the repair (routed
    #: around the fault); None: no recovery.
    after_repair_s: float | None
    #: Whose calls: a client, or ``all``.
    client: str = "all"

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def read_events(path: Path) -> list[dict[str, Any]]:
    """``events.csv`` rows (``at,applied,took,kind,target,detail,error``); those not applied
    (no ``applied`` time) or failed are left out."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if not row.get("applied") or row.get("error"):
                continue
            out.append({"at": float(row["at"]), "applied": float(row["applied"]), "took": float(row.get("took") or 0),
                        "kind": row["kind"], "target": row["target"]})
    return out


def faults_from_events(events: Iterable[dict[str, Any]], end: float) -> list[Fault]:
    """Pairs the applied events (dicts with ``applied``, ``took``, ``kind``, ``target``, as
    ``metadata.json``'s ``events`` or :func:`read_events`) into faults, in time order; events
    that failed (``error``) are left out. ``end``: the end of the run, the repair of a fault
    never repaired."""
    applied = sorted((e for e in events if e.get("applied") not in (None, "") and not e.get("error")),
                     key=lambda e: float(e["applied"]))
    open_faults: dict[tuple[str, str], dict[str, Any]] = {}
    out: list[Fault] = []
    for e in applied:
        kind, target = str(e["kind"]), str(e["target"])
        at = float(e["applied"])
        if kind == "router-restart":
            out.append(Fault(kind, target, at, at + float(e.get("took") or 0)))
        elif kind in REPAIRS:
            open_faults.setdefault((REPAIRS[kind] or "", target), {"kind": kind, "start": at})
        else:
            started = open_faults.pop((kind, target), None)
            if started is not None:
                out.append(Fault(started["kind"], target, started["start"], at))
    for (_, target), started in open_faults.items():
        out.append(Fault(started["kind"], target, started["start"], max(end, started["start"]), repaired=False))
    return sorted(out, key=lambda f: f.start)


def _rate_and_p50(calls: Sequence[Sample], lo: float, hi: float) -> tuple[float, float]:
    if hi <= lo:
        return math.nan, math.nan
    ok = [c.latency for c in calls if c.ok and lo <= c.time < hi]
    return len(ok) / (hi - lo), percentile(ok, 50)


def analyse(calls: Iterable[Sample], faults: Sequence[Fault], end: float, *, baseline: float = 5.0,
            warmup: float = 1.0, bin: float = 1.0, hold: int = 2, rate_share: float = 0.9,
            latency_factor: float = 2.0, stall_factor: float = 10.0, stall_min: float = 1.0) -> list[FaultFigures]:
    """Measures each fault (the module's notes define every figure); ``calls`` in run time,
    ``end`` the end of the run (s)."""
    samples = sorted(calls, key=lambda c: c.time)
    first = samples[0].time if samples else 0.0
    out: list[FaultFigures] = []
    previous_end = first + warmup
    for fault in faults:
        lo = max(previous_end, fault.start - baseline)
        base_rate, base_p50 = _rate_and_p50(samples, lo, fault.start)
        recovered_at: float | None = None
        if not math.isnan(base_rate) and base_rate > 0:
            t = fault.start
            streak_start: float | None = None
            streak = 0
            while t + bin <= end + 1e-9:
                rate, p50 = _rate_and_p50(samples, t, t + bin)
                good = rate >= rate_share * base_rate and not math.isnan(p50) and p50 <= latency_factor * base_p50
                if good:
                    streak_start = t if streak == 0 else streak_start
                    streak += 1
                    if streak >= hold:
                        recovered_at = streak_start
                        break
                else:
                    streak = 0
                t += bin
            if recovered_at is None and streak > 0 and streak_start is not None:
                # Good until the end of the run, fewer than `hold` bins left: recovered.
                recovered_at = streak_start
        window_end = max(fault.repair, recovered_at if recovered_at is not None else end)
        if recovered_at is None:
            window_end = end
        in_window = [c for c in samples
                     if fault.start <= c.time < window_end
                     or (c.time < fault.start and (math.isnan(c.latency) or c.time + c.latency >= fault.start))]
        stall_at = max(stall_min, stall_factor * base_p50) if not math.isnan(base_p50) else stall_min
        during = [c.latency for c in samples if c.ok and fault.start <= c.time < max(fault.repair, fault.start + bin)]
        out.append(FaultFigures(
            kind=fault.kind, target=fault.target, start=round(fault.start, 3), repair=round(fault.repair, 3),
            repaired=fault.repaired,
            baseline_rate=round(base_rate, 2) if not math.isnan(base_rate) else math.nan,
            baseline_p50_ms=round(base_p50 * 1000, 2) if not math.isnan(base_p50) else math.nan,
            calls=len(in_window),
            lost=sum(1 for c in in_window if not c.ok),
            stalled=sum(1 for c in in_window if math.isnan(c.latency) or c.latency > stall_at),
            p50_ms=round(percentile(during, 50) * 1000, 2) if during else math.nan,
            p95_ms=round(percentile(during, 95) * 1000, 2) if during else math.nan,
            max_ms=round(max(during) * 1000, 2) if during else math.nan,
            recovered_at=None if recovered_at is None else round(recovered_at, 3),
            recovered_s=None if recovered_at is None else round(recovered_at - fault.start, 3),
            after_repair_s=None if recovered_at is None else round(max(0.0, recovered_at - fault.repair), 3),
        ))
        previous_end = window_end
    return out


def analyse_by_client(calls: Sequence[Sample], faults: Sequence[Fault], end: float,
                      **options: Any) -> list[FaultFigures]:
    """:func:`analyse` over every call (client ``all``) and, with more than one client, over
    each client's calls; rows by fault, ``all`` first."""
    clients = sorted({c.client for c in calls})
    groups: list[tuple[str, Sequence[Sample]]] = [("all", calls)]
    if len(clients) > 1:
        groups += [(client, [c for c in calls if c.client == client]) for client in clients]
    rows: list[FaultFigures] = []
    for name, group in groups:
        for fig in analyse(group, faults, end, **options):
            fig.client = name
            rows.append(fig)
    order = {(f.kind, f.target, round(f.start, 3)): i for i, f in enumerate(faults)}
    return sorted(rows, key=lambda f: (order.get((f.kind, f.target, f.start), 0), f.client != "all", f.client))


def write_csv(figures: Sequence[FaultFigures], path: Path) -> None:
    """``faults.csv``: one row per fault (:data:`CSV_HEADER`); empty cells for no value."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for fig in figures:
            d = fig.as_dict()
            w.writerow(["" if d[k] is None else d[k] for k in CSV_HEADER])


def format_table(figures: Sequence[FaultFigures]) -> str:
    """The faults as the Markdown table of ``docs/reliability.md``."""
    def num(x: float | None, digits: int = 1) -> str:
        return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"

    lines = ["| fault | client | at (s) | repaired (s) | baseline calls/s, p50 ms | calls | lost | stalled | "
             "p50 / p95 / max ms during | recovered after (s) | after the repair (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for f in figures:
        lines.append(
            f"| {f.kind} {f.target} | {f.client} | {f.start:.1f} | {num(f.repair)}{'' if f.repaired else ' (end)'} | "
            f"{num(f.baseline_rate)}, {num(f.baseline_p50_ms)} | {f.calls} | {f.lost} | {f.stalled} | "
            f"{num(f.p50_ms)} / {num(f.p95_ms)} / {num(f.max_ms)} | "
            f"{num(f.recovered_s) if f.recovered_s is not None else 'not in the run'} | {num(f.after_repair_s)} |")
    return "\n".join(lines) + "\n"


def calls_from_report(calls: Iterable[Any]) -> list[Sample]:
    """:class:`lambdaroute.testbed.report.Call` (run time) as samples."""
    return [Sample(c.time, c.latency, c.ok, c.client) for c in calls]


def read_run_calls(path: Path) -> list[Sample]:
    """A run's ``calls.csv`` (``client,router,time,latency,...,status``) as samples."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                latency = float(row["latency"]) if row.get("latency") else math.nan
                out.append(Sample(float(row["time"]), latency, (row.get("status") or "") == "OK",
                                  row.get("client") or ""))
            except (KeyError, ValueError) as e:
                raise ValueError(f"{path}, line {n}: unreadable row ({type(e).__name__}: {e}); expected "
                                 f"`client,router,time,latency,responder,lambda,hops,status`") from None
    return out


def from_results(folder: Path, **options: Any) -> list[FaultFigures]:
    """The faults of a results folder (its ``calls.csv``, ``events.csv`` and the duration in
    ``metadata.json``), also written to its ``faults.csv``."""
    import json

    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    end = float(meta.get("duration_s") or 0)
    calls = read_run_calls(folder / "calls.csv")
    if calls:
        end = max(end, max(c.time for c in calls))
    events = read_events(folder / "events.csv") if (folder / "events.csv").exists() else []
    figures = analyse_by_client(calls, faults_from_events(events, end), end, **options)
    write_csv(figures, folder / "faults.csv")
    return figures
