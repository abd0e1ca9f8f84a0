"""The papers' findings computed from testbed results: reading sweep and run folders, then pure
functions for fairness (F1), adaptation to a speed change (F2), the congestion hook (F3) and
two-tier against flat tables (F4), with means and Student-t confidence intervals over seeds.

How each finding is computed, in words: ``docs/experiments.md``.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lambdaroute.testbed.report import percentile

__all__ = ["Call", "Run", "read_results", "read_run", "t95", "mean_ci", "jain", "fairness_windows", "router_windows",
           "share_series", "steady_share", "adaptation_time", "Adaptation", "adaptation", "speed_halvings",
           "merge_intervals", "episode_intervals", "p95_in", "F3Pair", "pair_congestion", "shares_in",
           "first_congested", "WARMUP_S", "Finding", "fairness", "f1", "f2", "f3", "f4", "findings", "ci_text"]

#: Seconds at the start of a run left out of F1 and F2 (routers' first estimates, clients starting).
WARMUP_S = 2.0

# Two-sided 95% quantiles of Student's t for df 1..30 (t_{0.975, df}), from the standard table,
# e.g. NIST/SEMATECH e-Handbook of Statistical Methods, table 1.3.6.7.2; 1.96 (normal) beyond.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t95(df: int) -> float:
    """The two-sided 95% t quantile for ``df`` degrees of freedom (>= 1)."""
    if df < 1:
        raise ValueError(f"t quantile: df must be >= 1, not {df}")
    return _T95[df - 1] if df <= len(_T95) else 1.96


def mean_ci(values: Iterable[float]) -> tuple[float, float | None, int]:
    """``(mean, half-width of the 95% interval or None with one value, n)`` over the finite values."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return math.nan, None, 0
    m = sum(v) / len(v)
    if len(v) == 1:
        return m, None, 1
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    return m, t95(len(v) - 1) * s / math.sqrt(len(v)), len(v)


# ----- reading results -----

@dataclass(frozen=True, slots=True)
class Call:
    """One call of ``calls.csv``: sent at ``time`` s (run time), latency in ms (nan without an answer)."""

    time: float
    latency: float
    responder: str
    ok: bool
    #: The router the client called: each router runs its own policy over its own table.
    router: str = ""


@dataclass
class Run:
    """A run folder as the report needs it; ``error`` set when it failed or cannot be read."""

    folder: Path
    experiment: str
    variant: str = "-"
    role: str | None = None
    policy: str = "?"
    seed: int = 0
    duration_s: float = math.nan
    figures: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    tables_s: float | None = None
    calls: list[Call] = field(default_factory=list)
    background: list[tuple[float, float]] = field(default_factory=list)
    congestion: list[tuple[float, str, str]] = field(default_factory=list)  # (time, link, event)
    quick: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def _read_calls(path: Path, names: dict[str, str]) -> list[Call]:
    calls = []
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                status = (row.get("status") or "").strip()
                ok = status == "OK" and bool(row.get("latency"))
                responder = row.get("responder") or ""
                calls.append(Call(float(row["time"]), float(row["latency"]) * 1000 if ok else math.nan,
                                  names.get(responder, responder), ok, row.get("router") or ""))
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}, line {n}: unreadable row ({type(e).__name__}: {e}); "
                                 f"expected `client,router,time,latency,responder,lambda,hops,status`") from None
    return sorted(calls, key=lambda c: c.time)


