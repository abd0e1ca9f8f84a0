"""Real Mininet runs (marker ``mininet``; `make test-testbed` runs them as root).

They fail, never skip silently, when the machine cannot run Mininet; LAMBDAROUTE_SKIP_MININET=1
skips them on purpose. Each checks that its run left nothing behind.
"""

from __future__ import annotations

import statistics
import subprocess
from pathlib import Path

import pytest

from lambdaroute import Scenario
from lambdaroute.testbed.cleanup import leftovers, our_bridges
from lambdaroute.testbed.experiment import load
from lambdaroute.testbed.run import run, start_testbed
from testbed_support import require_mininet, root_iptables

pytestmark = pytest.mark.mininet

REPO = Path(__file__).resolve().parents[2]

DELAY = """
name: delay-check
switches: [{name: s1}, {name: s2}]
hosts:
  - {name: h1, switch: s1, role: traffic-source}
  - {name: h2, switch: s2, role: traffic-sink}
  - {name: h3, switch: s1, role: traffic-sink, link: {delay: 5}}
links: [{a: s1, b: s2, bw: 100, delay: 20}]
"""


def test_a_link_of_20_ms_gives_an_rtt_within_10_percent_of_40_ms(tmp_path):
    require_mininet()
    before = root_iptables()
    scenario = Scenario.from_yaml(DELAY)
    with start_testbed(scenario, tmp_path) as bed:
        mechanism, tag, state = bed.mechanism, bed.tag, bed.state.data
        assert len(our_bridges(tag)) == 2
        bed.network.ping("h1", "h2", count=2)  # first packets may pay for cold paths
        across = bed.network.ping("h1", "h2", count=10, interval=0.1)
        access = bed.network.ping("h1", "h3", count=10, interval=0.1)
    rtt = statistics.mean(across)
    print(f"delay mechanism: {mechanism}; h1-h2 across the 20 ms link: mean RTT {rtt:.2f} ms "
          f"(min {min(across):.2f}, max {max(across):.2f}); h1-h3 over a 5 ms access link: "
          f"{statistics.mean(access):.2f} ms")
    assert len(across) == 10, f"{mechanism}: pings lost: {across}"
    assert 36.0 <= rtt <= 44.0, f"{mechanism}: mean RTT {rtt:.2f} ms, expected 40 ms +- 10 %"
    assert 9.0 <= statistics.mean(access) <= 12.0, f"{mechanism}: 10 ms expected (+ the switches), got {access}"
    assert leftovers(state) == [], f"the run left {leftovers(state)}"
    assert root_iptables() == before, "the run changed the root namespace's iptables rules"


def test_the_default_grid_experiment_splits_round_robin_by_speed(tmp_path):
    require_mininet()
    exp = load(REPO / "experiments" / "grid.yaml")
    result = run(exp, results=tmp_path, progress=False)
    (everyone,) = [s for s in result.summaries if s.client == "all"]
    clients = [s for s in result.summaries if s.client != "all"]
    print(f"delay {result.metadata['delay_mechanism']}, datapath {result.metadata['datapath']}, "
          f"tables {result.metadata['tables']}, wall time {result.metadata['wall_time_s']:.1f} s\n"
          + result.summary_text)
    assert len(clients) == 2 and all(s.calls > 100 for s in clients), result.summary_text
    assert everyone.errors == 0, result.summary_text
    fast, slow = everyone.responders["c1"], everyone.responders["c2"]
    # Round robin picks each destination in proportion to 1/latency: c1 (1.6x faster) gets more,
    # c2 a real share, and the split tracks the latencies the router measured.
    assert fast["share"] > slow["share"] > 0.2, result.summary_text
    expected = slow["p50"] / (fast["p50"] + slow["p50"])
    assert abs(fast["share"] - expected) < 0.1, f"c1 share {fast['share']:.2f}, 1/latency predicts {expected:.2f}"
    assert (result.out / "summary.txt").read_text() == result.summary_text
    assert result.plot.exists() and result.plot.stat().st_size > 10_000
    for name in ("metadata.json", "scenario.yaml", "links.csv", "tables/r1.txt", "distances.yaml", "paths.yaml"):
        assert (result.out / name).exists(), name
    assert "clambda0" in (result.out / "tables" / "r1.txt").read_text()
    assert result.metadata["leftovers"] == []


