"""The scenario builder: a scenario made call by call equals the one its YAML file gives, and
every error names the builder call, the argument and the value, never a line of text."""

from __future__ import annotations

from pathlib import Path

import pytest

import lambdaroute
from lambdaroute import Scenario, ScenarioBuilder, ScenarioError, Shaping

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "rust/scenario/tests/valid/full.yaml"


def full_example() -> ScenarioBuilder:
    """The scenario of rust/scenario/tests/valid/full.yaml (every section), call by call."""
    b = ScenarioBuilder(
        "example",
        description="Two edge switches and a core switch; a router, two computers, a client, background traffic.",
        duration=120,
        seed=7,
    )
    b.control(policy="round-robin", estimator="ewma", alpha=0.95, installer="two-tier", objective="min-max",
              routing="hops", congestion_threshold=0.8)
    b.add_switch("s1", position=(0, 0))
    b.add_switch("s2", position=(1, 0))
    b.add_switch("s3", position=(2, 0))
    b.add_host("r1", "s1", role="router")
    b.add_host("u1", "s1", role="client", bw=100, delay=1)
    b.add_host("c1", "s2", role="computer", preset="intel-server")
    b.add_host("c2", "s3", role="computer", preset="raspberry", lambdas=2, speed=1.0e9, cores=4,
               memory=536870912, ip="10.0.1.2", mac="02:00:00:00:01:02")
    b.add_host("ctl", "s2", role="controller")
    b.add_host("tx1", "s1", role="traffic-source")
    b.add_host("rx1", "s3", role="traffic-sink")
    b.add_host("nat", "s1", role="nat")
    b.add_link("s1", "s2", bw=10, delay=5, loss=0.1, queue=100)
    b.add_link("s2", "s3", bw=100, delay=1)
    b.add_workload("u1", "r1", lambda_="clambda0", pattern="poisson", rate=20, size=(100, 10000), start=5, stop=100)
    b.add_background("tx1", "rx1", rate=8, on=10, off=20, start=30, stop=90)
    b.add_event(10, "link-set", link="s1-s2", bw=5, delay=20)
    b.add_event(20, "link-down", link="s2-s3")
    b.add_event(30, "link-up", link="s3-s2")
    b.add_event(40, "computer-speed", host="c1", factor=0.5)
    b.add_event(45, "computer-load", host="c1", load=0.3)
    b.add_event(50, "computer-stop", host="c2")
    b.add_event(60, "computer-start", host="c2")
    b.add_event(70, "router-restart", host="r1")
    return b


def small() -> ScenarioBuilder:
    b = ScenarioBuilder("small", duration=10)
    b.add_switch("s1")
    b.add_switch("s2")
    b.add_link("s1", "s2", bw=100)
    b.add_host("r1", "s1", role="router")
    b.add_host("c1", "s2", role="computer")
    b.add_host("u1", "s1", role="client")
    return b


def test_the_builder_gives_the_scenario_of_the_equivalent_file() -> None:
    built = full_example().build()
    assert built == Scenario.load(FULL)
    assert built != small().build()
    assert lambdaroute.ScenarioBuilder is ScenarioBuilder


def test_options_left_out_take_the_defaults_of_the_file_format() -> None:
    text = """
name: small
duration: 10
switches: [{name: s1}, {name: s2}]
hosts:
  - {name: r1, switch: s1, role: router}
  - {name: c1, switch: s2, role: computer}
  - {name: u1, switch: s1, role: client}
links: [{a: s1, b: s2, bw: 100}]
"""
    b = small()
    assert b.build() == Scenario.from_yaml(text)
    b.add_workload("u1", "r1")
    (w,) = b.build().workloads
    assert (w.lambda_, w.pattern, w.params, w.size, w.start, w.stop) == (
        "clambda0", "closed-loop", {"threads": 1}, (1000, 1000), 0.0, None)


