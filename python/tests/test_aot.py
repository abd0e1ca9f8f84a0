"""Array of Things traces from Python: the reader, the generator, the sites, the schedules of
``pattern: aot`` workloads, and the replay experiment's file (no Mininet)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from lambdaroute import ScenarioBuilder, aot, topologies
from lambdaroute.testbed import report
from lambdaroute.testbed.experiment import ExperimentError, load
from lambdaroute.testbed.nodes import client_command

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "traces" / "aot" / "chicago-30min.csv.gz"
HEADER = "timestamp,node_id,subsystem,sensor,parameter,value_raw,value_hrf\n"


def test_the_shipped_sample_reads_as_a_digest_and_is_small():
    reader = aot.Reader(SAMPLE)
    samples = list(reader)
    stats = reader.stats()
    assert stats["rows"] == len(samples) > 10_000
    assert stats["unknown_rows"] == 0
    assert stats["first"] == "2018/09/04 13:30:00"
    assert SAMPLE.stat().st_size < 500_000, "the shipped sample must stay well under 1 MB"
    s = samples[0]
    assert isinstance(s, aot.Sample) and s.line == 2
    assert {x.subsystem for x in samples} == {"metsense", "lightsense", "chemsense", "image"}
    assert all(x.value_hrf is None for x in samples if x.parameter == "concentration")


def test_filters_and_unknown_nodes(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(HEADER
                    + "2018/01/01 00:00:00,001e0610ee36,metsense,tsys01,temperature,1,1\n"
                    + "2018/01/01 00:00:01,feedfeedfeed,metsense,tsys01,temperature,1,1\n"
                    + "2018/01/01 00:00:10,001e0610ba46,chemsense,co,concentration,5,NA\n"
                    + "2018/01/01 00:00:20,001e0610ba46,metsense,tsys01,temperature,1,NA\n")
    assert [s.node_id for s in aot.read(path, nodes=["004"])] == ["001e0610ba46", "001e0610ba46"]
    assert [s.line for s in aot.read(path, sensors=["chemsense"])] == [4]
    assert [s.line for s in aot.read(path, start=5, stop="2018/01/01 00:00:20")] == [4]
    reader = aot.Reader(path)
    assert len(list(reader)) == 3
    assert reader.stats()["unknown_nodes"] == {"feedfeedfeed": 1}


def test_errors_name_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "2018/01/01 00:00:09,a,b,c,d,1,1\n2018/01/01 00:00:08,a,b,c,d,1,1\n")
    with pytest.raises(aot.TraceError, match=r"bad\.csv:3: timestamp: .* time goes backwards"):
        list(aot.read(bad))
    bad.write_text("time,node\n")
    with pytest.raises(aot.TraceError, match=r"bad\.csv:1: header: found `time,node`"):
        aot.Reader(bad)
    cut = tmp_path / "cut.csv.gz"
    rows = "".join(f"2018/01/01 00:00:09,001e0610ee36,b,c,d,{i * 7919 % 10007},{i}\n" for i in range(20000))
    whole = gzip.compress((HEADER + rows).encode())
    cut.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(aot.TraceError, match="truncated"):
        list(aot.read(cut))


def test_the_generator_is_deterministic_by_seed(tmp_path):
    a, b, c = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz", tmp_path / "c.csv.gz"
    options = {"hours": 0.1, "start": "2018/09/04 13:30:00", "sensors": ["metsense.tsys01"]}
    stats = aot.generate(a, seed=7, **options)
    aot.generate(b, seed=7, **options)
    aot.generate(c, seed=8, **options)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert stats["rows"] == sum(1 for _ in aot.read(a)) > 1000


def test_every_shipped_node_has_a_site_and_the_aot_scenario_maps_them_to_switches():
    sites = aot.sites()
    assert len(sites) == 71
    assert sum(len(s.members) for s in sites) == 126
    sc = topologies.aot_chicago()
    by_switch = sc.aot_sites()
    assert len(by_switch) == 71
    assert by_switch["s1"] == list(sites[0].members)
    assert topologies.grid(2, 2).aot_sites() == {}


def replay_scenario(tmp_path: Path, **workload: object):
    """The AoT scenario with two clients replaying the sample, built in Python."""
    sc = topologies.aot_chicago()
    data = __import__("yaml").safe_load(sc.to_yaml())
    data["duration"] = 30
    data["workloads"] = [
        {"client": "u1", "router": "r1", "lambda": "clambda0", "pattern": "aot", "trace": str(SAMPLE),
         "speedup": 60, **workload},
        {"client": "u2", "router": "r2", "lambda": "clambda0", "pattern": "aot", "trace": str(SAMPLE),
         "speedup": 60, **workload},
    ]
    from lambdaroute import Scenario
    return Scenario.from_data(data)


def test_schedules_hold_each_sites_nodes_at_trace_time_over_the_speedup(tmp_path):
    sc = replay_scenario(tmp_path, lambdas={"image": "glambda0"}, payload={"per-row": 20})
    written = sc.write_schedules(tmp_path, tmp_path / "schedules")
    files = written["files"]
    assert [f["client"] for f in files] == ["u1", "u2"]
    assert len(written["traces"]) == 1, "one pass for both clients"
    sites = sc.aot_sites()
    for f in files:
        rows = list(csv.DictReader(open(f["path"], newline="")))
        assert len(rows) == f["calls"] > 0
        switch = sc.host(f["client"]).switch
        assert {r["node"] for r in rows} <= set(sites[switch])
        times = [float(r["time"]) for r in rows]
        assert times == sorted(times) and times[-1] < 30.0
        assert {r["lambda"] for r in rows} <= {"clambda0", "glambda0"}
        assert all(int(r["size"]) == 20 * int(r["readings"]) for r in rows)
    again = replay_scenario(tmp_path, lambdas={"image": "glambda0"}, payload={"per-row": 20})
    second = again.write_schedules(tmp_path, tmp_path / "again")
    for f, g in zip(files, second["files"]):
        assert Path(f["path"]).read_bytes() == Path(g["path"]).read_bytes(), "same scenario, same calls"


def test_an_aot_workload_becomes_a_client_with_its_schedule(tmp_path):
    sc = replay_scenario(tmp_path)
    w = sc.workloads[0]
    assert w.pattern == "aot" and w.params["speedup"] == 60 and w.params["group"] == "node"
    args = client_command(w, sc.host("r1"), Path("o.csv"), 30.0, 3, schedule=Path("s.csv"))
    assert args[args.index("--pattern") + 1] == "aot" and args[args.index("--schedule") + 1] == "s.csv"
    with pytest.raises(ValueError, match="needs its schedule"):
        client_command(w, sc.host("r1"), Path("o.csv"), 30.0, 3)


def test_the_builder_takes_the_aot_settings():
    b = ScenarioBuilder("b")
    b.add_switch("s1")
    b.add_host("r1", "s1", role="router")
    b.add_host("u1", "s1", role="client")
    b.add_workload("u1", "r1", pattern="aot", trace="x.csv.gz", window={"start": "2018/09/04 13:30:00"},
                   speedup=10, group="reading", lambdas={"chemsense": "glambda0"}, sensors=["chemsense"],
                   payload="rows")
    w = b.build().workloads[0]
    assert w.params["window"] == {"start": "2018/09/04 13:30:00", "stop": None}
    assert w.params["payload"] == "rows" and w.params["sensors"] == ["chemsense"]


def test_the_replay_experiment_turns_every_client_into_an_aot_replay():
    exp = load(REPO / "experiments" / "aot-replay.yaml")
    ws = exp.scenario.workloads
    assert len(ws) == 71 and all(w.pattern == "aot" for w in ws)
    assert all("rate" not in w.params for w in ws)
    assert ws[0].params["lambdas"] == {"image": "glambda0"}
    assert ws[0].params["payload"] == {"per-row": 20}


def test_workload_overrides_by_client_and_star_name_the_bad_key(tmp_path):
    text = (REPO / "experiments" / "aot-replay.yaml").read_text().replace("../", f"{REPO}/")
    exp = tmp_path / "e.yaml"
    exp.write_text(text.replace('    "*":', "    u3: {speedup: 10}\n    \"*\":"))
    ws = load(exp).scenario.workloads
    assert ws[2].params["speedup"] == 10 and ws[0].params["speedup"] == 30
    exp.write_text(text.replace('    "*":', "    nobody: {speedup: 10}\n    \"*\":"))
    with pytest.raises(ExperimentError, match="overrides.workloads.nobody: no workload of client `nobody`"):
        load(exp)


def test_site_counts_bin_arrivals_and_calls_per_site_and_lag_is_sent_minus_scheduled():
    calls = [report.Call("u1", 0.5, 0.1, 0, "c", "f", 2, True, "OK", scheduled=0.499, node="n1"),
             report.Call("u1", 1.2, 0.1, 0, "", "f", 0, False, "timeout", scheduled=1.19, node="n1"),
             report.Call("u2", 1.7, 0.1, 0, "c", "f", 2, True, "OK", scheduled=1.695, node="n2")]
    counts = report.site_counts({"s1": [0.49, 1.19, 2.5], "s2": [1.695]}, calls, {"u1": "s1", "u2": "s2"}, 3.0)
    assert (0.0, "s1", 1, 1, 1) in counts and (1.0, "s1", 1, 1, 0) in counts and (2.0, "s1", 1, 0, 0) in counts
    assert (1.0, "s2", 1, 1, 1) in counts
    lag = report.lag(calls)
    assert lag["calls"] == 3 and lag["max_ms"] == pytest.approx(10.0)