CONGESTION = """
name: congestion-check
duration: 11
control: {congestion-threshold: 0.8}
switches: [{name: s1}, {name: s2}, {name: s3}]
hosts:
  - {name: tx, switch: s1, role: traffic-source}
  - {name: rx, switch: s2, role: traffic-sink}
  - {name: rx2, switch: s3, role: traffic-sink}
links: [{a: s1, b: s2, bw: 10}, {a: s2, b: s3, bw: 100}]
background:
  - {source: tx, sink: rx, rate: 20, start: 2, stop: 6}
"""


def test_the_monitor_reports_a_saturated_link_and_its_clearing(tmp_path):
    require_mininet()
    (tmp_path / "s.yaml").write_text(CONGESTION)
    exp = load(tmp_path / "e.yaml", {"scenario": "s.yaml", "monitor": {"interval": 0.5, "samples": 2}})
    reports: list[tuple[str, str]] = []
    result = run(exp, reporter=lambda event, link: reports.append((event, link)), results=tmp_path / "r",
                 progress=False)
    times = {(t.event, t.link): round(t.time, 1) for t in result.transitions}
    print(f"reports: {reports}; at {times}")
    assert reports == [("congested", "s1-s2"), ("cleared", "s1-s2")], reports
    assert 2.0 <= times[("congested", "s1-s2")] <= 5.0 and 6.0 <= times[("cleared", "s1-s2")] <= 9.0, times
    rows = (result.out / "links.csv").read_text().splitlines()
    assert rows[0].startswith("time,link,a_to_b_mbps") and any(",s1-s2," in r for r in rows)
    assert "cleared" in (result.out / "congestion.csv").read_text()
    assert result.metadata["leftovers"] == []


def test_an_interrupted_run_leaves_nothing(tmp_path):
    require_mininet()
    scenario = Scenario.from_yaml(DELAY)
    with pytest.raises(KeyboardInterrupt):
        with start_testbed(scenario, tmp_path) as bed:
            state = bed.state.data
            raise KeyboardInterrupt
    assert leftovers(state) == []
    assert subprocess.run(["ovs-vsctl", "br-exists", f"l{state['tag']}s1"]).returncode == 2


def test_the_nat_gateway_joins_this_machine_and_the_emulated_hosts(tmp_path):
    require_mininet()
    import socket
    import sys
    import threading
    import time

    from lambdaroute import topologies

    scenario = topologies.grid(2, 2)
    with start_testbed(scenario, tmp_path) as bed:
        gw, state = bed.gateway, bed.state.data
        assert gw is not None
        c1, nat = scenario.hosts_with("computer")[0], scenario.hosts_with("nat")[0]
        server = bed.network.node(c1.name).popen([sys.executable, "-c", (
            "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            f"s.bind(('{c1.ip}', 8099)); s.listen(); c, a = s.accept(); c.sendall(a[0].encode()); c.close()")])
        try:
            deadline = time.monotonic() + 10
            while True:  # this machine -> an emulated host, through its outside address
                try:
                    conn = socket.create_connection((gw.outside[c1.name], 8099), timeout=2)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the host's server never answered through the gateway"
                    time.sleep(0.05)
            assert conn.recv(100).decode() == nat.ip  # the host sees the gateway as the caller
            conn.close()
        finally:
            server.kill()
            server.wait()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((gw.machine_address, 8098))
        listener.listen()

        def serve() -> None:
            c, a = listener.accept()
            c.sendall(a[0].encode())
            c.close()

        threading.Thread(target=serve, daemon=True).start()
        # An emulated host -> a program on this machine, through the gateway's scenario address.
        out = bed.network.node(c1.name).cmd(
            f"{sys.executable} -c \"import socket; c = socket.create_connection(('{nat.ip}', 8098), timeout=5); "
            "print(c.recv(100).decode())\"").strip()
        listener.close()
        assert out == str(__import__("ipaddress").IPv4Network(gw.network).network_address + 2), out
    assert leftovers(state) == []
