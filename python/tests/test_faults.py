"""The fault figures (lambdaroute.testbed.faults) from synthetic calls and events: no Mininet."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from lambdaroute.testbed import faults
from lambdaroute.testbed.faults import Fault, Sample


def steady(start: float, stop: float, rate: float = 20.0, latency: float = 0.03, client: str = "u1") -> list[Sample]:
    """``rate`` OK calls/s of ``latency`` s sent from ``start`` to ``stop``."""
    n = int(round((stop - start) * rate))
    return [Sample(start + i / rate, latency, True, client) for i in range(n)]


def test_events_pair_into_faults_and_an_unrepaired_one_ends_with_the_run():
    events = [
        {"at": 8, "applied": 8.02, "took": 0.01, "kind": "link-down", "target": "s1-s2", "error": ""},
        {"at": 10, "applied": 10.0, "took": 0.4, "kind": "router-restart", "target": "r1", "error": ""},
        {"at": 12, "applied": 12.1, "took": 0.0, "kind": "computer-freeze", "target": "ca", "error": ""},
        {"at": 14, "applied": 14.05, "took": 0.01, "kind": "link-up", "target": "s1-s2", "error": ""},
        {"at": 15, "applied": 15.0, "took": 0.2, "kind": "computer-speed", "target": "cb", "error": ""},
        {"at": 16, "applied": 16.0, "took": 0.0, "kind": "computer-stop", "target": "cb", "error": "boom"},
        {"at": 20, "kind": "computer-thaw", "target": "ca", "error": "not applied: the run ended"},
    ]
    got = faults.faults_from_events(events, end=24.0)
    assert got == [
        Fault("link-down", "s1-s2", 8.02, 14.05),
        Fault("router-restart", "r1", 10.0, 10.4),
        Fault("computer-freeze", "ca", 12.1, 24.0, repaired=False),
    ]


def test_a_fault_that_costs_nothing_recovers_at_once():
    calls = steady(0, 24)
    (fig,) = faults.analyse(calls, [Fault("router-restart", "r1", 10.0, 10.3)], end=24.0)
    assert fig.baseline_rate == pytest.approx(20.0)
    assert fig.baseline_p50_ms == pytest.approx(30.0)
    assert fig.lost == 0 and fig.stalled == 0
    assert fig.recovered_at == 10.0 and fig.recovered_s == 0.0 and fig.after_repair_s == 0.0
    assert fig.p50_ms == pytest.approx(30.0)


def test_lost_calls_recovery_and_latency_during_a_link_fault():
    # 20 calls/s, 30 ms; the link goes down at 8 s: nothing answers until the repair at 14 s,
    # the calls sent meanwhile fail (one per second, after 1.5 s); a call in flight
    # at 8 s fails too; after the repair calls are slow (90 ms) for 1 s, then back to normal.
    calls = [c for c in steady(0, 8) if c.time < 7.98]
    calls.append(Sample(7.99, 5.0, False))                      # in flight at the fault
    calls += [Sample(8.0 + i, 1.5, False) for i in range(6)]    # errors while down
    calls += steady(14.0, 15.0, latency=0.09)                    # slow after the repair
    calls += steady(15.0, 24.0)
    (fig,) = faults.analyse(calls, [Fault("link-down", "s1-s2", 8.0, 14.0)], end=24.0)
    assert fig.lost == 7
    assert fig.stalled == 7                                      # 1.5 s and 5 s: above 1 s and 10x 30 ms
    # The 1-s bins from 8 s: 8..13 have no success; 14 has 90 ms (3x the baseline p50); 15 on is good.
    assert fig.recovered_at == 15.0 and fig.recovered_s == 7.0 and fig.after_repair_s == 1.0
    assert fig.p50_ms is not None and math.isnan(fig.p50_ms)     # no success before the repair
    assert fig.calls == 7 + 20                                   # the in-flight one, 6 errors, 1 s of slow calls


def test_a_rate_below_90_percent_of_the_baseline_is_not_recovered():
    calls = steady(0, 10) + steady(10, 24, rate=17.0)            # 85 % of 20 calls/s
    (fig,) = faults.analyse(calls, [Fault("computer-freeze", "ca", 10.0, 12.0)], end=24.0)
    assert fig.recovered_at is None and fig.recovered_s is None and fig.after_repair_s is None
    assert fig.lost == 0
    calls = steady(0, 10) + steady(10, 24, rate=18.0)            # 90 %: recovered at once
    (fig,) = faults.analyse(calls, [Fault("computer-freeze", "ca", 10.0, 12.0)], end=24.0)
    assert fig.recovered_s == 0.0


def test_stalled_calls_of_a_frozen_computer_and_recovery_before_the_repair():
    # Frozen at 8 s: calls in flight and those sent in the next 2 s wait for the router's 2 s
    # call timeout, then succeed elsewhere; from 10 s the calls go elsewhere at full rate,
    # before the thaw at 14 s: recovered 2 s after the fault, 0 s after the repair.
    calls = steady(0, 8) + [Sample(8.0 + i / 4, 2.1, True) for i in range(8)] + steady(10, 24)
    (fig,) = faults.analyse(calls, [Fault("computer-freeze", "ca", 8.0, 14.0)], end=24.0)
    assert fig.lost == 0 and fig.stalled == 8
    assert fig.recovered_s == 2.0 and fig.after_repair_s == 0.0
    assert fig.max_ms == pytest.approx(2100.0)


def test_each_client_gets_its_rows_beside_all():
    u1 = steady(0, 24, client="u1")
    u2 = [c for c in steady(0, 24, client="u2") if not 10.0 <= c.time < 11.0] + \
         [Sample(10.0 + i / 10, 0.001, False, "u2") for i in range(10)]
    figs = faults.analyse_by_client(u1 + u2, [Fault("router-restart", "r1", 10.0, 10.5)], end=24.0)
    assert [f.client for f in figs] == ["all", "u1", "u2"]
    by = {f.client: f for f in figs}
    assert by["u1"].lost == 0 and by["u1"].recovered_s == 0.0
    assert by["u2"].lost == 10 and by["u2"].recovered_s == 1.0
    assert by["all"].lost == 10


def test_faults_csv_and_the_table_from_a_results_folder(tmp_path: Path):
    (tmp_path / "metadata.json").write_text(json.dumps({"duration_s": 24}), encoding="utf-8")
    with open(tmp_path / "calls.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["client", "router", "time", "latency", "responder", "lambda", "hops", "status"])
        for c in steady(0, 24):
            if 8.0 <= c.time < 9.0:
                w.writerow(["u1", "r1", f"{c.time:.4f}", "0.001", "", "clambda0", 0, "Unavailable: refused"])
            else:
                w.writerow(["u1", "r1", f"{c.time:.4f}", f"{c.latency:.6f}", "ca", "clambda0", 2, "OK"])
    (tmp_path / "events.csv").write_text(
        "at,applied,took,kind,target,detail,error\n"
        "8,8.000,0.500,router-restart,r1,\"stopped, started\",\n"
        "20,,,computer-freeze,ca,,not applied: the run ended\n", encoding="utf-8")
    figs = faults.from_results(tmp_path)
    assert len(figs) == 1 and figs[0].lost == 20 and figs[0].recovered_s == 1.0
    rows = list(csv.DictReader(open(tmp_path / "faults.csv", encoding="utf-8")))
    assert rows[0]["kind"] == "router-restart" and rows[0]["lost"] == "20" and rows[0]["client"] == "all"
    assert rows[0]["recovered_s"] == "1.0"
    table = faults.format_table(figs)
    assert table.startswith("| fault | client |") and "| router-restart r1 | all | 8.0 |" in table


def test_the_cli_prints_the_faults_of_a_results_folder(tmp_path: Path, capsys):
    from lambdaroute.testbed.cli import main

    (tmp_path / "metadata.json").write_text(json.dumps({"duration_s": 10}), encoding="utf-8")
    (tmp_path / "calls.csv").write_text("client,router,time,latency,responder,lambda,hops,status\n"
                                        + "".join(f"u1,r1,{i / 10:.2f},0.03,ca,clambda0,2,OK\n" for i in range(100)),
                                        encoding="utf-8")
    (tmp_path / "events.csv").write_text("at,applied,took,kind,target,detail,error\n"
                                         "4,4.0,0.0,link-down,s1-s2,x,\n6,6.0,0.0,link-up,s1-s2,x,\n",
                                         encoding="utf-8")
    assert main(["faults", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| link-down s1-s2 | all | 4.0 | 6.0 |" in out
    assert (tmp_path / "faults.csv").exists()
    assert main(["faults", str(tmp_path / "nowhere")]) == 2


# ----- the testbed's side: scenarios, experiments, client commands (no Mininet) -----

REPO = Path(__file__).resolve().parents[2]


def test_the_fault_experiments_load_with_their_events_fallback_and_timeouts():
    from lambdaroute.testbed.experiment import load

    link = load(REPO / "experiments" / "faults" / "link.yaml")
    assert [(e.kind, e.link) for e in link.scenario.events] == [("link-down", "s1-s2"), ("link-up", "s1-s2")]
    assert link.timeouts == {"call": 2.0, "client": 5.0} and link.tables == "controller"
    router = load(REPO / "experiments" / "faults" / "router.yaml")
    assert [(w.client, w.router, w.fallback) for w in router.scenario.workloads] == [
        ("u1", "r1", ("r2",)), ("u2", "r1", ())]
    freeze = load(REPO / "experiments" / "faults" / "freeze.yaml")
    assert [(e.kind, e.host) for e in freeze.scenario.events] == [("computer-freeze", "ca"), ("computer-thaw", "ca")]
    # Written back and read again: the same.
    from lambdaroute import Scenario

    again = Scenario.from_yaml(router.scenario.to_yaml())
    assert again.workloads[0].fallback == ("r2",) and "fallback: r2" in router.scenario.to_yaml()


def test_the_client_command_lists_the_fallback_routers_and_the_timeout():
    from lambdaroute.testbed.experiment import load
    from lambdaroute.testbed.nodes import client_command

    sc = load(REPO / "experiments" / "faults" / "router.yaml").scenario
    u1, u2 = sc.workloads
    args = client_command(u1, sc.host("r1"), Path("o.csv"), 20.0, 3, fallback=[sc.host(r) for r in u1.fallback],
                          timeout=5.0)
    r1, r2 = sc.host("r1").ip, sc.host("r2").ip
    assert args[args.index("--router") + 1] == f"{r1}:6473,{r2}:6473"
    assert args[args.index("--timeout") + 1] == "5s"
    args = client_command(u2, sc.host("r1"), Path("o.csv"), 20.0, 3)
    assert args[args.index("--router") + 1] == f"{r1}:6473" and "--timeout" not in args


def test_timeouts_are_checked_with_the_key_and_the_fix():
    from lambdaroute.testbed.experiment import ExperimentError, load

    base = {"scenario": str(REPO / "experiments" / "scenarios" / "faults.yaml")}
    assert load(data={**base, "timeouts": {"call": 1.5}}).timeouts == {"call": 1.5}
    with pytest.raises(ExperimentError, match=r"timeouts.router: unknown; expected call, client"):
        load(data={**base, "timeouts": {"router": 1}})
    with pytest.raises(ExperimentError, match=r"timeouts.call `0`: expected seconds > 0"):
        load(data={**base, "timeouts": {"call": 0}})
    with pytest.raises(ExperimentError, match=r"timeouts `3`: expected"):
        load(data={**base, "timeouts": 3})


def test_the_builder_takes_a_fallback_and_freeze_events():
    from lambdaroute import ScenarioBuilder, ScenarioError

    b = ScenarioBuilder("f", duration=20)
    b.add_switch("s1")
    b.add_host("r1", "s1", role="router")
    b.add_host("r2", "s1", role="router")
    b.add_host("u1", "s1", role="client")
    b.add_host("c1", "s1", role="computer")
    b.add_workload("u1", "r1", pattern="poisson", rate=2, fallback="r2")
    b.add_event(5, "computer-freeze", host="c1")
    b.add_event(9, "computer-thaw", host="c1")
    sc = b.build()
    assert sc.workloads[0].fallback == ("r2",)
    assert [e.kind for e in sc.events] == ["computer-freeze", "computer-thaw"]
    b.add_workload("u1", "r1", pattern="poisson", rate=2, fallback=["r1"])
    with pytest.raises(ScenarioError, match="is the workload's `router`"):
        b.build()


FREEZE = """
name: freeze
duration: 20
switches: [{name: s1}]
hosts:
  - {name: r1, switch: s1, role: router}
  - {name: c1, switch: s1, role: computer}
