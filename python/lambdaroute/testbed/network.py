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
- Without netem (:attr:`EmulatedNetwork.batched`) the network is built in batches, the same
  network as Mininet's ``build()`` with TCLinks in a few commands: shells started by a few
  threads, every veth pair in one ``ip -batch``, one shell round trip per host (address, ARP,
  offloads, HTB of its end), the switches in one ``ovs-vsctl``, then (OVS resets the qdisc of a
  port it adds) the switch ports' offloads and HTB; Mininet's TCLink configured each interface
  with several commands, and the switches reapplied it twice (measured: 262 s for 214 hosts
  before, 14-17 s after; ``docs/testbed.md``, "Setup time").
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
import re
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
from lambdaroute.testbed.batch import htb, neighbours, pfifo_queues, veth_pairs
from lambdaroute.testbed.cleanup import BRIDGE_MARK, Cleanup, RunState, process_id
from lambdaroute.testbed.cluster import Cluster, node_classes
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
    as an error, once per shaped interface; keep every other message but the one below."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # Also TCIntf's `tc qdisc del ... root` of an interface that has none yet (a tunnel's
        # tap device, a veth on a kernel that gives it noqueue): nothing to delete, no harm.
        return "quantum of class" not in message and "Cannot delete qdisc with handle of zero" not in message


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


#: An Open vSwitch tool's log line: ``2026-12-02T13:10:47Z|00004|coverage|INFO|...``.
_OVS_LOG = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z\|\d+\|(?P<module>[\w-]+)\|(?P<level>[A-Z]+)\|")


def without_ovs_notes(text: str) -> str:
    """Open vSwitch tools' output without the notes a slow machine (an emulated VM) makes them
    print on a success: ``timeval|WARN|Unreasonably long 1421ms poll interval``, and the INFO
    and DBG lines that come with it (event coverage, poll loop wake-ups)."""
    def note(line: str) -> bool:
        m = _OVS_LOG.match(line)
        return m is not None and (m["level"] in ("INFO", "DBG") or m["module"] == "timeval")
    return "".join(line for line in text.splitlines(keepends=True) if not note(line))


