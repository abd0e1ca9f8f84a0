"""Draw ``lambdaroute bench`` results (bench.csv) to a PNG.

Usage: ``python python/lambdaroute/bench_plot.py results/bench/bench.csv -o results/bench/bench.png``

Needs only matplotlib (not the native module), so ``make bench`` runs it by path. One column
per series (router mode / table shape); top row: calls per second versus table entries, bottom
row: p99 latency; colour = number of clients, line style = policy; the dotted lines are the
floor (the same load straight to a bare answering server).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

SERIES = [
    ("fake/lambdas", "fake mode, n/10 lambdas x 10 dest."),
    ("normal/lambdas", "normal mode, n/10 lambdas x 10 dest."),
    ("fake/destinations", "fake mode, 1 lambda x n dest."),
]
STYLES = {"rp": "-", "li": "--", "rr": "-.", "p2c": ":"}
MARKERS = {"rp": "o", "li": "s", "rr": "^", "p2c": "D"}


def load(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def plot(rows: list[dict], out: Path, title: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({int(r["entries"]) for r in rows if r["target"] == "router"})
    clients = sorted({int(r["clients"]) for r in rows})
    policies = [p for p in STYLES if any(r["policy"] == p for r in rows)]
    colours = {c: plt.cm.viridis(i / max(1, len(clients) - 1) * 0.85) for i, c in enumerate(clients)}
    series = [s for s in SERIES if any(r["series"] == s[0] for r in rows)]
    fig, axes = plt.subplots(2, len(series), figsize=(4.6 * len(series), 7), squeeze=False, sharex=True)
    for col, (name, label) in enumerate(series):
        # Mean over the windows of a point (the smallest table is measured once per pair).
        rate = defaultdict(list)
        p99 = defaultdict(list)
        floor = defaultdict(list)
        for r in rows:
            if r["series"] != name:
                continue
            key = (r["policy"], int(r["clients"]))
            if r["target"] == "floor":
                floor[int(r["clients"])].append(float(r["rate"]))
            else:
                rate[key + (int(r["entries"]),)].append(float(r["rate"]))
                p99[key + (int(r["entries"]),)].append(float(r["p99_us"]))
        for row, (values, ylabel) in enumerate([(rate, "calls/s"), (p99, "p99 latency (µs)")]):
            ax = axes[row][col]
            for policy in policies:
                for c in clients:
                    xs, ys = [], []
                    for i, size in enumerate(sizes):
                        v = values.get((policy, c, size))
                        if v:
                            xs.append(i)
                            ys.append(sum(v) / len(v))
                    if xs:
                        ax.plot(xs, ys, STYLES[policy], marker=MARKERS[policy], ms=3, lw=1, color=colours[c])
            if row == 0:
                for c, v in floor.items():
                    ax.axhline(sum(v) / len(v), color=colours[c], lw=0.8, ls=(0, (1, 2)))
                ax.set_title(label, fontsize=10)
                ax.set_ylim(bottom=0)
            else:
                ax.set_yscale("log")
                ax.set_xlabel("table entries")
            ax.set_xticks(range(len(sizes)), [f"{s:,}" if s else "0 (1)" for s in sizes], fontsize=8)
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel(ylabel)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colours[c], lw=2, label=f"{c} client{'s' if c > 1 else ''}") for c in clients]
    handles += [Line2D([], [], color="grey", ls=STYLES[p], marker=MARKERS[p], ms=3, label=p) for p in policies]
    handles.append(Line2D([], [], color="grey", ls=(0, (1, 2)), label="floor (bare server)"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title or "lambdaroute router: dispatch rate and p99 latency versus table size", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=64)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="bench.csv written by lambdaroute bench")
    parser.add_argument("-o", "--output", type=Path, help="PNG to write (default: beside the CSV)")
    parser.add_argument("--title", help="figure title")
    args = parser.parse_args(argv)
    out = args.output or args.csv.with_suffix(".png")
    plot(load(args.csv), out, args.title)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
