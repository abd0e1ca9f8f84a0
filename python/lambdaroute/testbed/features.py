"""What this machine's kernel and tools offer the testbed, detected once per run.

The development and CI machines have neither the netem qdisc nor the Open vSwitch kernel
module (docs/testbed.md); a normal Ubuntu VM has both. The testbed asks, never assumes:

- ``netem``: a netem qdisc can be added to a veth in a throw-away network namespace
  (``unshare -n``: the namespace and its veth vanish with the probe process);
- ``ovs_kernel``: the ``openvswitch`` module is loaded, so bridges can use the kernel datapath;
  otherwise they use OVS's userspace datapath (``datapath_type=netdev``).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Features", "detect", "require_tools", "TOOLS"]

#: Programs the testbed runs, with the Debian package that brings each.
TOOLS = {
    "ovs-vsctl": "openvswitch-switch",
    "ovs-ofctl": "openvswitch-switch",
    "iperf3": "iperf3",
    "ethtool": "ethtool",
    "iptables": "iptables",
    "ip": "iproute2",
    "tc": "iproute2",
    "unshare": "util-linux",
    "mnexec": "mininet",
}


@dataclass(frozen=True)
class Features:
    """The kernel features a run can use."""

    kernel: str
    netem: bool
    ovs_kernel: bool

    @property
    def datapath(self) -> str:
        """Mininet's OVSSwitch datapath: ``kernel`` or ``user``."""
        return "kernel" if self.ovs_kernel else "user"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "datapath": self.datapath}


def _netem_works() -> bool:
    probe = (
        "ip link add lrprobe0 type veth peer name lrprobe1 && "
        "tc qdisc add dev lrprobe0 root netem delay 1ms"
    )
    try:
        done = subprocess.run(
            ["unshare", "--net", "sh", "-c", probe],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def detect() -> Features:
    """Probes the kernel (needs root for the netem probe)."""
    return Features(
        kernel=platform.release(),
        netem=_netem_works(),
        ovs_kernel=os.path.isdir("/sys/module/openvswitch"),
    )


def require_tools() -> None:
    """Raises :class:`RuntimeError` naming every missing program and the package to install."""
    missing = {tool: pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None}
    if missing:
        pkgs = " ".join(sorted(set(missing.values())))
        raise RuntimeError(
            f"missing programs: {', '.join(sorted(missing))}; install them with "
            f"`apt-get install --no-install-recommends {pkgs}` or `make testbed-deps`"
        )
    try:
        import mininet.net  # noqa: F401
    except ImportError as e:
        raise RuntimeError(
            f"cannot import mininet ({e}); run under a python that sees Debian's dist-packages "
            "(the repository's .venv, made by `make venv`) after `make testbed-deps`"
        ) from e
    if os.geteuid() != 0:
        raise RuntimeError("the testbed needs root (network namespaces, Open vSwitch, iptables)")
    # Mininet exits the process with a screenful per switch when the database is down: say it once.
    try:
        done = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True, text=True, check=False,
                              timeout=10)
        problem = done.stderr.strip() if done.returncode != 0 else ""
    except subprocess.TimeoutExpired:
        problem = "ovs-vsctl show did not answer within 10 s"
    if problem:
        raise RuntimeError(f"Open vSwitch is not running ({problem.splitlines()[-1]}): start it with "
                           "`make ovs-start` (or /usr/share/openvswitch/scripts/ovs-ctl start)")
