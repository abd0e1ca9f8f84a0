"""Writes the report of testbed results: ``report.md`` and ``report.html`` (the same blocks,
rendered twice) and the PNG plots beside them, from the runs and findings of :mod:`.analysis`."""

from __future__ import annotations

import html
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from lambdaroute.testbed.analysis import Finding, Run, fairness, findings, mean_ci, read_results
from lambdaroute.testbed.report import percentile, plot_metrics, read_metrics

__all__ = ["write_report", "to_markdown", "to_html", "CLAIMS"]

#: The papers' claims, as the findings table names them.
CLAIMS = {
    "F1": "round robin splits calls in proportion to 1/latency (Jain mean >= 0.99, min >= 0.95)",
    "F2": "after a computer's speed halves, its share settles within 5 s (rr, li, p2c)",
    "F3": "with the congestion hook p95 stays <= 1.2x the uncongested one; without it, >= 2x",
    "F4": "two-tier tables are smaller than flat ones, with p50 within 1.1x",
}

#: Runs whose scraped metrics (``metrics.csv``) get a plot in the report, at most.
MAX_METRICS_PLOTS = 12

#: A block of the document: ("h1"|"h2"|"h3"|"p", text), ("table", (head, rows)), ("img", (file, alt)),
#: ("ul", items). Markdown and HTML are both rendered from these, so they carry the same content.
Block = tuple[str, Any]


def to_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for kind, value in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + value)
        elif kind == "p":
            out.append(value)
        elif kind == "table":
            head, rows = value
            cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731
            out.append("\n".join(["| " + " | ".join(map(cell, head)) + " |", "|---" * len(head) + "|"]
                                 + ["| " + " | ".join(map(cell, r)) + " |" for r in rows]))
        elif kind == "img":
            out.append(f"![{value[1]}]({value[0]})")
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in value))
    return "\n\n".join(out) + "\n"


_CSS = ("body{font-family:sans-serif;max-width:75em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.25em .5em;"
        "text-align:left;font-size:90%}th{background:#eee}img{max-width:100%}")


def to_html(blocks: Sequence[Block], title: str) -> str:
    e = html.escape
    out = [f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
           f"<style>{_CSS}</style></head><body>"]
    for kind, value in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{e(value)}</{kind}>")
        elif kind == "table":
            head, rows = value
            out.append("<table><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
                       + "</table>")
        elif kind == "img":
            out.append(f"<p><img src=\"{e(value[0])}\" alt=\"{e(value[1])}\"></p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{e(str(i))}</li>" for i in value) + "</ul>")
    return "\n".join(out) + "\n</body></html>\n"


def _slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-")


def _cell(values: list[float], fmt: str = "{:.2f}") -> str:
    m, half, n = mean_ci(values)
    if n == 0:
        return "-"
    # One seed has no interval: the bare value (the table's caption says so).
    return f"{fmt.format(m)} ± {fmt.format(half)}" if half is not None else fmt.format(m)


