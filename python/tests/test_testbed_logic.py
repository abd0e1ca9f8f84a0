"""The testbed's pure parts, without Mininet: congestion hysteresis, port counters, traffic
schedules, the delay plan, experiment files, summaries."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from lambdaroute import Scenario, _native
from lambdaroute.testbed import delay, report, traffic
from lambdaroute.testbed.experiment import ExperimentError, load
from lambdaroute.testbed.monitor import CongestionDetector, parse_dump_ports
from lambdaroute.testbed.nodes import client_command, computer_config, computer_lambdas, router_flags

REPO = Path(__file__).resolve().parents[2]


# ----- congestion detection -----

def feed(det: CongestionDetector, link: str, mbps: list[float]) -> list[tuple[int, str]]:
    out = []
    for i, v in enumerate(mbps):
        out += [(i, t.event) for t in det.update(float(i), {link: v})]
    return out


def test_a_link_is_congested_after_enough_readings_above_the_threshold():
    det = CongestionDetector({"s1-s2": 10.0}, threshold=0.8, hysteresis=0.2, samples=2)
    assert feed(det, "s1-s2", [9.0, 5.0, 8.0, 8.5]) == [(3, "congested")]
    assert det.congested == {"s1-s2"}


def test_a_congested_link_clears_only_below_the_lower_mark():
    det = CongestionDetector({"l": 10.0}, threshold=0.8, hysteresis=0.25, samples=1)
    # Between 6 (0.8 * 0.75) and 8 it stays congested, however long.
    events = feed(det, "l", [9, 7.9, 7, 6.1, 7.5, 6.5, 5.9, 7.9, 8.0])
    assert events == [(0, "congested"), (6, "cleared"), (8, "congested")]


def test_a_link_hovering_at_the_threshold_does_not_flap():
    det = CongestionDetector({"l": 100.0}, threshold=0.8, hysteresis=0.2, samples=2)
    events = feed(det, "l", [79, 81, 79, 81, 79, 81, 79, 81])
    assert events == []


def test_links_without_bandwidth_are_never_congested():
    det = CongestionDetector({"l": None}, threshold=0.5, samples=1)
    assert det.update(0.0, {"l": 1e9}) == []


def test_bad_detector_settings_say_what_is_expected():
    with pytest.raises(ValueError, match="threshold"):
        CongestionDetector({}, threshold=1.5)
    with pytest.raises(ValueError, match="hysteresis"):
        CongestionDetector({}, threshold=0.8, hysteresis=1.0)


def test_dump_ports_tx_bytes_by_port_number():
    text = textwrap.dedent("""\
        OFPST_PORT reply (xid=0x2): 3 ports
          port LOCAL: rx pkts=0, bytes=0, drop=0, errs=0, frame=0, over=0, crc=0
                   tx pkts=0, bytes=0, drop=0, errs=0, coll=0
          port  1: rx pkts=10, bytes=1000, drop=0, errs=0, frame=0, over=0, crc=0
                   tx pkts=20, bytes=123456, drop=0, errs=0, coll=0
          port  12: rx pkts=1, bytes=2, drop=?, errs=?, frame=?, over=?, crc=?
                   tx pkts=3, bytes=4, drop=?, errs=?, coll=?
        """)
    assert parse_dump_ports(text) == {1: 123456, 12: 4}


# ----- background traffic -----

def test_on_off_schedules_repeat_with_the_seed_and_stay_in_bounds():
    a = traffic.on_off(5.0, on=2.0, off=3.0, start=10.0, stop=60.0, seed=7)
    assert a == traffic.on_off(5.0, on=2.0, off=3.0, start=10.0, stop=60.0, seed=7)
    assert a != traffic.on_off(5.0, on=2.0, off=3.0, start=10.0, stop=60.0, seed=8)
    assert all(10.0 <= s.start < s.stop <= 60.0 and s.rate == 5.0 for s in a)
    assert all(x.stop < y.start for x, y in zip(a, a[1:]))


def test_a_trace_holds_each_rate_until_the_next_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("time_s,rate_mbps\n0,2\n5,0\n8,12.5\n")
    assert traffic.from_trace(path, start=10.0, stop=30.0) == [
        traffic.Segment(10.0, 15.0, 2.0), traffic.Segment(18.0, 30.0, 12.5)]
    path.write_text("time_s,rate_mbps\n0,2\n0,3\n")
    with pytest.raises(ValueError, match=r"t.csv:3"):
        traffic.read_trace(path)


# ----- delay plan -----

LINE = """
name: d
switches: [{name: s1}, {name: s2}]
hosts:
  - {name: a, switch: s1, role: traffic-source, link: {delay: 5}}
  - {name: b, switch: s2, role: traffic-sink}
  - {name: c, switch: s1, role: traffic-sink}
