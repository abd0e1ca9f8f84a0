"""lambdaroute: scenarios and topologies of the serverless edge testbed.

The scenario model lives in Rust (crate ``lambdaroute-scenario``) and comes here through the
native module ``lambdaroute._native``. This package gives it a small Python face:

- :class:`Scenario` loads, validates and writes scenario files and answers the testbed's
  questions (hosts and their addresses, switch ports, static flows, paths, distances);
- :mod:`lambdaroute.topologies` generates the papers' topologies (``grid(4, 4)``, ...);
- :mod:`lambdaroute.draw` draws a scenario to PNG; ``python -m lambdaroute topo ...`` does both.

Every problem with a scenario raises :class:`ScenarioError`, whose message names the file, line,
column and field.
"""

from lambdaroute._native import ScenarioError
from lambdaroute.scenario import FlowEntry, Host, Link, Path, Scenario, Switch, Workload
from lambdaroute import topologies

__all__ = [
    "FlowEntry",
    "Host",
    "Link",
    "Path",
    "Scenario",
    "ScenarioError",
    "Switch",
    "Workload",
    "topologies",
]