def test_a_built_scenario_saves_as_a_file_that_loads_back_equal(tmp_path: Path) -> None:
    built = full_example().build()
    built.save(tmp_path / "built.yaml")
    assert Scenario.load(tmp_path / "built.yaml") == built
    assert Scenario.from_yaml(built.to_yaml()) == built


def test_access_links_and_switch_links_are_typed_shaping() -> None:
    built = full_example().build()
    assert built.host("u1").link == Shaping(bw=100.0, delay=1.0, loss=0.0, queue=None)
    assert built.host("r1").link == Shaping()
    assert built.links[0].shaping == Shaping(bw=10.0, delay=5.0, loss=0.1, queue=100)


def error_of(b: ScenarioBuilder) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        b.build()
    err = caught.value
    # The user never saw a YAML text: no line, no column, no section path.
    assert "line" not in str(err) and ":0:" not in str(err) and "hosts[" not in str(err), str(err)
    return err


def test_a_link_to_an_unknown_switch_names_the_add_link_call() -> None:
    b = small()
    b.add_link("s1", "s9", delay=2)
    err = error_of(b)
    assert str(err) == "add_link('s1', 's9', delay=2): b: unknown switch `s9`; known: `s1`, `s2`"
    assert (err.call, err.field) == ("add_link('s1', 's9', delay=2)", "b")  # type: ignore[attr-defined]


def test_an_unknown_role_names_the_host_the_value_and_the_roles() -> None:
    b = small()
    b.add_host("h1", "s2", role="server")
    assert str(error_of(b)) == (
        "add_host('h1', 's2', role='server'): role: expected one of `router`, `computer`, `controller`, "
        "`client`, `traffic-source`, `traffic-sink`, `nat`, found the string \"server\"")


@pytest.mark.parametrize(
    "bw, found",
    [(-10, "found the integer -10"), (0.0, "found the number 0"), ("fast", 'found the string "fast"')],
)
def test_a_bad_bandwidth_names_the_argument_and_the_value(bw: object, found: str) -> None:
    b = small()
    b.add_switch("s3")
    b.add_link("s2", "s3", bw=bw)  # type: ignore[arg-type]
    assert str(error_of(b)) == (f"add_link('s2', 's3', bw={bw!r}): bw: expected a bandwidth in Mbit/s "
                                f"greater than 0 (omit it for no limit), {found}")
    b = small()
    b.add_host("u2", "s1", role="client", bw=bw)  # type: ignore[arg-type]
    assert str(error_of(b)).startswith(f"add_host('u2', 's1', role='client', bw={bw!r}): bw: expected a bandwidth")


def test_errors_name_the_other_call_they_refer_to() -> None:
    b = small()
    b.add_host("s2", "s1", role="client")
    assert str(error_of(b)) == (
        "add_host('s2', 's1', role='client'): name: duplicate name `s2`: already used by add_switch('s2'); "
        "names of switches and hosts must be unique")
    b = small()
    b.add_link("s2", "s1")
    assert "add_link('s2', 's1'): duplicate link between `s2` and `s1`: add_link('s1', 's2', bw=100) already" \
        in str(error_of(b))


def test_computer_options_on_another_role_name_the_options() -> None:
    b = small()
    b.add_host("r2", "s1", role="router", preset="raspberry", cores=2)
    assert str(error_of(b)) == ("add_host('r2', 's1', role='router', preset='raspberry', cores=2): preset, cores: "
                                "does not apply to a host whose role is not `computer`")
    b = small()
    b.add_host("c2", "s1", role="computer", preset="mainframe")
    assert str(error_of(b)).startswith(
        "add_host('c2', 's1', role='computer', preset='mainframe'): preset: expected one of `raspberry`")