@contextmanager
def _batch_file(text: str, suffix: str, workdir: Path | str | None) -> Iterator[str]:
    """A file holding ``text`` (the input of an ``ip``/``tc`` batch), removed afterwards."""
    with tempfile.NamedTemporaryFile("w", suffix=suffix, dir=workdir, delete=False) as f:
        f.write(text)
        path = f.name
    try:
        yield path
    finally:
        os.unlink(path)


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
        cluster: Cluster | None = None,
    ) -> None:
        self.scenario = scenario
        #: The servers the network is spread over (:mod:`lambdaroute.testbed.cluster`); None: this machine.
        self.cluster = cluster
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
        #: Links and hosts configured in batches (a few commands in all instead of several
        #: per interface), unless netem carries delay, loss and queues (Mininet's TCLink then).
        self.batched = (delay_mechanism != "netem" and cluster is None
                        and os.environ.get("LAMBDAROUTE_TESTBED_BATCH", "1") != "0")
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

        classes: tuple[type, type, type] | None = None
        datapaths: dict[str, str] = {}
        if self.cluster is not None:
            host_cls, switch_cls, tunnel_cls = node_classes(self.cluster)

            class TimedTunnel(tunnel_cls):  # type: ignore[misc, valid-type]
                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    kwargs.setdefault("cls1", TimedTCIntf)
                    kwargs.setdefault("cls2", TimedTCIntf)
                    super().__init__(*args, **kwargs)

            classes = (host_cls, switch_cls, TimedTunnel)
            datapaths = {name: "kernel" if f["ovs_kernel"] else "user" for name, f in self.cluster.features.items()}
            datapaths["localhost"] = self.features.datapath
        self.topo = ScenarioTopo(self.scenario, tag=self.tag, datapath=self.features.datapath,
                                 delay_mechanism=self.delay_mechanism, batch=self.batched,
                                 placement=self.cluster.placement if self.cluster else None,
                                 datapaths=datapaths, classes=classes)
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
            if self.batched:
                self._add_nodes_parallel(net, Host)
            else:
                for name in self.topo.hosts():
                    net.addHost(name, **self.topo.nodeInfo(name))
                for name in self.topo.switches():
                    net.addSwitch(name, **self.topo.nodeInfo(name))
        if self.batched:
            with self._phase("links"):
                shaped = self._add_links_batched(net)
            with self._phase("addresses"):
                self._configure_hosts_batched(shaped)
        else:
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
            for switches in self._by_server(list(self.bridges)).values():
                marks: list[str] = []
                for name in switches:
                    marks += ["--", "set", "Bridge", self.bridges[name], f"external_ids:{BRIDGE_MARK}={self.tag}"]
                _run(self.root_command(switches[0], ["ovs-vsctl", *marks[1:]]), "marking the bridges")
        if self.batched:
            # After the switches: OVS resets the qdisc of a port it adds (Mininet's TCReapply).
            with self._phase("shaping"):
                self._shape_switch_ports_batched(shaped)
        with self._phase("flows"):
            self._install_flows()
        if not self.batched:
            with self._phase("arp"):
                self._install_arp()
        with self._phase("queues"):
            self._limit_queues()
        if not self.batched:
            with self._phase("ethtool"):
                self._checksum_offload_off()

    # ----- which machine -----

    def root_command(self, node: str, args: list[str]) -> list[str]:
        """``args`` as run in the root namespace of the machine of ``node`` (a scenario switch
        or host): here, or over SSH on its server."""
        return args if self.cluster is None else self.cluster.command(node, args)

    def _by_server(self, nodes: list[str]) -> dict[str, list[str]]:
        """``nodes`` grouped by server (one group, ``localhost``, on one machine)."""
        if self.cluster is None:
            return {"localhost": list(nodes)} if nodes else {}
        groups: dict[str, list[str]] = {}
        for name in nodes:
            groups.setdefault(self.cluster.placement[name], []).append(name)
        return groups

    # ----- the batched build (no netem: bandwidth only) -----

    def _add_nodes_parallel(self, net: Any, host_cls: Any) -> None:
        """Hosts and switches as ``Mininet.addHost``/``addSwitch`` make them (no listening port,
        switches in the root namespace), their shells started by a few threads at once (each
        start mostly waits for its shell's first prompt). Every node made is registered with
        the network, also when another fails, so that stopping the network ends it."""
        from concurrent.futures import ThreadPoolExecutor

        def make(name: str) -> Any:
            params = dict(self.topo.nodeInfo(name))
            if self.topo.isSwitch(name):
                cls = params.pop("cls")
                return cls(name, listenPort=None, inNamespace=False, **params)
            return host_cls(name, **params)

        names = [*self.topo.hosts(), *self.topo.switches()]
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(make, name) for name in names]
        error: BaseException | None = None
        for name, future in zip(names, futures):
            try:
                node = future.result()
            except BaseException as e:  # noqa: BLE001 - raised after the others are registered
                error = error or e
                continue
            (net.switches if self.topo.isSwitch(name) else net.hosts).append(node)
            net.nameToNode[name] = node
        if error is not None:
            raise error

    def _add_links_batched(self, net: Any) -> dict[str, float]:
        """Every link's veth pair in one ``ip -batch`` in the root namespace (a host's end
        created in its namespace, with its MAC), registered with Mininet as TCLinks without
        running a command per interface. Returns interface -> bandwidth (Mbit/s) to shape."""
        from mininet.link import Link, TCIntf

        class PlannedIntf(TCIntf):  # type: ignore[misc]
            """A TCIntf whose configuration the testbed applies in batches."""

            def config(self, **params: Any) -> dict[str, Any]:
                return {}

        def ignore(*args: Any, **kwargs: Any) -> None:
            return None

        pairs: list[tuple[str, str, str | None, int | None]] = []
        shaped: dict[str, float] = {}
        hosts = {h.name: h for h in self.scenario.hosts}
        for _, _, params in self.topo.links(sort=True, withInfo=True):
            ends = [(net.get(params["node1"]), params["port1"]), (net.get(params["node2"]), params["port2"])]
            # The root end first: a switch's (hosts live in their own namespaces).
            ends.sort(key=lambda e: e[0].inNamespace)
            (root_node, root_port), (other_node, other_port) = ends
            root_name, other_name = f"{root_node.name}-eth{root_port}", f"{other_node.name}-eth{other_port}"
            host = hosts.get(other_node.name) if other_node.inNamespace else None
            pairs.append((root_name, other_name, host.mac if host else None,
                          other_node.pid if other_node.inNamespace else None))
            link = Link.__new__(Link)
            link.fast = True
            options = {k: v for k, v in params.items() if k not in ("node1", "node2", "port1", "port2")}
            link.intf1 = PlannedIntf(name=root_name, node=root_node, port=root_port, link=link,
                                     moveIntfFn=ignore, **options)
            link.intf2 = PlannedIntf(name=other_name, node=other_node, port=other_port, link=link,
                                     mac=host.mac if host else None, moveIntfFn=ignore, **options)
            if host:
                link.intf2.ip, link.intf2.prefixLen = host.ip, self.prefix
            net.links.append(link)
            if options.get("bw") is not None:
                shaped[root_name] = shaped[other_name] = float(options["bw"])
        with _batch_file(veth_pairs(pairs), ".ip", self.workdir) as path:
            _run(["ip", "-batch", path], f"{len(pairs)} veth pairs")
        return shaped

    def _configure_hosts_batched(self, shaped: dict[str, float]) -> None:
        """Each host in one shell round trip: loopback and ``eth0`` up with its address, a
        permanent neighbour entry for every other host, offloads (GRO off as TCLink sets it;
        transmit checksum offload off with the userspace datapath, which TCP needs there) and
        the HTB shaping of its end of its access link."""
        hosts = self.scenario.hosts
        tx = "off" if self.features.datapath == "user" else "on"
        for h in hosts:
            intf = f"{h.name}-eth0"
            ip_text = (f"link set lo up\naddr add {h.ip}/{self.prefix} brd + dev {intf}\nlink set {intf} up\n"
                       + neighbours(intf, ((g.ip, g.mac) for g in hosts if g is not h)))
            base = Path(self.workdir) / f".{h.name}"
            ip_file, tc_file = base.with_suffix(".ip"), base.with_suffix(".tc")
            ip_file.write_text(ip_text, encoding="utf-8")
            command = f"ip -batch {ip_file} && ethtool -K {intf} gro off tx {tx} rx on"
            if intf in shaped:
                tc_file.write_text(htb(intf, shaped[intf]), encoding="utf-8")
                command += f" && tc -batch {tc_file}"
            try:
                out = self.net.get(h.name).cmd(f"{{ {command}; }} 2>&1; echo rc=$?").strip()
            finally:
                ip_file.unlink()
                tc_file.unlink(missing_ok=True)
            if not out.endswith("rc=0"):
                raise NetworkError(f"host {h.name}: configuring {intf} failed: {out}")

    def _shape_switch_ports_batched(self, shaped: dict[str, float]) -> None:
        """The root-namespace ends (switch ports): GRO off and HTB, in one shell script and
        one ``tc -batch``."""
        host_ends = {f"{h.name}-eth0" for h in self.scenario.hosts}
        ports = [intf for s in self.net.switches for intf in map(str, s.intfList()) if intf != "lo"]
        script = "".join(f"ethtool -K {intf} gro off tx on rx on\n" for intf in ports)
        tc_text = "".join(htb(intf, bw) for intf, bw in shaped.items() if intf not in host_ends)
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            (Path(tmp) / "offload.sh").write_text(script, encoding="utf-8")
            _run(["sh", "-e", str(Path(tmp) / "offload.sh")], "offloads of the switch ports")
            if tc_text:
                (Path(tmp) / "shaping.tc").write_text(tc_text, encoding="utf-8")
                _run(["tc", "-batch", str(Path(tmp) / "shaping.tc")], "shaping of the switch ports")

    def _checksum_offload_off(self) -> None:
        # Across servers, always: a host's packets may cross a userspace datapath elsewhere.
        if self.features.datapath == "user" or self.cluster is not None:
            net = self.net
            for h in self.scenario.hosts:
                node = net.get(h.name)
                out = node.cmd(f"ethtool -K {h.name}-eth0 tx off >/dev/null 2>&1; echo $?").strip()
                if out != "0":
                    raise NetworkError(f"host {h.name}: `ethtool -K {h.name}-eth0 tx off` failed")

    def _install_flows(self) -> None:
        """Every switch's flows with one ``ovs-ofctl add-flows`` each (all switches at once),
        then each switch's ``dump-flows`` (all at once) counted against the scenario."""
        expected: dict[str, int] = {}
        texts: dict[str, str | None] = {}
        adding: dict[str, tuple[str, subprocess.Popen[str]]] = {}
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            try:
                for sw in self.scenario.switches:
                    bridge = self.bridges[sw.name]
                    entries = self.scenario.flows(sw.name)
                    expected[sw.name] = len(entries)
                    text = "".join(e.ofctl + "\n" for e in entries)
                    if self.cluster is not None and self.cluster.is_remote(sw.name):
                        # On another server: the flows on stdin (`-`) through SSH.
                        source, texts[sw.name] = "-", text
                    else:
                        path = Path(tmp) / f"{bridge}.flows"
                        path.write_text(text, encoding="utf-8")
                        source, texts[sw.name] = str(path), None
                    adding[sw.name] = (bridge, subprocess.Popen(
                        self.root_command(sw.name, ["ovs-ofctl", "add-flows", bridge, source]),
                        stdin=subprocess.PIPE if source == "-" else subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            finally:
                # Every started ovs-ofctl is waited for, also when starting another failed.
                said = {name: (bridge, proc.communicate(texts[name])[0], proc.returncode)
                        for name, (bridge, proc) in adding.items()}
        for name, (bridge, text, code) in said.items():
            text = without_ovs_notes(text)
            if code != 0 or text.strip():
                raise NetworkError(f"switch {name} ({bridge}): `ovs-ofctl add-flows` said: "
                                   f"{text.strip() or f'exit {code}'}")
        dumping = {name: subprocess.Popen(self.root_command(name, ["ovs-ofctl", "--no-names", "dump-flows", self.bridges[name]]),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for name in expected}
        dumps = {name: (proc.communicate(), proc.returncode) for name, proc in dumping.items()}
        for name, ((dumped, err), code) in dumps.items():
            bridge = self.bridges[name]
            if code != 0:
                raise NetworkError(f"switch {name} ({bridge}): `ovs-ofctl dump-flows` failed ({code}): {err.strip()}")
            installed = sum(1 for line in dumped.splitlines() if "priority=" in line)
            if installed != expected[name]:
                raise NetworkError(
                    f"switch {name} ({bridge}): {installed} flows installed, expected {expected[name]}; "
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
                wanted += [(link.a, f"{self.bridges[link.a]}-eth{link.port_a}", int(queue)),
                           (link.b, f"{self.bridges[link.b]}-eth{link.port_b}", int(queue))]
        for h in self.scenario.hosts:
            queue = h.link.queue if h.link.queue is not None else (
                USERSPACE_QUEUE if self.features.datapath == "user" else None)
            if h.link.bw is not None and queue is not None:
                wanted.append((h.switch, f"{self.bridges[h.switch]}-eth{h.port}", int(queue)))
        if not wanted:
            return
        # All ports are in the root namespace: one tc for all of them (per server), on stdin.
        for switches in self._by_server(sorted({sw for sw, _, _ in wanted})).values():
            ports = [(intf, queue) for sw, intf, queue in wanted if sw in switches]
            done = subprocess.run(self.root_command(switches[0], ["tc", "-batch", "-"]), input=pfifo_queues(ports),
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise NetworkError(f"queues of {len(ports)} switch ports: `tc -batch` failed ({done.returncode}): "
                                   f"{done.stderr.strip()}")
        for _, intf, queue in wanted:
            self.queue_limits[intf] = queue

    def _install_arp(self) -> None:
        hosts = self.scenario.hosts
        files: list[tuple[str, Path]] = []
        try:
            for h in hosts:
                lines = neighbours(f"{h.name}-eth0", ((g.ip, g.mac) for g in hosts if g is not h))
                if lines:
                    path = Path(self.workdir) / f".{h.name}.neigh"
                    path.write_text(lines, encoding="utf-8")
                    files.append((h.name, path))
            if self.cluster is not None:
                self.cluster.sync()
            for name, path in files:
                out = self.net.get(name).cmd(f"ip -batch {path} 2>&1; echo rc=$?").strip()
                if not out.endswith("rc=0"):
                    raise NetworkError(f"host {name}: static ARP entries failed: {out}")
        finally:
            for _, path in files:
                path.unlink(missing_ok=True)

    def _stop(self) -> None:
        net, self.net = self.net, None
        if net is None:
            return
        t = time.monotonic()
        try:
            if self.batched and net.links:
                # Every veth pair at once (by its root-namespace end, which is ours by name);
                # Mininet would delete both ends of each link, one shell round trip each.
                ends = [str(link.intf1) for link in net.links]
                with _batch_file("".join(f"link del {name}\n" for name in ends), ".ip", self.workdir) as path:
                    subprocess.run(["ip", "-force", "-batch", path], check=False,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                net.links = []
            net.stop()
        finally:
            # net.stop() deletes its bridges; make sure, by name, that none of ours is left.
            for name, bridge in self.bridges.items():
                subprocess.run(
                    self.root_command(name, ["ovs-vsctl", "--if-exists", "del-br", bridge]),
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
        return _run(self.root_command(switch, ["ovs-ofctl", "--no-names", "dump-flows", self.bridges[switch]]),
                    f"switch {switch}")

    def ping(self, a: str, b: ScenarioHost | str, count: int = 5, interval: float = 0.2) -> list[float]:
        """RTTs in ms of ``count`` pings from host ``a`` to host ``b``, from ``ping`` sending
        the request to ``ping`` reading the answer (``-U``): the kernel's receive timestamp,
        ping's default, is taken before the NFQUEUE element holds the answer for its path."""
        target = b if isinstance(b, ScenarioHost) else self.scenario.host(b)
        out = self.node(a).cmd(f"ping -n -U -c {count} -i {interval} -W 2 {target.ip}")
        rtts = []
        for line in out.splitlines():
            if "time=" in line:
                rtts.append(float(line.split("time=", 1)[1].split()[0]))
        return rtts
