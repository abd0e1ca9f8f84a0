"""The scenario as a Mininet ``Topo``, built and inspected without root: the scenario's switches
(as the run's bridges), hosts, links, port numbers and shaping.

A ``Topo`` is only a graph, but it needs Mininet importable (Debian's python3-mininet, which the
venv sees): `make testbed-deps` installs it. Like the Mininet runs, these tests fail when it is
missing, unless LAMBDAROUTE_SKIP_MININET=1.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from lambdaroute import Scenario, ScenarioBuilder, topologies
from lambdaroute.testbed.network import bridge_names
from testbed_support import SKIP_VAR


def scenario_topo() -> Any:
    if os.environ.get(SKIP_VAR) == "1":
        pytest.skip(f"{SKIP_VAR}=1: Mininet tests skipped on purpose")
    try:
        from lambdaroute.testbed.topo import ScenarioTopo
    except ImportError as e:
        pytest.fail(f"cannot import Mininet ({e}): install it with `make testbed-deps` (root), "
                    f"or set {SKIP_VAR}=1 to skip", pytrace=False)
    return ScenarioTopo


def test_the_topo_of_a_grid_has_its_switches_hosts_links_and_ports() -> None:
    ScenarioTopo = scenario_topo()
    grid = topologies.grid(4, 4, bw=100, delay=1)
    topo = ScenarioTopo(grid, tag="t4x", datapath="user", delay_mechanism="netem")
    bridges = bridge_names(grid, "t4x")
    assert topo.bridges == bridges == {f"s{i}": f"lt4xs{i}" for i in range(1, 17)}
    assert topo.switches() == [f"lt4xs{i}" for i in range(1, 17)]
    assert sorted(topo.hosts()) == sorted(h.name for h in grid.hosts)
    assert len(topo.links()) == len(grid.links) + len(grid.hosts) == 24 + len(grid.hosts)
    for i, s in enumerate(grid.switches, start=1):
        info = topo.nodeInfo(bridges[s.name])
        assert info["dpid"] == f"{i:016x}" and info["datapath"] == "user" and info["batch"] is False
        assert (info["failMode"], info["protocols"]) == ("secure", "OpenFlow10,OpenFlow13")
        assert topo.switch_of(bridges[s.name]) == s.name
        # Every port of the scenario's switch is in the Topo, leading to the same peer.
        peers = {port: node for port, (node, _) in topo.ports[bridges[s.name]].items()}
        assert peers == {port: bridges.get(peer, peer) for port, peer in s.ports.items()}
    for link in grid.links:
        info = topo.linkInfo(bridges[link.a], bridges[link.b])
        assert (info["node1"], info["port1"]) == (bridges[link.a], link.port_a)
        assert (info["node2"], info["port2"]) == (bridges[link.b], link.port_b)
        assert (info["bw"], info["delay"]) == (100.0, "1ms")
    for h in grid.hosts:
        info = topo.linkInfo(h.name, bridges[h.switch])
        assert (info["port1"], info["port2"]) == (0, h.port)
        assert "bw" not in info and "delay" not in info  # the grid's access links are not shaped
        assert topo.nodeInfo(h.name) == {"ip": f"{h.ip}/8", "mac": h.mac}


def test_without_netem_links_carry_only_their_bandwidth() -> None:
    ScenarioTopo = scenario_topo()
    b = ScenarioBuilder("shaped")
    b.add_switch("s1")
    b.add_switch("s2")
    b.add_link("s1", "s2", bw=10, delay=5, loss=1, queue=30)
    b.add_host("h1", "s1", role="traffic-source", bw=50, delay=2, queue=20)
    b.add_host("h2", "s2", role="traffic-sink")
    scenario: Scenario = b.build()
    netem = ScenarioTopo(scenario, tag="abc")
    assert {k: netem.linkInfo("labcs1", "labcs2")[k] for k in ("bw", "delay", "loss", "max_queue_size")} == {
        "bw": 10.0, "delay": "5ms", "loss": 1.0, "max_queue_size": 30}
    assert {k: netem.linkInfo("h1", "labcs1")[k] for k in ("bw", "delay", "max_queue_size")} == {
        "bw": 50.0, "delay": "2ms", "max_queue_size": 20}
    nfqueue = ScenarioTopo(scenario, tag="abc", delay_mechanism="nfqueue")
    shaped = nfqueue.linkInfo("labcs1", "labcs2")
    assert shaped["bw"] == 10.0 and not {"delay", "loss", "max_queue_size"} & set(shaped)
    assert nfqueue.linkInfo("h1", "labcs1")["bw"] == 50.0
    assert nfqueue.port("labcs1", "labcs2") == (1, 1)