links: [{a: s1, b: s2, delay: 20, loss: 1}]
"""


def queue_of(hq, source):
    """The (delay, loss) ``hq`` holds packets from ``source`` for (its last, catch-all rule
    when no rule names the source), or None."""
    for rule in hq.rules:
        if "-s" not in rule or rule[rule.index("-s") + 1] == source:
            return hq.queues[int(rule[rule.index("--queue-num") + 1])]
    return None


def test_delay_plan_holds_the_whole_path_at_the_receiver_as_packets_arrive():
    scenario = Scenario.from_yaml(LINE)
    plan = delay.plan(scenario)
    ip = {h.name: h.ip for h in scenario.hosts}
    a, b, c = plan.hosts["a"], plan.hosts["b"], plan.hosts["c"]
    # Every rule holds arriving packets (PREROUTING, so forwarded ones too), none departing
    # ones: a packet waiting in its sender is charged to its socket, which throttles TCP.
    for hq in plan.hosts.values():
        assert all(r[:4] == ["-t", "mangle", "-A", "PREROUTING"] and r[5] == f"{hq.host}-eth0"
                   for r in hq.rules), hq.rules
    # To b from a: a's access link and s1-s2; from c: s1-s2 alone. b has no access delay, so
    # no catch-all rule.
    assert queue_of(b, ip["a"]) == (25.0, 1.0)
    assert queue_of(b, ip["c"]) == (20.0, 1.0)
    assert queue_of(b, "10.9.9.9") is None
    # To a: from b, s1-s2 and a's access link; from c (same switch) and from outside the
    # scenario, a's access link alone, the last rule.
    assert queue_of(a, ip["b"]) == (25.0, 1.0)
    assert queue_of(a, ip["c"]) == (5.0, 0.0) == a.queues[delay.ACCESS_QUEUE]
    assert a.rules[-1][5:] == ["a-eth0", "-j", "NFQUEUE", "--queue-num", "1", "--queue-bypass"]
    assert sorted(a.queues.values()) == [(5.0, 0.0), (25.0, 1.0)]
    # To c: from a, a's access link; from b, s1-s2.
    assert queue_of(c, ip["a"]) == (5.0, 0.0) and queue_of(c, ip["b"]) == (20.0, 1.0)


def test_delay_rules_are_deleted_exactly_as_they_were_appended():
    rule = ["-t", "mangle", "-A", "PREROUTING", "-i", "a-eth0", "-s", "10.0.0.2", "-j", "NFQUEUE"]
    assert delay._delete_command(rule) == "iptables -w -t mangle -D PREROUTING -i a-eth0 -s 10.0.0.2 -j NFQUEUE"
    assert delay._delete_command(["-A", "INPUT", "-j", "ACCEPT"]) == "iptables -w -D INPUT -j ACCEPT"


# ----- experiments -----

def test_the_default_experiment_loads_with_two_computers_of_different_speed():
    exp = load(REPO / "experiments" / "grid.yaml")
    s = exp.scenario
    assert s.duration == 20 and s.control["policy"] == "rr" and s.control["estimator"] == "ewma:0.95"
    assert [h.name for h in s.hosts_with("router")] == ["r1"]
    speeds = {h.name: h.computer["speed"] for h in s.hosts_with("computer")}
    assert speeds["c1"] > speeds["c2"]
    assert len(s.workloads) == 2


def test_overrides_merge_by_name_remove_with_null_and_errors_name_the_key(tmp_path):
    exp = load(tmp_path / "x.yaml", {"generator": "grid", "args": [2, 2], "duration": 5,
                                     "overrides": {"hosts": {"ctl": None}, "links": {"s1-s2": {"bw": 7}}}})
    assert not exp.scenario.hosts_with("controller")
    assert next(lk for lk in exp.scenario.links if lk.name == "s1-s2").bw == 7
    with pytest.raises(ExperimentError, match="unknown key"):
        load(tmp_path / "x.yaml", {"generator": "grid", "args": [2, 2], "bogus": 1})
    with pytest.raises(ExperimentError, match="exactly one"):
        load(tmp_path / "x.yaml", {"args": [2, 2]})


# ----- nodes -----

def test_computer_overrides_expand_the_preset_and_plain_presets_do_not():
    s = load(REPO / "experiments" / "grid.yaml").scenario
    text = computer_config(s.host("c1"))
    assert text is not None
    cfg = yaml.safe_load(text)
    assert cfg["processors"][0]["speed"] == 2.0e9 and cfg["processors"][0]["cores"] == 4
    # The main processor's containers get a worker per core.
    assert {c["num_workers"] for c in cfg["containers"] if c["processor"] == "arm"} == {4}
    plain = Scenario.from_yaml(LINE.replace("role: traffic-sink}", "role: computer}", 1))
    assert computer_config(plain.host("b")) is None
    assert computer_lambdas(plain.host("b")) == ["clambda0", "glambda0"]


def test_computer_config_is_cores_preset_with_overrides():
    cfg = yaml.safe_load(_native.computer_config("raspberry", 2, cores=8, memory=1 << 30))
    assert [p["name"] for p in cfg["processors"]] == ["arm", "gpu"]
    assert cfg["processors"][0]["cores"] == 8 and cfg["processors"][0]["memory"] == 1 << 30
    assert [lam["name"] for lam in cfg["lambdas"]] == ["clambda0", "glambda0", "clambda1", "glambda1"]
    assert [c["num_workers"] for c in cfg["containers"]] == [8, 1, 8, 1]
    server = yaml.safe_load(_native.computer_config("intel-server", 3, speed=1e9))
    assert [lam["name"] for lam in server["lambdas"]] == ["clambda0"] and server["processors"][0]["speed"] == 1e9
    assert _native.preset_lambdas("intel-server", 4) == ["clambda0"]
    with pytest.raises(ValueError, match="raspberry"):
        _native.computer_config("jetson")
    with pytest.raises(ValueError):
        _native.computer_config("raspberry", cores=0)


def test_vocabulary_is_cores():
    assert _native.policies() == ["rp", "li", "rr", "p2c", "pf"]
    assert _native.parse_policy("proportional-fairness:0.5:2") == "pf:0.5:2"
    assert _native.parse_policy("round-robin") == "rr" and _native.parse_policy("power-of-two") == "p2c"
    with pytest.raises(ValueError, match="rp"):
        _native.parse_policy("fastest")
    assert _native.estimators() == ["ewma", "periodic", "peak-ewma"]
    assert _native.parse_estimator("periodic") == "periodic:5:min"
    assert _native.parse_estimator("peak-ewma:2.5") == "peak-ewma:2.5"
    assert _native.default_estimator("p2c") == "peak-ewma:10"
    assert _native.stats() == ["min", "mean", "max"]
    assert _native.presets() == ["raspberry", "intel-server"]


def test_router_flags_are_the_scenarios_canonical_control_values():
    base = LINE.replace("role: traffic-sink}", "role: computer}", 1)
    assert router_flags(Scenario.from_yaml(base)) == ("rr", "ewma:0.95")
    p2c = Scenario.from_yaml("control: {policy: power-of-two}\n" + base)
    assert router_flags(p2c) == ("p2c", "peak-ewma:10")
    periodic = Scenario.from_yaml("control: {policy: least-impedance, estimator: periodic, period: 2, stat: max}\n"
                                  + base)
    assert router_flags(periodic) == ("li", "periodic:2:max")
    for policy, estimator in (router_flags(p2c), router_flags(periodic)):
        assert _native.parse_policy(policy) == policy and _native.parse_estimator(estimator) == estimator


def test_client_command_maps_each_pattern():
    s = load(REPO / "experiments" / "grid.yaml").scenario
    args = client_command(s.workloads[0], s.host("r1"), Path("o.csv"), 20.0, 3)
    assert args[:3] == ["client", "--router", f"{s.host('r1').ip}:6473"]
    assert args[args.index("--pattern") + 1] == "closed" and args[args.index("--threads") + 1] == "2"


# ----- report -----

def test_summary_splits_by_responder_and_counts_errors():
    calls = [report.Call("u1", i, 0.010 if i % 2 else 0.020, 0, "10.0.0.9:10000" if i % 2 else "x", "l", 2,
                         True, "OK") for i in range(10)]
    calls.append(report.Call("u1", 11, 0.5, 0, "", "l", 0, False, "unavailable"))
    (s,) = report.summarize(calls, "round-robin", {"10.0.0.9:10000": "c1"})
    assert (s.calls, s.errors) == (11, 1)
    assert s.responders["c1"]["calls"] == 5 and s.share("c1") == 0.5
    assert "c1" in report.format_summary([s])


# ----- the controller's view, router tables, readiness -----

VIEW = """controller: installer two-tier (min-max), epoch 5b0c00000000aaaa