def test_workload_control_and_run_errors_name_their_calls() -> None:
    b = small()
    b.add_workload("u1", "r1", rate=5)
    assert str(error_of(b)) == ("add_workload('u1', 'r1', lambda_='clambda0', pattern='closed-loop', rate=5): "
                                "rate: does not apply to the `closed-loop` pattern")
    b = small()
    b.add_workload("u1", "c1", pattern="poisson", rate=5)
    assert "router: host `c1` is a computer, expected a host whose role is `router`" in str(error_of(b))
    b = small()
    b.control(policy="fastest")
    text = str(error_of(b))
    assert text.startswith("control(policy='fastest'): policy: expected one of `rp` (random-proportional), "), text
    assert text.endswith(", found the string \"fastest\""), text
    b = ScenarioBuilder("bad", duration=-1)
    b.add_switch("s1")
    assert str(error_of(b)) == ("ScenarioBuilder('bad', duration=-1): duration: expected a duration in s "
                                "greater than 0, found the integer -1")
    b = small()
    b.add_switch("s3")
    assert str(error_of(b)).startswith("add_switch('s3'): switch `s3` cannot reach `s1`")


def test_control_takes_every_estimator_of_core_and_the_policys_default() -> None:
    b = small()
    b.control(policy="p2c")
    assert b.build().control["estimator"] == "peak-ewma:10", "p2c's own default"
    b = small()
    b.control(policy="p2c", estimator="peak-ewma", decay=2.5)
    assert b.build().control["estimator"] == "peak-ewma:2.5"
    b = small()
    b.control(policy="least-impedance", estimator="periodic", period=5, stat="max")
    assert (b.build().control["policy"], b.build().control["estimator"]) == ("li", "periodic:5:max")


def test_from_data_validates_plain_data_like_a_file() -> None:
    data = small().to_data()
    assert Scenario.from_data(data) == small().build()
    data["links"][0]["bw"] = object()
    with pytest.raises(ScenarioError, match=r"^links\[0\]\.bw: expected a number, a string, .*a Python `object`"):
        Scenario.from_data(data)
    data["links"][0]["bw"] = -1
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_data(data)
    assert caught.value.field == "links[0].bw"
    assert caught.value.message.startswith("expected a bandwidth in Mbit/s greater than 0")


def test_a_built_scenario_becomes_an_experiment_with_an_experiment_files_settings(tmp_path: Path) -> None:
    from lambdaroute.testbed.experiment import ExperimentError, for_scenario

    built = small().build()
    exp = for_scenario(built, tables="testbed", results=tmp_path, monitor={"interval": 0.5})
    assert (exp.name, exp.scenario, exp.tables, exp.results, exp.monitor["interval"]) == (
        "small", built, "testbed", tmp_path, 0.5)
    assert exp.raw["results"] == str(tmp_path)  # written to experiment.yaml as plain text
    with pytest.raises(ExperimentError, match="unknown setting.*overrides"):
        for_scenario(built, overrides={"duration": 5})
    with pytest.raises(ExperimentError, match="tables `fast`"):
        for_scenario(built, tables="fast")


def test_real_computers_external_computers_and_image_workloads():
    b = ScenarioBuilder("real", duration=10)
    b.add_switch("s1")
    for name, role in (("r1", "router"), ("u1", "client"), ("n", "nat")):
        b.add_host(name, "s1", role)
    b.add_host("f1", "s1", "computer", executor="face")
    b.add_workload("u1", "r1", lambda_="facerec0", images=["a.jpg"], eyes="eyerec0")
    assert b.add_external("face", executor="face") == "face"
    b.add_external("sim", preset="intel-server", port=12000)
    sc = b.build()
    assert [(e.name, e.computer["executor"], e.port) for e in sc.external] == [
        ("face", "face", 10100), ("sim", "simulated", 12000)]
    assert (sc.workloads[0].images, sc.workloads[0].eyes) == (("a.jpg",), "eyerec0")
    assert sc.host("f1").computer["executor"] == "face"
    assert Scenario.from_yaml(sc.to_yaml()) == sc
    b.add_external("bad", executor="face", speed=1e9)
    with pytest.raises(ScenarioError, match=r"add_external\('bad', executor='face', speed=1000000000.0\): speed: "
                                            r"does not apply to a face computer"):
        b.build()
