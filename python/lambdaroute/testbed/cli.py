"""``lambdaroute-testbed``: run experiments in Mininet.

    lambdaroute-testbed run experiments/grid.yaml [--results DIR] [--delay auto|netem|nfqueue|none]
    lambdaroute-testbed run experiments/paper/*.yaml [--quick] [--policies rr,li] [--seeds 1,2]
                        [--variants a,b] [--report]   sweeps: variants x policies x seeds, then the report
    lambdaroute-testbed compare RESULTS...  runs' figures side by side (Markdown)
    lambdaroute-testbed report RESULTS... [--out DIR]  the findings, tables and plots of sweeps and runs
    lambdaroute-testbed faults RESULTS...   each run's faults: calls lost, time to recover (faults.csv)
    lambdaroute-testbed clean        remove what runs killed without cleanup left behind (only theirs)
    lambdaroute-testbed features     show what this kernel offers the testbed

Needs root. Errors print one line and exit 2; an interrupted run cleans up and exits 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _seeds(text: str) -> list[int]:
    try:
        return [int(t) for t in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}`: expected seeds as integers, comma-separated (1,2,3)") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lambdaroute-testbed", description="Run lambdaroute experiments in Mininet.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run an experiment file")
    r.add_argument("experiment", nargs="+", help="experiment YAML (docs/experiment.md); several run one after the other")
    r.add_argument("--quick", action="store_true", help="the short version of each sweep (its `quick` section)")
    r.add_argument("--policies", type=_names, help="only these policies, comma-separated (rp,li,rr,p2c,pf); makes a sweep")
    r.add_argument("--seeds", type=_seeds, help="only these seeds, comma-separated; makes a sweep")
    r.add_argument("--variants", type=_names, help="only these variants of the sweep, comma-separated")
    r.add_argument("--report", action="store_true", help="then `report` over the sweeps run")
    r.add_argument("--results", help="results root (default: the experiment's `results`, else ./results)")
    r.add_argument("--delay", choices=["auto", "netem", "nfqueue", "none"], help="override the delay mechanism")
    r.add_argument("--duration", type=float, help="override the scenario's duration, s")
    r.add_argument("--no-progress", action="store_true", help="no progress line")
    r.add_argument("-v", "--verbose", action="store_true", help="log what the testbed does")
    c = sub.add_parser("compare", help="set runs' figures side by side, as a Markdown table")
    c.add_argument("results", nargs="+", help="result folders (results/<experiment>/<time>)")
    rep = sub.add_parser("report", help="report.md/.html and plots of sweep or run folders, with the findings")
    rep.add_argument("results", nargs="+", help="sweep folders (with sweep.json) or run folders (metadata.json)")
    rep.add_argument("--out", help="output folder (default: results/report/<timestamp>)")
    fl = sub.add_parser("faults", help="each run's faults (events.csv): calls lost, time to recover, latency "
                                       "during, as a Markdown table; (re)writes the run's faults.csv")
    fl.add_argument("results", nargs="+", help="result folders (results/<experiment>/<time>)")
    sub.add_parser("clean", help="remove leftovers of runs that died without cleaning up")
    sub.add_parser("features", help="show the kernel features the testbed would use")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(ns, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from lambdaroute._native import ScenarioError
    from lambdaroute.testbed import cleanup, features
    from lambdaroute.testbed.experiment import ExperimentError, load

    try:
        if ns.command == "features":
            print(features.detect().as_dict())
            return 0
        if ns.command == "compare":
            print(compare(ns.results), end="")
            return 0
        if ns.command == "report":
            from lambdaroute.testbed.document import write_report

            path, found = write_report([Path(p) for p in ns.results], Path(ns.out) if ns.out else None)
            print("".join(f.line + "\n" for f in found) + str(path))
            return 0
        if ns.command == "faults":
            from lambdaroute.testbed.faults import format_table, from_results

            for folder in ns.results:
                if not (Path(folder) / "metadata.json").is_file():
                    raise ValueError(f"{folder}: no metadata.json: give a result folder of `lambdaroute-testbed run`")
                print(f"{folder}:\n{format_table(from_results(Path(folder)))}")
            return 0
        if ns.command == "clean":
            removed = cleanup.clean_stale()
            print("\n".join(removed) if removed else "nothing to clean")
            return 0
        return _run(ns)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130
    except (ExperimentError, ScenarioError, FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"lambdaroute-testbed: {e}", file=sys.stderr)
        return 2


def _run(ns: argparse.Namespace) -> int:
    """``run``: single experiments as they are; sweeps (a ``sweep`` section, or any of
    ``--quick``, ``--policies``, ``--seeds``, ``--variants``) run by run. Every file is checked
    before the first run starts. Exit 1 when a sweep's run failed (after the report)."""
    import yaml

    from lambdaroute.testbed.experiment import load, read_yaml_file
    from lambdaroute.testbed.run import run
    from lambdaroute.testbed.sweep import plan, run_sweep

    results = Path(ns.results) if ns.results else None
    restricted = ns.quick or ns.policies or ns.seeds or ns.variants
    jobs: list[Any] = []
    for file in ns.experiment:
        path = Path(file)
        try:
            is_sweep = "sweep" in (read_yaml_file(path) or {})
        except (yaml.YAMLError, AttributeError, TypeError, ValueError):
            is_sweep = False  # load() says what is wrong with it
        if is_sweep or restricted:
            sweep = plan(path, ns.quick, ns.policies, ns.seeds, ns.variants, ns.duration)
            for r in sweep.runs:
                r.experiment.delay = ns.delay or r.experiment.delay
            jobs.append(sweep)
        else:
            jobs.append(_adjust(load(path), ns, path))
    folders: list[str] = []
    failed = 0
    from lambdaroute.testbed.sweep import Sweep

    for job in jobs:
        if isinstance(job, Sweep):
            top, records = run_sweep(job, results, progress=not ns.no_progress)
            folders.append(str(top))
            failed += sum(1 for r in records if not r["ok"])
        else:
            folders.append(str(run(job, progress=not ns.no_progress, results=results).out))
    if ns.report:
        code = main(["report", *folders] + (["--out", str(results / "report")] if results else []))
        if code:
            return code
    if failed:
        print(f"lambdaroute-testbed: {failed} run(s) failed: see sweep.json in {', '.join(folders)}", file=sys.stderr)
        return 1
    return 0


def _adjust(exp: Any, ns: argparse.Namespace, path: Path) -> Any:
    """``--duration`` and ``--delay`` applied to a single experiment."""
    from lambdaroute.testbed.experiment import load

    if ns.duration is not None:
        exp = load(path, {**exp.raw, "duration": ns.duration})
    if ns.delay:
        exp.delay = ns.delay
    return exp


def compare(folders: Sequence[str]) -> str:
    """The figures of each run folder's ``metadata.json`` side by side, labelled by experiment
    (and folder when an experiment is there twice)."""
    import json

    from lambdaroute.testbed.report import format_comparison

    runs = []
    for folder in folders:
        path = Path(folder) / "metadata.json"
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{path}: no such file: give a result folder of `lambdaroute-testbed run`") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not JSON ({e})") from None
        if "figures" not in meta:
            raise ValueError(f"{path}: no figures (the run ended before its tables were complete: see its error)")
        runs.append((str(meta.get("experiment", folder)), meta["figures"], folder))
    labels = [label for label, _, _ in runs]
    return format_comparison([(f"{label} ({Path(folder).name})" if labels.count(label) > 1 else label, figures)
                              for label, figures, folder in runs])


if __name__ == "__main__":
    sys.exit(main())
