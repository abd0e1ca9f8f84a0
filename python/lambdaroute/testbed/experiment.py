"""Experiment files: which scenario to run and how (docs/experiment.md).

An experiment names a scenario file (``scenario:``) or a generator (``generator:`` with
``args`` and ``options``), changes it with ``overrides`` (merged into the scenario's YAML, then
validated again by the scenario crate), and says how the testbed runs it: delay mechanism,
who installs the tables, monitor settings, where results go, which binary runs the nodes.
:func:`for_scenario` makes one around a scenario already in hand (built in Python with
:class:`lambdaroute.ScenarioBuilder`, say), with the same settings.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lambdaroute import topologies
from lambdaroute.scenario import Scenario
from lambdaroute.testbed import cluster as cluster_mod

__all__ = ["Experiment", "ExperimentError", "YAMLBudgetError", "read_yaml", "read_yaml_file", "load", "for_scenario", "apply_overrides", "find_binary"]

#: How the testbed runs a scenario, whatever the scenario's source.
SETTINGS = {"name", "description", "delay", "tables", "monitor", "results", "binary", "grace", "metrics",
            "secure", "timeouts", "servers", "placement"}
KEYS = SETTINGS | {"scenario", "generator", "args", "options", "overrides", "duration", "seed", "sweep", "quick"}
#: ``report: false`` keeps the monitor recording but turns the congestion hook off (no reports).
MONITOR_KEYS = {"interval", "hysteresis", "samples", "report"}
#: Control keys that are parameters of another key's choice (docs/scenario.md, `control`).
#: ``metrics: {interval: S}`` (or ``true``: every second) scrapes the nodes' /metrics.
METRICS_KEYS = {"interval"}
#: ``timeouts:``: the routers' ``--call-timeout`` and the clients' ``--timeout``, s.
TIMEOUT_KEYS = {"call", "client"}
CONTROL_PARAMETERS = {"installer": {"objective"}, "estimator": {"alpha", "period", "stat", "decay"}}


#: The budget of every YAML file the testbed reads, as the Rust loaders' (rust/core/src/yaml.rs):
#: nodes counting every node an alias repeats, nesting, aliases, bytes.
MAX_NODES = 250_000
MAX_DEPTH = 64
MAX_ALIASES = 1_000
MAX_BYTES = 16 << 20


class YAMLBudgetError(yaml.MarkedYAMLError):
    """A YAML text past the budget (e.g. a "billion laughs" of nested aliases); says where."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's booleans: only true/false. YAML 1.1 also reads
    ``on``, ``off``, ``yes``, ``no`` as booleans, which turns ON/OFF workloads' ``on:`` key
    into ``True``; the scenario crate reads YAML 1.2.

    It also holds the text to the budget above while composing: PyYAML shares an aliased
    node rather than copying it, but whatever walks the result (a dump, a comparison, a copy)
    walks every repetition, so nested aliases would cost memory and time exponential in the
    file's lines. Each node's size counts what its aliases repeat."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0
        self._aliases = 0
        self._sizes: dict[int, int] = {}

    def _refuse(self, problem: str, mark: Any) -> None:
        raise YAMLBudgetError(None, None, problem, mark)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                self._refuse(f"more than {MAX_ALIASES} aliases", event.start_mark)
            node = super().compose_node(parent, index)
            self._count(self._sizes.get(id(node), 1), event.start_mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            self._refuse(f"nested more than {MAX_DEPTH} deep", event.start_mark)
        before = self._nodes
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1, event.start_mark)
        self._sizes[id(node)] = self._nodes - before
        return node

    def _count(self, n: int, mark: Any) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            self._refuse(f"the text expands to more than {MAX_NODES} nodes (aliases included); "
                         "are aliases nested in aliases?", mark)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def read_yaml(text: str) -> Any:
    """YAML text as Python data, booleans as YAML 1.2 has them (see :class:`_Loader`), within
    the budget (:data:`MAX_NODES`, :data:`MAX_DEPTH`, :data:`MAX_ALIASES`, :data:`MAX_BYTES`):
    past it, a :class:`YAMLBudgetError` (a ``yaml.YAMLError``) with the line and column."""
    if len(text) > MAX_BYTES:
        raise YAMLBudgetError(None, None, f"larger than {MAX_BYTES} bytes", None)
    return yaml.load(text, Loader=_Loader)