routers: 2
  endpoint        table endpoint  entries
  10.0.0.1:6473   10.0.0.1:6474   2
  10.0.0.2:6473   10.0.0.2:6474   2

computers: 3
  endpoint         lambdas            placement
  10.0.0.7:10000   clambda0,glambda0  home router 10.0.0.1:6473
  10.0.0.8:10000   clambda0           home router 10.0.0.2:6473
  10.0.0.9:10000   clambda0           every router (not in the distance matrix)

lambdas: 2
  lambda    computers
  clambda0  3
  glambda0  1

congested links: s1-s2, s2-s3

marks: 1
  router          destination      congested links
  10.0.0.1:6473   10.0.0.7:10000   s1-s2,s2-s3
"""


def test_the_controller_view_parses():
    from lambdaroute.testbed.nodes import parse_view

    v = parse_view(VIEW)
    assert v.routers == {"10.0.0.1:6473": 2, "10.0.0.2:6473": 2}
    assert v.computers["10.0.0.7:10000"] == (["clambda0", "glambda0"], "home router 10.0.0.1:6473")
    assert v.computers["10.0.0.9:10000"][1] == "every router (not in the distance matrix)"
    assert v.congested == ["s1-s2", "s2-s3"]
    assert v.marks == [("10.0.0.1:6473", "10.0.0.7:10000", "s1-s2,s2-s3")]
    empty = parse_view("controller: installer flat, epoch 1\n\nrouters: 0\n\ncomputers: 0\n\nlambdas: 0\n\n"
                       "congested links: none\n\nmarks: 0\n")
    assert (empty.routers, empty.computers, empty.congested, empty.marks) == ({}, {}, [], [])


def test_a_table_dump_parses_table_0_by_default():
    from lambdaroute.testbed.nodes import parse_table_dump

    dump = ("table 0 (overall): 2 entries\n  lambda    destination      weight (ms)  final\n"
            "  clambda0  10.0.0.4:10000        29.666  yes\n  clambda0  10.0.0.2:6473        1000.000  no\n"
            "table 1 (final): 1 entries\n  lambda    destination      weight (ms)  final\n"
            "  clambda0  10.0.0.4:10000        29.666  yes\n")
    assert parse_table_dump(dump) == {("clambda0", "10.0.0.4:10000", True), ("clambda0", "10.0.0.2:6473", False)}
    assert parse_table_dump(dump, 1) == {("clambda0", "10.0.0.4:10000", True)}


def test_expected_tables_follow_the_controllers_plan():
    from lambdaroute.testbed.nodes import expected_tables, parse_view

    r1, r2 = "10.0.0.1:6473", "10.0.0.2:6473"
    computers = {"10.0.0.7:10000": ["clambda0"], "10.0.0.8:10000": ["clambda0"]}
    flat = expected_tables([r1, r2], computers)
    assert flat[r1] == flat[r2] == {("clambda0", c, True) for c in computers}
    placements = {c: p for c, (_, p) in parse_view(VIEW).computers.items()}
    computers["10.0.0.9:10000"] = ["clambda0"]
    two = expected_tables([r1, r2], computers, placements)
    # Final on the home router; the other router forwards to that home (non-final); a
    # computer outside the matrix is final everywhere.
    assert two[r1] == {("clambda0", "10.0.0.7:10000", True), ("clambda0", r2, False),
                       ("clambda0", "10.0.0.9:10000", True)}
    assert two[r2] == {("clambda0", "10.0.0.8:10000", True), ("clambda0", r1, False),
                       ("clambda0", "10.0.0.9:10000", True)}


def test_a_computer_waiting_for_its_home_router_is_expected_final_everywhere():
    from lambdaroute.testbed.nodes import expected_tables, parse_view

    # A computer of the matrix announced before its routers: final on every router for now;
    # once its home router is announced the view says "home router ..." (docs/controller.md).
    r1, r2 = "10.0.0.1:6473", "10.0.0.2:6473"
    waiting = VIEW.replace("home router 10.0.0.2:6473",
                           "every router until its home router is announced "
                           "(no router of the distance matrix is announced yet)")
    v = parse_view(waiting)
    assert v.computers["10.0.0.8:10000"][1].startswith("every router until")
    placements = {c: p for c, (_, p) in v.computers.items()}
    want = expected_tables([r1, r2], {"10.0.0.8:10000": ["clambda0"]}, placements)
    assert want[r1] == want[r2] == {("clambda0", "10.0.0.8:10000", True)}


def test_the_setup_line_lists_the_phases_in_order_with_shaping_inside_links():
    from lambdaroute.testbed.run import format_timings

    line = format_timings({"tables": 0.5, "network": 9.0, "links": 4.0, "shaping": 2.5, "hosts": 3.0,
                           "flows": 0.25, "delay": 1.0, "nodes": 2.0, "cleanup_errors": 0.0})
    assert line == ("hosts 3.0 s, links 4.0 s (shaping 2.5 s), flows 0.2 s = network 9.0 s; "
                    "delay 1.0 s, nodes 2.0 s, tables 0.5 s")


def test_iptables_rules_batch_into_one_restore_text_by_table_in_order():
    from lambdaroute.testbed.batch import iptables_restore

    text = iptables_restore([
        ["-A", "OUTPUT", "-o", "h1-eth0", "-d", "10.0.0.2", "-j", "NFQUEUE", "--queue-num", "2"],
        ["-t", "nat", "-A", "PREROUTING", "-d", "169.254.9.10", "-j", "DNAT", "--to-destination", "10.0.0.1"],
        ["-A", "INPUT", "-i", "h1-eth0", "-j", "NFQUEUE", "--queue-num", "1"],
    ])
    assert text == ("*filter\n"
                    "-A OUTPUT -o h1-eth0 -d 10.0.0.2 -j NFQUEUE --queue-num 2\n"
                    "-A INPUT -i h1-eth0 -j NFQUEUE --queue-num 1\n"
                    "COMMIT\n"
                    "*nat\n"
                    "-A PREROUTING -d 169.254.9.10 -j DNAT --to-destination 10.0.0.1\n"
                    "COMMIT\n")
    assert iptables_restore([]) == ""
    with pytest.raises(ValueError, match="only -A"):
        iptables_restore([["-P", "FORWARD", "DROP"]])
    with pytest.raises(ValueError, match="cannot be batched"):
        iptables_restore([["-A", "INPUT", "-m", "comment", "--comment", "two words"]])


def test_the_delay_plan_rules_batch_into_one_restore_per_host():
    from lambdaroute.testbed.batch import iptables_restore

    scenario = Scenario.from_yaml(LINE)
    plan = delay.plan(scenario)
    text = iptables_restore(plan.hosts["a"].rules)
    assert text.splitlines()[0] == "*mangle" and text.splitlines()[-1] == "COMMIT"
    assert text.splitlines()[1:-1] == [" ".join(r[2:]) for r in plan.hosts["a"].rules]
    assert f"-A PREROUTING -i a-eth0 -s {scenario.host('b').ip} -j NFQUEUE" in text


def test_static_arp_and_queue_limits_batch_into_one_command_each():
    from lambdaroute.testbed.batch import neighbours, pfifo_queues

    assert neighbours("h1-eth0", [("10.0.0.2", "00:00:00:00:00:02"), ("10.0.0.3", "00:00:00:00:00:03")]) == (
        "neigh replace 10.0.0.2 lladdr 00:00:00:00:00:02 dev h1-eth0 nud permanent\n"
        "neigh replace 10.0.0.3 lladdr 00:00:00:00:00:03 dev h1-eth0 nud permanent\n")
    assert pfifo_queues([("labcs1-eth1", 25), ("labcs2-eth3", 50)]) == (
        "qdisc replace dev labcs1-eth1 parent 5:1 handle 10: pfifo limit 25\n"
        "qdisc replace dev labcs2-eth3 parent 5:1 handle 10: pfifo limit 50\n")


def test_veth_pairs_batch_into_one_ip_command_with_host_ends_in_their_namespaces():
    from lambdaroute.testbed.batch import htb, veth_pairs

    text = veth_pairs([("labcs1-eth1", "labcs2-eth1", None, None),
                       ("labcs1-eth2", "h1-eth0", "00:00:00:00:00:01", 4242)])
    assert text == ("link add name labcs1-eth1 type veth peer name labcs2-eth1\n"
                    "link add name labcs1-eth2 type veth peer name h1-eth0 address 00:00:00:00:00:01 netns 4242\n"
                    "link set labcs2-eth1 up\nlink set labcs1-eth1 up\nlink set labcs1-eth2 up\n")
    # Mininet's TCLink HTB commands, without the `tc` in front.
    assert htb("h1-eth0", 10) == ("qdisc add dev h1-eth0 root handle 5:0 htb default 1\n"
                                  "class add dev h1-eth0 parent 5:0 classid 5:1 htb rate 10.000000Mbit burst 15k\n")


def test_the_tables_deadline_grows_with_the_routers_and_computers():
    from lambdaroute import topologies
    from lambdaroute.testbed.run import TABLES_TIMEOUT, tables_timeout

    small = Scenario.from_yaml(LINE)
    routers, computers = len(small.hosts_with("router")), len(small.hosts_with("computer"))
    assert small.control["installer"] == "flat"
    assert tables_timeout(small) == pytest.approx(TABLES_TIMEOUT + 0.25 * (routers + computers)
                                                  + 0.005 * routers * computers)
    aot = topologies.aot_chicago()
    assert aot.control["installer"] == "two-tier"
    assert tables_timeout(aot) == TABLES_TIMEOUT + 0.25 * 142  # 71 routers, 71 computers
    many = topologies.aot_chicago(endpoints_per_computer=15)
    assert tables_timeout(many) == TABLES_TIMEOUT + 0.25 * (71 + 71 * 15)
    flat = load(REPO / "experiments" / "aot-1k-flat.yaml").scenario
    assert tables_timeout(flat) == pytest.approx(TABLES_TIMEOUT + 0.25 * (71 + 1065) + 0.005 * 71 * 1065)


# ----- several computers per host -----

def test_a_host_serving_several_computers_has_consecutive_endpoints_and_is_keyed_by_its_address(tmp_path):
    from lambdaroute import topologies
    from lambdaroute.testbed.nodes import computer_endpoints, write_controller_files

    sc = topologies.grid(2, 2, endpoints_per_computer=3)
    c = sc.hosts_with("computer")[0]
    assert c.computer["endpoints"] == 3
    assert computer_endpoints(c) == [f"{c.ip}:10000", f"{c.ip}:10001", f"{c.ip}:10002"]
    distances, paths = write_controller_files(sc, tmp_path)
    nodes = yaml.safe_load(distances.read_text())["nodes"]
    # The address alone matches every endpoint of the host; routers keep their endpoint.
    assert c.ip in nodes and f"{c.ip}:10000" not in nodes
    assert all(n.endswith(":6473") for n in nodes if n != c.ip and ":" in n)
    assert {p["computer"] for p in yaml.safe_load(paths.read_text())["paths"]} >= {c.ip}
    one = topologies.grid(2, 2)
    assert computer_endpoints(one.hosts_with("computer")[0]) == [f"{one.hosts_with('computer')[0].ip}:10000"]


def test_endpoints_out_of_range_are_refused_naming_the_field():
    from lambdaroute import topologies
    from lambdaroute._native import ScenarioError

    text = LINE.replace("role: traffic-sink}", "role: computer, computer: {endpoints: 0}}", 1)
    with pytest.raises(ScenarioError, match=r"computer\.endpoints.*1 to 1024"):
        Scenario.from_yaml(text)
    text = LINE.replace("role: traffic-sink}", "role: computer, computer: {endpoints: 2000}}", 1)
    with pytest.raises(ScenarioError, match=r"computer\.endpoints"):
        Scenario.from_yaml(text)
    ok = Scenario.from_yaml(LINE.replace("role: traffic-sink}", "role: computer, computer: {endpoints: 4}}", 1))
    assert ok.host("b").computer["endpoints"] == 4
    assert "endpoints: 4" in ok.to_yaml()
    with pytest.raises(ScenarioError, match="endpoints_per_computer"):
        topologies.grid(2, 2, endpoints_per_computer=0)


def test_changing_the_installer_by_override_drops_the_old_installers_objective():
    for name in ("aot-flat", "aot-1k-flat"):
        exp = load(REPO / "experiments" / f"{name}.yaml")
        assert exp.scenario.control["installer"] == "flat" and "objective" not in exp.scenario.control
    exp = load(REPO / "experiments" / "aot-1k.yaml")
    assert exp.scenario.control["installer"] == "two-tier"
    assert sum(h.computer["endpoints"] for h in exp.scenario.hosts_with("computer")) == 1065


def test_every_shipped_experiment_loads():
    from lambdaroute.testbed.sweep import plan

    for path in sorted((REPO / "experiments").glob("*.yaml")):
        assert load(path).scenario.hosts, path
    for path in sorted((REPO / "experiments" / "paper").glob("*.yaml")):
        assert plan(path).runs and plan(path, quick=True).runs, path


# ----- sweeps -----

def test_the_papers_sweeps_plan_every_variant_policy_and_seed_and_their_quick_versions():
    from lambdaroute.testbed.sweep import plan

    line = plan(REPO / "experiments" / "paper" / "line.yaml")
    assert len(line.runs) == 4 * 4 * 3
    assert {(r.variant, r.role) for r in line.runs} == {
        ("ideal", None), ("limited", "congestion-baseline"), ("congested", "congestion-hook-on"),
        ("congested-no-hook", "congestion-hook-off")}
    by = {(r.variant, r.policy, r.seed): r.experiment for r in line.runs}
    exp = by[("congested-no-hook", "p2c", 3)]
    assert exp.scenario.seed == 3 and exp.scenario.control["policy"] in ("p2c", "power-of-two")
    assert exp.report_congestion is False and by[("congested", "p2c", 3)].report_congestion is True
    assert exp.labels == {"experiment": "paper-line", "variant": "congested-no-hook", "role": "congestion-hook-off",
                          "policy": "p2c", "seed": 3, "quick": False}
    assert [b["rate"] for b in yaml.safe_load(exp.scenario.to_yaml())["background"]] == [10.0]
    assert not yaml.safe_load(by[("limited", "rr", 1)].scenario.to_yaml()).get("background")
    ideal = yaml.safe_load(by[("ideal", "rr", 1)].scenario.to_yaml())["links"]
    assert all("bw" not in link for link in ideal), ideal
    quick = plan(REPO / "experiments" / "paper" / "line.yaml", quick=True)
    assert sorted((r.variant, r.policy, r.seed) for r in quick.runs) == sorted(
        (v, p, 1) for v in ("ideal", "limited", "congested", "congested-no-hook") for p in ("li", "rr"))
    assert {r.experiment.scenario.duration for r in quick.runs} == {16.0}
    # F4's 1,065-computer runs: round robin, one seed, and not in the quick version.
    aot = plan(REPO / "experiments" / "paper" / "aot.yaml")
    thousand = [r for r in aot.runs if r.variant.endswith("1k")]
    assert sorted((r.variant, r.policy, r.seed) for r in thousand) == [("flat-1k", "rr", 1), ("two-tier-1k", "rr", 1)]
    assert all(len(r.experiment.scenario.hosts_with("computer")) == 71 for r in thousand)
    assert {r.variant for r in plan(REPO / "experiments" / "paper" / "aot.yaml", quick=True).runs} == {"two-tier"}
    narrowed = plan(REPO / "experiments" / "paper" / "grid.yaml", policies=["round-robin"], seeds=[2])
    assert [(r.variant, r.policy, r.seed) for r in narrowed.runs] == [("default", "rr", 2), ("rr-ewma-0.8", "rr", 2)]
    # F2's faster round robin: only rr, its own estimator, not in the quick version.
    grid = plan(REPO / "experiments" / "paper" / "grid.yaml")
    assert len(grid.runs) == 4 * 3 + 3
    fast = [r for r in grid.runs if r.variant == "rr-ewma-0.8"]
    assert {r.experiment.scenario.control["estimator"] for r in fast} == {"ewma:0.8"}
    assert "rr-ewma-0.8" not in {r.variant for r in plan(REPO / "experiments" / "paper" / "grid.yaml", quick=True).runs}


def test_on_off_workloads_survive_overrides():
    # PyYAML reads `on:` as True (YAML 1.1); the ring-tree's ON/OFF clients must keep their key.
    from lambdaroute.testbed.sweep import plan

    runs = plan(REPO / "experiments" / "paper" / "ring-tree.yaml").runs
    workloads = yaml.safe_load(runs[0].experiment.scenario.to_yaml().replace("on:", "'on':"))["workloads"]
    assert {w["pattern"] for w in workloads} == {"on-off"} and all(w["on"] == 5.0 for w in workloads)


@pytest.mark.parametrize("sweep,error", [
    ("sweep: {policies: [rr, fastest]}", "sweep.policies: policy `fastest`: expected one of rp, li, rr, p2c"),
    ("sweep: {seeds: [1, two]}", "sweep.seeds: expected a non-empty list of ints"),
    ("sweep: {variants: {a: {role: judge}}}", "sweep.variants.a.role: `judge`: expected one of"),
    ("sweep: {variants: {a: {colour: red}}}", "sweep.variants.a: unknown key(s) colour"),
    ("sweep: {variants: {a: {overrides: {workloads: {u9: {rate: 1}}}}}}", "overrides.workloads.u9: no workload of client"),
    ("sweep: {policies: [rr]}\nquick: {length: 3}", "quick: unknown key(s) length"),
    ("sweep: {variants: {a: {monitor: {report: maybe}}}}", "monitor.report: `maybe`: expected true or false"),
])
def test_sweep_mistakes_are_named_before_any_run(tmp_path, sweep, error):
    from lambdaroute.testbed.sweep import plan

    path = tmp_path / "bad.yaml"
    path.write_text(f"generator: line\nargs: [3]\n{sweep}\n", encoding="utf-8")
    with pytest.raises(ExperimentError) as e:
        plan(path)
    assert error in str(e.value) and str(path) in str(e.value)


def test_variant_options_need_a_generator(tmp_path):
    from lambdaroute.testbed.sweep import plan

    (tmp_path / "s.yaml").write_text((REPO / "topologies" / "line.yaml").read_text(), encoding="utf-8")
    path = tmp_path / "bad.yaml"
    path.write_text("scenario: s.yaml\nsweep: {variants: {a: {options: {bw: 5}}}}\n", encoding="utf-8")
    with pytest.raises(ExperimentError, match="generator options need `generator:`"):
        plan(path)


def test_run_calls_csv_puts_every_client_in_run_time_with_host_names(tmp_path):
    calls = [report.Call("u2", 2.5, 0.02, 0.0, "10.0.0.5:10000", "clambda0", 1, True, "OK", "r1"),
             report.Call("u1", 1.0, float("nan"), 0.0, "", "clambda0", 0, False, "UNAVAILABLE: gone", "r1")]
    report.write_calls(calls, tmp_path / "calls.csv", {"10.0.0.5:10000": "c1"})
    assert (tmp_path / "calls.csv").read_text().splitlines() == [
        "client,router,time,latency,responder,lambda,hops,status",
        "u1,r1,1.0000,,,clambda0,0,UNAVAILABLE: gone",
        "u2,r1,2.5000,0.020000,c1,clambda0,1,OK"]


# ----- the figures of a run -----

def _call(client: str, responder: str, hops: int, latency: float = 0.01, ok: bool = True,
          router: str = "r1") -> report.Call:
    return report.Call(client, 0.0, latency, 0.0, responder, "clambda0", hops, ok, "OK" if ok else "x", router)


def test_run_figures_count_routers_and_links_crossed_through_the_home_router():
    calls = [_call("u1", "c2:1", 2, 0.010), _call("u1", "c3:1", 3, 0.030), _call("u1", "", 0, 0.5, ok=False)]
    # u1 -r1: 0 links; r1 - c2: 1; r1 - r2: 2; r2 - c3: 1.
    distance = {("u1", "r1"): 0, ("r1", "c2:1"): 1, ("r1", "r2"): 2, ("r2", "c3:1"): 1}
    f = report.run_figures(calls, 2.0, {"r1": 10, "r2": 4}, 3, lambda a, b: distance.get((a, b)),
                           {"c3:1": "r2"})
    assert (f.routers, f.computers, f.entries_min, f.entries_mean, f.entries_max) == (2, 3, 4, 7.0, 10)
    assert (f.calls, f.errors, f.calls_per_s) == (3, 1, 1.0)
    assert f.routers_per_call == 1.5 and f.forwarded_share == 0.5
    assert f.links_per_call == 2.0  # (1 + 3) / 2
    assert f.p50 == pytest.approx(20.0)
    # An unknown path leaves the figure out rather than guessing.
    g = report.run_figures(calls, 2.0, {"r1": 10}, 3, lambda a, b: None, {})
    assert g.links_per_call is None
    text = report.format_figures(f)
    assert "entries per router min 4, mean 7, max 10" in text and "50.0% forwarded" in text


def test_comparison_sets_runs_side_by_side_with_the_ratio(tmp_path):
    import json

    from lambdaroute.testbed.cli import compare

    base = report.run_figures([_call("u1", "c", 2)], 1.0, {"r1": 2130, "r2": 2130}, 1065).as_dict()
    two = {**base, "entries_mean": 170.0, "entries_max": 170, "routers_per_call": 1.9}
    table = report.format_comparison([("two-tier", two), ("flat", base)])
    assert "| entries per router, mean | 170 | 2130 | 0.08 |" in table
    assert "| routers per call | 1.90 | 1.00 | 1.90 |" in table
    for name, figures in (("a", two), ("b", base)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metadata.json").write_text(json.dumps({"experiment": name, "figures": figures}))
    out = compare([str(tmp_path / "a"), str(tmp_path / "b")])
    assert out.splitlines()[0] == "| | a | b | first / second |"
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "metadata.json").write_text(json.dumps({"experiment": "c", "error": "x"}))
    with pytest.raises(ValueError, match="no figures"):
        compare([str(tmp_path / "c")])
    with pytest.raises(ValueError, match="no such file"):
        compare([str(tmp_path / "missing")])


def test_a_brief_summary_of_many_clients_keeps_the_all_row_alone():
    calls = [_call(f"u{i}", "c", 2) for i in range(20)]
    summaries = report.summarize(calls, "rr")
    brief = report.format_summary(summaries, brief=True)
    assert "all" in brief and "u3 " not in brief and " c " not in brief
    assert "u3 " in report.format_summary(summaries)


def test_external_computers_image_workloads_and_face_computers():
    from lambdaroute.scenario import External
    from lambdaroute.testbed.nodes import FACE_LAMBDAS, external_endpoints

    repo = Path(__file__).resolve().parents[2]
    s = Scenario.load(repo / "rust/scenario/tests/valid/external.yaml")
    face = {"executor": "face", "preset": "raspberry", "lambdas": 1, "speed": None, "cores": None, "memory": None, "endpoints": 1}
    assert s.external[0] == External("face", face, 10100)
    assert s.external[1].port == 12000 and s.external[1].computer["preset"] == "intel-server"
    nat = s.hosts_with("nat")[0].ip
    assert external_endpoints(s) == {f"{nat}:10100": "face", f"{nat}:12000": "sim"}
    assert computer_lambdas(s.host("f1")) == FACE_LAMBDAS == ["clambda0", "eyerec0", "facerec0"]
    assert computer_config(s.host("f1")) is None
    assert computer_lambdas(s.external[1].computer) == ["clambda0"]
    w = s.workloads[0]
    # Relative to the scenario file's folder, where loading checked that it exists.
    assert (w.images, w.eyes) == (("../../../../data/images/astronaut.jpg",), "eyerec0")
    args = client_command(w, s.host("r1"), Path("o.csv"), 20.0, 3, base=repo / "rust/scenario/tests/valid")
    assert args[args.index("--image") + 1] == str(repo / "data/images/astronaut.jpg")
    assert args[args.index("--eyes") + 1] == "eyerec0"
    with pytest.raises(FileNotFoundError, match="no image file"):
        client_command(w, s.host("r1"), Path("o.csv"), 20.0, 3, base=repo / "nowhere" / "deeper")
    assert "--image" not in client_command(s.workloads[1], s.host("r1"), Path("o.csv"), 20.0, 3)


def test_objects_found_are_summed_per_lambda_and_computer():
    calls = [report.Call("u1", 0.0, 0.2, 0, "10.0.0.9:10100", "facerec0", 2, True, "OK", objects=1),
             report.Call("u1", 0.3, 0.01, 0, "10.0.0.9:10100", "eyerec0", 2, True, "OK", objects=2),
             report.Call("u1", 0.4, 0.02, 0, "10.0.0.9:10100", "eyerec0", 2, False, "boom", objects=None),
             report.Call("u1", 0.5, 0.03, 0, "10.0.0.2:10000", "clambda0", 2, True, "OK", objects=None)]
    found = report.objects_found(calls, {"10.0.0.9:10100": "face"})
    assert set(found) == {"facerec0", "eyerec0"}
    assert (found["eyerec0"]["answers"], found["eyerec0"]["objects"]) == (1, 2)
    assert found["facerec0"]["computers"]["face"]["p50"] == pytest.approx(200.0)
    text = report.format_objects(found)
    assert text.splitlines()[1].startswith("facerec0: 1 objects found in 1 answers (face: 1 answers, 1 objects, p50 200.0 ms)")


# ----- timed events -----

def test_a_link_set_delay_replans_the_paths_that_cross_the_link():
    plan = delay.plan(Scenario.from_yaml(LINE), {"s1-s2": 50.0})
    # a -> b: access 5 + the link's new 50 ms; c -> b: 50 ms; a's access link unchanged.
    assert sorted(plan.hosts["b"].queues.values()) == [(50.0, 1.0), (55.0, 1.0)]
    assert sorted(plan.hosts["a"].queues.values()) == [(5.0, 0.0), (55.0, 1.0)]
    assert sorted(plan.hosts["c"].queues.values()) == [(5.0, 0.0), (50.0, 1.0)]


EVENTS = """
duration: 30
switches: [{name: s1}, {name: s2}]
hosts:
  - {name: r1, switch: s1, role: router}
  - {name: c1, switch: s2, role: computer}
