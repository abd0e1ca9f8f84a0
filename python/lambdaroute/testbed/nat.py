"""The NAT gateway: programs on this machine (outside Mininet) reach the emulated hosts, and
emulated hosts reach programs on this machine. Nothing else: no route leaves the machine.

The scenario's ``nat`` host is an ordinary emulated host with a second interface, a veth whose
other end ``l<tag>nat`` stays in the root namespace. The pair gets a /24 of link-local addresses
(169.254.K.0/24, a K no interface of this machine uses): the root end ``.1``, the gateway ``.2``,
and every emulated host an *outside address* ``.10 + i`` (i: its index in the scenario) that the
gateway answers for. Inside the gateway's namespace (and only there: ``ip_forward`` is a
per-namespace setting, the root namespace's is not touched):

- DNAT: a connection to a host's outside address goes to its scenario address;
  SNAT: the gateway's scenario address as source, so the host answers through the gateway;
- DNAT: a connection from an emulated host to the gateway's scenario address goes to the
  root end ``.1`` (a program on this machine listening there or on 0.0.0.0), port unchanged;
  MASQUERADE as ``.2``;
- routed: the routers also reach ``.1`` itself, so that a computer on this machine that
  announces its own listening address ``169.254.K.1:PORT`` (serverlessonedge's computers cannot
  announce another) is reachable too: every router host has the route ``169.254.K.0/24 via
  <gateway's scenario address>``, every switch a flow sending that /24 toward the gateway, and the
  gateway forwards it out of its veth (SNAT as ``.2``).

The root namespace gains only the connected route of that /24 through ``l<tag>nat``; it
forwards nothing. The veth (and with it the route) goes when the run ends.
"""

from __future__ import annotations

import ipaddress
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdaroute.scenario import Host, Scenario
from lambdaroute.testbed.batch import iptables_restore
from lambdaroute.testbed.cleanup import Cleanup, RunState
from lambdaroute.testbed.network import without_ovs_notes

__all__ = ["Gateway", "start_gateway"]


@dataclass
class Gateway:
    """The gateway of a run: its host, the outside /24, and each host's outside address."""

    host: str
    interface: str
    network: str
    machine_address: str
    outside: dict[str, str]
    #: The routers reach ``machine_address`` directly (route + flows), not only through ``host``'s address.
    routed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False).stdout
    nets = []
    for line in out.split("\n"):
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.IPv4Interface(parts[parts.index("inet") + 1]).network)
    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True, check=False).stdout
    for line in routes.splitlines():
        first = line.split()[0] if line.split() else ""
        if "/" in first:
            nets.append(ipaddress.IPv4Network(first, strict=False))
    return nets


def _free_slash24(seed: str) -> ipaddress.IPv4Network:
    used = _used_networks()
    start = int.from_bytes(seed.encode(), "big") % 200
    for i in range(254):
        k = 20 + (start + i) % 230  # 169.254.20.0 .. 169.254.249.0, away from .169 metadata
        if k == 169:
            continue
        net = ipaddress.IPv4Network(f"169.254.{k}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 169.254.K.0/24 for the NAT gateway")


def _run_in(node: Any, command: str) -> None:
    out = node.cmd(command + " 2>&1; echo rc=$?").strip()
    if not out.endswith("rc=0"):
        raise RuntimeError(f"NAT gateway {node.name}: `{command}` failed: {out}")


