"""The Python face of the scenario crate: import, API, errors, generators, drawing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import lambdaroute
from lambdaroute import Scenario, ScenarioError, topologies

ROOT = Path(__file__).resolve().parents[2]
MALFORMED = sorted((ROOT / "rust/scenario/tests/malformed").glob("*.yaml"))
FULL = ROOT / "rust/scenario/tests/valid/full.yaml"


def test_import_exposes_the_api() -> None:
    assert lambdaroute.Scenario is Scenario
    assert issubclass(ScenarioError, ValueError)
    assert ScenarioError.__module__ == "lambdaroute"


def test_grid_has_16_switches_24_links_and_a_nat() -> None:
    g = topologies.grid(4, 4)
    assert (len(g.switches), len(g.links)) == (16, 24)
    assert [h.switch for h in g.hosts_with("nat")] == ["s1"]
    assert len(topologies.pods(3).switches) == 12


def test_hosts_have_unique_addresses_and_ports() -> None:
    g = topologies.grid(4, 4)
    assert len({h.ip for h in g.hosts}) == len(g.hosts)
    assert len({h.mac for h in g.hosts}) == len(g.hosts)
    s1 = next(s for s in g.switches if s.name == "s1")
    for h in g.hosts:
        if h.switch == "s1":
            assert s1.ports[h.port] == h.name


def test_walking_flows_reaches_every_host() -> None:
    g = topologies.ring_tree(4, 2, 2)
    switches = {s.name: s for s in g.switches}
    flows = {s: {(f.kind, f.ip): f.out_port for f in g.flows(s)} for s in switches}
    for src in g.hosts:
        for dst in g.hosts:
            at, seen = src.switch, set()
            while True:
                assert at not in seen, f"loop {src.name} -> {dst.name}"
                seen.add(at)
                peer = switches[at].ports[flows[at][("ip", dst.ip)]]
                assert flows[at][("arp", dst.ip)] == flows[at][("ip", dst.ip)]
                if peer not in switches:
                    assert peer == dst.name
                    break
                at = peer


def test_distance_matrix_and_paths_agree() -> None:
    g = topologies.pods(3)
    names, rows = g.distance_matrix()
    index = {n: i for i, n in enumerate(names)}
    for p in g.router_computer_paths():
        assert rows[index[p.router]][index[p.computer]] == len(p.links) + 2
        assert list(p.links) == g.path(p.router, p.computer)


def test_yaml_round_trip(tmp_path: Path) -> None:
    for sc in (Scenario.load(FULL), topologies.aot_chicago(), topologies.line(4, bw=10, delay=2)):
        text = sc.to_yaml()
        back = Scenario.from_yaml(text, "back.yaml")
        assert back.to_yaml() == text
        sc.save(tmp_path / "s.yaml")
        assert Scenario.load(tmp_path / "s.yaml").to_yaml() == text


def test_full_example_reads_its_sections() -> None:
    sc = Scenario.load(FULL)
    assert sc.control["installer"] == "two-tier"
    assert sc.workloads[0].params == {"rate": 20.0}
    assert sc.workloads[0].size == (100, 10000)
    assert sc.host("c2").ip == "10.0.1.2"
    assert sc.host("c2").computer == {"executor": "simulated", "preset": "raspberry", "lambdas": 2, "speed": 1e9,
                                       "cores": 4, "memory": 536870912, "endpoints": 1}
    assert sc.background[0]["on_off"] == (10.0, 20.0)


def test_placement_is_configurable() -> None:
    sc = topologies.line(4, routers=["s2"], computers=["s4"], preset="intel-server")
    assert [h.switch for h in sc.hosts_with("router")] == ["s2"]
    assert [h.computer["preset"] for h in sc.hosts_with("computer")] == ["intel-server"]
    with pytest.raises(ScenarioError, match="unknown switch `s9`"):
        topologies.line(4, routers=["s9"])
    with pytest.raises(ScenarioError, match="bw > 0"):
        topologies.grid(2, 2, bw=-1)


def test_aot_components_are_reported() -> None:
    assert len(topologies.aot_nodes()) == 71
    bridged = topologies.aot_chicago()
    assert bridged.components() == [[s.name for s in bridged.switches]] or len(bridged.components()) == 1
    assert "3 disconnected parts" in bridged.description
    assert len(topologies.aot_chicago(bridge=False).switches) == 68


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.name)
def test_malformed_files_raise_scenario_error_with_location(path: Path) -> None:
    expect = path.read_text().splitlines()[0].removeprefix("# error: ")
    at, field, fragment = (expect.split(": ", 2) + [""])[:3]
    with pytest.raises(ScenarioError) as info:
        Scenario.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{at}: {field}: "), message
    assert fragment in message


def test_corpus_is_large_enough() -> None:
    assert len(MALFORMED) >= 15


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.load(tmp_path / "nope.yaml")


def test_topo_command_writes_yaml_and_png_of_aot(tmp_path: Path) -> None:
    out, png = tmp_path / "aot.yaml", tmp_path / "aot.png"
    subprocess.run(
        [sys.executable, "-m", "lambdaroute", "topo", "aot-chicago", "-o", str(out), "--png", str(png)],
        check=True,
        cwd=tmp_path,
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
    assert len(Scenario.load(out).switches) == 71
    # Keep a copy for a person to look at.
    (ROOT / "target").mkdir(exist_ok=True)
    (ROOT / "target" / "aot-chicago.png").write_bytes(png.read_bytes())


def test_topo_command_reports_errors_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("switches:\n  - {name: s1, colour: red}\n")
    r = subprocess.run(
        [sys.executable, "-m", "lambdaroute", "topo", "load", str(bad)], capture_output=True, text=True, cwd=tmp_path
    )
    assert r.returncode == 2
    assert re.fullmatch(r"error: .*bad\.yaml:2:16: switches\[0\]\.colour: unknown key `colour`.*\n", r.stderr)
    assert "Traceback" not in r.stderr


def test_shipped_topologies_load() -> None:
    names = sorted(p.name for p in (ROOT / "topologies").glob("*.yaml"))
    assert names == ["aot-chicago.yaml", "grid-6x6.yaml", "grid.yaml", "line.yaml", "pods.yaml", "ring-tree.yaml"]
    for name in names:
        Scenario.load(ROOT / "topologies" / name)
