"""Results of a run as a reader wants them: a summary table and a plot of latency over time.

:func:`read_calls` reads the clients' CSVs (``time,latency,load1,responder,lambda,hops,status,objects``,
then ``scheduled,node``, then ``router``, by header; one row per call); :func:`summarize` gives, per client and policy, the calls, errors, latency
percentiles and the split by responder; :func:`format_summary` prints that as a table;
:func:`plot_latency` draws latency over time, one colour per responder, with congested links
shaded; :func:`utilization` turns the ``load1`` the computers report with every answer into a
per-computer time series. :func:`run_figures` sums a run up in the figures that compare
installers and scales (table entries per router, calls/s, latency percentiles, routers and
links crossed per call); :func:`format_comparison` sets runs side by side. For Array of Things
replays, :func:`site_counts` bins the trace's arrivals (the schedules) and the calls sent per
site and second, :func:`lag` summarises sent minus scheduled, and :func:`plot_sites` draws calls
per site over time next to the arrivals. With ``metrics:``, :func:`read_metrics` reads the
nodes' scraped Prometheus metrics (``metrics.csv``), :func:`metric_series` turns one metric into
a time series per node, and :func:`plot_metrics` draws router calls in flight and computer
utilization over time.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaroute.testbed import scrape

__all__ = ["Call", "read_calls", "write_calls", "CALLS_HEADER", "summarize", "format_summary", "plot_latency", "percentile", "utilization",
           "ClientSummary", "RunFigures", "run_figures", "format_figures", "format_comparison",
           "objects_found", "format_objects", "read_schedule_times", "site_counts", "lag", "plot_sites",
           "read_metrics", "metric_series", "plot_metrics", "METRICS_PLOTTED"]


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
    #: The router the call went to: in a client's CSV its endpoint (the one that answered, or the
    #: last one tried); in a run's calls its host name (the workload's router when the CSV has none).
    router: str = ""
    #: Objects a detector found (faces, eyes) in the answer; None when it lists none.
    objects: int | None = None
    #: When the call was due (open-loop patterns), in the same time as ``time``; None in a closed loop.
    scheduled: float | None = None
    #: The Array of Things node whose readings it carries (``pattern: aot``); empty otherwise.
    node: str = ""


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
                scheduled=float(row["scheduled"]) if row.get("scheduled") else None,
                node=row.get("node") or "",
                router=row.get("router") or "",
            ))
    return calls


#: Columns of a run's ``calls.csv``: every client's calls in run time, responders by host.
CALLS_HEADER = ["client", "router", "time", "latency", "responder", "lambda", "hops", "status"]


def write_calls(calls: list[Call], path: Path, names: dict[str, str] | None = None) -> None:
    """Every client's calls in one CSV (:data:`CALLS_HEADER`), sorted by the time they were
    sent (s since the run's start), the responder named by its host (``names``: endpoint ->
    host), latency in seconds (empty without an answer): what the report reads across runs."""
    names = names or {}
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CALLS_HEADER)
        for c in sorted(calls, key=lambda c: c.time):
            w.writerow([c.client, c.router, f"{c.time:.4f}", "" if math.isnan(c.latency) else f"{c.latency:.6f}",
                        names.get(c.responder, c.responder), c.lambda_, c.hops, c.status])


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


#: More clients than this and :func:`format_summary` ``brief`` shows the ``all`` row alone.
BRIEF_CLIENTS = 12


def format_summary(summaries: list[ClientSummary], brief: bool = False) -> str:
    """A plain-text table: one row per client, then one indented row per responder. ``brief``:
    no responder rows, and only the ``all`` row when there are more than
    :data:`BRIEF_CLIENTS` clients."""
    if brief:
        if len(summaries) > BRIEF_CLIENTS + 1:
            summaries = [s for s in summaries if s.client == "all"]
        summaries = [ClientSummary(**{**s.__dict__, "responders": {}}) for s in summaries]
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


@dataclass
class RunFigures:
    """A run summed up: what differs between installers and scales.

    ``entries_*``: e-table entries per router (table 0) when the tables were complete;
    ``routers_per_call``: routers a successful call crossed (1, or 2 when a router forwarded it
    to another router), on average; ``links_per_call``: switch-to-switch links of the path the
    call took from its client to the computer that answered, through the routers it crossed,
    on average (None when a path is unknown)."""

    routers: int
    computers: int
    entries_min: int
    entries_mean: float
    entries_max: int
    calls: int
    errors: int
    duration_s: float
    calls_per_s: float
    p50: float
    p95: float
    p99: float
    routers_per_call: float
    forwarded_share: float
    links_per_call: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_figures(
    calls: list[Call],
    duration_s: float,
    entries: dict[str, int],
    computers: int,
    links: Any = None,
    homes: dict[str, str] | None = None,
) -> RunFigures:
    """The figures of a run. ``entries``: router -> entries; ``computers``: computer endpoints;
    ``links(a, b)``: switch links between two hosts (or endpoints), None when unknown;
    ``homes``: computer -> the router it is final on, for calls that crossed two routers."""
    ok = [c for c in calls if c.ok]
    lat = [c.latency * 1000 for c in ok]
    sizes = list(entries.values()) or [0]
    crossed = [max(c.hops - 1, 1) for c in ok]
    path_links: list[float] = []
    if links is not None:
        for c in ok:
            first = links(c.client, c.router) if c.router else None
            if c.hops >= 3:
                home = (homes or {}).get(c.responder)
                rest = (links(c.router, home), links(home, c.responder)) if home else (None, None)
                n = None if None in rest or first is None else first + rest[0] + rest[1]  # type: ignore[operator]
            else:
                last = links(c.router, c.responder) if c.router else None
                n = None if first is None or last is None else first + last
            if n is None:
                path_links = []
                break
            path_links.append(n)
    return RunFigures(
        routers=len(entries),
        computers=computers,
        entries_min=min(sizes),
        entries_mean=round(sum(sizes) / len(sizes), 1),
        entries_max=max(sizes),
        calls=len(calls),
        errors=len(calls) - len(ok),
        duration_s=round(duration_s, 3),
        calls_per_s=round(len(ok) / duration_s, 2) if duration_s > 0 else math.nan,
        p50=round(percentile(lat, 50), 3),
        p95=round(percentile(lat, 95), 3),
        p99=round(percentile(lat, 99), 3),
        routers_per_call=round(sum(crossed) / len(crossed), 3) if crossed else math.nan,
        forwarded_share=round(sum(1 for n in crossed if n >= 2) / len(crossed), 4) if crossed else math.nan,
        links_per_call=round(sum(path_links) / len(path_links), 3) if path_links else None,
    )


def format_figures(f: RunFigures) -> str:
    """Two lines: the tables, then the calls."""
    links = "" if f.links_per_call is None else f", {f.links_per_call:.2f} links"
    return (f"tables: {f.routers} routers, {f.computers} computers; entries per router "
            f"min {f.entries_min}, mean {f.entries_mean:g}, max {f.entries_max}\n"
            f"calls: {f.calls} ({f.errors} errors), {f.calls_per_s:g}/s; latency p50 {f.p50:.2f} ms, "
            f"p95 {f.p95:.2f} ms, p99 {f.p99:.2f} ms; per call {f.routers_per_call:.2f} routers "
            f"({f.forwarded_share * 100:.1f}% forwarded){links}\n")


#: The rows of :func:`format_comparison`: (label, key, format).
_COMPARED = [
    ("routers", "routers", "{:d}"),
    ("computers (endpoints)", "computers", "{:d}"),
    ("entries per router, mean", "entries_mean", "{:g}"),
    ("entries per router, max", "entries_max", "{:d}"),
    ("calls", "calls", "{:d}"),
    ("errors", "errors", "{:d}"),
    ("calls/s", "calls_per_s", "{:g}"),
    ("p50 latency, ms", "p50", "{:.2f}"),
    ("p95 latency, ms", "p95", "{:.2f}"),
    ("p99 latency, ms", "p99", "{:.2f}"),
    ("routers per call", "routers_per_call", "{:.2f}"),
    ("calls forwarded to a second router", "forwarded_share", "{:.1%}"),
    ("links per call", "links_per_call", "{:.2f}"),
]


def format_comparison(runs: list[tuple[str, dict[str, Any]]]) -> str:
    """A Markdown table of runs' figures (:meth:`RunFigures.as_dict`) side by side, one column
    per ``(label, figures)``; with two runs, a last column with the ratio of the first to the
    second."""
    ratio = len(runs) == 2
    head = "| | " + " | ".join(label for label, _ in runs) + (" | first / second |" if ratio else " |")
    lines = [head, "|---" * (len(runs) + 1 + ratio) + "|"]
    for label, key, fmt in _COMPARED:
        values = [f.get(key) for _, f in runs]
        cells = ["-" if v is None else fmt.format(v) for v in values]
        row = f"| {label} | " + " | ".join(cells)
        if ratio:
            a, b = values
            row += " | " + (f"{a / b:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b
                            else "-")
        lines.append(row + " |")
    return "\n".join(lines) + "\n"


# ----- Array of Things replays -----

def read_schedule_times(path: Path) -> list[float]:
    """Due times (s after the client's start) of a schedule file, in order."""
    with open(path, newline="", encoding="utf-8") as f:
        return [float(row["time"]) for row in csv.DictReader(f)]


def site_counts(arrivals: dict[str, list[float]], calls: list[Call], site_of: dict[str, str],
                end: float, step: float = 1.0) -> list[tuple[float, str, int, int, int]]:
    """Per site and ``step``-second bin of the run: ``(bin start, site, arrivals, sent, ok)``.

    ``arrivals`` maps a site to the due times of its trace's calls (run time); ``calls`` are the
    clients' calls (run time), ``site_of`` maps a client to its site. Bins cover 0 to ``end``."""
    bins = max(int(math.ceil(end / step)), 1)
    table: dict[str, list[list[int]]] = {site: [[0, 0, 0] for _ in range(bins)] for site in arrivals}
    for site, times in arrivals.items():
        for t in times:
            if 0 <= t < end:
                table[site][int(t // step)][0] += 1
    for c in calls:
        site = site_of.get(c.client)
        if site is None or not 0 <= c.time < end:
            continue
        row = table.setdefault(site, [[0, 0, 0] for _ in range(bins)])[int(c.time // step)]
        row[1] += 1
        row[2] += int(c.ok)
    return [(i * step, site, *counts) for site, rows in table.items() for i, counts in enumerate(rows)]


def lag(calls: list[Call]) -> dict[str, float]:
    """Sent minus scheduled (ms) over the calls that have a due time: count, p50, p99, max."""
    lags = [(c.time - c.scheduled) * 1000 for c in calls if c.scheduled is not None]
    return {"calls": len(lags), "p50_ms": percentile(lags, 50), "p99_ms": percentile(lags, 99),
            "max_ms": max(lags) if lags else math.nan}


def plot_sites(counts: list[tuple[float, str, int, int, int]], path: Path, title: str,
               order: list[str] | None = None) -> None:
    """Calls per site over time: the trace's arrivals (the schedules) and the calls the clients
    sent, as two heat maps one above the other (a row per site), and the totals per bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sites = order or sorted({c[1] for c in counts})
    times = sorted({c[0] for c in counts})
    index = {t: i for i, t in enumerate(times)}
    row = {s: i for i, s in enumerate(sites)}
    arrivals = [[0] * len(times) for _ in sites]
    sent = [[0] * len(times) for _ in sites]
    ok_total = [0] * len(times)
    for t, site, a, n, ok in counts:
        if site in row:
            arrivals[row[site]][index[t]] = a
            sent[row[site]][index[t]] = n
            ok_total[index[t]] += ok
    step = times[1] - times[0] if len(times) > 1 else 1.0
    extent = (times[0] if times else 0.0, (times[-1] + step) if times else 1.0, len(sites) - 0.5, -0.5)
    top = max([max(r) for r in arrivals + sent if r] + [1])
    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True, layout="constrained",
                             gridspec_kw={"height_ratios": [3, 3, 1.6]})
    image = None
    for ax, data, label in ((axes[0], arrivals, "trace arrivals (calls due by the schedules)"),
                            (axes[1], sent, "calls sent by each site's client")):
        image = ax.imshow(data, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=top,
                          extent=extent)
        ax.set_ylabel(f"site (row per switch, {len(sites)})")
        ax.set_title(label, fontsize=9)
    fig.colorbar(image, ax=list(axes), label=f"calls per site per {step:g} s", shrink=0.6)
    axes[2].plot(times, [sum(r[i] for r in arrivals) for i in range(len(times))], label="arrivals", lw=1.2)
    axes[2].plot(times, [sum(r[i] for r in sent) for i in range(len(times))], label="sent", lw=1.0, ls="--")
    axes[2].plot(times, ok_total, label="answered OK", lw=0.8, ls=":")
    axes[2].set_ylabel(f"calls per {step:g} s")
    axes[2].set_xlabel("time since the run started (s)")
    axes[2].legend(fontsize=8, loc="upper right")
    axes[2].grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----- the nodes' Prometheus metrics (metrics.csv) -----

#: What :func:`plot_metrics` draws, one panel each: (metric, axis label).
METRICS_PLOTTED = (("lambdaroute_router_calls_in_flight", "router: calls in flight"),
                   ("lambdaroute_computer_utilization", "computer: utilization (busy fraction)"))
#: Series drawn one by one in a panel of :func:`plot_metrics`; past it, the busiest only.
MAX_SERIES_SHOWN = 9


def read_metrics(path: Path) -> list[tuple[float, str, scrape.Sample]]:
    """The rows of ``metrics.csv``: (time, node, sample)."""
    return scrape.read(path)


def metric_series(rows: list[tuple[float, str, scrape.Sample]], metric: str) -> dict[str, list[tuple[float, float]]]:
    """``metric``'s values over time, one series per node and label set, named by the node,
    then the label values that tell that node's series apart (a processor, a computer of a
    host that serves several)."""
    by: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = defaultdict(list)
    for t, node, sample in rows:
        if sample.metric == metric:
            by[(node, sample.labels)].append((t, sample.value))
    label_sets: dict[str, list[tuple[tuple[str, str], ...]]] = defaultdict(list)
    for node, labels in by:
        label_sets[node].append(labels)
    out = {}
    for (node, labels), points in by.items():
        varying = [v for k, v in labels if len({dict(ls).get(k) for ls in label_sets[node]}) > 1]
        out[" ".join([node, *varying])] = sorted(points)
    return dict(sorted(out.items()))


def plot_metrics(rows: list[tuple[float, str, scrape.Sample]], path: Path, title: str) -> bool:
    """One panel per metric of :data:`METRICS_PLOTTED` over time, a line per node (the
    :data:`MAX_SERIES_SHOWN` with the highest mean when there are more). Returns False, and
    draws nothing, when neither metric was scraped."""
    panels = [(label, metric_series(rows, metric)) for metric, label in METRICS_PLOTTED]
    if not any(series for _, series in panels):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)), sharex=True, squeeze=False)
    for ax, (label, series) in zip(axes[:, 0], panels):
        shown = sorted(series, key=lambda k: -sum(v for _, v in series[k]) / max(len(series[k]), 1))[:MAX_SERIES_SHOWN]
        for name in sorted(shown):
            ax.plot([t for t, _ in series[name]], [v for _, v in series[name]], lw=1.2, label=name)
        hidden = len(series) - len(shown)
        ax.set_ylabel(label, fontsize=9)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if not series:
            ax.text(0.5, 0.5, "not scraped", transform=ax.transAxes, ha="center")
        elif hidden:
            ax.set_title(f"the {len(shown)} highest of {len(series)} series", fontsize=8)
        if series:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes[-1, 0].set_xlabel("time since the run started (s)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
