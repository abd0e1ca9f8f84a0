"""Building a scenario in Python, call by call, as a Mininet ``Topo.build()`` reads.

    b = ScenarioBuilder("two-computers", duration=10)
    b.add_switch("s1")
    b.add_switch("s2")
    b.add_link("s1", "s2", bw=100, delay=2)
    b.add_host("r1", "s1", role="router")
    b.add_host("c1", "s2", role="computer", preset="intel-server")
    b.add_host("u1", "s1", role="client")
    b.add_workload("u1", "r1", pattern="poisson", rate=20)
    scenario = b.build()

The builder only records what it is told, shaped as a scenario file says it (see
``docs/scenario.md``); :meth:`ScenarioBuilder.build` hands that to the Rust scenario crate, which
validates it with exactly the checks of a scenario file (:meth:`Scenario.from_data`). Options
left out (None) are left out of the data, so their defaults are the file format's. A problem
raises :class:`~lambdaroute.ScenarioError` naming the builder call, the argument, what was given
and what is expected, e.g.
``add_link('s1', 's9'): b: unknown switch `s9`; known: `s1`, `s2```.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from lambdaroute._native import ScenarioError
from lambdaroute.scenario import Scenario

__all__ = ["ScenarioBuilder"]

#: Sections of a scenario file whose items the builder's ``add_*`` calls make.
_SECTIONS = ("switches", "hosts", "links", "workloads", "background", "external", "events")

#: A reference to an item of a section in a field path or in a message: ``links[3].bw``.
_ITEM = re.compile(r"\b(switches|hosts|links|workloads|background|external|events)\[(\d+)\](?:\.([A-Za-z0-9_.-]+))?")


def _omit_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _plain(value: Any) -> Any:
    """Paths as strings, tuples as lists: the data a scenario file could hold."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass
class _Call:
    """One builder call: the text that shows it, and the argument behind each of its fields."""

    text: str
    #: Field path inside the item (``link.bw``) -> the argument the user gave (``bw``).
    arguments: dict[str, str] = field(default_factory=dict)

    def argument(self, sub: str | None) -> str | None:
        if not sub:
            return None
        if sub in self.arguments:
            return self.arguments[sub]
        head = sub.split(".", 1)[0]
        return self.arguments.get(head, head)


def _call_text(function: str, positional: list[Any], keywords: dict[str, Any]) -> str:
    args = [repr(a) for a in positional] + [f"{k}={v!r}" for k, v in keywords.items() if v is not None]
    return f"{function}({', '.join(args)})"