def _latencies(run: Run) -> dict[str, float]:
    lat = [c.latency for c in run.calls if c.ok]
    ok = len(lat)
    return {"calls": len(run.calls), "errors": len(run.calls) - ok,
            "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
            "calls_per_s": ok / run.duration_s if run.duration_s > 0 else math.nan}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency_bars(exp: str, groups: dict[tuple[str, str], list[Run]], path: Path) -> None:
    """p50/p95/p99 per variant (x) and policy (bars), mean over seeds with 95% CI error bars."""
    plt = _plt()
    variants = sorted({v for v, _ in groups})
    policies = sorted({p for _, p in groups})
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
    width = 0.8 / max(len(policies), 1)
    for ax, q in zip(axes, ("p50", "p95", "p99")):
        for j, policy in enumerate(policies):
            means, errs = [], []
            for v in variants:
                m, half, _ = mean_ci(_latencies(r)[q] for r in groups.get((v, policy), []))
                means.append(m)
                errs.append(half or 0.0)
            ax.bar([i + j * width for i in range(len(variants))], means, width, yerr=errs, capsize=3, label=policy)
        ax.set_xticks([i + width * (len(policies) - 1) / 2 for i in range(len(variants))], variants,
                      rotation=20, fontsize=8)
        ax.set_title(f"{q} latency (ms)", fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, title="policy")
    fig.suptitle(f"{exp}: latency by variant and policy (mean over seeds, 95% CI)", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _congested(run: Run) -> list[tuple[float, float, str]]:
    """Monitor-reported congested intervals (start, end, link); open ones end with the run."""
    open_: dict[str, float] = {}
    out = []
    for t, link, event in sorted(run.congestion):
        if event == "congested":
            open_.setdefault(link, t)
        elif event == "cleared" and link in open_:
            out.append((open_.pop(link), t, link))
    return out + [(t, run.duration_s, link) for link, t in open_.items()]


#: Computers drawn one by one in a share plot; the others are one band.
MAX_COMPUTERS_SHOWN = 9


def plot_shares(exp: str, variant: str, runs: dict[str, Run], path: Path) -> None:
    """Each computer's share of answered calls per 1-s window, one panel per policy (its lowest
    seed); applied events as vertical lines, monitor-reported congestion and background shaded."""
    plt = _plt()
    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 2.6 * len(runs)), sharex=True, squeeze=False,
                             layout="constrained")
    for ax, (policy, run) in zip(axes[:, 0], sorted(runs.items())):
        end = int(math.floor(run.duration_s))
        served = Counter(c.responder for c in run.calls if c.ok)
        # A legend of 71 computers hides the plot: the busiest ones, then the rest together.
        shown = sorted(r for r, _ in served.most_common(MAX_COMPUTERS_SHOWN)) if len(served) > MAX_COMPUTERS_SHOWN + 1 \
            else sorted(served)
        rest = f"{len(served) - len(shown)} other computers"
        computers = shown + ([rest] if len(shown) < len(served) else [])
        counts = {c: [0] * end for c in computers}
        totals = [0] * end
        for c in run.calls:
            if c.ok and 0 <= c.time < end:
                counts[c.responder if c.responder in shown else rest][int(c.time)] += 1
                totals[int(c.time)] += 1
        xs = [i + 0.5 for i in range(end)]
        ax.stackplot(xs, *[[n / t if t else math.nan for n, t in zip(counts[c], totals)] for c in computers],
                     labels=computers, alpha=0.85)
        for a, b in run.background:
            ax.axvspan(a, b, color="grey", alpha=0.12, hatch="//", label="background traffic")
        for a, b, link in _congested(run):
            ax.axvspan(a, b, color="red", alpha=0.2, label=f"{link} congested")
        for e in run.events:
            if e.get("applied") is not None:
                ax.axvline(float(e["applied"]), color="black", ls="--", lw=1)
                ax.text(float(e["applied"]), 1.01, f"{e.get('kind')} {e.get('target', '')}", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"{policy} (seed {run.seed})\nshare of calls")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes[-1, 0].set_xlabel("time since the run started (s), 1-s windows")
    fig.suptitle(f"{exp}/{variant}: share of answered calls per computer", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_entries(rows: list[tuple[str, float, float]], path: Path) -> None:
    """Table entries per router: mean (bar) and max (marker) per experiment/variant."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows)), 4), layout="constrained")
    ax.bar(range(len(rows)), [m for _, m, _ in rows], label="mean")
    ax.scatter(range(len(rows)), [x for _, _, x in rows], color="black", marker="_", s=300, label="max", zorder=3)
    ax.set_xticks(range(len(rows)), [label for label, _, _ in rows], rotation=20, fontsize=8)
    ax.set_ylabel("table entries per router")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _findings_blocks(found: list[Finding]) -> list[Block]:
    blocks: list[Block] = [("h2", "Findings"),
                           ("table", (["#", "claim", "result"], [[f.number, CLAIMS[f.number], f.line] for f in found]))]
    notes = [f"{f.number}: {n}" for f in found for n in f.notes]
    if notes:
        blocks += [("p", "What the data shows per run (for the findings above):"), ("ul", notes)]
    return blocks


def _metrics_blocks(runs: Sequence[Run], out: Path) -> list[Block]:
    """Router calls in flight and computer utilization over time, a plot per run that scraped
    its nodes' metrics (``metrics:`` in the experiment), the first :data:`MAX_METRICS_PLOTS`."""
    with_metrics = sorted((r for r in runs if (r.folder / "metrics.csv").is_file()),
                          key=lambda r: (r.experiment, r.variant, r.policy, r.seed))
    if not with_metrics:
        return []
    blocks: list[Block] = [("h2", "Metrics over time"),
                           ("p", "Scraped from the nodes' /metrics during the run (docs/metrics.md): the routers' "
                                 "calls in flight and the computers' utilization, per node.")]
    for r in with_metrics[:MAX_METRICS_PLOTS]:
        name = _slug("metrics", r.experiment, r.variant, r.policy, str(r.seed)) + ".png"
        title = f"{r.experiment}/{r.variant}, {r.policy}, seed {r.seed}"
        try:
            drawn = plot_metrics(read_metrics(r.folder / "metrics.csv"), out / name, title)
        except (OSError, ValueError, KeyError) as e:
            blocks.append(("p", f"{title}: unreadable metrics.csv ({type(e).__name__}: {e})"))
            continue
        blocks += [("h3", title), ("img", (name, f"{title}: calls in flight and utilization"))] if drawn else \
            [("p", f"{title}: neither metric was scraped")]
    if len(with_metrics) > MAX_METRICS_PLOTS:
        blocks.append(("p", f"and {len(with_metrics) - MAX_METRICS_PLOTS} more runs with metrics.csv, not drawn"))
    return blocks


def write_report(paths: Sequence[Path], out: Path | None = None) -> tuple[Path, list[Finding]]:
    """Reads the folders, writes report.md, report.html and the plots into ``out`` (default
    ``results/report/<timestamp>/``); returns the path of report.md and the findings."""
    runs = read_results(paths)
    out = out or Path("results") / "report" / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    good = [r for r in runs if r.ok]
    found = findings(runs)
    blocks: list[Block] = [("h1", "lambdaroute testbed report"),
                           ("p", f"{len(runs)} runs read ({len(good)} complete, {len(runs) - len(good)} failed) "
                                 f"from {len(paths)} folders on {datetime.now().isoformat(timespec='seconds')}. "
                                 "Latencies are ms; ± is the half-width of the 95% Student-t interval over "
                                 "seeds; how the findings are computed: docs/experiments.md.")]
    blocks += _findings_blocks(found)
    jain = fairness(good)
    entries: list[tuple[str, float, float]] = []
    for exp in sorted({r.experiment for r in good}):
        groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
        for r in good:
            if r.experiment == exp:
                groups[(r.variant, r.policy)].append(r)
        blocks.append(("h2", f"Experiment {exp}"))
        rows = []
        for (variant, policy), g in sorted(groups.items()):
            lat = [_latencies(r) for r in g]
            fig = [r.figures for r in g if r.figures]
            j = jain.get((exp, variant, policy))
            e_mean = [float(f["entries_mean"]) for f in fig if f.get("entries_mean") is not None]
            e_max = [int(f["entries_max"]) for f in fig if f.get("entries_max") is not None]
            seeds = ", ".join(str(r.seed) for r in sorted(g, key=lambda r: r.seed))
            rows.append([variant, g[0].role or "-", policy, seeds, f"{sum(x['calls'] for x in lat) / len(lat):.0f}",
                         f"{sum(x['errors'] for x in lat) / len(lat):.1f}",
                         *(_cell([x[q] for x in lat]) for q in ("p50", "p95", "p99")),
                         _cell([x["calls_per_s"] for x in lat], "{:.1f}"),
                         f"{sum(e_mean) / len(e_mean):.1f} / {max(e_max)}" if e_mean and e_max else "-",
                         f"{j['mean']:.3f} / {j['min']:.3f}" if j and j["windows"] else "-"])
            if e_mean and e_max:
                entries.append((f"{exp}/{variant}/{policy}", sum(e_mean) / len(e_mean), max(e_max)))
        blocks += [("p", "Per variant and policy: calls and errors per run (mean over seeds), latency "
                         "percentiles and calls/s as mean ± 95% CI over seeds (the bare value with one seed), table entries per router "
                         "(mean / max), and F1's Jain index (mean / worst window; a target for rr only)."),
                   ("table", (["variant", "role", "policy", "seeds", "calls", "errors", "p50 ms", "p95 ms",
                               "p99 ms", "calls/s", "entries mean / max", "Jain mean / min"], rows))]
        name = _slug("latency", exp) + ".png"
        plot_latency_bars(exp, groups, out / name)
        blocks.append(("img", (name, f"{exp}: latency percentiles by variant and policy")))
        for variant in sorted({v for v, _ in groups}):
            lowest = {p: min(g, key=lambda r: r.seed) for (v, p), g in groups.items() if v == variant}
            name = _slug("shares", exp, variant) + ".png"
            plot_shares(exp, variant, lowest, out / name)
            blocks += [("h3", f"{exp}/{variant}: share per computer"),
                       ("img", (name, f"{exp}/{variant}: share of calls per computer over time"))]
    blocks += _metrics_blocks(good, out)
    if len({(round(m, 1), x) for _, m, x in entries}) > 1:
        plot_entries(entries, out / "entries.png")
        blocks += [("h2", "Table entries per router"), ("img", ("entries.png", "table entries per router"))]
    failed = [r for r in runs if not r.ok]
    blocks += [("h2", "Failed runs"),
               ("ul", [f"{r.folder} ({r.experiment}/{r.variant}/{r.policy}, seed {r.seed}): {r.error}" for r in failed])
               if failed else ("p", "None."),
               ("h2", "Inputs"), ("ul", [str(p) for p in paths])]
    (out / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
    (out / "report.html").write_text(to_html(blocks, "lambdaroute testbed report"), encoding="utf-8")
    return out / "report.md", found
