"""The :class:`Scenario` class and the plain records it hands out.

A scenario is immutable: load it (:meth:`Scenario.load`), parse it (:meth:`Scenario.from_yaml`),
build it in Python (:class:`lambdaroute.ScenarioBuilder`, through :meth:`Scenario.from_data`)
or generate it (:mod:`lambdaroute.topologies`), then read it. Records are frozen dataclasses
built once from the native module's answers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from lambdaroute import _native


@dataclass(frozen=True)
class Switch:
    """An OpenFlow switch; ``ports`` maps port number to the switch or host behind it."""

    name: str
    position: tuple[float, float] | None
    ports: dict[int, str]


@dataclass(frozen=True)
class Shaping:
    """How a link is shaped: ``bw`` Mbit/s (None: unlimited), ``delay`` ms, ``loss`` %,
    ``queue`` packets (None: the default queue)."""

    bw: float | None = None
    delay: float = 0.0
    loss: float = 0.0
    queue: int | None = None


@dataclass(frozen=True)
class Host:
    """A host with one interface on ``switch`` port ``port``.

    ``role`` is one of router, computer, controller, client, traffic-source, traffic-sink, nat.
    ``link`` is the shaping of its access link; ``computer`` the computer's preset and overrides
    (None for other roles).
    """

    name: str
    switch: str
    role: str
    ip: str
    mac: str
    port: int
    link: Shaping
    computer: dict[str, Any] | None


@dataclass(frozen=True)
class Link:
    """A switch-to-switch link named ``a-b``, with its ports at each end."""

    name: str
    a: str
    b: str
    port_a: int
    port_b: int
    bw: float | None
    delay: float
    loss: float
    queue: int | None

    @property
    def shaping(self) -> Shaping:
        """The link's shaping, as a host's access link has it."""
        return Shaping(bw=self.bw, delay=self.delay, loss=self.loss, queue=self.queue)


@dataclass(frozen=True)
class FlowEntry:
    """A static flow entry: packets of ``kind`` (ip or arp) for ``ip`` go out of ``out_port``."""

    kind: str
    ip: str
    out_port: int
    host: str
    ofctl: str


@dataclass(frozen=True)
class Workload:
    """Calls a client sends to a router; pattern parameters in ``params``."""

    client: str
    router: str
    lambda_: str
    pattern: str
    size: tuple[int, int]
    start: float
    stop: float | None
    params: dict[str, Any]
    #: Image files sent in turn instead of ``size`` bytes of text (docs/scenario.md).
    images: tuple[str, ...] = ()
    #: With images: the lambda called once per object found (e.g. ``eyerec0``).
    eyes: str | None = None
    #: Routers the client fails over to, in order, when ``router`` cannot be reached.
    fallback: tuple[str, ...] = ()
    #: ``grpc`` (the router's gRPC service) or ``openwhisk`` (OpenWhisk's REST API through a
    #: gateway on the router's host; docs/openwhisk.md).
    api: str = "grpc"


@dataclass(frozen=True)
class External:
    """A computer the testbed runs outside the emulated network, reached through the NAT
    gateway at its ``port``; ``computer`` as a host's (``executor``, ``preset``, ...)."""

    name: str
    computer: dict[str, Any]
    port: int


@dataclass(frozen=True)
class Event:
    """A change during the run at ``at`` s: ``kind`` is one of computer-speed, computer-load,
    computer-stop, computer-start, computer-freeze, computer-thaw, link-down, link-up, link-set, router-restart; ``host`` (a
    computer or a router) or ``link`` (``a-b``) says what it acts on; ``factor`` or ``speed``
    (ops/s per core) the new speed of a computer-speed; ``load`` (0 <= load < 1, the fraction of
    its cores other work takes) the background load of a computer-load; ``bw`` (Mbit/s) and/or
    ``delay`` (ms) the new shaping of a link-set."""

    at: float
    kind: str
    host: str | None = None
    link: str | None = None
    factor: float | None = None
    speed: float | None = None
    load: float | None = None
    bw: float | None = None
    delay: float | None = None


@dataclass(frozen=True)
class Path:
    """The switch links between a router and a computer, in order."""

    router: str
    computer: str
    links: tuple[str, ...]