links: [{a: s1, b: s2, bw: 10}]
events:
  - {at: 5, kind: computer-stop, host: c1}
  - {at: 2, kind: link-down, link: s2-s1}
  - {at: 7, kind: link-set, link: s1-s2, bw: 2}
  - {at: 20, kind: link-up, link: s1-s2}
"""


def test_events_apply_when_due_in_order_and_failures_are_recorded(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from lambdaroute.testbed import events as events_mod

    commands: list[list[str]] = []
    monkeypatch.setattr(events_mod, "_root", lambda args, what: commands.append(args))
    scenario = Scenario.from_yaml(EVENTS)
    bed = SimpleNamespace(network=SimpleNamespace(bridges={"s1": "l7s1", "s2": "l7s2"}, batched=True),
                          mechanism="nfqueue", workdir=tmp_path, features=SimpleNamespace(datapath="user"))
    nodes = SimpleNamespace(stop_host=lambda host, role: [])  # c1 is not running: an error
    runner = events_mod.EventRunner(bed, nodes, scenario, None, 1)
    import time

    assert runner.tick(1.9, time.monotonic() - 1.9) == []
    done = runner.tick(6.0, time.monotonic() - 6.0)
    assert [(a.kind, a.target) for a in done] == [("link-down", "s1-s2"), ("computer-stop", "c1")]
    # Both ends of s1-s2: port 1 of each switch (links come first).
    assert commands == [["ip", "link", "set", "l7s1-eth1", "down"], ["ip", "link", "set", "l7s2-eth1", "down"]]
    assert done[0].detail == "l7s1-eth1 and l7s2-eth1 down" and not done[0].error
    assert done[1].error == "RuntimeError: computer c1 is not running"
    commands.clear()
    done = runner.tick(7.5, time.monotonic() - 7.5)
    assert commands[0][:2] == ["tc", "-batch"] and done[0].detail.startswith("bw 2 Mbit/s")
    assert runner.bw["s1-s2"] == 2
    runner.write_csv(tmp_path / "events.csv")
    rows = (tmp_path / "events.csv").read_text().splitlines()
    assert rows[0] == "at,applied,took,kind,target,detail,error"
    assert rows[1].startswith("2,6.0") and rows[-1] == "20,,,link-up,s1-s2,,not applied: the run ended"
    assert [d["kind"] for d in runner.as_dicts()] == ["link-down", "computer-stop", "link-set", "link-up"]


# ----- live computer conditions -----

CONDITIONS = """
duration: 30
switches: [{name: s1}]
hosts:
  - {name: r1, switch: s1, role: router}
  - {name: c1, switch: s1, role: computer, computer: {preset: raspberry}}
  - {name: f1, switch: s1, role: computer, computer: {executor: face}}
