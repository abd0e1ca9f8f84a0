"""A scenario's network in Mininet: Open vSwitch switches with static flows, hosts with static
ARP, links shaped with TCLink.

The layout (names, ports, switch and link options) is the Mininet ``Topo`` of
:class:`lambdaroute.testbed.topo.ScenarioTopo`, given to ``Mininet(topo=...)``; this module
builds and starts it, then does what a ``Topo`` cannot say:

- Switches are ``OVSSwitch(failMode='secure', protocols='OpenFlow10,OpenFlow13')`` with no
  OpenFlow controller; the kernel datapath where the ``openvswitch`` module is loaded, else the
  userspace one (``datapath='user'``). Their bridge names are ``l<tag>s<index>`` (the scenario's
  switch ``index``-th in file order), unique to the run, so that cleanup deletes only ours;
  ports are numbered as the scenario numbers them.
- Hosts keep their scenario names (their interfaces live in their own namespaces) and get the
  scenario's addresses; every host gets a permanent neighbour entry for every other host.
- The static flows of every switch go in with ``ovs-ofctl add-flows`` (which must print nothing)
  and are checked with ``dump-flows``.
- Links are TCLinks: bandwidth (HTB) always; delay, loss and queue length through netem only
  when ``delay_mechanism == "netem"`` (see :mod:`lambdaroute.testbed.delay` for the other case).
- With the userspace datapath, TCP needs transmit checksum offload off on host interfaces
  (``ethtool -K <intf> tx off``).
- Without netem, the HTB class of every shaped switch port gets a ``pfifo`` of the link's
  ``queue`` packets; with the userspace datapath and no ``queue``, of
  :data:`USERSPACE_QUEUE` packets. The userspace datapath sends every packet through one
  AF_PACKET socket shared by all ports: packets waiting in a saturated port's queue count against
  that socket's send buffer (``net.core.wmem_default``, 208 KiB), so a default queue (1000
  packets) full on one link made ovs-vswitchd drop packets to *every* port (measured: 90 % ping
  loss on a path that did not cross the saturated 10 Mbit/s link; 0 % with 20 or 50 packets).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lambdaroute.scenario import Host as ScenarioHost
from lambdaroute.scenario import Scenario
from lambdaroute.testbed.cleanup import BRIDGE_MARK, Cleanup, RunState, process_id
from lambdaroute.testbed.features import Features

__all__ = ["EmulatedNetwork", "NetworkError", "bridge_names", "host_prefix", "USERSPACE_QUEUE"]

log = logging.getLogger(__name__)

#: Packets in the queue of a shaped switch port with the userspace datapath when the scenario
#: gives no ``queue`` (30 ms of 1400-byte packets at 10 Mbit/s); see the module's notes.
USERSPACE_QUEUE = 25


class NetworkError(RuntimeError):
    """The emulated network could not be built as the scenario says."""


def host_prefix(scenario: Scenario) -> int:
    """The longest prefix length whose network holds every host address (at most /8 wide for
    the default 10.0.0.x addressing, so hosts reach each other without routes)."""
    addrs = [int(ipaddress.IPv4Address(h.ip)) for h in scenario.hosts]
    if not addrs:
        return 8
    lo, hi = min(addrs), max(addrs)
    prefix = 32 - (lo ^ hi).bit_length()
    return min(prefix, 8) if all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("10.0.0.0/8") for a in addrs) else max(prefix, 1)


def bridge_names(scenario: Scenario, tag: str) -> dict[str, str]:
    """Scenario switch name -> the bridge of the run tagged ``tag``: ``l<tag>s<index>``, the
    scenario's ``index``-th switch (from 1, in file order)."""
    return {s.name: f"l{tag}s{i}" for i, s in enumerate(scenario.switches, start=1)}