def read_yaml_file(path: str | os.PathLike[str]) -> Any:
    """A YAML file as :func:`read_yaml` reads it; text that is not UTF-8 is an
    :class:`ExperimentError` with the line and byte of its first invalid byte."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ExperimentError(f"{os.fspath(path)}:{line}:{column}: invalid UTF-8 at line {line}, byte {column} "
                              f"of the line (byte offset {e.start} in the file)") from None
    return read_yaml(text)


class ExperimentError(ValueError):
    """An experiment file that cannot be run; the message names the file and the key."""


@dataclass
class Experiment:
    name: str
    scenario: Scenario
    source: Path | None
    base: Path
    raw: dict[str, Any]
    description: str = ""
    delay: str = "auto"
    tables: str = "auto"
    monitor: dict[str, float] = field(default_factory=lambda: {"interval": 1.0, "hysteresis": 0.2, "samples": 2})
    results: Path = Path("results")
    binary: str | None = None
    grace: float = 10.0
    #: Whether congested links are reported (the congestion hook); ``monitor.report`` in the file.
    report_congestion: bool = True
    #: Seconds between scrapes of the nodes' Prometheus metrics (``metrics.csv``); None: off.
    metrics: float | None = None
    #: Secured mode (docs/security.md): certificates made by ``lambdaroute certs`` into the run
    #: directory, every node started with ``--tls-dir``; ``secure: true`` in the file.
    secure: bool = False
    #: Where this run sits in a sweep (experiment, variant, role, policy, seed, quick), copied
    #: into ``metadata.json`` as ``sweep``; empty for a single run.
    labels: dict[str, Any] = field(default_factory=dict)
    #: The servers the run is spread over (``servers:``, ``placement:``); None: this machine.
    cluster: cluster_mod.ClusterSpec | None = None
    #: ``timeouts:``: ``call`` (the routers' ``--call-timeout``: how long a router waits for a
    #: computer before it drops it and retries elsewhere) and ``client`` (the clients'
    #: ``--timeout``: how long a client waits for its router), s; absent: the binaries' 60 s.
    timeouts: dict[str, float] = field(default_factory=dict)


def _by_name(items: list[dict[str, Any]], key: Any) -> dict[str, dict[str, Any]]:
    return {key(i): i for i in items}


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in change.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _without_nulls(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}


def apply_overrides(doc: dict[str, Any], overrides: dict[str, Any], where: str) -> dict[str, Any]:
    """The scenario document ``doc`` changed by ``overrides``:

    - ``hosts`` / ``links`` / ``switches`` as a mapping: by name (links ``a-b``), each merged into
      that item; ``null`` removes it; a name not there yet adds it (hosts, switches);
    - ``workloads`` as a mapping: by client name, or ``*`` for every workload, each merged into
      that client's workloads (``*`` first, then by name); a key set to ``null`` is removed
      (``rate: null`` when a Poisson workload becomes ``pattern: aot``);
    - as a list: replaces the whole section;
    - ``control`` merges key by key; any other key replaces.
    """
    doc = copy.deepcopy(doc)
    for key, value in overrides.items():
        if key in ("hosts", "links", "switches") and isinstance(value, dict):
            items = doc.get(key) or []
            ident = (lambda i: f"{i['a']}-{i['b']}") if key == "links" else (lambda i: i["name"])
            named = _by_name(items, ident)
            for name, change in value.items():
                if name not in named:
                    if change is None:
                        raise ExperimentError(f"{where}: overrides.{key}.{name}: no such item to remove")
                    if key == "links":
                        raise ExperimentError(f"{where}: overrides.links.{name}: no such link; add links with a list")
                    items.append({"name": name, **change})
                elif change is None:
                    items = [i for i in items if ident(i) != name]
                else:
                    merged = _merge(named[name], change)
                    items = [merged if ident(i) == name else i for i in items]
            doc[key] = items
        elif key == "workloads" and isinstance(value, dict):
            items = doc.get("workloads") or []
            clients = {w.get("client") for w in items}
            for name, change in value.items():
                if name != "*" and name not in clients:
                    raise ExperimentError(f"{where}: overrides.workloads.{name}: no workload of client `{name}`; "
                                          f"give a client name, `*` for every workload, or a list to replace them")
                if not isinstance(change, dict):
                    raise ExperimentError(f"{where}: overrides.workloads.{name}: expected a mapping of workload keys")
            order = ([("*", value["*"])] if "*" in value else []) + [(k, v) for k, v in value.items() if k != "*"]
            for name, change in order:
                items = [_without_nulls(_merge(w, copy.deepcopy(change))) if name in ("*", w.get("client")) else w
                         for w in items]
            doc["workloads"] = items
        elif key == "control" and isinstance(value, dict):
            control = dict(doc.get("control") or {})
            # A new choice drops the parameters of the old one (a flat installer has no
            # objective), unless the override gives them too.
            for choice, params in CONTROL_PARAMETERS.items():
                if choice in value and value[choice] != control.get(choice):
                    for param in params - set(value):
                        control.pop(param, None)
            doc["control"] = _merge(control, value)
        else:
            doc[key] = value
    return doc


def find_binary(explicit: str | None = None) -> str:
    """The ``lambdaroute`` binary: ``explicit``, ``$LAMBDAROUTE_BIN``, the repository's release
    build (``$CARGO_TARGET_DIR`` or ``target/``), or ``lambdaroute`` on the PATH."""
    import shutil

    candidates = [explicit, os.environ.get("LAMBDAROUTE_BIN")]
    repo = Path(__file__).resolve().parents[3]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(str(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "lambdaroute"))
    candidates.append(str(repo / "target" / "release" / "lambdaroute"))
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return str(Path(c).resolve())
    found = shutil.which("lambdaroute")
    if found:
        return found
    raise FileNotFoundError(
        "cannot find the lambdaroute binary: build it (`make release`) or set LAMBDAROUTE_BIN or `binary:`"
    )


def load(path: str | os.PathLike[str] | None = None, data: dict[str, Any] | None = None,
         layers: list[tuple[str, dict[str, Any]]] | None = None) -> Experiment:
    """Reads an experiment file (or a ready dict, with ``path`` only for relative paths).
    ``layers`` are more overrides, ``(where, overrides)``, applied in order after the file's
    (a sweep's variant, policy, seed)."""
    where = os.fspath(path) if path is not None else "<experiment>"
    base = Path(path).resolve().parent if path is not None else Path.cwd()
    if data is None:
        if path is None:
            raise ValueError("load: give a path or data")
        try:
            data = read_yaml_file(path) or {}
        except yaml.YAMLError as e:
            raise ExperimentError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ExperimentError(f"{where}: expected a mapping of experiment keys")
    unknown = set(data) - KEYS
    if unknown:
        raise ExperimentError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(KEYS))}")
    if ("scenario" in data) == ("generator" in data):
        raise ExperimentError(f"{where}: give exactly one of `scenario: FILE` or `generator: KIND`")
    source: Path | None = None
    if "scenario" in data:
        source = Path(data["scenario"])
        source = source if source.is_absolute() else base / source
        scenario = Scenario.load(source)
    else:
        kind = data["generator"]
        if kind not in topologies.GENERATORS:
            raise ExperimentError(f"{where}: generator `{kind}`: expected one of {', '.join(topologies.GENERATORS)}")
        options = data.get("options") or {}
        try:
            scenario = topologies.GENERATORS[kind](*(data.get("args") or []), **options)
        except TypeError as e:
            raise ExperimentError(f"{where}: generator {kind}: {e}") from None
    overrides = dict(data.get("overrides") or {})
    for key in ("duration", "seed"):
        if key in data:
            overrides[key] = data[key]
    layers = [(where, overrides)] + list(layers or [])
    if any(change for _, change in layers):
        doc = read_yaml(scenario.to_yaml())
        for at, change in layers:
            doc = apply_overrides(doc, change, at)
        scenario = Scenario.from_yaml(yaml.safe_dump(doc, sort_keys=False), f"{where} (scenario with overrides)")
    name = str(data.get("name") or (Path(path).stem if path else scenario.name))
    return _with_settings(data, where, base, name, scenario, source)


