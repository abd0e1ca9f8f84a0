"""``lambdaroute-testbed``: run experiments in Mininet.

    lambdaroute-testbed run experiments/grid.yaml [--results DIR] [--delay auto|netem|nfqueue|none]
    lambdaroute-testbed compare RESULTS...  runs' figures side by side (Markdown)
    lambdaroute-testbed report RESULTS... [--out DIR]  the findings, tables and plots of sweeps and runs
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

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lambdaroute-testbed", description="Run lambdaroute experiments in Mininet.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run an experiment file")
    r.add_argument("experiment", help="experiment YAML (docs/experiment.md)")
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
        if ns.command == "clean":
            removed = cleanup.clean_stale()
            print("\n".join(removed) if removed else "nothing to clean")
            return 0
        from lambdaroute.testbed.run import run

        path = Path(ns.experiment)
        exp = load(path)
        if ns.duration is not None:
            exp = load(path, {**exp.raw, "duration": ns.duration})
        if ns.delay:
            exp.delay = ns.delay
        run(exp, progress=not ns.no_progress, results=Path(ns.results) if ns.results else None)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130
    except (ExperimentError, ScenarioError, FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"lambdaroute-testbed: {e}", file=sys.stderr)
        return 2


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
