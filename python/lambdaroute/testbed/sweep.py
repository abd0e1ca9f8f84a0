"""Sweeps: one experiment file run over variants, policies and seeds (docs/experiment.md, "Sweeps").

An experiment file with a ``sweep`` section is many runs: every variant (a named set of more
overrides and settings), times every policy, times every seed; ``quick`` says what a short
version changes (``--quick``, ``make experiments QUICK=1``). :func:`plan` expands a file into
its runs, each an :class:`~lambdaroute.testbed.experiment.Experiment` checked before anything
starts, so a typo in the last variant fails in a second, not after an hour of runs;
:func:`run_sweep` runs them in order into ``<results>/<name>/<timestamp>/<variant>/<policy>-s<seed>/``
and keeps ``sweep.json`` there up to date after every run. A run that fails is recorded with
its error and the sweep goes on; an interrupt stops it, with what is done kept.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from lambdaroute.testbed.experiment import Experiment, ExperimentError, load, read_yaml_file

__all__ = ["SweepRun", "Sweep", "plan", "run_sweep", "POLICIES", "ROLES"]

#: The policies' short names, in the order the papers list them.
POLICIES = ["rp", "li", "rr", "p2c", "pf"]
_LONG = {"random-proportional": "rp", "least-impedance": "li", "round-robin": "rr", "power-of-two": "p2c",
         "proportional-fairness": "pf"}
#: Roles a variant can play in the report's findings (docs/experiments.md).
ROLES = {"congestion-baseline", "congestion-hook-on", "congestion-hook-off", "tables-two-tier", "tables-flat"}
SWEEP_KEYS = {"policies", "seeds", "variants"}
VARIANT_KEYS = {"overrides", "options", "role", "policies", "seeds", "quick", "description", "delay", "tables", "monitor", "grace",
                "metrics"}
QUICK_KEYS = {"duration", "seeds", "policies"}


@dataclass
class SweepRun:
    variant: str
    role: str | None
    policy: str
    seed: int
    experiment: Experiment

    @property
    def folder(self) -> str:
        return f"{self.variant}/{self.policy}-s{self.seed}"


@dataclass
class Sweep:
    name: str
    description: str
    source: Path
    quick: bool
    runs: list[SweepRun] = field(default_factory=list)


def _policy(name: Any, where: str) -> str:
    base, colon, params = str(name).partition(":")
    short = _LONG.get(base, base) + colon + params
    if short not in POLICIES and not (short.startswith("pf:") and _pf_params(params)):
        raise ExperimentError(f"{where}: policy `{name}`: expected one of {', '.join(POLICIES)} (or their long names)")
    return short


def _pf_params(params: str) -> bool:
    """Whether ``params`` is proportional fairness's ``alpha:beta`` (two numbers >= 0)."""
    try:
        return len(values := [float(v) for v in params.split(":")]) == 2 and all(v >= 0 for v in values)
    except ValueError:
        return False


def _list(value: Any, where: str, kind: type) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, kind) and not isinstance(i, bool) for i in items):
        raise ExperimentError(f"{where}: expected a non-empty list of {kind.__name__}s, found `{value}`")
    return items


def _only(keys: set[str], allowed: set[str], where: str) -> None:
    unknown = keys - allowed
    if unknown:
        raise ExperimentError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(allowed))}")


