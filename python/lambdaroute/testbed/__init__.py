"""The Mininet testbed: run a scenario for real.

Modules, by concept:

- :mod:`.features`   what the kernel offers (netem, the OVS kernel module), detected per run;
- :mod:`.topo`       the scenario as a Mininet ``Topo``: bridges, hosts, links, ports (no root);
- :mod:`.network`    the scenario in Mininet: OVS switches, static flows and ARP, TCLinks;
- :mod:`.delay`      link delay and loss: netem, or lambdaroute's NFQUEUE element in the hosts;
- :mod:`.nat`        the gateway between the emulated network and programs on this machine;
- :mod:`.nodes`      computers, controller, routers, clients in their hosts; flat tables;
- :mod:`.traffic`    background iperf3 UDP flows from traces or seeded ON/OFF;
- :mod:`.monitor`    port counters -> link throughput -> congested / cleared reports;
- :mod:`.experiment` experiment files: which scenario, which overrides, how to run;
- :mod:`.run`        one run, start to cleanup; :mod:`.report` summary table and plot;
- :mod:`.cleanup`    undo stack, run tags and state files, leftover checks;
- :mod:`.cli`        ``lambdaroute-testbed run EXPERIMENT.yaml``.

Mininet is imported only when a network is built, so the pure parts (monitor logic, traffic
schedules, experiment files, reports) work without it.
"""