def read_run(folder: Path, entry: dict[str, Any] | None = None, experiment: str | None = None) -> Run:
    """A run folder; never raises: what cannot be read becomes the run's ``error``.
    ``entry``: its row of ``sweep.json``, when it comes from a sweep."""
    entry = entry or {}
    run = Run(folder, experiment or str(entry.get("experiment") or folder.parent.name),
              str(entry.get("variant") or "-"), entry.get("role"), str(entry.get("policy") or "?"),
              int(entry.get("seed") or 0), quick=bool(entry.get("quick", False)))
    if entry.get("ok") is False or entry.get("error"):
        # The sweep's word on a failed run comes first: its folder may hold nothing readable.
        run.error = str(entry.get("error") or "the sweep marks it failed")
        return run
    try:
        meta = _json(folder / "metadata.json")
        sweep = meta.get("sweep") or {}
        run.experiment = experiment or str(sweep.get("experiment") or meta.get("experiment") or run.experiment)
        run.variant = str(sweep.get("variant") or run.variant)
        run.role = sweep.get("role", run.role)
        run.quick = bool(sweep.get("quick", entry.get("quick", False)))
        run.policy = str((meta.get("control") or {}).get("policy") or sweep.get("policy") or run.policy)
        run.seed = int(meta.get("seed", sweep.get("seed", run.seed)) or 0)
        run.duration_s = float(meta.get("duration_s") or math.nan)
        run.figures = meta.get("figures")
        run.events = [e for e in meta.get("events") or [] if isinstance(e, dict)]
        run.tables_s = (meta.get("timings_s") or {}).get("tables")
        if meta.get("error"):
            run.error = str(meta["error"])
            return run
        names = {str(k): str(v) for k, v in (meta.get("computers") or {}).items()}
        if not (folder / "calls.csv").exists():
            run.error = f"{folder / 'calls.csv'}: missing (the run ended before its calls were written)"
            return run
        run.calls = _read_calls(folder / "calls.csv", names)
        if not math.isfinite(run.duration_s):
            run.duration_s = max((c.time for c in run.calls), default=0.0)
        scenario_path = folder / "scenario.yaml"
        if scenario_path.exists():
            # The testbed's budgeted reader: a results folder may come from elsewhere.
            from lambdaroute.testbed.experiment import read_yaml
            scenario = read_yaml(scenario_path.read_text(encoding="utf-8")) or {}
            for b in scenario.get("background") or []:
                run.background.append((float(b.get("start", 0)), float(b.get("stop", run.duration_s))))
        if (folder / "congestion.csv").exists():
            with open(folder / "congestion.csv", newline="", encoding="utf-8") as f:
                run.congestion = [(float(r["time"]), r["link"], r["event"]) for r in csv.DictReader(f)]
    except FileNotFoundError as e:
        run.error = f"{e.filename}: missing"
    except (ValueError, KeyError, TypeError, OSError, yaml.YAMLError) as e:
        run.error = f"{type(e).__name__}: {e}" if not str(e).startswith(str(folder)) else str(e)
    return run


def read_results(paths: Sequence[Path]) -> list[Run]:
    """Runs of sweep folders (``sweep.json``) and run folders (``metadata.json``), failed ones
    included with their error. A path that is neither raises ValueError naming it."""
    runs = []
    for p in paths:
        if (p / "sweep.json").is_file():
            sweep = _json(p / "sweep.json")
            for entry in sweep.get("runs") or []:
                folder = p / str(entry.get("folder") or "")
                runs.append(read_run(folder, {**entry, "experiment": sweep.get("experiment"),
                                              "quick": sweep.get("quick", False)},
                                     str(sweep.get("experiment") or p.parent.name)))
        elif (p / "metadata.json").is_file():
            runs.append(read_run(p))
        else:
            raise ValueError(f"{p}: neither a sweep folder (no sweep.json) nor a run folder (no metadata.json): "
                             f"give results/<experiment>/<timestamp> folders written by a sweep or by "
                             f"`lambdaroute-testbed run`")
    # A run given both in its sweep and on its own counts once.
    unique: dict[Path, Run] = {}
    for r in runs:
        unique.setdefault(r.folder.resolve(), r)
    return list(unique.values())


# ----- F1: fairness -----

def jain(values: Sequence[float]) -> float:
    """Jain's index (Σx)² / (n Σx²): 1 when all equal, 1/n when one holds everything."""
    sq = sum(x * x for x in values)
    return sum(values) ** 2 / (len(values) * sq) if values and sq > 0 else math.nan


