"""The ``topo`` command: generate a scenario file and draw it.

    python -m lambdaroute topo grid 4 4 -o grid.yaml --png grid.png
    python -m lambdaroute topo aot-chicago -o aot.yaml --png aot.png
    python -m lambdaroute topo brite net.brite -o net.yaml
    python -m lambdaroute topo load scenario.yaml --png scenario.png   (check and draw a file)

(also installed as the ``lambdaroute-topo`` script). Errors print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lambdaroute import _native, topologies
from lambdaroute._native import ScenarioError
from lambdaroute.scenario import Scenario


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Generate a scenario file and draw its topology.")
    p.add_argument(
        "kind",
        choices=[*topologies.GENERATORS, "load"],
        help="topology generator, or `load` to check and draw an existing scenario file",
    )
    p.add_argument("args", nargs="*", help="sizes (line N, pods N, ring-tree RING FANOUT DEPTH, grid N M) or a file")
    p.add_argument("-o", "--output", help="scenario file to write (default: stdout unless --png is given)")
    p.add_argument("--png", help="draw the topology to this image")
    p.add_argument("--bw", type=float, help="link bandwidth, Mbit/s (default: unlimited)")
    p.add_argument("--delay", type=float, default=0.0, help="link delay, ms")
    p.add_argument("--routers", help="comma-separated switches that get a router")
    p.add_argument("--computers", help="comma-separated switches that get computers")
    p.add_argument("--controller", help="switch of the controller")
    p.add_argument("--preset", choices=_native.presets(), help="preset of every computer")
    p.add_argument("--endpoints-per-computer", type=int,
                   help="computers each computer host serves on consecutive ports (default 1)")
    p.add_argument("--no-bridge", action="store_true", help="aot-chicago: keep only the largest connected part")
    return p


def build(ns: argparse.Namespace) -> Scenario:
    """The scenario the parsed command line asks for."""
    placement = {
        k: v
        for k, v in {
            "routers": ns.routers.split(",") if ns.routers else None,
            "computers": ns.computers.split(",") if ns.computers else None,
            "controller": ns.controller,
            "preset": ns.preset,
            "endpoints_per_computer": ns.endpoints_per_computer,
        }.items()
        if v is not None
    }
    link = {"bw": ns.bw, "delay": ns.delay}
    if ns.kind == "load":
        if len(ns.args) != 1:
            raise SystemExit("topo load: expected one scenario file")
        return Scenario.load(ns.args[0])
    if ns.kind == "brite":
        if len(ns.args) != 1:
            raise SystemExit("topo brite: expected one BRITE file")
        return topologies.brite(ns.args[0], **placement)
    if ns.kind == "aot-chicago":
        return topologies.aot_chicago(bridge=not ns.no_bridge, **placement)
    try:
        sizes = [int(a) for a in ns.args]
    except ValueError:
        raise SystemExit(f"topo {ns.kind}: sizes must be integers, got {' '.join(ns.args)}") from None
    return topologies.GENERATORS[ns.kind](*sizes, **link, **placement)


def topo(argv: Sequence[str], prog: str = "python -m lambdaroute topo") -> int:
    ns = _parser(prog).parse_args(argv)
    try:
        scenario = build(ns)
    except (ScenarioError, OSError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if ns.output:
        scenario.save(ns.output)
    elif not ns.png:
        sys.stdout.write(scenario.to_yaml())
    if ns.png:
        from lambdaroute.draw import draw

        draw(scenario, ns.png)
    if ns.output or ns.png:
        written = " and ".join(x for x in (ns.output, ns.png) if x)
        print(f"{scenario.name}: {len(scenario.switches)} switches, {len(scenario.hosts)} hosts, "
              f"{len(scenario.links)} links -> {written}", file=sys.stderr)
    return 0


def topo_main() -> None:
    """Entry point of the ``lambdaroute-topo`` script."""
    sys.exit(topo(sys.argv[1:], prog="lambdaroute-topo"))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lambdaroute <command> ...``; commands: topo."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m lambdaroute topo KIND [ARGS] [-o FILE] [--png FILE]\n\n"
              "commands:\n  topo   generate a scenario file and draw its topology")
        return 0 if argv else 2
    if argv[0] == "topo":
        return topo(argv[1:])
    print(f"unknown command {argv[0]!r}; expected: topo", file=sys.stderr)
    return 2