def start_gateway(network: Any, scenario: Scenario, tag: str, cleanup: Cleanup,
                  state: RunState | None = None) -> Gateway | None:
    """Sets up the gateway on the scenario's ``nat`` host, if it has one."""
    nat_hosts = scenario.hosts_with("nat")
    if not nat_hosts:
        return None
    nat: Host = nat_hosts[0]
    node = network.node(nat.name)
    net = _free_slash24(tag)
    hosts = [h for h in scenario.hosts if h.role != "nat"]
    if len(hosts) > 240:
        raise RuntimeError("the NAT gateway gives outside addresses to at most 240 hosts")
    root_if, inner_if = f"l{tag}nat", f"{nat.name}-ext"[:15]
    machine, gw = str(net.network_address + 1), str(net.network_address + 2)
    outside = {h.name: str(net.network_address + 10 + i) for i, h in enumerate(hosts)}

    subprocess.run(["ip", "link", "add", root_if, "type", "veth", "peer", "name", inner_if,
                    "netns", str(node.pid)], check=True, capture_output=True)
    cleanup.push(f"delete {root_if}", lambda: subprocess.run(
        ["ip", "link", "del", root_if], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if state is not None:
        state.add("links", root_if)
    subprocess.run(["ip", "addr", "add", f"{machine}/24", "dev", root_if], check=True, capture_output=True)
    subprocess.run(["ip", "link", "set", root_if, "up"], check=True, capture_output=True)
    # Addresses in one `ip -batch`, rules in one `iptables-restore --noflush` (one shell round
    # trip each instead of one per host).
    addresses = "".join(f"addr add {a} dev {inner_if}\n" for a in [f"{gw}/24", *(f"{o}/32" for o in outside.values())])
    addresses += f"link set {inner_if} up\n"
    rules = [["-t", "nat", "-A", "PREROUTING", "-i", inner_if, "-d", outside[h.name], "-j", "DNAT",
              "--to-destination", h.ip] for h in hosts]
    rules += [
        ["-t", "nat", "-A", "POSTROUTING", "-o", f"{nat.name}-eth0", "-j", "SNAT", "--to-source", nat.ip],
        ["-t", "nat", "-A", "PREROUTING", "-i", f"{nat.name}-eth0", "-d", nat.ip, "-j", "DNAT", "--to-destination", machine],
        ["-t", "nat", "-A", "POSTROUTING", "-o", inner_if, "-j", "SNAT", "--to-source", gw],
        # Only between the emulated network and the root end: nothing else is forwarded.
        ["-A", "FORWARD", "-i", inner_if, "-o", f"{nat.name}-eth0", "-j", "ACCEPT"],
        ["-A", "FORWARD", "-i", f"{nat.name}-eth0", "-o", inner_if, "-d", machine, "-j", "ACCEPT"],
    ]
    with tempfile.TemporaryDirectory(prefix="lambdaroute-nat-") as tmp:
        ip_file, rules_file = Path(tmp) / "ip", Path(tmp) / "rules"
        ip_file.write_text(addresses, encoding="utf-8")
        rules_file.write_text(iptables_restore(rules), encoding="utf-8")
        for c in [f"ip -batch {ip_file}", "sysctl -qw net.ipv4.ip_forward=1", "iptables -w -P FORWARD DROP",
                  f"iptables-restore -w --noflush {rules_file}"]:
            _run_in(node, c)
    gateway = Gateway(nat.name, root_if, str(net), machine, outside)
    _route_to_machine(network, scenario, nat, gateway)
    return gateway


def _route_to_machine(network: Any, scenario: Scenario, nat: Host, gateway: Gateway) -> None:
    """Lets the routers reach this machine's end (``169.254.K.1``) directly: a flow on every
    switch (all at once) sending the /24 where the gateway's own flow sends its address, and a
    route in every router host."""
    adding = []
    for sw in scenario.switches:
        ports = [f.out_port for f in scenario.flows(sw.name) if f.kind == "ip" and f.host == nat.name]
        if not ports:
            continue
        flow = f"priority=90,ip,nw_dst={gateway.network},actions=output:{ports[0]}"
        # Where the switch is: here, or over SSH on its server (runs across servers).
        command = ["ovs-ofctl", "add-flow", network.bridges[sw.name], flow]
        root = getattr(network, "root_command", None)
        adding.append((sw.name, subprocess.Popen(root(sw.name, command) if root else command,
                                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    said = [(name, without_ovs_notes(proc.communicate()[0]), proc.returncode) for name, proc in adding]
    for name, text, code in said:
        if code != 0 or text.strip():
            raise RuntimeError(f"NAT gateway: switch {name}: `ovs-ofctl add-flow` said: {text.strip() or code}")
    for h in scenario.hosts_with("router"):
        _run_in(network.node(h.name), f"ip route replace {gateway.network} via {nat.ip}")
    gateway.routed = True