def for_scenario(scenario: Scenario, **settings: Any) -> Experiment:
    """An experiment that runs ``scenario`` as it is, named after it unless ``name=`` says
    otherwise; ``settings`` are an experiment file's (``delay``, ``tables``, ``monitor``,
    ``results``, ``binary``, ``grace``, ``description``, ``metrics``), relative paths from the current
    directory."""
    unknown = set(settings) - SETTINGS
    if unknown:
        raise ExperimentError(f"for_scenario: unknown setting(s) {', '.join(sorted(unknown))}; "
                              f"expected {', '.join(sorted(SETTINGS))}")
    data = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in settings.items()}
    name = str(data.get("name") or scenario.name)
    return _with_settings(data, f"for_scenario({name!r})", Path.cwd(), name, scenario, None)


def _with_settings(data: dict[str, Any], where: str, base: Path, name: str, scenario: Scenario,
                   source: Path | None) -> Experiment:
    """The experiment running ``scenario`` with the settings in ``data``, checked."""
    monitor: dict[str, float] = {"interval": 1.0, "hysteresis": 0.2, "samples": 2}
    report_congestion = True
    for k, v in (data.get("monitor") or {}).items():
        if k not in MONITOR_KEYS:
            raise ExperimentError(f"{where}: monitor.{k}: unknown; expected {', '.join(sorted(MONITOR_KEYS))}")
        if k == "report":
            if not isinstance(v, bool):
                raise ExperimentError(f"{where}: monitor.report: `{v}`: expected true or false")
            report_congestion = v
        else:
            monitor[k] = float(v) if k != "samples" else int(v)
    metrics = _metrics(data.get("metrics"), where)
    timeouts = _timeouts(data.get("timeouts"), where)
    tables = data.get("tables", "auto")
    if tables not in ("auto", "controller", "testbed"):
        raise ExperimentError(f"{where}: tables `{tables}`: expected auto, controller or testbed")
    secure = data.get("secure", False)
    if not isinstance(secure, bool):
        raise ExperimentError(f"{where}: secure `{secure}`: expected true or false")
    if secure and scenario.external:
        raise ExperimentError(f"{where}: secure: true with external computers (outside Mininet) is not "
                              f"supported yet: drop `secure` or the scenario's `external` computers")
    results = Path(data.get("results", "results"))
    binary = data.get("binary")
    if binary and not Path(binary).is_absolute():
        binary = str(base / binary)
    try:
        cluster = cluster_mod.parse(data.get("servers"), data.get("placement"), where, base)
        if cluster is not None:
            cluster_mod.place(cluster, scenario, f"{where}: placement")
    except ValueError as e:
        raise ExperimentError(str(e)) from None
    return Experiment(
        name=name,
        description=str(data.get("description", "")),
        scenario=scenario,
        source=source,
        base=base,
        raw=data,
        delay=str(data.get("delay", "auto")),
        tables=tables,
        monitor=monitor,
        results=results,
        binary=binary,
        grace=float(data.get("grace", 10.0)),
        report_congestion=report_congestion,
        metrics=metrics,
        cluster=cluster,
        secure=secure,
        timeouts=timeouts,
    )


