"""The report's findings (lambdaroute.testbed.analysis) on synthetic calls, and the `report`
command end to end on a fake sweep folder. No Mininet."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from lambdaroute.testbed import analysis as a
from lambdaroute.testbed.cli import main


def calls(share_c1, start: float = 0.0, end: float = 30.0, rate: float = 50.0,
          latency=lambda r, t: 10.0 if r == "c1" else 20.0) -> list[a.Call]:
    """Calls at ``rate``/s split deterministically between c1 and c2: c1 gets ``share_c1(t)``."""
    out, acc = [], 0.0
    for i in range(int((end - start) * rate)):
        t = start + i / rate
        acc += share_c1(t)
        r = "c1" if acc >= 1 else "c2"
        acc -= r == "c1"
        out.append(a.Call(t, latency(r, t), r, True))
    return out


# ----- statistics -----

def test_jain_is_one_for_equal_values_and_one_over_n_for_one_of_n():
    assert a.jain([3.0, 3.0, 3.0]) == pytest.approx(1.0)
    assert a.jain([5.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)


def test_mean_ci_uses_the_t_quantile_and_says_when_there_is_one_seed():
    m, half, n = a.mean_ci([1.0, 1.2, 1.4])
    assert (m, n) == (pytest.approx(1.2), 3)
    assert half == pytest.approx(4.303 * 0.2 / math.sqrt(3))
    assert a.mean_ci([2.0]) == (2.0, None, 1)
    assert a.ci_text(2.0, None, 1) == "2.00 (1 seed, no interval)"
    assert a.t95(40) == 1.96


# ----- F1 -----

def test_f1_shares_in_proportion_to_inverse_latency_are_fair():
    # 10 and 20 ms: 1/latency shares 2/3 and 1/3.
    index = a.fairness_windows(calls(lambda t: 2 / 3), 30.0)
    assert len(index) == 28  # windows [2, 3) .. [29, 30)
    assert min(index) == pytest.approx(1.0, abs=1e-3)


def test_f1_equal_split_against_latencies_10_and_20_ms():
    # x = (1/2, 1/2), e = (2/3, 1/3): r = (3/4, 3/2); (9/4)^2 / (2 (9/16 + 9/4)) = 0.9
    index = a.fairness_windows(calls(lambda t: 0.5), 30.0)
    assert index == pytest.approx([0.9] * 28)


def test_f1_skips_sparse_windows_and_counts_a_computer_gone_silent():
    few = a.fairness_windows(calls(lambda t: 0.5, rate=8), 30.0)  # 8 calls per window < 10
    assert few == []
    # c2 answers in [2, 3) only: in [3, 4) it counts with x = 0 (its latency from [2, 3)), but the
    # window is skipped since one computer answered; so no windows at all after the first.
    silent = a.fairness_windows(calls(lambda t: 0.5 if t < 3 else 1.0), 30.0)
    assert len(silent) == 1


def test_f1_leaves_out_computers_outside_round_robins_active_set():
    # c3 answers a probe per window at 45 ms, above 2 x 10 ms: round robin owes it no share, so
    # the fair 2/3-1/3 split of c1 and c2 stays at 1.0; with c3 counted it would not.
    probed = sorted(calls(lambda t: 2 / 3) + [a.Call(k + 0.5, 45.0, "c3", True) for k in range(30)],
                    key=lambda c: c.time)
    assert min(a.fairness_windows(probed, 30.0)) == pytest.approx(1.0, abs=0.02)
    assert max(a.fairness_windows(probed, 30.0, active_factor=10.0)) < 0.95


def test_f1_judges_each_router_on_its_own_calls():
    # Router r1 sends everything to c1 (10 ms), r2 everything to c2 (20 ms): each is alone in its
    # router's windows (skipped), while the mix would look unfair (1/2-1/2 against 2/3-1/3).
    mixed = [a.Call(c.time, c.latency, c.responder, c.ok, "r1" if c.responder == "c1" else "r2")
             for c in calls(lambda t: 0.5)]
    assert a.fairness_windows(mixed, 30.0) == pytest.approx([0.9] * 28)
    assert a.router_windows(mixed, 30.0) == []
    fair = [a.Call(c.time, c.latency, c.responder, c.ok, "r1") for c in calls(lambda t: 2 / 3)]
    assert a.router_windows(fair + [], 30.0) == pytest.approx([1.0] * 28, abs=1e-3)


# ----- F2 -----

def ramp(t: float, at: float = 10.0, old: float = 0.6, new: float = 0.4, over: float = 3.0) -> float:
    return old + (new - old) * min(max((t - at) / over, 0.0), 1.0)


def test_adaptation_time_on_a_linear_ramp_is_80_percent_of_it():
    series = [(i * 0.25, ramp(i * 0.25)) for i in range(120)]
    seconds = a.adaptation_time(series, 10.0, 0.6, 0.4)
    assert seconds == pytest.approx(2.4, abs=0.25)


def test_adaptation_from_calls_finds_old_and_new_shares():
    result = a.adaptation(calls(ramp), 30.0, 10.0, "c1")
    assert result.status == "adapted"
    assert result.old == pytest.approx(0.6, abs=0.02) and result.new == pytest.approx(0.4, abs=0.02)
    assert result.seconds == pytest.approx(2.4, abs=0.3)


def test_did_not_adapt_and_no_change_to_measure():
    # Back to the old share after 1 s: it moved, but did not stay.
    series = [(i * 0.25, 0.4 if 11 <= i * 0.25 < 12 else 0.6) for i in range(120)]
    assert a.adaptation_time(series, 10.0, 0.6, 0.4) is None
    assert a.adaptation(calls(lambda t: 0.5), 30.0, 10.0, "c1").status == "no change to measure"


def test_speed_halvings_takes_applied_factor_half_events_only():
    events = [{"kind": "computer-speed", "applied": 10.2, "target": "c1",
               "detail": "restarted with --speed-factor 0.5"},
              {"kind": "computer-speed", "applied": 12.0, "target": "c2", "detail": "restarted with --speed-factor 2"},
              {"kind": "computer-speed", "target": "c3", "error": "not applied: the run ended"},
              {"kind": "link-down", "applied": 3.0, "target": "s1-s2", "detail": "down"}]
    assert a.speed_halvings(events) == [(10.2, "c1")]
    # The testbed now changes the speed live; the number follows `speed factor`.
    live = [{"kind": "computer-speed", "applied": 8.5, "target": "c4", "detail": "speed factor 0.5 (live, no restart)"},
            {"kind": "computer-speed", "applied": 9.0, "target": "c5",
             "detail": "speed factor 0.5 (5e+08 ops/s per core; live, no restart)"},
            {"kind": "computer-speed", "applied": 9.5, "target": "c6", "detail": "speed factor 0.25 (live, no restart)"},
            {"kind": "computer-load", "applied": 9.7, "target": "c4", "detail": "background load 0.5 (live)"}]
    assert a.speed_halvings(live + events) == [(8.5, "c4"), (9.0, "c5"), (10.2, "c1")]


# ----- F3 -----

def run(role: str, policy: str, seed: int, cs: list[a.Call], background=((10.0, 15.0), (14.0, 20.0))) -> a.Run:
    return a.Run(Path(f"/x/{role}/{policy}-s{seed}"), "exp", role.removeprefix("congestion-"), role, policy, seed,
                 30.0, calls=cs, background=list(background))


def test_f3_pairs_by_policy_and_seed_and_takes_p95_inside_the_episode():
    def lat(inside: float):
        return calls(lambda t: 0.5, latency=lambda r, t: inside if 10 <= t < 20 else 1000.0)
    runs = [run("congestion-baseline", "rr", 1, lat(10.0)), run("congestion-hook-on", "rr", 1, lat(11.0)),
            run("congestion-hook-off", "rr", 1, lat(30.0)), run("congestion-hook-on", "rr", 2, lat(11.0)),
            run("congestion-baseline", "li", 1, lat(10.0))]
    pairs = a.pair_congestion(runs)
    assert [(p.policy, p.seed) for p in pairs] == [("rr", 1)]  # the others are incomplete
    assert pairs[0].episode == [(10.0, 20.0)]  # the union of the background's intervals
    assert (pairs[0].ratio_on, pairs[0].ratio_off) == (pytest.approx(1.1), pytest.approx(3.0))
    [finding] = a.f3(runs)
    assert finding.status == "holds" and "hook on / baseline 1.10x (1 seed, no interval)" in finding.text
    assert not finding.notes


def test_f3_when_missed_lists_what_the_data_shows():
    def lat(inside: float):
        return calls(lambda t: 0.5, latency=lambda r, t: inside if 10 <= t < 20 else 1.0)
    runs = [run("congestion-baseline", "rr", s, lat(10.0)) for s in (1, 2, 3)] + \
           [run("congestion-hook-on", "rr", s, lat(v)) for s, v in ((1, 14.0), (2, 15.0), (3, 16.0))] + \
           [run("congestion-hook-off", "rr", s, lat(15.0)) for s in (1, 2, 3)]
    runs[3].congestion = [(12.5, "s1-s2", "congested"), (18.0, "s1-s2", "cleared")]
    [finding] = a.f3(runs)
    half = 4.303 * 0.1 / math.sqrt(3)  # ratios 1.4, 1.5, 1.6: s = 0.1, df = 2
    assert finding.status == "does not hold"
    assert f"hook on / baseline 1.50x ± {half:.2f}x (95% CI, 3 seeds)" in finding.text
    assert "hook off / baseline 1.50x ± 0.00x" in finding.text
    assert len(finding.notes) == 9
    assert "exp, rr, seed 1, on (hook-on): p95 14.0 ms over 500 calls (0 errors) in the episode; shares c1 50%, c2 50%; " \
           "first reported congested at 12.5 s on s1-s2" == finding.notes[1]


def test_findings_without_runs_say_not_measured():
    for f in a.findings([]):
        assert f.status == "not measured" and "no runs with" in f.text


# ----- the report, end to end -----

def write_run(folder: Path, *, experiment: str, variant: str, role: str | None, policy: str, seed: int,
              cs: list[a.Call], events=(), figures=None, background=()) -> None:
    folder.mkdir(parents=True)
    meta = {"experiment": experiment, "duration_s": 30.0, "seed": seed,
            "control": {"policy": policy, "installer": "two-tier"}, "events": list(events),
            "timings_s": {"tables": 1.5}, "computers": {"10.0.0.1:7000": "c1"},
            "sweep": {"experiment": experiment, "variant": variant, "role": role, "policy": policy,
                      "seed": seed, "quick": False}}
    if figures:
        meta["figures"] = figures
    (folder / "metadata.json").write_text(json.dumps(meta))
    rows = ["client,router,time,latency,responder,lambda,hops,status"]
    for c in cs:
        # c1 by its endpoint: the report names it through metadata `computers`.
        responder = "10.0.0.1:7000" if c.responder == "c1" else c.responder
        rows.append(f"w1,r1,{c.time:.3f},{c.latency / 1000:.6f},{responder},f,2,OK")
    rows.append("w1,r1,29.990,,,f,0,timeout")
    (folder / "calls.csv").write_text("\n".join(rows) + "\n")
    (folder / "scenario.yaml").write_text(yaml.safe_dump(
        {"duration": 30, "background": [{"source": "t1", "sink": "x1", "rate": 8, "start": b[0], "stop": b[1]}
                                        for b in background]}))


def test_report_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    sweep = tmp_path / "results" / "paper-line" / "20260101-000000"
    halving = [{"at": 10, "applied": 10.0, "took": 0.5, "kind": "computer-speed", "target": "c1",
                "detail": "restarted with --speed-factor 0.5", "error": ""}]
    entries = [("limited", None, "rr", 1, calls(lambda t: 2 / 3), []),
               ("limited", None, "rr", 2, calls(lambda t: 0.5), []),
               ("slow", None, "li", 1, calls(ramp), halving),
               ("flat", "tables-flat", "rr", 1, calls(lambda t: 2 / 3), []),
               ("two-tier", "tables-two-tier", "rr", 1, calls(lambda t: 2 / 3), [])]
    figures = {"flat": {"entries_mean": 40.0, "entries_max": 40, "p50": 10.0, "p99": 20.0, "routers_per_call": 1.0},
               "two-tier": {"entries_mean": 10.0, "entries_max": 12, "p50": 10.5, "p99": 21.0, "routers_per_call": 1.3}}
    listed = []
    for variant, role, policy, seed, cs, events in entries:
        folder = f"{variant}/{policy}-s{seed}"
        write_run(sweep / folder, experiment="paper-line", variant=variant, role=role, policy=policy, seed=seed,
                  cs=cs, events=events, figures=figures.get(variant))
        listed.append({"variant": variant, "role": role, "policy": policy, "seed": seed, "folder": folder,
                       "ok": True, "error": None, "wall_s": 40.0})
    listed.append({"variant": "limited", "role": None, "policy": "p2c", "seed": 1, "folder": "limited/p2c-s1",
                   "ok": False, "error": "RuntimeError: router r1 died", "wall_s": 3.0})
    (sweep / "sweep.json").write_text(json.dumps({"experiment": "paper-line", "description": "d", "quick": False,
                                                  "source": "experiments/paper/line.yaml", "runs": listed}))
    # One run scraped its nodes' metrics: the report plots them for that run only.
    (sweep / "limited/rr-s1" / "metrics.csv").write_text(
        "time,node,metric,labels,value\n"
        "1.000,r1,lambdaroute_router_calls_in_flight,,2\n2.000,r1,lambdaroute_router_calls_in_flight,,3\n"
        "1.000,c1,lambdaroute_computer_utilization,computer=10.0.0.1:7000;processor=cpu,0.5\n"
        "2.000,c1,lambdaroute_computer_utilization,computer=10.0.0.1:7000;processor=cpu,0.7\n")
    broken = tmp_path / "results" / "single" / "20260101-000001"
    write_run(broken, experiment="single", variant="-", role=None, policy="rr", seed=1, cs=calls(lambda t: 0.5))
    with open(broken / "calls.csv", "a") as f:
        f.write("w1,r1,not-a-time,0.01,c1,f,2,OK\n")
    out = tmp_path / "report"

    assert main(["report", str(sweep), str(broken), str(sweep / "limited/rr-s1"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(out / "report.md")
    md = (out / "report.md").read_text()
    assert (out / "report.html").exists() and "<table>" in (out / "report.html").read_text()
    for png in ("latency-paper-line.png", "shares-paper-line-limited.png", "entries.png"):
        assert (out / png).stat().st_size > 1000 and f"]({png})" in md
    assert "## Metrics over time" in md and "](metrics-paper-line-limited-rr-1.png)" in md
    assert (out / "metrics-paper-line-limited-rr-1.png").stat().st_size > 1000
    assert len(list(out.glob("metrics-*.png"))) == 1
    # F1: seed 1 fair (~1.0), seed 2 split equally (0.9): mean 0.950, worst 0.900, 56 windows.
    assert "F1 does not hold: Jain mean 0.950, min 0.900 over 56 windows (rr, 2 seeds, paper-line/limited" in md
    assert "F2 holds: adapted in 2." in md and "(li, 1 seed, paper-line/slow)" in md
    assert "F3 not measured: no runs with roles congestion-baseline" in md
    assert "F4 holds: entries per router two-tier 10.0 mean (max 12) vs flat 40.0 (max 40), flat / two-tier " \
           "4.00x; p50 two-tier / flat 1.05x" in md
    assert "RuntimeError: router r1 died" in md and "line 1503: unreadable row" in md
    assert any(line.startswith("F1 does not hold") for line in printed)


def test_report_names_a_folder_that_is_neither(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "neither a sweep folder" in err
