"""Scrapes the nodes' Prometheus metrics (``/metrics``, docs/metrics.md) into ``metrics.csv``.

The nodes listen inside the emulated network, so the testbed runs this file as a script in one
of its hosts (the controller's): ``python3 -I scrape.py --target r1=10.0.0.1:9464 ... --interval 1
--origin T --out metrics.csv``. It needs nothing but the standard library, and ``-I`` keeps the
folder of the script off the path. Every ``interval`` s it fetches every target (in parallel) and
appends one row per sample: ``time,node,metric,labels,value``, ``time`` in s since ``origin``
(a ``time.monotonic()`` value of the run: the clock is the same in every network namespace),
``labels`` as ``key=value`` pairs joined by ``;``. SIGTERM (or SIGINT) ends it after one last
round, so the counters at the end of the run are in the file. A failed fetch is logged to stderr
and the scraper goes on.

:func:`parse` and :class:`MetricsWriter` are what the report and the tests use too.
"""

from __future__ import annotations

import argparse
import csv
import signal
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Sequence

__all__ = ["Sample", "parse", "format_labels", "parse_labels", "MetricsWriter", "HEADER", "read", "scrape", "main"]

#: The columns of ``metrics.csv``.
HEADER = ["time", "node", "metric", "labels", "value"]


@dataclass(frozen=True)
class Sample:
    """One line of the Prometheus text format: a series (metric name and labels) and its value."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _labels(text: str, start: int, where: str) -> tuple[tuple[tuple[str, str], ...], int]:
    """The label set that starts after ``{`` at ``start``; returns it and the index after ``}``."""
    labels: list[tuple[str, str]] = []
    i = start
    while True:
        while i < len(text) and text[i] in " ,":
            i += 1
        if i < len(text) and text[i] == "}":
            return tuple(labels), i + 1
        eq = text.find("=", i)
        if eq < 0 or eq + 1 >= len(text) or text[eq + 1] != '"':
            raise ValueError(f"{where}: expected key=\"value\" in the labels")
        key = text[i:eq].strip()
        i = eq + 2
        value = []
        while True:
            if i >= len(text):
                raise ValueError(f"{where}: unterminated label value of `{key}`")
            c = text[i]
            if c == "\\" and i + 1 < len(text):
                value.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                value.append(c)
                i += 1
        labels.append((key, "".join(value)))


def parse(text: str) -> list[Sample]:
    """The samples of Prometheus text (format 0.0.4): comments and blank lines skipped, label
    values unescaped, ``+Inf``/``-Inf``/``NaN`` as floats, timestamps dropped. A line that is
    not a sample raises ValueError naming it."""
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {n} `{line[:80]}`"
        brace, space = line.find("{"), line.find(" ")
        if brace >= 0 and (space < 0 or brace < space):
            name = line[:brace]
            labels, end = _labels(line, brace + 1, where)
            rest = line[end:].split()
        else:
            name, labels, rest = line.split()[0], (), line.split()[1:]
        if not name or not rest:
            raise ValueError(f"{where}: expected `metric{{labels}} value`")
        try:
            value = float(rest[0])
        except ValueError:
            raise ValueError(f"{where}: value `{rest[0]}` is not a number") from None
        out.append(Sample(name, labels, value))
    return out


def format_labels(labels: Iterable[tuple[str, str]]) -> str:
    """Labels as the ``labels`` cell of ``metrics.csv``: ``key=value`` joined by ``;``."""
    return ";".join(f"{k}={v}" for k, v in labels)


def parse_labels(cell: str) -> tuple[tuple[str, str], ...]:
    """The labels of a ``labels`` cell (:func:`format_labels` back)."""
    return tuple((k, v) for k, _, v in (item.partition("=") for item in cell.split(";")) if k)


class MetricsWriter:
    """Writes ``metrics.csv``: a header, then one row per sample, flushed after each write."""

    def __init__(self, out: IO[str]) -> None:
        self.file = out
        self.csv = csv.writer(out, lineterminator="\n")
        self.csv.writerow(HEADER)
        self.rows = 0

    def write(self, time_s: float, node: str, samples: Iterable[Sample]) -> int:
        n = 0
        for s in samples:
            self.csv.writerow([f"{time_s:.3f}", node, s.metric, format_labels(s.labels), f"{s.value:g}"])
            n += 1
        self.file.flush()
        self.rows += n
        return n


def read(path: Path) -> list[tuple[float, str, Sample]]:
    """The rows of a ``metrics.csv`` as (time, node, sample)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [(float(r["time"]), r["node"], Sample(r["metric"], parse_labels(r["labels"]), float(r["value"])))
                for r in csv.DictReader(f)]


def scrape(address: str, timeout: float) -> list[Sample]:
    """The samples of ``http://ADDRESS/metrics``."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout) as response:
        return parse(response.read().decode("utf-8"))


class _Scraper:
    def __init__(self, targets: dict[str, str], writer: MetricsWriter, origin: float, timeout: float) -> None:
        self.targets = targets
        self.writer = writer
        self.origin = origin
        self.timeout = timeout
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(16, len(targets))))
        self.failures = 0

    def _one(self, node: str, address: str) -> tuple[str, float, list[Sample] | Exception]:
        try:
            samples: list[Sample] | Exception = scrape(address, self.timeout)
        except Exception as e:  # noqa: BLE001 - a node down for a while is recorded, not fatal
            samples = e
        return node, time.monotonic() - self.origin, samples

    def round(self) -> None:
        for node, t, samples in self.pool.map(lambda item: self._one(*item), self.targets.items()):
            if isinstance(samples, Exception):
                self.failures += 1
                print(f"{t:.3f} {node} ({self.targets[node]}): {samples}", file=sys.stderr, flush=True)
            else:
                self.writer.write(t, node, samples)


def _target(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name or ":" not in address:
        raise argparse.ArgumentTypeError(f"`{text}`: expected NAME=HOST:PORT")
    return name, address


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Scrape Prometheus /metrics of the nodes into a CSV.")
    p.add_argument("--target", type=_target, action="append", required=True, help="NAME=HOST:PORT, repeated")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    p.add_argument("--origin", type=float, help="time.monotonic() of the run's time 0 (default: now)")
    p.add_argument("--out", required=True, help="the CSV to write")
    ns = p.parse_args(argv)
    if ns.interval <= 0:
        p.error("--interval must be > 0")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    origin = time.monotonic() if ns.origin is None else ns.origin
    with open(ns.out, "w", newline="", encoding="utf-8") as f:
        scraper = _Scraper(dict(ns.target), MetricsWriter(f), origin, timeout=max(min(ns.interval, 5.0), 1.0))
        print(f"scraping {len(scraper.targets)} nodes every {ns.interval:g} s into {ns.out}", file=sys.stderr, flush=True)
        next_at = time.monotonic()
        rounds = 0
        while not stop.is_set():
            scraper.round()
            rounds += 1
            next_at += ns.interval
            stop.wait(max(next_at - time.monotonic(), 0.0))
        # The last round: the counters as the run ends.
        scraper.round()
        rounds += 1
        scraper.pool.shutdown()
    print(f"done: {rounds} rounds, {scraper.writer.rows} rows, {scraper.failures} failed fetches",
          file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