class _DropHtbQuantum(logging.Filter):
    """Mininet logs tc's harmless "quantum of class ... is big" warning (HTB above ~10 Mbit/s)
    as an error, once per shaped interface; keep every other message."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "quantum of class" not in record.getMessage()


def _quiet_mininet() -> None:
    from mininet.log import lg

    if not any(isinstance(f, _DropHtbQuantum) for f in lg.filters):
        lg.addFilter(_DropHtbQuantum())
        for handler in lg.handlers:
            handler.addFilter(_DropHtbQuantum())
    lg.propagate = False


def _run(args: list[str], what: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetworkError(f"{what}: `{' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


class EmulatedNetwork:
    """The Mininet network of one scenario. Build it with :meth:`start`; cleanup is pushed onto
    the run's :class:`Cleanup` as it goes."""

    def __init__(
        self,
        scenario: Scenario,
        features: Features,
        tag: str,
        delay_mechanism: str,
        workdir: Path,
        state: RunState | None = None,
    ) -> None:
        self.scenario = scenario
        self.features = features
        self.tag = tag
        self.delay_mechanism = delay_mechanism
        self.workdir = workdir
        self.state = state
        self.net: Any = None
        #: Switch port -> packets of its HTB queue, where the testbed set one.
        self.queue_limits: dict[str, int] = {}
        #: Scenario switch name -> bridge name.
        self.bridges = bridge_names(scenario, tag)
        self.prefix = host_prefix(scenario)
        #: The Mininet layout (:class:`~lambdaroute.testbed.topo.ScenarioTopo`), once started.
        self.topo: Any = None
        #: Seconds each phase of :meth:`start` took (``hosts``, ``links``, ``shaping``, ...), in
        #: the order they ran; ``shaping`` (tc on the links) is part of ``links``.
        self.timings: dict[str, float] = {}

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        t = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.monotonic() - t, 3)

    # ----- building -----

    def start(self, cleanup: Cleanup) -> None:
        """Builds and starts the network, installs flows and ARP, checks the flows."""
        from mininet.link import TCLink
        from mininet.log import setLogLevel
        from mininet.net import Mininet
        from mininet.node import Host, OVSSwitch

        from lambdaroute.testbed.topo import ScenarioTopo

        setLogLevel(os.environ.get("LAMBDAROUTE_MININET_LOG", "warning"))
        _quiet_mininet()
        # Mininet.init() would raise machine-wide sysctls and limits; raise only ours.
        Mininet.inited = True
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))

        from mininet.link import TCIntf

        network = self

        class TimedTCIntf(TCIntf):  # type: ignore[misc]
            """TCIntf whose tc configuration counts as ``shaping``."""

            def config(self, *args: Any, **kwargs: Any) -> Any:
                with network._phase("shaping"):
                    return super().config(*args, **kwargs)

        class TimedTCLink(TCLink):  # type: ignore[misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.setdefault("cls1", TimedTCIntf)
                kwargs.setdefault("cls2", TimedTCIntf)
                super().__init__(*args, **kwargs)

        self.topo = ScenarioTopo(self.scenario, tag=self.tag, datapath=self.features.datapath,
                                 delay_mechanism=self.delay_mechanism)
        net = Mininet(
            topo=self.topo,
            controller=None,
            switch=OVSSwitch,
            host=Host,
            link=TimedTCLink,
            build=False,
            autoSetMacs=False,
            autoStaticArp=False,
            waitConnected=False,
        )
        self.net = net
        cleanup.push("stop the Mininet network", self._stop)
        if self.state is not None:
            for bridge in self.bridges.values():
                self.state.add("bridges", bridge)
        # Mininet's build(), step by step (timed): hosts and switches (one shell each), links
        # (veth pairs, with their tc shaping), host addresses.
        with self._phase("hosts"):
            for name in self.topo.hosts():
                net.addHost(name, **self.topo.nodeInfo(name))
            for name in self.topo.switches():
                net.addSwitch(name, **self.topo.nodeInfo(name))
        with self._phase("links"):
            for _, _, params in self.topo.links(sort=True, withInfo=True):
                net.addLink(**params)
        with self._phase("addresses"):
            net.configHosts()
        net.built = True
        if self.state is not None:
            for node in net.hosts + net.switches:
                pid = process_id(node.pid) if node.pid else None
                if pid:
                    self.state.add("pids", pid)
        with self._phase("switches"):
            net.start()
            # Mark our bridges, so `lambdaroute-testbed clean` finds them even after a reboot.
            marks: list[str] = []
            for bridge in self.bridges.values():
                marks += ["--", "set", "Bridge", bridge, f"external_ids:{BRIDGE_MARK}={self.tag}"]
            _run(["ovs-vsctl", *marks[1:]], "marking the bridges")
        with self._phase("flows"):
            self._install_flows()
        with self._phase("arp"):
            self._install_arp()
        with self._phase("queues"):
            self._limit_queues()
        with self._phase("ethtool"):
            self._checksum_offload_off()

    def _checksum_offload_off(self) -> None:
        if self.features.datapath == "user":
            net = self.net
            for h in self.scenario.hosts:
                node = net.get(h.name)
                out = node.cmd(f"ethtool -K {h.name}-eth0 tx off >/dev/null 2>&1; echo $?").strip()
                if out != "0":
                    raise NetworkError(f"host {h.name}: `ethtool -K {h.name}-eth0 tx off` failed")

    def _install_flows(self) -> None:
        for sw in self.scenario.switches:
            bridge = self.bridges[sw.name]
            entries = self.scenario.flows(sw.name)
            with tempfile.NamedTemporaryFile("w", suffix=".flows", dir=self.workdir, delete=False) as f:
                f.write("".join(e.ofctl + "\n" for e in entries))
                path = f.name
            try:
                out = subprocess.run(
                    ["ovs-ofctl", "add-flows", bridge, path], capture_output=True, text=True, check=False
                )
            finally:
                os.unlink(path)
            if out.returncode != 0 or out.stdout.strip() or out.stderr.strip():
                raise NetworkError(
                    f"switch {sw.name} ({bridge}): `ovs-ofctl add-flows` said: "
                    f"{(out.stdout + out.stderr).strip() or f'exit {out.returncode}'}"
                )
            dumped = self.dump_flows(sw.name)
            installed = sum(1 for line in dumped.splitlines() if "priority=" in line)
            if installed != len(entries):
                raise NetworkError(
                    f"switch {sw.name} ({bridge}): {installed} flows installed, expected {len(entries)}; "
                    f"dump-flows:\n{dumped}"
                )

    def _limit_queues(self) -> None:
        """The HTB leaf queue of each shaped switch port: the link's ``queue``, or with the
        userspace datapath :data:`USERSPACE_QUEUE` (netem, where used, already has ``queue``)."""
        if self.delay_mechanism == "netem":
            return
        wanted: list[tuple[str, int]] = []
        for link in self.scenario.links:
            queue = link.queue if link.queue is not None else (
                USERSPACE_QUEUE if self.features.datapath == "user" else None)
            if link.bw is not None and queue is not None:
                wanted += [(f"{self.bridges[link.a]}-eth{link.port_a}", int(queue)),
                           (f"{self.bridges[link.b]}-eth{link.port_b}", int(queue))]
        for h in self.scenario.hosts:
            queue = h.link.queue if h.link.queue is not None else (
                USERSPACE_QUEUE if self.features.datapath == "user" else None)
            if h.link.bw is not None and queue is not None:
                wanted.append((f"{self.bridges[h.switch]}-eth{h.port}", int(queue)))
        for intf, queue in wanted:
            _run(["tc", "qdisc", "replace", "dev", intf, "parent", "5:1", "handle", "10:", "pfifo",
                  "limit", str(queue)], f"queue of {intf}")
            self.queue_limits[intf] = queue

    def _install_arp(self) -> None:
        hosts = self.scenario.hosts
        for h in hosts:
            lines = "".join(
                f"neigh replace {g.ip} lladdr {g.mac} dev {h.name}-eth0 nud permanent\n" for g in hosts if g is not h
            )
            if not lines:
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".neigh", dir=self.workdir, delete=False) as f:
                f.write(lines)
                path = f.name
            try:
                out = self.net.get(h.name).cmd(f"ip -batch {path} 2>&1; echo rc=$?").strip()
            finally:
                os.unlink(path)
            if not out.endswith("rc=0"):
                raise NetworkError(f"host {h.name}: static ARP entries failed: {out}")

    def _stop(self) -> None:
        net, self.net = self.net, None
        if net is None:
            return
        t = time.monotonic()
        try:
            net.stop()
        finally:
            # net.stop() deletes its bridges; make sure, by name, that none of ours is left.
            for bridge in self.bridges.values():
                subprocess.run(
                    ["ovs-vsctl", "--if-exists", "del-br", bridge],
                    check=False,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            self.timings["teardown"] = round(time.monotonic() - t, 3)

    # ----- using it -----

    def node(self, name: str) -> Any:
        """The Mininet host called ``name``."""
        return self.net.get(name)

    def dump_flows(self, switch: str) -> str:
        """``ovs-ofctl dump-flows`` of a scenario switch."""
        return _run(["ovs-ofctl", "--no-names", "dump-flows", self.bridges[switch]], f"switch {switch}")

    def ping(self, a: str, b: ScenarioHost | str, count: int = 5, interval: float = 0.2) -> list[float]:
        """RTTs in ms of ``count`` pings from host ``a`` to host ``b``."""
        target = b if isinstance(b, ScenarioHost) else self.scenario.host(b)
        out = self.node(a).cmd(f"ping -n -c {count} -i {interval} -W 2 {target.ip}")
        rtts = []
        for line in out.splitlines():
            if "time=" in line:
                rtts.append(float(line.split("time=", 1)[1].split()[0]))
        return rtts
