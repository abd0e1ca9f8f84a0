"""Array of Things traces: read a digest's ``data.csv[.gz]``, generate one, see which nodes feed
which site (docs/traces.md).

The work is done in Rust (crate ``lambdaroute-trace``, through ``lambdaroute._native``); this
module gives it Python types:

- :func:`read` streams the samples of a digest (never the whole file), filtered by window,
  nodes and sensors; :class:`Reader` also gives the counts (``stats()``: rows, unknown node ids);
- :func:`generate` writes a digest in the published format, deterministic by seed;
- :func:`sites` lists the sites of the 0.010-degree merge rule with the nodes merged into each;
  ``Scenario.aot_sites()`` gives them per switch of a scenario;
- :func:`write_schedules` writes the per-client schedules of a scenario's ``pattern: aot``
  workloads, reading each trace once (what the testbed does before a run).

Errors raise :class:`TraceError` (a ``ValueError``) whose message names the file, the line and
the field.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lambdaroute import _native
from lambdaroute._native import TraceError
from lambdaroute.scenario import Scenario

__all__ = ["Sample", "Reader", "read", "generate", "Site", "sites", "write_schedules", "TraceError"]


@dataclass(frozen=True)
class Sample:
    """One row of ``data.csv``; missing values (``NA``) are None."""

    timestamp: str
    unix: int
    node_id: str
    subsystem: str
    sensor: str
    parameter: str
    value_raw: str | None
    value_hrf: str | None
    line: int


class Reader:
    """Streams the samples of ``path`` (``data.csv`` or ``data.csv.gz``).

    ``start``/``stop``: a UTC timestamp ``YYYY/MM/DD HH:MM:SS`` or seconds after the first row
    (the stop is excluded and ends the reading); ``nodes``: node ids or vsns; ``sensors``:
    ``subsystem``, ``subsystem.sensor`` or ``subsystem.sensor.parameter``. Rows of node ids the
    shipped ``data/aot/nodes.csv`` does not know are skipped and counted in :meth:`stats`.
    """

    def __init__(self, path: str | os.PathLike[str], *, start: str | float | None = None,
                 stop: str | float | None = None, nodes: list[str] | None = None,
                 sensors: list[str] | None = None) -> None:
        self._native = _native.AotReader(os.fspath(path), start=start, stop=stop, nodes=nodes, sensors=sensors)

    def __iter__(self) -> Iterator[Sample]:
        for row in self._native:
            yield Sample(*row)

    def stats(self) -> dict[str, Any]:
        """Rows read, samples kept, unknown rows and ids (``unknown_nodes``: id -> rows), first
        and last timestamp, whether the reading stopped at the window's end."""
        return dict(self._native.stats())


def read(path: str | os.PathLike[str], **filters: Any) -> Iterator[Sample]:
    """The samples of ``path``, streamed; ``filters`` as :class:`Reader`'s."""
    return iter(Reader(path, **filters))


def generate(path: str | os.PathLike[str], *, hours: float = 2.0, start: str | None = None, seed: int = 1,
             sensors: list[str] | None = None, level: int = 6) -> dict[str, int]:
    """Writes a generated digest to ``path`` (gzip when it ends in ``.gz``), as ``lambdaroute
    trace aot generate`` does; returns rows, bytes (of CSV), nodes and dropouts."""
    return dict(_native.aot_generate(os.fspath(path), hours=hours, start=start, seed=seed, sensors=sensors,
                                     level=level))


@dataclass(frozen=True)
class Site:
    """A node kept by the merge rule (a switch of the AoT scenario) and its member nodes (the
    kept one first, then those within 0.010 degrees merged into it)."""

    node_id: str
    vsn: str
    lat: float
    lon: float
    members: tuple[str, ...]


def sites() -> list[Site]:
    """The sites of the shipped ``data/aot/nodes.csv``, in the order the AoT generator makes
    their switches (``s1``, ``s2``, ...)."""
    return [Site(n, v, lat, lon, tuple(m)) for n, v, lat, lon, m in _native.aot_site_members()]


def write_schedules(scenario: Scenario, base: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Writes the schedule of every ``pattern: aot`` workload of ``scenario`` to
    ``out/<client>-<index>.csv`` (trace paths relative to ``base``); returns ``{"files": [...],
    "traces": [...]}`` with the calls of each and what was read of each trace."""
    return scenario.write_schedules(base, out)