def _window(calls: Sequence[Call], times: list[float], start: float, end: float) -> Sequence[Call]:
    return calls[bisect.bisect_left(times, start):bisect.bisect_left(times, end)]


#: Round robin's active set: destinations whose weight is at most this times the smallest.
ACTIVE_FACTOR = 2.0


def fairness_windows(calls: Sequence[Call], duration: float, warmup: float = WARMUP_S,
                     min_computers: int = 2, min_calls: int = 10,
                     active_factor: float = ACTIVE_FACTOR) -> list[float]:
    """Jain's index of x_i / e_i per 1-s window [k, k+1) from ``warmup`` to ``duration``: x_i the
    computer's share of the window's answered calls, e_i its share of Σ 1/L_j (L its mean latency
    in the window), over the computers in round robin's active set: those with L at most
    ``active_factor`` times the window's smallest (the others only get a probe now and then, by
    design, and are not owed a share). Computers that answered in the previous window but not
    this one count with x_i = 0 and their previous latency. Windows with fewer than
    ``min_computers`` active or fewer than ``min_calls`` answered calls to them are skipped.
    ``calls`` sorted by time."""
    times = [c.time for c in calls]
    out = []
    previous: dict[str, float] = {}
    k = warmup
    while k + 1 <= duration + 1e-9:
        by: dict[str, list[float]] = defaultdict(list)
        for c in _window(calls, times, k, k + 1):
            if c.ok and c.responder:
                by[c.responder].append(c.latency)
        latency = {r: sum(v) / len(v) for r, v in by.items()}
        considered = {**previous, **latency}
        if considered:
            fastest = min(considered.values())
            considered = {r: lat for r, lat in considered.items() if lat <= active_factor * fastest}
        answered = sum(len(by.get(r, [])) for r in considered)
        if sum(1 for r in considered if r in by) >= min_computers and answered >= min_calls:
            inv = {r: 1 / max(lat, 1e-9) for r, lat in considered.items()}
            total = sum(inv.values())
            out.append(jain([(len(by.get(r, [])) / answered) / (inv[r] / total) for r in considered]))
        previous = latency
        k += 1
    return out


def router_windows(calls: Sequence[Call], duration: float) -> list[float]:
    """:func:`fairness_windows` of each router's calls on its own (every router runs its own
    policy over its own table: a split across routers is no policy's decision), all windows
    together. ``calls`` sorted by time."""
    by: dict[str, list[Call]] = defaultdict(list)
    for c in calls:
        by[c.router].append(c)
    return [j for router in sorted(by) for j in fairness_windows(by[router], duration)]


# ----- F2: adaptation -----

def share_series(calls: Sequence[Call], target: str, start: float, end: float,
                 width: float = 1.0, step: float = 0.25) -> list[tuple[float, float]]:
    """``(window centre, target's share of answered calls)`` for windows [s, s+width) stepped by
    ``step`` within [start, end]; windows without answers are left out."""
    times = [c.time for c in calls]
    out = []
    i = 0
    while start + i * step + width <= end + 1e-9:
        s = start + i * step
        ok = [c for c in _window(calls, times, s, s + width) if c.ok]
        if ok:
            out.append((s + width / 2, sum(1 for c in ok if c.responder == target) / len(ok)))
        i += 1
    return out


def steady_share(series: Sequence[tuple[float, float]], start: float, end: float,
                 width: float = 1.0) -> float | None:
    """Mean share over the windows lying wholly in [start, end]; None when there are none."""
    v = [s for t, s in series if t - width / 2 >= start - 1e-9 and t + width / 2 <= end + 1e-9]
    return sum(v) / len(v) if v else None


