"""``servers:`` and ``placement:`` of experiment files (runs across servers), without Mininet."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lambdaroute import topologies
from lambdaroute.testbed.cluster import Cluster, parse, place
from lambdaroute.testbed.experiment import ExperimentError, load

REPO = Path(__file__).resolve().parents[2]


def _grid_with(tmp_path: Path, **keys: object) -> Path:
    data = yaml.safe_load((REPO / "experiments" / "grid.yaml").read_text())
    data.update(keys)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_without_servers_or_with_only_localhost_the_run_stays_on_this_machine(tmp_path):
    assert parse(None, None, "x", tmp_path) is None
    assert parse(["localhost"], None, "x", tmp_path) is None
    assert load(_grid_with(tmp_path)).cluster is None


def test_auto_placement_cuts_the_switches_in_file_order_and_hosts_follow_their_switch(tmp_path):
    spec = parse(["localhost", "10.1.1.2", {"name": "c", "address": "10.1.1.3"}], "auto", "x", tmp_path)
    scenario = topologies.grid(4, 4, routers=["s1"], computers=["s6", "s11"])
    of = place(spec, scenario)
    # 16 switches over 3 servers: 6, 5, 5, in order.
    assert [of[f"s{i}"] for i in range(1, 17)] == ["localhost"] * 6 + ["10.1.1.2"] * 5 + ["c"] * 5
    for h in scenario.hosts:
        assert of[h.name] == of[h.switch]


def test_an_explicit_placement_must_name_every_switch_and_known_servers(tmp_path):
    scenario = topologies.grid(2, 2)
    spec = parse(["localhost", {"name": "vm", "address": "192.168.122.5"}],
                 {"s1": "localhost", "s2": "localhost", "s3": "vm", "s4": "vm"}, "x", tmp_path)
    assert place(spec, scenario)["s3"] == "vm"
    partial = parse(["localhost", {"name": "vm", "address": "192.168.122.5"}], {"s1": "vm"}, "x", tmp_path)
    with pytest.raises(ValueError, match="s2, s3, s4 have no server; give every switch one, or `placement: auto`"):
        place(partial, scenario)
    with pytest.raises(ValueError, match="server `elsewhere` is not in servers"):
        parse(["localhost", "10.0.0.9"], {"s1": "elsewhere"}, "x", tmp_path)
    invented = parse(["localhost", "10.0.0.9"], {"s9": "10.0.0.9"}, "x", tmp_path)
    with pytest.raises(ValueError, match="`s9` is not a switch"):
        place(invented, scenario)


@pytest.mark.parametrize("servers, placement, message", [
    (["10.0.0.9"], None, "must hold `localhost`"),
    ("10.0.0.9", None, "servers: expected a list"),
    (["localhost", {"address": "10.0.0.9", "port": 22}], None, "unknown key.*port"),
    (["localhost", {"name": "localhost", "address": "10.0.0.9"}], None, "name `localhost` is this machine"),
    (["localhost", "10.0.0.9", "10.0.0.9"], None, "`10.0.0.9` appears twice"),
    (["localhost", "127.0.0.1"], None, "127.0.0.1 only with an ssh_config"),
    (["localhost", {"address": "10.0.0.9", "ssh_config": "missing.conf"}], None, "ssh_config .*missing.conf: no such file"),
    (None, "auto", "placement: needs `servers:`"),
    (["localhost", "10.0.0.9"], ["s1"], "expected `auto` or a mapping"),
])
def test_bad_servers_and_placements_are_refused_naming_the_key(tmp_path, servers, placement, message):
    with pytest.raises(ValueError, match=message):
        parse(servers, placement, "exp.yaml", tmp_path)


def test_an_experiment_file_with_servers_is_checked_at_load(tmp_path):
    path = _grid_with(tmp_path, servers=["localhost", "10.0.0.9"], placement={"s1": "10.0.0.9"})
    with pytest.raises(ExperimentError, match=r"exp.yaml: placement: switch\(es\) s2, s3"):
        load(path)
    exp = load(_grid_with(tmp_path, servers=["localhost", {"name": "vm", "address": "10.0.0.9", "user": "me"}]))
    assert exp.cluster is not None and [s.name for s in exp.cluster.servers] == ["localhost", "vm"]
    assert exp.cluster.servers[1].user == "me"


def test_the_nat_host_must_stay_on_this_machine(tmp_path):
    scenario = topologies.grid(2, 2)
    assert scenario.host("nat").switch == "s1"
    spec = parse(["localhost", "10.0.0.9"], {"s1": "10.0.0.9", "s2": "localhost", "s3": "localhost",
                                             "s4": "localhost"}, "x", tmp_path)
    with pytest.raises(ValueError, match="the NAT host .* must be on localhost"):
        place(spec, scenario)


def test_commands_for_another_server_go_through_ssh_quoted_and_as_its_user(tmp_path):
    scenario = topologies.grid(2, 1)
    spec = parse(["localhost", {"name": "b", "address": "10.0.0.9", "user": "alice"}], "auto", "x", tmp_path)
    cluster = Cluster(spec, scenario, "t1", tmp_path)
    assert cluster.command("s1", ["ovs-ofctl", "dump-flows", "br"]) == ["ovs-ofctl", "dump-flows", "br"]
    remote = cluster.command("s2", ["sh", "-c", "echo 'a b'"])
    assert remote[0] == "ssh" and "alice@10.0.0.9" in remote
    # One argument for the remote shell, quoted; not root: through sudo.
    assert remote[-1] == "sudo -E sh -c 'echo '\"'\"'a b'\"'\"''"
    assert "ControlPath=/tmp/lr-t1-%C" in remote
