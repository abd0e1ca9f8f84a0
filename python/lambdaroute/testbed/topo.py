"""A scenario's layout as a Mininet ``Topo``: switches, hosts and links with their names, port
numbers and shaping, before anything runs.

:class:`ScenarioTopo` calls ``addSwitch``/``addHost``/``addLink`` in ``build()`` as any Mininet
topology does, so a layout can be built and inspected without root (a ``Topo`` is only a
graph); :class:`~lambdaroute.testbed.network.EmulatedNetwork` gives it to ``Mininet(topo=...)``.
What it holds:

- switches: the bridge ``l<tag>s<index>`` of the scenario's ``index``-th switch, an
  ``OVSSwitch`` in secure fail mode speaking OpenFlow 1.0 and 1.3, its datapath (``kernel`` or
  ``user``), dpid ``index``, started one by one (``batch=False``, the default) or all in one
  ``ovs-vsctl`` (``batch=True``);
- hosts: their scenario names, addresses (``ip/prefix``, see
  :func:`~lambdaroute.testbed.network.host_prefix`) and MACs;
- links: switch links in scenario order with the scenario's ports (``port1``/``port2``), then
  each host's access link from its ``eth0`` (port 0) to its switch port; TCLink options: ``bw``
  always, ``delay``/``loss``/``max_queue_size`` only when delay is netem's (otherwise the
  testbed emulates delay in the hosts, :mod:`lambdaroute.testbed.delay`).
"""

from __future__ import annotations

from typing import Any

from mininet.node import OVSSwitch
from mininet.topo import Topo

from lambdaroute.scenario import Scenario, Shaping
from lambdaroute.testbed.network import bridge_names, host_prefix

__all__ = ["ScenarioTopo", "link_options"]


def link_options(shaping: Shaping, delay_mechanism: str) -> dict[str, Any]:
    """TCLink options of a link: bandwidth always (HTB); delay, loss and queue length only
    where netem carries them (``delay_mechanism == "netem"``)."""
    options: dict[str, Any] = {}
    if shaping.bw is not None:
        options["bw"] = shaping.bw
    if delay_mechanism == "netem":
        if shaping.delay > 0:
            options["delay"] = f"{shaping.delay:g}ms"
        if shaping.loss > 0:
            options["loss"] = shaping.loss
        if shaping.queue is not None:
            options["max_queue_size"] = shaping.queue
    return options


class ScenarioTopo(Topo):  # type: ignore[misc]  # Mininet ships no type hints
    """The Mininet topology of ``scenario`` for the run tagged ``tag``.

    ``datapath`` is OVS's (``kernel`` or ``user``), ``delay_mechanism`` the testbed's
    (``netem`` or ``nfqueue``), ``batch`` whether the switches start in one ``ovs-vsctl``.
    ``bridges`` maps scenario switch names to bridge names;
    :meth:`switch_of` maps back.
    """

    def __init__(self, scenario: Scenario, *, tag: str, datapath: str = "kernel",
                 delay_mechanism: str = "netem", batch: bool = False,
                 placement: dict[str, str] | None = None, datapaths: dict[str, str] | None = None,
                 classes: tuple[type, type, type] | None = None) -> None:
        self.scenario = scenario
        #: Across servers (:mod:`lambdaroute.testbed.cluster`): node -> server name, the
        #: datapath of each server, and the host, switch and link classes that reach them.
        self.placement = placement
        self.datapaths = datapaths or {}
        self.classes = classes
        self.batch = batch
        self.tag = tag
        self.datapath = datapath
        self.delay_mechanism = delay_mechanism
        #: Scenario switch name -> bridge name.
        self.bridges = bridge_names(scenario, tag)
        self.prefix = host_prefix(scenario)
        super().__init__()

    def build(self) -> None:  # type: ignore[override]
        host_cls, switch_cls, link_cls = self.classes or (None, OVSSwitch, None)

        def where(name: str) -> dict[str, Any]:
            return {} if self.placement is None else {"cluster_server": self.placement[name]}

        for index, switch in enumerate(self.scenario.switches, start=1):
            server = (self.placement or {}).get(switch.name)
            self.addSwitch(
                self.bridges[switch.name],
                cls=switch_cls,
                datapath=self.datapaths.get(server, self.datapath) if server else self.datapath,
                failMode="secure",
                protocols="OpenFlow10,OpenFlow13",
                dpid=f"{index:016x}",
                # One ovs-vsctl for all bridges (batch=True), or one each; the testbed batches
                # when it shapes the links itself (no netem).
                batch=self.batch,
                **where(switch.name),
            )
        for host in self.scenario.hosts:
            extra: dict[str, Any] = {"cls": host_cls, **where(host.name)} if host_cls else {}
            self.addHost(host.name, ip=f"{host.ip}/{self.prefix}", mac=host.mac, **extra)
        for link in self.scenario.links:
            crossing = self.placement is not None and self.placement[link.a] != self.placement[link.b]
            self.addLink(
                self.bridges[link.a],
                self.bridges[link.b],
                port1=link.port_a,
                port2=link.port_b,
                **({"cls": link_cls} if crossing and link_cls else {}),
                **link_options(link.shaping, self.delay_mechanism),
            )
        for host in self.scenario.hosts:
            self.addLink(
                host.name,
                self.bridges[host.switch],
                port1=0,
                port2=host.port,
                **link_options(host.link, self.delay_mechanism),
            )

    def switch_of(self, bridge: str) -> str:
        """The scenario switch whose bridge is ``bridge``; raises :class:`KeyError`."""
        for name, b in self.bridges.items():
            if b == bridge:
                return name
        raise KeyError(bridge)
