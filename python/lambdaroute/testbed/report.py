"""Results of a run as a reader wants them: a summary table and a plot of latency over time.

:func:`read_calls` reads the clients' CSVs (``time,latency,load1,responder,lambda,hops,status,objects``,
one row per call); :func:`summarize` gives, per client and policy, the calls, errors, latency
percentiles and the split by responder; :func:`format_summary` prints that as a table;
:func:`plot_latency` draws latency over time, one colour per responder, with congested links
shaded; :func:`utilization` turns the ``load1`` the computers report with every answer into a
per-computer time series.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Call", "read_calls", "summarize", "format_summary", "plot_latency", "percentile", "utilization",
           "ClientSummary", "objects_found", "format_objects"]


@dataclass(frozen=True)
class Call:
    client: str
    time: float
    latency: float
    load1: float
    responder: str
    lambda_: str
    hops: int
    ok: bool
    status: str
    #: Objects a detector found (faces, eyes) in the answer; None when it lists none.
    objects: int | None = None


def read_calls(path: Path, client: str) -> list[Call]:
    calls = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            status = row.get("status", "OK")
            calls.append(Call(
                client=client,
                time=float(row["time"]),
                latency=float(row["latency"] or "nan"),
                load1=float(row.get("load1") or 0),
                responder=row.get("responder", ""),
                lambda_=row.get("lambda", ""),
                hops=int(row.get("hops") or 0),
                ok=status == "OK",
                status=status,
                objects=int(row["objects"]) if row.get("objects") else None,
            ))
    return calls


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; nan for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


@dataclass
class ClientSummary:
    client: str
    policy: str
    calls: int
    errors: int
    p50: float
    p95: float
    p99: float
    responders: dict[str, dict[str, float]] = field(default_factory=dict)

    def share(self, responder: str) -> float:
        ok = self.calls - self.errors
        return self.responders.get(responder, {}).get("calls", 0) / ok if ok else 0.0


def summarize(calls: list[Call], policy: str, names: dict[str, str] | None = None) -> list[ClientSummary]:
    """Per client (and ``all``): calls, errors, p50/p95/p99 latency in ms, and per responder
    (named through ``names``: endpoint -> host) its calls, share and p50/p95/p99."""
    names = names or {}
    groups: dict[str, list[Call]] = defaultdict(list)
    for c in calls:
        groups[c.client].append(c)
    if len(groups) > 1:
        groups["all"] = list(calls)
    out = []
    for client, cs in groups.items():
        ok = [c for c in cs if c.ok]
        lat = [c.latency * 1000 for c in ok]
        by: dict[str, list[float]] = defaultdict(list)
        for c in ok:
            by[(names.get(c.responder, c.responder) or "(no responder)")].append(c.latency * 1000)
        out.append(ClientSummary(
            client=client, policy=policy, calls=len(cs), errors=len(cs) - len(ok),
            p50=percentile(lat, 50), p95=percentile(lat, 95), p99=percentile(lat, 99),
            responders={r: {"calls": len(v), "share": len(v) / len(ok), "p50": percentile(v, 50),
                            "p95": percentile(v, 95), "p99": percentile(v, 99)} for r, v in sorted(by.items())},
        ))
    return out


def format_summary(summaries: list[ClientSummary]) -> str:
    """A plain-text table: one row per client, then one indented row per responder."""
    head = f"{'client':<12} {'policy':<20} {'responder':<22} {'calls':>7} {'errors':>6} {'share':>6} " \
           f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    lines = [head, "-" * len(head)]
    for s in summaries:
        lines.append(f"{s.client:<12} {s.policy:<20} {'(all)':<22} {s.calls:>7} {s.errors:>6} {'':>6} "
                     f"{s.p50:>8.2f} {s.p95:>8.2f} {s.p99:>8.2f}")
        for r, d in s.responders.items():
            lines.append(f"{'':<12} {'':<20} {r:<22} {int(d['calls']):>7} {'':>6} {d['share'] * 100:>5.1f}% "
                         f"{d['p50']:>8.2f} {d['p95']:>8.2f} {d['p99']:>8.2f}")
    return "\n".join(lines) + "\n"


def objects_found(calls: list[Call], names: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Per lambda whose answers list objects (``facerec0``, ``eyerec0``): answers, objects found,
    and per computer its answers, objects and median latency (ms)."""
    names = names or {}
    out: dict[str, dict[str, Any]] = {}
    for c in calls:
        if not c.ok or c.objects is None:
            continue
        d = out.setdefault(c.lambda_, {"answers": 0, "objects": 0, "computers": defaultdict(list)})
        d["answers"] += 1
        d["objects"] += c.objects
        d["computers"][(names.get(c.responder, c.responder) or "(no responder)")].append((c.objects, c.latency * 1000))
    for d in out.values():
        d["computers"] = {r: {"answers": len(v), "objects": sum(o for o, _ in v),
                              "p50": percentile([lat for _, lat in v], 50)} for r, v in sorted(d["computers"].items())}
    return out


def format_objects(found: dict[str, dict[str, Any]]) -> str:
    """Lines like ``facerec0: 40 objects in 40 answers (face 40 answers, 40 objects, p50 180.2 ms)``;
    empty when no answer listed objects."""
    lines = []
    for lam, d in sorted(found.items()):
        per = ", ".join(f"{r}: {int(v['answers'])} answers, {int(v['objects'])} objects, p50 {v['p50']:.1f} ms"
                        for r, v in d["computers"].items())
        lines.append(f"{lam}: {d['objects']} objects found in {d['answers']} answers ({per})")
    return "".join(line + "\n" for line in lines)


def utilization(calls: list[Call], names: dict[str, str] | None = None) -> list[tuple[float, str, float]]:
    """``(time, computer, load1)`` from every successful call, in time order."""
    names = names or {}
    return sorted((c.time, (names.get(c.responder, c.responder) or "(no responder)"), c.load1) for c in calls if c.ok)


def plot_latency(
    calls: list[Call],
    path: Path,
    title: str,
    names: dict[str, str] | None = None,
    congestion: list[tuple[float, float, str]] | None = None,
) -> None:
    """Latency over time, one colour per responder; errors as red crosses at the top;
    ``congestion`` intervals ``(start, end, link)`` shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = names or {}
    fig, ax = plt.subplots(figsize=(10, 5))
    by: dict[str, list[Call]] = defaultdict(list)
    for c in calls:
        if c.ok:
            by[(names.get(c.responder, c.responder) or "(no responder)")].append(c)
    for responder, cs in sorted(by.items()):
        ax.scatter([c.time for c in cs], [c.latency * 1000 for c in cs], s=4, alpha=0.5, label=responder)
    errors = [c for c in calls if not c.ok]
    if errors:
        top = max((c.latency * 1000 for c in calls if c.ok), default=1.0)
        ax.scatter([c.time for c in errors], [top] * len(errors), marker="x", color="red", s=12, label="errors")
    for start, end, link in congestion or []:
        ax.axvspan(start, end, color="orange", alpha=0.15)
        ax.text(start, ax.get_ylim()[1] * 0.95 if ax.get_ylim()[1] else 1, f"{link} congested", fontsize=7)
    ax.set_xlabel("time since the run started (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.set_title(title)
    if by or errors:
        ax.legend(markerscale=3, fontsize=8, loc="upper right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def as_dict(summaries: list[ClientSummary]) -> list[dict[str, Any]]:
    return [s.__dict__ for s in summaries]
