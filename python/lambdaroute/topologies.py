"""Generators of the papers' topologies (docs/scenario.md, "Generators") and the BRITE importer.

Every generator returns a :class:`~lambdaroute.Scenario` and takes keyword arguments for the
links (``bw`` Mbit/s or None, ``delay`` ms, ``loss`` %, ``queue`` packets) and for role placement
(``routers``, ``computers``: lists of switch names; ``controller``: a switch name; ``preset``;
``clients_per_router``; ``computers_per_switch``; ``endpoints_per_computer``, the computers one
host serves on consecutive ports). Without them, roles go where the papers put
them. Switches are named ``s1``, ``s2``, ...
"""

from __future__ import annotations

import os
from typing import Any

from lambdaroute import _native
from lambdaroute.scenario import Scenario

__all__ = ["line", "pods", "ring_tree", "grid", "aot_chicago", "aot_nodes", "brite", "GENERATORS"]


def line(n: int, **options: Any) -> Scenario:
    """``n`` switches in a chain; a router at the far edge, computers all along the line."""
    return Scenario(_native.line(n, **options))


def pods(n: int, **options: Any) -> Scenario:
    """``n`` rings of ``n`` switches plus a middle ring: n(n+1) switches."""
    return Scenario(_native.pods(n, **options))


def ring_tree(ring: int = 4, fanout: int = 2, depth: int = 2, **options: Any) -> Scenario:
    """An inner ring with outer trees; ON/OFF clients at the leaves, background traffic."""
    return Scenario(_native.ring_tree(ring, fanout, depth, **options))


def grid(n: int, m: int, **options: Any) -> Scenario:
    """An ``n`` x ``m`` grid: clients on external nodes, computers in the core, a NAT gateway."""
    return Scenario(_native.grid(n, m, **options))


def aot_chicago(*, bridge: bool = True, csv_path: str | os.PathLike[str] | None = None, **options: Any) -> Scenario:
    """The Array of Things (Chicago) from the shipped ``nodes.csv`` (or ``csv_path``).

    The node list has disconnected parts: ``bridge=True`` joins each to the rest through its
    closest pair of nodes, ``bridge=False`` keeps only the largest. The description says which.
    """
    text = None
    if csv_path is not None:
        with open(csv_path, encoding="utf-8") as f:
            text = f.read()
    return Scenario(_native.aot_chicago(bridge=bridge, csv_text=text, **options))


def aot_nodes() -> list[tuple[str, float, float]]:
    """The AoT nodes kept by the 0.010-degree merge rule: ``(vsn, lat, lon)``."""
    return _native.aot_nodes()


def brite(path: str | os.PathLike[str], **options: Any) -> Scenario:
    """Imports a BRITE topology file (delays in ms, bandwidths in Mbit/s)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return Scenario(_native.brite(text, os.fspath(path), **options))


#: Name -> generator, for the command line.
GENERATORS = {
    "line": line,
    "pods": pods,
    "ring-tree": ring_tree,
    "grid": grid,
    "aot-chicago": aot_chicago,
    "brite": brite,
}