def plan(path: str | Path, quick: bool = False, policies: Sequence[str] | None = None,
         seeds: Sequence[int] | None = None, variants: Sequence[str] | None = None,
         duration: float | None = None) -> Sweep:
    """The runs of the experiment file at ``path``: its ``sweep`` (or the file as one variant,
    one policy and one seed), restricted to ``policies``, ``seeds`` and ``variants`` when given,
    shortened by its ``quick`` section when ``quick``, every run ``duration`` s long when given. Every run's scenario is built and
    validated here."""
    path = Path(path)
    where = str(path)
    try:
        data = read_yaml_file(path) or {}
    except yaml.YAMLError as e:
        raise ExperimentError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ExperimentError(f"{where}: expected a mapping of experiment keys")
    spec = data.get("sweep") or {}
    if not isinstance(spec, dict):
        raise ExperimentError(f"{where}: sweep: expected a mapping with policies, seeds, variants")
    _only(set(spec), SWEEP_KEYS, f"{where}: sweep")
    short = data.get("quick") or {}
    if not isinstance(short, dict):
        raise ExperimentError(f"{where}: quick: expected a mapping with duration, seeds, policies")
    _only(set(short), QUICK_KEYS, f"{where}: quick")
    base = {k: v for k, v in data.items() if k not in ("sweep", "quick")}
    # The file without its sweep: its own policy and seed are the defaults.
    plain = load(path, base)
    name = plain.name
    all_policies = [_policy(p, f"{where}: sweep.policies") for p in _list(spec["policies"], f"{where}: sweep.policies", str)] \
        if "policies" in spec else [_policy(plain.scenario.control.get("policy", "rr"), where)]
    all_seeds = _list(spec["seeds"], f"{where}: sweep.seeds", int) if "seeds" in spec else [plain.scenario.seed]
    declared = spec.get("variants") or {"default": {}}
    if not isinstance(declared, dict):
        raise ExperimentError(f"{where}: sweep.variants: expected a mapping of variant names to their settings")
    if variants:
        missing = [v for v in variants if v not in declared]
        if missing:
            raise ExperimentError(f"{where}: no variant(s) {', '.join(missing)}; the file has {', '.join(declared)}")
    wanted_policies = [_policy(p, "--policies") for p in policies] if policies else None
    sweep = Sweep(name, str(data.get("description", "")), path, quick)
    for variant, vspec in declared.items():
        at = f"{where}: sweep.variants.{variant}"
        vspec = vspec or {}
        if not isinstance(vspec, dict):
            raise ExperimentError(f"{at}: expected a mapping of {', '.join(sorted(VARIANT_KEYS))}")
        _only(set(vspec), VARIANT_KEYS, at)
        role = vspec.get("role")
        if role is not None and role not in ROLES:
            raise ExperimentError(f"{at}.role: `{role}`: expected one of {', '.join(sorted(ROLES))}")
        v_policies = [_policy(p, f"{at}.policies") for p in _list(vspec["policies"], f"{at}.policies", str)] \
            if "policies" in vspec else all_policies
        v_seeds = _list(vspec["seeds"], f"{at}.seeds", int) if "seeds" in vspec else all_seeds
        if quick:
            if vspec.get("quick", True) is False:
                continue
            if "policies" in short:
                v_policies = [p for p in v_policies if p in
                              {_policy(q, f"{where}: quick.policies") for q in _list(short["policies"], f"{where}: quick.policies", str)}]
            if "seeds" in short:
                v_seeds = [s for s in v_seeds if s in _list(short["seeds"], f"{where}: quick.seeds", int)] or v_seeds[:1]
        if variants and variant not in variants:
            continue
        if wanted_policies is not None:
            v_policies = [p for p in v_policies if p in wanted_policies]
        if seeds:
            v_seeds = [s for s in v_seeds if s in seeds]
        settings = {k: vspec[k] for k in ("delay", "tables", "grace", "metrics") if k in vspec}
        if "options" in vspec:
            if "generator" not in data:
                raise ExperimentError(f"{at}.options: generator options need `generator:` (this file names a scenario)")
            settings["options"] = {**(data.get("options") or {}), **(vspec["options"] or {})}
        if "monitor" in vspec:
            settings["monitor"] = {**(data.get("monitor") or {}), **vspec["monitor"]}
        for policy in v_policies:
            for seed in v_seeds:
                layers: list[tuple[str, dict[str, Any]]] = [(f"{at}.overrides", vspec.get("overrides") or {})]
                run_changes: dict[str, Any] = {"control": {"policy": policy}, "seed": seed}
                if quick and "duration" in short:
                    run_changes["duration"] = short["duration"]
                if duration is not None:
                    run_changes["duration"] = duration
                layers.append((f"{where} (policy {policy}, seed {seed})", run_changes))
                exp = load(path, {**base, **settings}, layers)
                exp.name = name
                if vspec.get("description"):
                    exp.description = f"{exp.description} ({vspec['description']})" if exp.description else vspec["description"]
                exp.labels = {"experiment": name, "variant": variant, "role": role, "policy": policy, "seed": seed,
                              "quick": quick}
                sweep.runs.append(SweepRun(variant, role, policy, seed, exp))
    if not sweep.runs:
        raise ExperimentError(f"{where}: no runs left after the restrictions (policies, seeds, variants, quick)")
    return sweep