class ScenarioBuilder:
    """A scenario made by calls: switches, hosts with their roles, links, workloads, background
    traffic and control choices; :meth:`build` validates it and returns the :class:`Scenario`.

    ``duration`` (s, default 60), ``seed`` (default 1), ``description`` and ``coordinates``
    (``plane`` or ``geo``) are those of the scenario file; None keeps the file's default.
    """

    def __init__(
        self,
        name: str,
        *,
        duration: float | None = None,
        seed: int | None = None,
        description: str | None = None,
        coordinates: str | None = None,
    ) -> None:
        self._top: dict[str, Any] = _omit_none(
            name=name, description=description, duration=duration, seed=seed, coordinates=coordinates
        )
        self._top_call = _call_text(
            "ScenarioBuilder",
            [name],
            {"duration": duration, "seed": seed, "description": description, "coordinates": coordinates},
        )
        self._control: dict[str, Any] = {}
        self._control_call = "control()"
        self._items: dict[str, list[dict[str, Any]]] = {s: [] for s in _SECTIONS}
        self._calls: dict[str, list[_Call]] = {s: [] for s in _SECTIONS}

    # ----- the network -----

    def add_switch(self, name: str, position: tuple[float, float] | None = None) -> str:
        """A switch; ``position`` ``(x, y)`` (or longitude, latitude) is for drawing. Returns
        its name."""
        self._add("switches", _omit_none(name=name, position=_plain(position)),
                  _Call(_call_text("add_switch", [name], {"position": position})))
        return name

    def add_host(
        self,
        name: str,
        switch: str,
        role: str,
        *,
        executor: str | None = None,
        preset: str | None = None,
        lambdas: int | None = None,
        speed: float | None = None,
        cores: int | None = None,
        memory: int | None = None,
        ip: str | None = None,
        mac: str | None = None,
        bw: float | None = None,
        delay: float | None = None,
        loss: float | None = None,
        queue: int | None = None,
    ) -> str:
        """A host attached to ``switch``, whose ``role`` is one of router, computer, controller,
        client, traffic-source, traffic-sink, nat. Computers take ``preset`` (raspberry,
        intel-server), ``lambdas`` per kind, and overrides ``speed`` (ops/s per core),
        ``cores``, ``memory`` (bytes), or ``executor="face"`` (face and eye detection).
        ``ip``/``mac`` fix its addresses. ``bw`` (Mbit/s),
        ``delay`` (ms), ``loss`` (%), ``queue`` (packets) shape its access link. Returns its
        name."""
        computer = _omit_none(executor=executor, preset=preset, lambdas=lambdas, speed=speed, cores=cores,
                              memory=memory)
        link = _omit_none(bw=bw, delay=delay, loss=loss, queue=queue)
        host: dict[str, Any] = {"name": name, "switch": switch, "role": role}
        if computer:
            host["computer"] = computer
        host.update(_omit_none(ip=ip, mac=mac))
        if link:
            host["link"] = link
        keywords = {"role": role, **computer, "ip": ip, "mac": mac, **link}
        arguments = {f"computer.{k}": k for k in computer} | {f"link.{k}": k for k in link}
        arguments["computer"] = ", ".join(computer)
        self._add("hosts", host, _Call(_call_text("add_host", [name, switch], keywords), arguments))
        return name

    def add_link(
        self,
        a: str,
        b: str,
        *,
        bw: float | None = None,
        delay: float | None = None,
        loss: float | None = None,
        queue: int | None = None,
    ) -> str:
        """A link between switches ``a`` and ``b``: ``bw`` Mbit/s (None: unlimited), ``delay``
        ms, ``loss`` %, ``queue`` packets. Returns its name, ``a-b``."""
        shaping = _omit_none(bw=bw, delay=delay, loss=loss, queue=queue)
        self._add("links", {"a": a, "b": b, **shaping}, _Call(_call_text("add_link", [a, b], shaping)))
        return f"{a}-{b}"

    # ----- what runs on it -----

    def add_workload(
        self,
        client: str,
        router: str,
        *,
        lambda_: str = "clambda0",
        pattern: str = "closed-loop",
        threads: int | None = None,
        rate: float | None = None,
        on: float | None = None,
        off: float | None = None,
        trace: str | os.PathLike[str] | None = None,
        window: dict[str, str | float] | None = None,
        speedup: float | None = None,
        group: str | None = None,
        lambdas: dict[str, str] | None = None,
        sensors: list[str] | None = None,
        payload: str | dict[str, int] | None = None,
        size: int | tuple[int, int] | None = None,
        start: float | None = None,
        stop: float | None = None,
        images: list[str | os.PathLike[str]] | None = None,
        eyes: str | None = None,
        fallback: str | list[str] | None = None,
        api: str | None = None,
    ) -> None:
        """Calls of lambda ``lambda_`` that ``client`` sends to ``router`` (and, when it cannot
        be reached, to the ``fallback`` router or routers, in order): ``pattern``
        closed-loop (``threads``), poisson (``rate`` calls/s), on-off (``rate`` during ON, mean
        ``on`` and ``off`` periods in s), trace (``trace`` file) or aot (an Array of Things
        digest ``trace`` with ``window``, ``speedup``, ``group``, ``lambdas``, ``sensors``,
        ``payload``: docs/traces.md); ``size`` bytes, or ``(min, max)`` drawn uniformly;
        ``start``/``stop`` s from the start of the run. Or ``images`` (files sent in turn, e.g.
        to ``facerec0``), with ``eyes`` the lambda called once per face found. ``api``
        ``openwhisk``: the client calls through OpenWhisk's REST API (a gateway on the router's
        host; docs/openwhisk.md) instead of the router's gRPC service."""
        sizes = {"min": size[0], "max": size[1]} if isinstance(size, (tuple, list)) and len(size) == 2 else size
        workload: dict[str, Any] = {"client": client, "router": router}
        if fallback is not None:
            workload["fallback"] = list(fallback) if isinstance(fallback, (list, tuple)) else fallback
        workload.update({"lambda": lambda_, "pattern": pattern})
        workload.update(_omit_none(threads=threads, rate=rate, on=on, off=off, trace=_plain(trace),
                                   window=window, speedup=speedup, group=group, lambdas=lambdas,
                                   sensors=sensors, payload=payload,
                                   size=_plain(sizes), start=start, stop=stop,
                                   images=[_plain(i) for i in images] if images is not None else None, eyes=eyes,
                                   api=api))
        keywords = {"lambda_": lambda_, "pattern": pattern, "threads": threads, "rate": rate, "on": on,
                    "off": off, "trace": trace, "window": window, "speedup": speedup, "group": group,
                    "lambdas": lambdas, "sensors": sensors, "payload": payload, "size": size,
                    "start": start, "stop": stop, "images": images, "eyes": eyes, "fallback": fallback,
                    "api": api}
        self._add("workloads", workload,
                  _Call(_call_text("add_workload", [client, router], keywords), {"lambda": "lambda_"}))

    def add_background(
        self,
        source: str,
        sink: str,
        *,
        rate: float | None = None,
        trace: str | os.PathLike[str] | None = None,
        on: float | None = None,
        off: float | None = None,
        start: float | None = None,
        stop: float | None = None,
    ) -> None:
        """Background traffic from a traffic-source host to a traffic-sink host: ``rate``
        Mbit/s (with optional exponential ON/OFF periods ``on``, ``off`` s) or a ``trace`` file;
        ``start``/``stop`` s."""
        flow = {"source": source, "sink": sink,
                **_omit_none(trace=_plain(trace), rate=rate, on=on, off=off, start=start, stop=stop)}
        keywords = {"rate": rate, "trace": trace, "on": on, "off": off, "start": start, "stop": stop}
        self._add("background", flow, _Call(_call_text("add_background", [source, sink], keywords)))

    def add_external(
        self,
        name: str,
        *,
        executor: str | None = None,
        preset: str | None = None,
        lambdas: int | None = None,
        speed: float | None = None,
        cores: int | None = None,
        memory: int | None = None,
        port: int | None = None,
    ) -> str:
        """A computer the testbed runs outside the emulated network, reached through the NAT
        gateway (the scenario needs a ``nat`` host): the computer as in :meth:`add_host`, and
        its lambda ``port`` (its utilization stream takes the next). Returns its name."""
        computer = _omit_none(executor=executor, preset=preset, lambdas=lambdas, speed=speed, cores=cores,
                              memory=memory)
        item: dict[str, Any] = {"name": name, **({"computer": computer} if computer else {}), **_omit_none(port=port)}
        arguments = {f"computer.{k}": k for k in computer}
        self._add("external", item, _Call(_call_text("add_external", [name], {**computer, "port": port}), arguments))
        return name

    def add_event(
        self,
        at: float,
        kind: str,
        *,
        host: str | None = None,
        link: str | None = None,
        factor: float | None = None,
        speed: float | None = None,
        load: float | None = None,
        bw: float | None = None,
        delay: float | None = None,
    ) -> None:
        """A change at ``at`` s into the run (section ``events``): ``kind`` computer-speed
        (``host``, ``factor`` or ``speed``), computer-load (``host``, ``load``: the fraction of
        its cores other work takes, 0 <= load < 1), computer-stop/computer-start (``host``),
        computer-freeze/computer-thaw (``host``: SIGSTOP, SIGCONT),
        link-down/link-up (``link`` ``a-b``), link-set (``link``, ``bw`` and/or ``delay``),
        router-restart (``host``)."""
        event = {"at": at, "kind": kind,
                 **_omit_none(host=host, link=link, factor=factor, speed=speed, load=load, bw=bw, delay=delay)}
        keywords = {"host": host, "link": link, "factor": factor, "speed": speed, "load": load, "bw": bw,
                    "delay": delay}
        self._add("events", event, _Call(_call_text("add_event", [at, kind], keywords)))

    def control(
        self,
        *,
        policy: str | None = None,
        estimator: str | None = None,
        alpha: float | None = None,
        period: float | None = None,
        stat: str | None = None,
        decay: float | None = None,
        installer: str | None = None,
        objective: str | None = None,
        routing: str | None = None,
        congestion_threshold: float | None = None,
    ) -> None:
        """The control choices (each call replaces the previous one): ``policy``
        (rp, li, rr, p2c, pf[:alpha:beta], or their long names), ``estimator`` (ewma with ``alpha``, periodic
        with ``period`` s and ``stat`` min/mean/max, peak-ewma with ``decay`` s; the policy's
        own when omitted), ``installer`` (flat,
        two-tier with ``objective`` min-max/min-avg), ``routing`` (hops, delay),
        ``congestion_threshold`` (fraction of a link's bandwidth)."""
        keywords = {"policy": policy, "estimator": estimator, "alpha": alpha, "period": period, "stat": stat,
                    "decay": decay, "installer": installer, "objective": objective, "routing": routing,
                    "congestion_threshold": congestion_threshold}
        self._control = {k.replace("_", "-"): v for k, v in keywords.items() if v is not None}
        self._control_call = _call_text("control", [], keywords)

    # ----- the result -----

    def to_data(self) -> dict[str, Any]:
        """What was built, shaped as a scenario file (plain dicts and lists)."""
        data = dict(self._top)
        if self._control:
            data["control"] = dict(self._control)
        for section in _SECTIONS:
            if self._items[section]:
                data[section] = [dict(item) for item in self._items[section]]
        return data

    def build(self) -> Scenario:
        """The validated :class:`Scenario`; raises :class:`ScenarioError` naming the call, the
        argument, the value and what is expected."""
        try:
            return Scenario.from_data(self.to_data(), source=self._top.get("name", "<builder>"))
        except ScenarioError as e:
            raise self._explain(e) from None

    # ----- internals -----

    def _add(self, section: str, item: dict[str, Any], call: _Call) -> None:
        self._items[section].append(item)
        self._calls[section].append(call)

    def _call_of(self, section: str, index: int) -> _Call | None:
        calls = self._calls[section]
        return calls[index] if 0 <= index < len(calls) else None

    def _explain(self, error: ScenarioError) -> ScenarioError:
        """The native error in terms of the builder's calls and arguments."""
        path: str = getattr(error, "field", "")
        message: str = getattr(error, "message", str(error))
        call_text, argument = "build()", path or None
        item = _ITEM.fullmatch(path)
        if item is not None:
            call = self._call_of(item.group(1), int(item.group(2)))
            if call is not None:
                call_text, argument = call.text, call.argument(item.group(3))
        elif path.startswith("control."):
            call_text, argument = self._control_call, path.removeprefix("control.").replace("-", "_")
        elif path in ("name", "description", "duration", "seed", "coordinates"):
            call_text = self._top_call

        def name_call(m: re.Match[str]) -> str:
            call = self._call_of(m.group(1), int(m.group(2)))
            return call.text if call is not None else m.group(0)

        message = _ITEM.sub(name_call, message)
        text = f"{call_text}: {argument}: {message}" if argument else f"{call_text}: {message}"
        out = ScenarioError(text)
        out.call = call_text  # type: ignore[attr-defined]
        out.field = argument or ""
        out.message = message
        return out