class Scenario:
    """A validated scenario and its network."""

    def __init__(self, native: _native.Scenario) -> None:
        self._native = native

    # ----- making one -----

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Scenario:
        """Reads and validates a scenario file; raises :class:`ScenarioError`."""
        return cls(_native.Scenario.load(os.fspath(path)))

    @classmethod
    def from_yaml(cls, text: str, file_name: str = "<string>") -> Scenario:
        """Parses and validates scenario text; ``file_name`` names it in errors."""
        return cls(_native.Scenario.from_yaml(text, file_name))

    @classmethod
    def from_data(cls, data: dict[str, Any], source: str = "<data>") -> Scenario:
        """Validates a scenario given as plain data shaped like a scenario file (dicts, lists,
        strings, numbers, booleans, None), with exactly the checks of files. An error's message
        is ``FIELD: MESSAGE``; the :class:`ScenarioError` has ``field`` (e.g. ``links[0].bw``)
        and ``message`` attributes."""
        return cls(_native.Scenario.from_data(data, source))

    def to_yaml(self) -> str:
        """The scenario as YAML (reads back as an equal scenario)."""
        return self._native.to_yaml()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`to_yaml` to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_yaml())

    # ----- what it says -----

    @property
    def name(self) -> str:
        return self._native.name

    @property
    def description(self) -> str:
        return self._native.description

    @property
    def duration(self) -> float:
        """Length of the run, s."""
        return self._native.duration

    @property
    def seed(self) -> int:
        return self._native.seed

    @property
    def coordinates(self) -> str:
        """``plane`` or ``geo`` (positions are longitude, latitude)."""
        return self._native.coordinates

    @cached_property
    def control(self) -> dict[str, Any]:
        """Policy, estimator, installer, routing and congestion threshold.

        ``policy`` and ``estimator`` are core's canonical forms, as the router's ``--policy`` and
        ``--estimator`` read them (``rr``, ``ewma:0.95``, ``periodic:5:min``, ``peak-ewma:10``);
        ``estimator_name`` is the estimator alone and ``alpha``/``period``/``stat``/``decay`` its
        parameters."""
        return dict(self._native.control())

    @cached_property
    def switches(self) -> list[Switch]:
        return [
            Switch(name=d["name"], position=d["position"], ports={n: peer for n, peer in d["ports"]})
            for d in self._native.switches()
        ]

    @cached_property
    def hosts(self) -> list[Host]:
        return [Host(**{**d, "link": Shaping(**d["link"])}) for d in self._native.hosts()]

    @cached_property
    def links(self) -> list[Link]:
        return [Link(**d) for d in self._native.links()]

    @cached_property
    def workloads(self) -> list[Workload]:
        out = []
        for d in self._native.workloads():
            common = {k: d.pop(k) for k in ("client", "router", "pattern", "size", "start", "stop")}
            images, eyes = tuple(d.pop("images", ())), d.pop("eyes", None)
            fallback = tuple(d.pop("fallback", ()))
            api = d.pop("api", "grpc")
            out.append(Workload(lambda_=d.pop("lambda"), params=d, images=images, eyes=eyes, fallback=fallback,
                                api=api, **common))
        return out

    @cached_property
    def external(self) -> list[External]:
        """Computers the testbed runs outside the emulated network (docs/scenario.md)."""
        return [External(**d) for d in self._native.external()]

    def external_computer(self, name: str) -> External:
        """The external computer called ``name``; raises :class:`KeyError`."""
        for e in self.external:
            if e.name == name:
                return e
        raise KeyError(name)

    @cached_property
    def background(self) -> list[dict[str, Any]]:
        """Background flows: source, sink, trace or rate (Mbit/s) and on_off, start, stop."""
        return list(self._native.background())

    @cached_property
    def events(self) -> list[Event]:
        """The timed events, in time order (file order among those at the same time)."""
        return [Event(**d) for d in self._native.events()]

    def offered_load(self) -> dict[str, Any]:
        """The workloads' peak offered load against the computers' capacity, computed by the
        Rust crate: ``text`` (one line), ``calls_per_s``, ``work_s`` (s of work per call on
        one core), ``capacity_per_s``, ``computers``, ``utilization`` (above 1: saturated),
        ``saturated``, ``peak_at``, ``uncounted`` (trace replays) and ``lambdas`` (per
        lambda)."""
        return dict(self._native.offered_load())

    def host(self, name: str) -> Host:
        """The host called ``name``; raises :class:`KeyError`."""
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def hosts_with(self, role: str) -> list[Host]:
        """Hosts whose role is ``role`` (e.g. ``"computer"``), in file order."""
        return [h for h in self.hosts if h.role == role]

    # ----- what the testbed derives -----

    def flows(self, switch: str) -> list[FlowEntry]:
        """Static flow entries of ``switch``: IPv4 and ARP of every host to an output port."""
        return [FlowEntry(*row) for row in self._native.flows(switch)]

    def path(self, a: str, b: str) -> list[str]:
        """Names of the switch links from host ``a`` to host ``b``."""
        return self._native.path(a, b)

    def router_computer_paths(self) -> list[Path]:
        """The path of every (router, computer) pair, for congestion steering."""
        return [Path(r, c, tuple(links)) for r, c, links in self._native.router_computer_paths()]

    def distance_matrix(self) -> tuple[list[str], list[list[int]]]:
        """Hop distances among routers and computers: ``(names, rows)``."""
        return self._native.distance_matrix()

    def components(self) -> list[list[str]]:
        """Connected parts of the switch graph, largest first (one for a valid scenario)."""
        return self._native.components()

    def aot_sites(self) -> dict[str, list[str]]:
        """The Array of Things node ids of each switch that stands at a site of the shipped
        ``data/aot/nodes.csv`` (the kept node first, then those merged into it within 0.010
        degrees); switches elsewhere are left out (docs/traces.md)."""
        return dict(self._native.aot_sites())

    def write_schedules(self, base: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
        """Writes the schedule of each ``pattern: aot`` workload to ``out/<client>-<index>.csv``,
        reading each trace once (paths relative to ``base``); see :func:`lambdaroute.aot.write_schedules`."""
        return dict(self._native.write_schedules(os.fspath(base), os.fspath(out)))

    def __eq__(self, other: object) -> bool:
        """Equal when they say the same: network, roles, workloads, control, name."""
        if not isinstance(other, Scenario):
            return NotImplemented
        return self._native == other._native

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._native)