events:
  - {at: 1, kind: computer-speed, host: c1, factor: 0.5}
  - {at: 2, kind: computer-load, host: c1, load: 0.3}
  - {at: 3, kind: computer-speed, host: c1, speed: SPEED}
"""

#: A stand-in for `lambdaroute computer --conditions FILE`: on SIGHUP it logs what the file
#: holds as the real one does ("conditions changed ..."), so the testbed's wait sees it.
FAKE_COMPUTER = """
import pathlib, signal, sys, time
path = pathlib.Path(sys.argv[1])
def hup(*_):
    print("INFO conditions changed " + " ".join(path.read_text().split()), flush=True)
signal.signal(signal.SIGHUP, hup)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def _nodes(scenario: Scenario, out: Path):
    from types import SimpleNamespace

    from lambdaroute.testbed.nodes import Nodes

    return Nodes(SimpleNamespace(), scenario, "lambdaroute", out, SimpleNamespace(push=lambda what, action: None))


def test_simulated_computers_start_with_a_conditions_file_at_the_scenarios_speed(tmp_path):
    scenario = Scenario.from_yaml(CONDITIONS.replace("SPEED", "1.0e9"))
    nodes = _nodes(scenario, tmp_path)
    path = tmp_path / "conditions" / "c1.yaml"
    path.parent.mkdir()
    path.write_text("speed-factor: 0.5\nbackground: 0.3\n")  # left by an earlier event: reset
    args, _ = nodes.computer_args(scenario.host("c1"), None)
    assert args[args.index("--conditions") + 1] == str(path)
    assert yaml.safe_load(path.read_text()) == {"speed-factor": 1.0, "background": 0.0}
    face, _ = nodes.computer_args(scenario.host("f1"), None)
    assert "--conditions" not in face and not (tmp_path / "conditions" / "f1.yaml").exists()


