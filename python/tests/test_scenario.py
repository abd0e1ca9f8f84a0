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


# ----- timed events and offered load -----

def test_events_read_in_time_order_and_write_back() -> None:
    s = Scenario.load(FULL)
    assert [(e.at, e.kind) for e in s.events] == [
        (10, "link-set"), (20, "link-down"), (30, "link-up"), (40, "computer-speed"), (45, "computer-load"),
        (50, "computer-stop"), (60, "computer-start"), (70, "router-restart")]
    assert s.events[0] == lambdaroute.Event(at=10, kind="link-set", link="s1-s2", bw=5, delay=20)
    assert s.events[2].link == "s2-s3"  # written `s3-s2` in the file
    assert s.events[3].factor == 0.5 and s.events[3].speed is None and s.events[3].load is None
    assert s.events[4] == lambdaroute.Event(at=45, kind="computer-load", host="c1", load=0.3)
    assert Scenario.from_yaml(s.to_yaml()) == s


def test_builder_events_are_checked_and_errors_name_the_call() -> None:
    b = lambdaroute.ScenarioBuilder("ev", duration=30)
    b.add_switch("s1")
    b.add_switch("s2")
    b.add_link("s1", "s2")
    b.add_host("c1", "s2", role="computer")
    b.add_event(12, "computer-speed", host="c1", speed=2e9)
    b.add_event(5, "link-down", link="s2-s1")
    s = b.build()
    assert [(e.at, e.kind, e.host or e.link) for e in s.events] == [(5, "link-down", "s1-s2"),
                                                                    (12, "computer-speed", "c1")]
    b.add_event(40, "link-up", link="s1-s2")
    with pytest.raises(ScenarioError) as info:
        b.build()
    assert str(info.value).startswith("add_event(40, 'link-up', link='s1-s2'): at: at 40 s is not before "
                                      "the end of the run (duration 30 s)"), str(info.value)


def test_builder_computer_load_events_are_checked_and_errors_name_the_call() -> None:
    b = lambdaroute.ScenarioBuilder("load", duration=30)
    b.add_switch("s1")
    b.add_host("c1", "s1", role="computer")
    b.add_event(3, "computer-load", host="c1", load=0.25)
    assert b.build().events == [lambdaroute.Event(at=3, kind="computer-load", host="c1", load=0.25)]
    b.add_event(4, "computer-load", host="c1", load=1.0)
    with pytest.raises(ScenarioError) as info:
        b.build()
    assert str(info.value).startswith("add_event(4, 'computer-load', host='c1', load=1.0): load: expected the "
                                      "fraction of the computer's cores other work takes"), str(info.value)


def test_offered_load_against_capacity_has_the_models_answer() -> None:
    # One raspberry: 4 cores at 1e9 ops/s; a 1,000-byte clambda0 costs 4e6 + 1e6 x 1000 ops.
    s = Scenario.from_yaml("""
duration: 60
switches: [{name: s1}]
hosts:
  - {name: r1, switch: s1, role: router}
  - {name: u1, switch: s1, role: client}
  - {name: c1, switch: s1, role: computer}
workloads:
  - {client: u1, router: r1, lambda: clambda0, pattern: poisson, rate: 3}
""")
    load = s.offered_load()
    assert load["utilization"] == pytest.approx(3 * 1.004 / 4)
    assert load["capacity_per_s"] == pytest.approx(4 / 1.004)
    assert load["work_s"] == pytest.approx(1.004)
    assert not load["saturated"]
    assert load["text"] == ("offered load: 3.0 calls/s, 1.00 s of work each; "
                            "capacity 4 calls/s across 1 computers: 75 %")


@pytest.mark.parametrize("scenario", [
    topologies.line(5), topologies.pods(3), topologies.ring_tree(4, 2, 2), topologies.grid(4, 4),
    topologies.grid(6, 6, routers=["s1", "s6", "s31", "s36"], computers=[f"s{i}" for i in (8, 11, 15, 22, 26, 29)],
                    clients_per_router=2),
    topologies.aot_chicago(),
], ids=lambda s: s.name)
def test_generator_defaults_stay_below_saturation(scenario: Scenario) -> None:
    assert scenario.offered_load()["utilization"] < 1.0, scenario.offered_load()["text"]
