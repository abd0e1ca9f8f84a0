"""lambdaroute: scenarios and topologies of the serverless edge testbed.

The scenario model lives in Rust (crate ``lambdaroute-scenario``) and comes here through the
native module ``lambdaroute._native``. This package gives it a small Python face:

- :class:`Scenario` loads, validates and writes scenario files and answers the testbed's
  questions (hosts and their addresses, switch ports, static flows, paths, distances);
- :class:`ScenarioBuilder` builds one in Python, call by call (``add_switch``, ``add_host``,
  ``add_link``, ``add_workload``, ...), validated by the same code as files;
- :mod:`lambdaroute.topologies` generates the papers' topologies (``grid(4, 4)``, ...);
- :mod:`lambdaroute.draw` draws a scenario to PNG; ``python -m lambdaroute topo ...`` does both;
- :mod:`lambdaroute.aot` reads and generates Array of Things traces, whose readings
  ``pattern: aot`` workloads replay as calls.

Every problem with a scenario raises :class:`ScenarioError`, whose message names the file, line,
column and field (for a built scenario: the builder call and its argument).
"""

from lambdaroute._native import ScenarioError
from lambdaroute.scenario import (Event, External, FlowEntry, Host, Link, Path, Scenario, Shaping, Switch,
                                 Workload)
from lambdaroute.builder import ScenarioBuilder
from lambdaroute import aot, topologies

__all__ = [
    "Event",
    "FlowEntry",
    "External",
    "Host",
    "Link",
    "Path",
    "Scenario",
    "ScenarioBuilder",
    "ScenarioError",
    "Shaping",
    "Switch",
    "Workload",
    "aot",
    "topologies",
]