def adaptation_time(series: Sequence[tuple[float, float]], applied: float, old: float, new: float,
                    fraction: float = 0.8, hold: float = 2.0) -> float | None:
    """Seconds from ``applied`` to the first window centre after it where the share has moved at
    least ``fraction`` of the way from ``old`` to ``new`` and stays so for ``hold`` s; None: never."""
    after = [(t, (s - old) / (new - old)) for t, s in series if t > applied]
    for i, (t, moved) in enumerate(after):
        if moved >= fraction and all(m >= fraction for u, m in after[i:] if u <= t + hold + 1e-9):
            if after[-1][0] >= t + hold - 1e-9:  # the hold must be observed, not cut by the run's end
                return t - applied
    return None


@dataclass
class Adaptation:
    """F2 for one speed halving: ``status`` adapted | did not adapt | no change to measure | no baseline."""

    target: str
    applied: float
    old: float | None
    new: float | None
    seconds: float | None
    status: str


def speed_halvings(events: Iterable[dict[str, Any]]) -> list[tuple[float, str]]:
    """``(applied, target)`` of applied ``computer-speed`` events that halved the speed: their
    detail says ``speed factor 0.5 (live, no restart)`` or, from runs that restarted the
    computer, ``restarted with --speed-factor 0.5``."""
    out = []
    for e in events:
        m = re.search(r"(?:--speed-factor|\bspeed factor)\s+([0-9.eE+-]+)", str(e.get("detail") or ""))
        if e.get("kind") == "computer-speed" and e.get("applied") is not None and not e.get("error") \
                and m and abs(float(m.group(1)) - 0.5) < 1e-9:
            out.append((float(e["applied"]), str(e.get("target") or "")))
    return out


def adaptation(calls: Sequence[Call], duration: float, applied: float, target: str,
               min_change: float = 0.05) -> Adaptation:
    """F2 of one halving: old share over [applied-6, applied-1] (not before warm-up), new share
    over [duration-6, duration-1], then :func:`adaptation_time`."""
    series = share_series(calls, target, WARMUP_S, duration)
    old = steady_share(series, max(applied - 6, WARMUP_S), applied - 1)
    new = steady_share(series, max(duration - 6, applied), duration - 1)
    if old is None or new is None:
        return Adaptation(target, applied, old, new, None, "no baseline")
    if abs(new - old) < min_change:
        return Adaptation(target, applied, old, new, None, "no change to measure")
    seconds = adaptation_time(series, applied, old, new)
    return Adaptation(target, applied, old, new, seconds, "adapted" if seconds is not None else "did not adapt")


# ----- F3: congestion hook -----