def _metrics(value: Any, where: str) -> float | None:
    """``metrics:`` as the scrape interval: absent, ``false`` or ``null`` off; ``true`` every
    second; ``{interval: S}`` every S seconds."""
    if value is None or value is False:
        return None
    if value is True:
        return 1.0
    if not isinstance(value, dict):
        raise ExperimentError(f"{where}: metrics `{value}`: expected true, false or {{interval: SECONDS}}")
    unknown = set(value) - METRICS_KEYS
    if unknown:
        raise ExperimentError(f"{where}: metrics.{sorted(unknown)[0]}: unknown; expected {', '.join(sorted(METRICS_KEYS))}")
    interval = value.get("interval", 1.0)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        raise ExperimentError(f"{where}: metrics.interval `{interval}`: expected seconds > 0")
    return float(interval)


def _timeouts(value: Any, where: str) -> dict[str, float]:
    """``timeouts:`` as ``{call: S, client: S}`` (either may be left out), each S > 0 seconds."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ExperimentError(f"{where}: timeouts `{value}`: expected {{call: SECONDS, client: SECONDS}}")
    out: dict[str, float] = {}
    for k, v in value.items():
        if k not in TIMEOUT_KEYS:
            raise ExperimentError(f"{where}: timeouts.{k}: unknown; expected {', '.join(sorted(TIMEOUT_KEYS))} "
                                  f"(call: the routers' --call-timeout, client: the clients' --timeout)")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ExperimentError(f"{where}: timeouts.{k} `{v}`: expected seconds > 0, e.g. `{k}: 2`")
        out[k] = float(v)
    return out
