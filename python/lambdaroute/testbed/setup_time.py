"""Setup time of a scenario in the testbed, without running its workloads.

``python -m lambdaroute.testbed.setup_time SCENARIO.yaml [--nodes] [--profile OUT.prof]`` (as
root) brings the scenario's network up (:func:`lambdaroute.testbed.run.start_testbed`: network,
delay, NAT), optionally starts the nodes and waits for the tables (``--nodes``), prints the time of
every phase on one line, and tears it all down (the same cleanup as a run). ``--profile`` writes
a cProfile of the whole thing (read it with ``python -m pstats``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import sys
import tempfile
import time
from pathlib import Path

from lambdaroute.scenario import Scenario
from lambdaroute.testbed.nodes import (
    CONTROLLER_PORT,
    Nodes,
    TablesNotReady,
    binary_has,
    endpoint,
    write_controller_files,
)
from lambdaroute.testbed.experiment import read_yaml
from lambdaroute.testbed.run import TABLES_TIMEOUT, format_timings, start_testbed


def measure(scenario: Scenario, workdir: Path, delay: str = "auto", nodes: bool = False,
            tables: str = "auto") -> dict[str, float]:
    """Brings ``scenario`` up (and its nodes with ``nodes``), tears it down; the phase timings."""
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    with start_testbed(scenario, workdir, delay) as bed:
        timings = bed.timings
        if nodes:
            n = Nodes(bed.network, scenario, bed.binary, workdir, bed.cleanup, bed.state, router_seed=scenario.seed)
            ctl_hosts = scenario.hosts_with("controller")
            use_controller = bool(ctl_hosts and tables != "testbed" and binary_has(bed.binary, "controller"))
            distances, paths = write_controller_files(scenario, workdir)
            t = time.monotonic()
            if use_controller:
                n.start_controller(ctl_hosts[0], distances, paths)
            controller = endpoint(ctl_hosts[0], CONTROLLER_PORT) if use_controller else None
            # Routers first: a two-tier controller then places each computer once, among every router.
            n.start_routers(controller)
            n.start_computers(controller)
            if not use_controller:
                n.install_flat_tables()
            timings["nodes"] = round(time.monotonic() - t, 3)
            try:
                timings["tables"] = n.wait_tables(timeout=TABLES_TIMEOUT)["tables_ready_s"]
            except TablesNotReady as e:
                # Not this measurement's business (the controller's); say so and go on.
                print(f"tables not ready: {str(e)[:300]}", file=sys.stderr)
                timings["tables_not_ready_after"] = TABLES_TIMEOUT
        timings["setup"] = round(time.monotonic() - t0, 3)
    timings["total"] = round(time.monotonic() - t0, 3)
    return timings


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", type=Path)
    p.add_argument("--delay", default="auto")
    p.add_argument("--nodes", action="store_true", help="also start the nodes and wait for the tables")
    p.add_argument("--tables", default="auto", choices=["auto", "testbed"])
    p.add_argument("--installer", help="override the scenario's control.installer (e.g. flat)")
    p.add_argument("--profile", type=Path, help="write a cProfile here")
    p.add_argument("--workdir", type=Path, help="logs go here (default: a temporary folder)")
    a = p.parse_args(argv)
    if a.installer:
        data = read_yaml(a.scenario.read_text(encoding="utf-8"))
        data.setdefault("control", {})["installer"] = a.installer
        if a.installer != "two-tier":
            data["control"].pop("objective", None)  # two-tier's only
        scenario = Scenario.from_data(data, str(a.scenario))
    else:
        scenario = Scenario.load(a.scenario)
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="lambdaroute-setup-"))
    prof = cProfile.Profile() if a.profile else None
    if prof:
        prof.enable()
    try:
        timings = measure(scenario, workdir, a.delay, a.nodes, a.tables)
    finally:
        if prof:
            prof.disable()
            prof.dump_stats(a.profile)
    print(f"{scenario.name}: {len(scenario.hosts)} hosts, {len(scenario.switches)} switches: {format_timings(timings)}; "
          f"setup {timings['setup']:.1f} s, teardown {timings.get('teardown', 0):.1f} s, total {timings['total']:.1f} s")
    print(json.dumps(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