def test_computer_speed_and_load_events_rewrite_the_conditions_and_hup_the_computer_live(tmp_path):
    import subprocess
    import sys
    import time

    from lambdaroute.testbed import analysis
    from lambdaroute.testbed import events as events_mod
    from lambdaroute.testbed.nodes import NodeProcess, scenario_speed

    raspberry = scenario_speed({"preset": "raspberry"})
    assert raspberry == yaml.safe_load(_native.computer_config("raspberry"))["processors"][0]["speed"]
    scenario = Scenario.from_yaml(CONDITIONS.replace("SPEED", repr(raspberry / 4)))
    nodes = _nodes(scenario, tmp_path)
    path = nodes.write_conditions("c1")
    log = tmp_path / "logs" / "computer-c1.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-c", FAKE_COMPUTER, str(path)], stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while "ready" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.02)
        nodes.running.append(NodeProcess("c1", "computer", ["lambdaroute", "computer"], log, proc))
        runner = events_mod.EventRunner(None, nodes, scenario, None, 1)
        origin = time.monotonic()
        done = runner.tick(1.0, origin)
        assert [(a.detail, a.error) for a in done] == [("speed factor 0.5 (live, no restart)", "")]
        assert yaml.safe_load(path.read_text()) == {"speed-factor": 0.5, "background": 0.0}
        done = runner.tick(2.0, origin)
        assert [(a.detail, a.error) for a in done] == [("background load 0.3 (live)", "")]
        # The load keeps the speed factor; the speed factor keeps the load.
        assert yaml.safe_load(path.read_text()) == {"speed-factor": 0.5, "background": 0.3}
        done = runner.tick(3.0, origin)
        assert done[0].detail == f"speed factor 0.25 ({raspberry / 4:g} ops/s per core; live, no restart)"
        assert yaml.safe_load(path.read_text()) == {"speed-factor": 0.25, "background": 0.3}
        # One process all along, told three times; the computer was never stopped.
        assert proc.poll() is None and nodes.running[0].proc is proc
        assert log.read_text().count("conditions changed") == 3
        assert "conditions changed speed-factor: 0.5 background: 0.3" in log.read_text()
        # F2 finds the halving in the new detail text.
        assert analysis.speed_halvings(runner.as_dicts()) == [(runner.applied[0].applied, "c1")]
        # A face computer runs at its own speed: a clear error (the scenario refuses such
        # events; this is the run-time guard).
        from lambdaroute.scenario import Event

        with pytest.raises(RuntimeError, match=r"computer f1 runs `executor: face`"):
            runner.apply(Event(at=4.0, kind="computer-load", host="f1", load=0.5))
        proc.kill()
        proc.wait()
        with pytest.raises(RuntimeError, match="computer c1 is not running"):
            runner.apply(Event(at=5.0, kind="computer-speed", host="c1", factor=2.0))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_node_killed_at_the_end_of_a_short_deadline_still_gets_time_to_die():
    # The last of 71 routers stopped against one deadline gets 0.1 s: after SIGKILL it must
    # still be waited for long enough (a loaded machine reaped one in more than 0.1 s).
    import subprocess

    from lambdaroute.testbed.cleanup import KILL_WAIT, stop_process

    class SlowToDie:
        returncode = None
        killed = False

        def poll(self):
            return self.returncode

        def send_signal(self, sig):
            pass

        def kill(self):
            self.killed = True

        def wait(self, timeout):
            if not self.killed or timeout < 0.5:
                raise subprocess.TimeoutExpired("router", timeout)
            self.returncode = -9
            return -9

    assert KILL_WAIT >= 0.5
    assert stop_process(SlowToDie(), 0.1) == -9  # type: ignore[arg-type]