events:
  - {at: 1, kind: computer-freeze, host: c1}
  - {at: 2, kind: computer-thaw, host: c1}
  - {at: 3, kind: computer-freeze, host: c1}
"""


def _state(pid: int) -> str:
    """The process's state letter in /proc (T: stopped by a signal)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2]


def test_freeze_and_thaw_events_stop_and_continue_the_computer_process_by_handle(tmp_path: Path):
    import subprocess
    import sys
    import time
    from types import SimpleNamespace

    from lambdaroute import Scenario
    from lambdaroute.testbed import events as events_mod
    from lambdaroute.testbed.nodes import NodeProcess, Nodes

    scenario = Scenario.from_yaml(FREEZE)
    nodes = Nodes(SimpleNamespace(), scenario, "lambdaroute", tmp_path, SimpleNamespace(push=lambda what, action: None))
    proc = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.01)"])
    try:
        nodes.running.append(NodeProcess("c1", "computer", ["lambdaroute", "computer"], tmp_path / "c1.log", proc))
        runner = events_mod.EventRunner(None, nodes, scenario, None, 1)
        origin = time.monotonic()

        def settled(state: str) -> bool:
            deadline = time.monotonic() + 5
            while _state(proc.pid) != state:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
            return True

        done = runner.tick(1.0, origin)
        assert [(a.kind, a.detail, a.error) for a in done] == [
            ("computer-freeze", "SIGSTOP to 1 process (suspended, not killed)", "")]
        assert settled("T") and proc.poll() is None
        done = runner.tick(2.0, origin)
        assert [(a.kind, a.detail) for a in done] == [("computer-thaw", "SIGCONT to 1 process (resumed)")]
        assert settled("S") or _state(proc.pid) == "R"
        runner.tick(3.0, origin)
        assert settled("T") and runner.frozen == {"c1"}
        # Still frozen when the run ends: thawed before the nodes stop, and recorded.
        done = runner.thaw_all(origin)
        assert [(a.kind, a.target, a.error) for a in done] == [("computer-thaw", "c1", "")]
        assert "at the end of the run" in done[0].detail and runner.frozen == set()
        assert settled("S") or _state(proc.pid) == "R"
        rows = list(csv.DictReader(open(_write(runner, tmp_path), encoding="utf-8")))
        assert [r["kind"] for r in rows] == ["computer-freeze", "computer-thaw", "computer-freeze", "computer-thaw"]
        from lambdaroute.scenario import Event

        with pytest.raises(RuntimeError, match="computer c1 is not frozen"):
            runner.apply(Event(at=4.0, kind="computer-thaw", host="c1"))
    finally:
        proc.kill()
        proc.wait()


def _write(runner, tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    runner.write_csv(path)
    return path