def merge_intervals(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def episode_intervals(run: Run) -> list[tuple[float, float]]:
    """The congestion episode: the union of the run's background traffic [start, stop]."""
    return merge_intervals((a, min(b, run.duration_s) if math.isfinite(run.duration_s) else b)
                           for a, b in run.background)


def _inside(t: float, intervals: Sequence[tuple[float, float]]) -> bool:
    return any(a <= t < b for a, b in intervals)


def p95_in(calls: Iterable[Call], intervals: Sequence[tuple[float, float]]) -> tuple[float, int, int]:
    """``(p95 ms of answered calls sent in the intervals, calls, errors)``."""
    sent = [c for c in calls if _inside(c.time, intervals)]
    return percentile([c.latency for c in sent if c.ok], 95), len(sent), sum(1 for c in sent if not c.ok)


def shares_in(calls: Iterable[Call], intervals: Sequence[tuple[float, float]]) -> dict[str, float]:
    """Each computer's share of the answered calls sent in the intervals."""
    by: dict[str, int] = defaultdict(int)
    for c in calls:
        if c.ok and _inside(c.time, intervals):
            by[c.responder] += 1
    total = sum(by.values())
    return {r: n / total for r, n in sorted(by.items())} if total else {}


def first_congested(run: Run) -> tuple[float, str] | None:
    """When and on which link the monitor first reported ``congested``."""
    return next(((t, link) for t, link, event in sorted(run.congestion) if event == "congested"), None)


@dataclass
class F3Pair:
    """One (policy, seed) of F3: the three runs, the episode and the p95s in it (ms)."""

    policy: str
    seed: int
    baseline: Run
    on: Run
    off: Run
    episode: list[tuple[float, float]]
    p95: dict[str, float]  # baseline | on | off

    @property
    def ratio_on(self) -> float:
        return self.p95["on"] / self.p95["baseline"] if self.p95["baseline"] else math.nan

    @property
    def ratio_off(self) -> float:
        return self.p95["off"] / self.p95["baseline"] if self.p95["baseline"] else math.nan


def pair_congestion(runs: Iterable[Run]) -> list[F3Pair]:
    """Runs of one experiment with roles congestion-baseline/-hook-on/-hook-off, paired by
    (policy, seed); the episode comes from the hook-on run's background. Unpaired runs are left out."""
    by: dict[tuple[str, int], dict[str, Run]] = defaultdict(dict)
    for r in runs:
        if r.ok and r.role in ("congestion-baseline", "congestion-hook-on", "congestion-hook-off"):
            by[(r.policy, r.seed)][r.role.removeprefix("congestion-").removeprefix("hook-")] = r
    out = []
    for (policy, seed), three in sorted(by.items()):
        if len(three) == 3:
            episode = episode_intervals(three["on"])
            if episode:
                p95 = {k: p95_in(three[k].calls, episode)[0] for k in ("baseline", "on", "off")}
                out.append(F3Pair(policy, seed, three["baseline"], three["on"], three["off"], episode, p95))
    return out


# ----- the findings -----

@dataclass
class Finding:
    """One line of the findings table: ``status`` holds | does not hold | not measured | reported."""

    number: str
    status: str
    text: str
    notes: list[str] = field(default_factory=list)

    @property
    def line(self) -> str:
        return f"{self.number} {self.status}: {self.text}"


def ci_text(mean: float, half: float | None, n: int, fmt: str = "{:.2f}") -> str:
    """``1.23 ± 0.04 (95% CI, 3 seeds)`` or ``1.23 (1 seed, no interval)``."""
    if n == 0:
        return "-"
    if half is None:
        return fmt.format(mean) + " (1 seed, no interval)"
    return f"{fmt.format(mean)} ± {fmt.format(half)} (95% CI, {n} seeds)"


def _groups(runs: Iterable[Run], *keys: str) -> dict[tuple[Any, ...], list[Run]]:
    out: dict[tuple[Any, ...], list[Run]] = defaultdict(list)
    for r in runs:
        if r.ok:
            out[tuple(getattr(r, k) for k in keys)].append(r)
    return dict(sorted(out.items(), key=lambda kv: tuple(str(x) for x in kv[0])))


def _missing(what: str, runs: Sequence[Run]) -> str:
    quick = " (the sweeps read ran in quick mode, which may omit these variants)" if any(r.quick for r in runs) else ""
    return f"no runs {what}{quick}"


def fairness(runs: Iterable[Run]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per (experiment, variant, policy): F1's index over seeds: mean of the runs' means, the
    worst window, the windows counted and the seeds."""
    out = {}
    for (exp, variant, policy), group in _groups(runs, "experiment", "variant", "policy").items():
        per = [router_windows(r.calls, r.duration_s) for r in group]
        per = [w for w in per if w]
        out[(exp, variant, policy)] = {"mean": sum(sum(w) / len(w) for w in per) / len(per),
                                       "min": min(min(w) for w in per),
                                       "windows": sum(len(w) for w in per), "seeds": len(per)} if per else \
            {"windows": 0, "seeds": len(group)}
    return out


def f1(runs: Sequence[Run]) -> list[Finding]:
    """Round robin shares calls in proportion to 1/latency: Jain mean >= 0.99, min >= 0.95."""
    rr = [r for r in runs if r.ok and r.policy == "rr"]
    if not rr:
        return [Finding("F1", "not measured", _missing("with policy rr", runs))]
    table = fairness(rr)
    out = []
    for (exp, variant, policy), d in table.items():
        if not d["windows"]:
            out.append(Finding("F1", "not measured", f"no 1-s window after warm-up in which one router's calls "
                                                     f"reached >= 2 computers of its active set with >= 10 answers "
                                                     f"({policy}, {d['seeds']} seed{'s' * (d['seeds'] != 1)}, "
                                                     f"{exp}/{variant}: too few calls per router and second)"))
            continue
        holds = d["mean"] >= 0.99 and d["min"] >= 0.95
        out.append(Finding("F1", "holds" if holds else "does not hold",
                           f"Jain mean {d['mean']:.3f}, min {d['min']:.3f} over {d['windows']} windows "
                           f"({policy}, {d['seeds']} seed{'s' * (d['seeds'] != 1)}, {exp}/{variant}; "
                           f"target mean >= 0.99, min >= 0.95)"))
    return out or [Finding("F1", "not measured", "no rr run had a 1-s window after warm-up in which one router's "
                                                 "calls reached >= 2 computers of its active set with >= 10 "
                                                 "answers")]


def f2(runs: Sequence[Run]) -> list[Finding]:
    """After a computer's speed halves, its share settles within 5 s (rr, li, p2c; rp reported)."""
    out = []
    for (exp, variant, policy), group in _groups(runs, "experiment", "variant", "policy").items():
        pairs = [(r.seed, adaptation(r.calls, r.duration_s, applied, target))
                 for r in group for applied, target in speed_halvings(r.events)]
        if not pairs:
            continue
        results = [a for _, a in pairs]
        where = f"({policy}, {len(group)} seed{'s' * (len(group) != 1)}, {exp}/{variant})"
        done = [a for a in results if a.status in ("adapted", "did not adapt")]
        notes = [f"{exp}/{variant}, {policy}, seed {seed}: {a.target} halved at {a.applied:.1f} s; share "
                 f"{'-' if a.old is None else f'{a.old:.3f}'} -> {'-' if a.new is None else f'{a.new:.3f}'}; "
                 f"{a.status}{'' if a.seconds is None else f' in {a.seconds:.2f} s'}" for seed, a in pairs]
        if not done:
            why = results[0].status
            text = (f"{why}: the target's share moved less than 0.05 between the steady states before and "
                    f"after the halving, so there is no shift to time {where}" if why == "no change to measure"
                    else f"{why}: no windows with answers before or after the halving {where}")
            out.append(Finding("F2", "not measured", text, notes))
            continue
        times = [a.seconds for a in done if a.seconds is not None]
        failed = len(done) - len(times)
        mean = sum(times) / len(times) if times else math.nan
        text = (f"adapted in {mean:.2f} s mean, {max(times):.2f} s worst" if times else "did not adapt") + \
            f" ({len(times)} of {len(done)} halvings adapted) {where}"
        if policy == "rp":
            out.append(Finding("F2", "reported", text + "; no target for rp", notes))
        else:
            holds = not failed and max(times) <= 5.0
            out.append(Finding("F2", "holds" if holds else "does not hold", text + "; target <= 5 s", notes))
    return out or [Finding("F2", "not measured", _missing("with an applied computer-speed event halving "
                                                          "a computer's speed (factor 0.5)", runs))]


def f3(runs: Sequence[Run]) -> list[Finding]:
    """With the congestion hook p95 stays <= 1.2x the baseline's during the episode; without, >= 2x."""
    out = []
    for (exp,), group in _groups(runs, "experiment").items():
        by_policy: dict[str, list[F3Pair]] = defaultdict(list)
        for p in pair_congestion(group):
            by_policy[p.policy].append(p)
        for policy, pairs in by_policy.items():
            on, off = mean_ci(p.ratio_on for p in pairs), mean_ci(p.ratio_off for p in pairs)
            episode = ", ".join(f"{a:g}-{b:g} s" for a, b in pairs[0].episode)
            holds = on[0] <= 1.2 and off[0] >= 2.0
            text = (f"p95 in the episode ({episode}) hook on / baseline {ci_text(*on, fmt='{:.2f}x')}, hook off / "
                    f"baseline {ci_text(*off, fmt='{:.2f}x')} ({policy}, {exp}; targets on <= 1.2x, off >= 2x)")
            notes = []
            if not holds:
                for p in pairs:
                    for name in ("baseline", "on", "off"):
                        run = getattr(p, name)
                        p95, n, errors = p95_in(run.calls, p.episode)
                        first = first_congested(run)
                        shares = ", ".join(f"{c} {s:.0%}" for c, s in shares_in(run.calls, p.episode).items())
                        notes.append(f"{exp}, {policy}, seed {p.seed}, {name} ({run.variant}): p95 {p95:.1f} ms over {n} calls "
                                     f"({errors} errors) in the episode; shares {shares or '-'}; "
                                     + (f"first reported congested at {first[0]:.1f} s on {first[1]}" if first
                                        else "no congestion reported"))
            out.append(Finding("F3", "holds" if holds else "does not hold", text, notes))
    return out or [Finding("F3", "not measured", _missing("with roles congestion-baseline, congestion-hook-on and "
                                                          "congestion-hook-off paired by policy and seed, the "
                                                          "hook-on run with background traffic", runs))]


def _fig(group: Sequence[Run], key: str) -> list[float]:
    return [float(r.figures[key]) for r in group if r.figures and r.figures.get(key) is not None]


def f4(runs: Sequence[Run]) -> list[Finding]:
    """Two-tier tables are smaller than flat ones, with p50 within 1.1x of flat's."""
    out = []
    for (exp, policy), group in _groups(runs, "experiment", "policy").items():
        two = [r for r in group if r.role == "tables-two-tier"]
        flat = [r for r in group if r.role == "tables-flat"]
        if not two or not flat:
            continue
        m = {k: {n: mean_ci(_fig(g, k))[0] for n, g in (("two", two), ("flat", flat))}
             for k in ("entries_mean", "p50", "p99", "routers_per_call")}
        mx = {n: max(_fig(g, "entries_max"), default=math.nan) for n, g in (("two", two), ("flat", flat))}
        tables = {n: mean_ci(r.tables_s for r in g if r.tables_s is not None)[0]
                  for n, g in (("two", two), ("flat", flat))}
        e, p = m["entries_mean"], m["p50"]
        if not all(math.isfinite(x) for x in (*e.values(), *p.values())):
            out.append(Finding("F4", "not measured", f"tables-two-tier and tables-flat runs of {exp} ({policy}) "
                                                     "lack figures (entries, p50): their tables were not complete"))
            continue
        entries_ratio = e["flat"] / e["two"] if e["two"] else math.nan
        p50_ratio = p["two"] / p["flat"] if p["flat"] else math.nan
        holds = e["two"] < e["flat"] and p50_ratio <= 1.1
        out.append(Finding("F4", "holds" if holds else "does not hold",
                           f"entries per router two-tier {e['two']:.1f} mean (max {mx['two']:g}) vs flat "
                           f"{e['flat']:.1f} (max {mx['flat']:g}), flat / two-tier {entries_ratio:.2f}x; "
                           f"p50 two-tier / flat {p50_ratio:.2f}x ({p['two']:.2f} vs {p['flat']:.2f} ms); "
                           f"p99 {m['p99']['two']:.2f} vs {m['p99']['flat']:.2f} ms; tables in "
                           f"{tables['two']:.1f} vs {tables['flat']:.1f} s; routers per call "
                           f"{m['routers_per_call']['two']:.2f} vs {m['routers_per_call']['flat']:.2f} "
                           f"({policy}, {len(two)}+{len(flat)} runs, {exp}; target fewer entries, p50 <= 1.1x)"))
    return out or [Finding("F4", "not measured", _missing("with roles tables-two-tier and tables-flat in one experiment", runs))]


def findings(runs: Sequence[Run]) -> list[Finding]:
    return f1(runs) + f2(runs) + f3(runs) + f4(runs)