# ----- secured mode (secure: true) -----

def test_secure_is_an_experiment_setting_and_must_be_a_boolean():
    data = yaml.safe_load((REPO / "experiments" / "grid.yaml").read_text())
    assert load(REPO / "experiments" / "grid.yaml", data).secure is False
    data["secure"] = True
    assert load(REPO / "experiments" / "grid.yaml", data).secure is True
    data["secure"] = "yes"
    with pytest.raises(ExperimentError, match="secure `yes`: expected true or false"):
        load(REPO / "experiments" / "grid.yaml", data)


def test_secured_nodes_get_their_hosts_certificates_and_the_tools_operator_and_monitor(tmp_path):
    from lambdaroute.testbed.monitor import controller_reporter
    from lambdaroute.testbed.nodes import certs_commands

    scenario = load(REPO / "experiments" / "grid.yaml").scenario
    nodes = _nodes(scenario, tmp_path)
    router = scenario.hosts_with("router")[0]
    computer_host = scenario.hosts_with("computer")[0]
    plain, _ = nodes.router_args(router, 0, "10.0.0.9:6475")
    assert "--tls-dir" not in plain
    commands = certs_commands("lambdaroute", tmp_path / "certs", scenario)
    assert commands[0] == ["lambdaroute", "certs", "--out", str(tmp_path / "certs"), "--ca"]
    named = {c[c.index("--node") + 1]: c for c in commands[1:]}
    assert named[router.name][named[router.name].index("--role") + 1] == "router"
    assert named[router.name][named[router.name].index("--ip") + 1] == router.ip
    assert named[computer_host.name][named[computer_host.name].index("--role") + 1] == "computer"
    assert {"operator", "monitor"} <= set(named)

    nodes.tls_dir = tmp_path / "certs"
    tls = ["--tls-dir", str(tmp_path / "certs"), "--tls-name"]
    secured, _ = nodes.router_args(router, 0, "10.0.0.9:6475")
    assert " ".join([*tls, router.name]) in " ".join(secured)
    computer, _ = nodes.computer_args(computer_host, "10.0.0.9:6475")
    assert " ".join([*tls, computer_host.name]) in " ".join(computer)
    workload = scenario.workloads[0]
    client = client_command(workload, scenario.host(workload.router), tmp_path / "x.csv", 5, 1,
                            tls_dir=nodes.tls_dir)
    assert " ".join([*tls, workload.client]) in " ".join(client)
    assert "--tls-dir" not in client_command(workload, scenario.host(workload.router), tmp_path / "x.csv", 5, 1)
    seen = []
    report = controller_reporter(lambda args: (seen.append(args), (0, "ok"))[1], "lambdaroute", "10.0.0.9:6475",
                                 nodes.tls_dir)
    report("congested", "s1-s2")
    assert " ".join([*tls, "monitor"]) in " ".join(seen[0])


def test_secured_certificates_are_made_and_load_for_every_node(tmp_path):
    """The commands the testbed runs, run for real with the built binary (no Mininet)."""
    import shutil
    import subprocess

    from lambdaroute.testbed.experiment import find_binary
    from lambdaroute.testbed.nodes import certs_commands

    try:
        binary = find_binary()
    except Exception:  # noqa: BLE001 - no built binary in this checkout
        pytest.skip("no lambdaroute binary built")
    if shutil.which(binary) is None and not Path(binary).exists():
        pytest.skip("no lambdaroute binary built")
    if subprocess.run([binary, "certs", "--help"], capture_output=True).returncode != 0:
        pytest.skip(f"{binary} has no `certs` subcommand (an older build)")
    scenario = Scenario.from_yaml(CONDITIONS.replace("SPEED", "1.0e9"))
    for command in certs_commands(binary, tmp_path, scenario):
        subprocess.run(command, check=True, capture_output=True)
    names = {p.name for p in tmp_path.iterdir()}
    for host in [*scenario.hosts_with("router"), *scenario.hosts_with("computer"), "operator", "monitor"]:
        name = host if isinstance(host, str) else host.name
        assert {f"{name}.pem", f"{name}-key.pem"} <= names, names