def _one_line(result: Any) -> str:
    figures = result.metadata.get("figures") or {}
    if not figures:
        return f"{len(result.calls)} calls"
    return (f"{figures['calls']} calls, {figures['errors']} errors, p50 {figures['p50']:.1f} ms, "
            f"p95 {figures['p95']:.1f} ms")


def run_sweep(sweep: Sweep, results: Path | None = None, stream: TextIO = sys.stderr,
              progress: bool = True) -> tuple[Path, list[dict[str, Any]]]:
    """Runs every run of ``sweep`` in order; returns the sweep folder and its runs' records
    (``sweep.json``'s ``runs``: variant, role, policy, seed, folder, ok, error, wall_s)."""
    from lambdaroute.testbed.run import run

    root = results or sweep.runs[0].experiment.results
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    top = root / sweep.name / stamp
    n = 1
    while top.exists():
        n += 1
        top = root / sweep.name / f"{stamp}-{n}"
    top.mkdir(parents=True)
    records: list[dict[str, Any]] = []
    document = {"experiment": sweep.name, "description": sweep.description, "source": str(sweep.source),
                "quick": sweep.quick, "started": datetime.now().isoformat(timespec="seconds"), "runs": records}

    def save() -> None:
        (top / "sweep.json").write_text(json.dumps(document, indent=2), encoding="utf-8")

    save()
    stream.write(f"lambdaroute-testbed: sweep {sweep.name}, {len(sweep.runs)} runs{' (quick)' if sweep.quick else ''} "
                 f"-> {top}\n")
    t_sweep = time.monotonic()
    for i, r in enumerate(sweep.runs, 1):
        record: dict[str, Any] = {"variant": r.variant, "role": r.role, "policy": r.policy, "seed": r.seed,
                                  "folder": r.folder, "ok": False, "error": None, "wall_s": None}
        records.append(record)
        stream.write(f"\n[{i}/{len(sweep.runs)}] {sweep.name}: variant {r.variant}, policy {r.policy}, seed {r.seed}\n")
        t = time.monotonic()
        try:
            result = run(r.experiment, stream=stream, progress=progress, folder=top / r.folder)
            record["ok"] = "error" not in result.metadata
            line = _one_line(result)
        except KeyboardInterrupt:
            record["error"] = "interrupted"
            save()
            raise
        except Exception as e:  # one failed run does not lose the others: recorded, and the sweep goes on
            record["error"] = f"{type(e).__name__}: {e}"
            line = f"FAILED: {record['error']}"
        record["wall_s"] = round(time.monotonic() - t, 1)
        save()
        stream.write(f"[{i}/{len(sweep.runs)}] {r.variant} {r.policy} seed {r.seed}: {line} ({record['wall_s']:.0f} s)\n")
    failed = [r for r in records if not r["ok"]]
    stream.write(f"\nsweep {sweep.name}: {len(records) - len(failed)} of {len(records)} runs ok in "
                 f"{time.monotonic() - t_sweep:.0f} s -> {top}\n")
    return top, records
