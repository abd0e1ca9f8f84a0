"""One scenario emulated over several servers, with Mininet's cluster mode (docs/testbed.md,
"Across machines").

An experiment's ``servers:`` lists the machines; ``placement:`` puts each switch on one
(``auto``: the switches in file order, cut into even runs, one per server), and every host
goes with its switch. The testbed runs on ``localhost``; the others are reached over SSH as
Mininet's cluster edition reaches them:

- every node is a Mininet ``RemoteHost``/``RemoteOVSSwitch`` (a local one when its server is
  ``localhost``); a node's shell on another server is ``mnexec`` over a persistent SSH
  connection, so ``node.cmd`` works there as here;
- a link between switches on different servers is an SSH Ethernet tunnel
  (``ssh -o Tunnel=Ethernet -w A:B``: a tap device at each end, enslaved to the switches),
  shaped like any other link (``TCIntf`` at both ends). The tunnel carries the link's
  packets over TCP, so it is slower than a veth: keep busy links inside one server;
- a process started in a host of another server (``popen``) is the local ``ssh`` that runs
  it; it is signalled by its own PID there (:class:`RemoteProcess`), since signalling the
  local ``ssh`` would leave it running;
- files: the run folder and the binary are copied to the same paths on every server before
  anything there reads them (:meth:`Cluster.sync`, incremental), and what the nodes wrote there
  comes back before the results are read (:meth:`Cluster.pull`); logs stream back through SSH;
- root-namespace commands for a switch (``ovs-ofctl``, ``ovs-vsctl``, ``tc``) run on its
  server (:meth:`Cluster.command`), with their input on stdin rather than in a file.

Mininet's own ``RemoteLink`` names every tunnel ``tap9``: two servers that are one machine
(the loopback set-up of the tests) would clash, so the tunnels here take numbered devices.
"""

from __future__ import annotations

import itertools
import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaroute.scenario import Scenario

__all__ = [
    "LOCAL",
    "Server",
    "ClusterSpec",
    "ClusterError",
    "Cluster",
    "RemoteProcess",
    "parse",
    "place",
    "node_classes",
]

#: The server the testbed runs on; Mininet treats only this literal name as local.
LOCAL = "localhost"

#: Programs every other server needs (besides sshd that permits tunnels).
REMOTE_TOOLS = ("mnexec", "ovs-vsctl", "ovs-ofctl", "ip", "tc", "iptables", "ethtool", "python3", "rsync", "unshare")

#: The least tap device number of the tunnels (``tap<N>``); each tunnel takes two.
FIRST_TAP = 200


class ClusterError(RuntimeError):
    """A cluster that cannot run: a server unreachable or missing something; says which and the fix."""


@dataclass(frozen=True)
class Server:
    """A machine of the cluster: ``localhost`` (address None) or one reached over SSH."""

    name: str
    address: str | None = None
    user: str = "root"
    #: An ``ssh -F`` file for reaching it (port, key, known hosts); None: the user's own.
    ssh_config: str | None = None

    @property
    def local(self) -> bool:
        return self.address is None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "user": self.user, "ssh_config": self.ssh_config}


@dataclass(frozen=True)
class ClusterSpec:
    """``servers:`` and ``placement:`` of an experiment, checked."""

    servers: tuple[Server, ...]
    #: Switch name -> server name; None: ``auto``.
    placement: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"servers": [s.as_dict() for s in self.servers], "placement": self.placement or "auto"}


def parse(servers: Any, placement: Any, where: str, base: Path) -> ClusterSpec | None:
    """The cluster of an experiment file's ``servers:`` (a list of ``localhost`` and
    ``{name, address, user, ssh_config}`` entries, or address strings) and ``placement:``
    (``auto`` or switch -> server name); None when ``servers`` is absent or only ``localhost``.
    Raises :class:`ValueError` naming the key and the fix."""
    if servers is None:
        if placement is not None:
            raise ValueError(f"{where}: placement: needs `servers:` (the machines to place switches on)")
        return None
    if not isinstance(servers, list) or not servers:
        raise ValueError(f"{where}: servers: expected a list, e.g. [localhost, {{name: vm, address: 192.168.122.10}}]")
    parsed: list[Server] = []
    for i, entry in enumerate(servers):
        at = f"{where}: servers[{i}]"
        if entry == LOCAL:
            parsed.append(Server(LOCAL))
            continue
        if isinstance(entry, str):
            entry = {"name": entry, "address": entry}
        if not isinstance(entry, dict):
            raise ValueError(f"{at}: expected `localhost`, an address, or {{name, address, user, ssh_config}}")
        unknown = set(entry) - {"name", "address", "user", "ssh_config"}
        if unknown:
            raise ValueError(f"{at}: unknown key(s) {', '.join(sorted(unknown))}; expected name, address, user, ssh_config")
        address = entry.get("address")
        if not isinstance(address, str) or not address or address in (LOCAL, "127.0.0.1") and entry.get("ssh_config") is None:
            raise ValueError(f"{at}: address: expected the server's address or host name (this machine is `localhost`; "
                             "127.0.0.1 only with an ssh_config that reaches a second sshd)")
        name = str(entry.get("name") or address)
        if name == LOCAL:
            raise ValueError(f"{at}: name `localhost` is this machine; give the other server another name")
        config = entry.get("ssh_config")
        if config is not None:
            config = os.path.expanduser(str(config))
            config = config if os.path.isabs(config) else str(base / config)
            if not os.path.isfile(config):
                raise ValueError(f"{at}: ssh_config {config}: no such file")
        parsed.append(Server(name, address, str(entry.get("user") or "root"), config))
    names = [s.name for s in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{where}: servers: `{duplicates[0]}` appears twice; give each server its own name")
    if LOCAL not in names:
        raise ValueError(f"{where}: servers: the list must hold `localhost`, the machine the testbed runs on")
    if len(parsed) == 1:
        if placement not in (None, "auto") and not (isinstance(placement, dict) and set(placement.values()) <= {LOCAL}):
            raise ValueError(f"{where}: placement: names servers, but `servers:` lists only localhost")
        return None
    if placement is None or placement == "auto":
        return ClusterSpec(tuple(parsed), None)
    if not isinstance(placement, dict):
        raise ValueError(f"{where}: placement `{placement}`: expected `auto` or a mapping switch: server")
    for switch, server in placement.items():
        if server not in names:
            raise ValueError(f"{where}: placement.{switch}: server `{server}` is not in servers ({', '.join(names)})")
    return ClusterSpec(tuple(parsed), {str(k): str(v) for k, v in placement.items()})


def place(spec: ClusterSpec, scenario: Scenario, where: str = "placement") -> dict[str, str]:
    """Node name (every switch and host) -> server name. ``auto`` cuts the switches, in file
    order, into runs as even as can be, one per server in ``servers`` order (neighbouring
    switches of a line or a grid's rows stay together); hosts go with their switch. Raises
    :class:`ValueError` for a placement that misses or invents switches, or that puts the
    NAT host or an external computer's gateway off ``localhost``."""
    switches = [s.name for s in scenario.switches]
    if spec.placement is None:
        servers = [s.name for s in spec.servers]
        quotient, remainder = divmod(len(switches), len(servers))
        sizes = [quotient + (1 if i < remainder else 0) for i in range(len(servers))]
        tickets = list(itertools.chain.from_iterable([name] * n for name, n in zip(servers, sizes)))
        of = dict(zip(switches, tickets))
    else:
        unknown = sorted(set(spec.placement) - set(switches))
        if unknown:
            raise ValueError(f"{where}: `{unknown[0]}` is not a switch of scenario {scenario.name}")
        missing = [s for s in switches if s not in spec.placement]
        if missing:
            raise ValueError(f"{where}: switch(es) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
                             "have no server; give every switch one, or `placement: auto`")
        of = dict(spec.placement)
    for h in scenario.hosts:
        of[h.name] = of[h.switch]
        if h.role == "nat" and of[h.name] != LOCAL:
            raise ValueError(f"{where}: the NAT host {h.name} (switch {h.switch}) must be on localhost, where the "
                             "outside programs run")
    return of


@dataclass
class _Sync:
    """What was last copied to a server: path -> (mtime, size)."""

    seen: dict[str, tuple[float, int]] = field(default_factory=dict)


class Cluster:
    """The servers of one run: SSH to them, copies to and from them, their placement."""

    def __init__(self, spec: ClusterSpec, scenario: Scenario, tag: str, workdir: Path) -> None:
        self.spec = spec
        self.servers = {s.name: s for s in spec.servers}
        self.placement = place(spec, scenario)
        self.tag = tag
        self.workdir = workdir.resolve()
        #: Where the remote processes' PID files go, on each server.
        self.pid_dir = f"/tmp/lambdaroute-{tag}"
        self._pids = itertools.count(1)
        # Tap numbers from the tag: runs at once on one machine start apart (and skip taken ones).
        self._taps = itertools.count(FIRST_TAP + 2 * (int(tag, 36) % 2000), 2)
        self._synced: dict[str, _Sync] = {s.name: _Sync() for s in self.remote_servers}
        self._lock = threading.Lock()
        #: Server name -> what its probe found (kernel, netem, ovs_kernel).
        self.features: dict[str, dict[str, Any]] = {}
        #: Cross-server links: (node1, node2, tap devices, seconds to bring up).
        self.tunnels: list[dict[str, Any]] = []

    # ----- where -----

    @property
    def remote_servers(self) -> list[Server]:
        return [s for s in self.servers.values() if not s.local]

    def server_of(self, node: str) -> Server:
        return self.servers[self.placement[node]]

    def is_remote(self, node: str) -> bool:
        return not self.server_of(node).local

    # ----- SSH -----

    def ssh(self, server: Server, *options: str, tty: bool = False, shared: bool = True) -> list[str]:
        """The ``ssh`` command line up to the destination (append the remote command)."""
        args = ["ssh", "-q", "-o", "BatchMode=yes"]
        if server.ssh_config:
            args += ["-F", server.ssh_config]
        if shared:
            # One TCP connection per server for all sessions; closed by close().
            args += ["-o", "ControlMaster=auto", "-o", f"ControlPath=/tmp/lr-{self.tag}-%C", "-o", "ControlPersist=30"]
        else:
            args += ["-o", "ControlPath=none"]
        if tty:
            args.append("-tt")
        return [*args, *options, f"{server.user}@{server.address}"]

    def command(self, node_or_server: str | Server, args: list[str]) -> list[str]:
        """``args`` run in the root namespace of a node's (or a server's) machine."""
        server = node_or_server if isinstance(node_or_server, Server) else self.server_of(node_or_server)
        if server.local:
            return list(args)
        return [*self.ssh(server), shlex.join(self._sudo(server, args))]

    @staticmethod
    def _sudo(server: Server, args: list[str]) -> list[str]:
        return args if server.user == "root" else ["sudo", "-E", *args]

    def run(self, server: Server, args: list[str], what: str, input: str | None = None, timeout: float = 60) -> str:
        """Runs ``args`` on ``server`` (root namespace); its output, or :class:`ClusterError`."""
        try:
            done = subprocess.run(self.command(server, args), input=input, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{what} on {server.name}: no answer within {timeout:g} s") from None
        if done.returncode != 0:
            raise ClusterError(f"{what} on {server.name}: `{shlex.join(args)}` failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()}")
        return done.stdout

    # ----- checks -----

    def check(self) -> None:
        """Every other server answers over SSH as its user, with root (or password-less sudo),
        the tools, /dev/net/tun and a running Open vSwitch; remembers what its kernel offers.
        Raises :class:`ClusterError` naming the server, what is missing and the fix."""
        probe = (
            "for t in " + " ".join(REMOTE_TOOLS) + "; do command -v $t >/dev/null || echo missing=$t; done; "
            "test -c /dev/net/tun || echo missing=/dev/net/tun; "
            "ovs-vsctl --timeout=5 show >/dev/null 2>&1 || echo ovs=down; "
            "test -d /sys/module/openvswitch && echo ovs_kernel=1; "
            "unshare --net sh -c 'ip link add lrprobe0 type veth peer name lrprobe1 && "
            "tc qdisc add dev lrprobe0 root netem delay 1ms' >/dev/null 2>&1 && echo netem=1; "
            "echo kernel=$(uname -r)"
        )
        for server in self.remote_servers:
            try:
                done = subprocess.run(self.command(server, ["sh", "-c", probe]), capture_output=True, text=True,
                                      timeout=60, check=False, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise ClusterError(f"server {server.name} ({server.address}): no answer over SSH within 60 s") from None
            if done.returncode != 0 or "kernel=" not in done.stdout:
                raise ClusterError(
                    f"server {server.name}: `{shlex.join(self.command(server, ['true']))}` failed "
                    f"({done.returncode}): {done.stderr.strip() or done.stdout.strip()}; the testbed needs key login "
                    f"as {server.user} without a password prompt (and password-less sudo unless root), "
                    "the server's key in known_hosts (or an ssh_config that says where)")
            said = dict(line.split("=", 1) for line in done.stdout.split() if "=" in line)
            missing = [line.split("=", 1)[1] for line in done.stdout.split() if line.startswith("missing=")]
            if missing:
                raise ClusterError(f"server {server.name}: missing {', '.join(missing)}; install there: "
                                   "`apt-get install mininet openvswitch-switch iptables ethtool python3 rsync` "
                                   "(or `make testbed-deps` in a clone)")
            if said.get("ovs") == "down":
                raise ClusterError(f"server {server.name}: Open vSwitch is not running there; start it "
                                   "(`/usr/share/openvswitch/scripts/ovs-ctl start` or `make ovs-start`)")
            self.features[server.name] = {"kernel": said.get("kernel", "?"), "netem": said.get("netem") == "1",
                                          "ovs_kernel": said.get("ovs_kernel") == "1"}

    # ----- files -----

    def _rsync(self, server: Server) -> list[str]:
        return ["rsync", "-a", "-e", shlex.join(self.ssh(server)[:-1])]

    def install(self, path: str | Path) -> None:
        """Copies one file (the binary) to the same path on every other server."""
        path = Path(path).resolve()
        for server in self.remote_servers:
            self.run(server, ["mkdir", "-p", str(path.parent)], f"making {path.parent}")
            self._copy(server, [*self._rsync(server), str(path), f"{server.user}@{server.address}:{path}"],
                       f"copying {path}")

    def _copy(self, server: Server, args: list[str], what: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise ClusterError(f"{what} to/from {server.name}: rsync failed ({done.returncode}): {done.stderr.strip()}")

    def sync(self) -> None:
        """Copies the run folder to the same path on every other server, where anything in it
        changed since the last copy (logs excepted: they stream back through SSH)."""
        with self._lock:
            current: dict[str, tuple[float, int]] = {}
            for path in self.workdir.rglob("*"):
                if path.is_file() and path.suffix != ".log":
                    st = path.stat()
                    current[str(path)] = (st.st_mtime, st.st_size)
            for server in self.remote_servers:
                synced = self._synced[server.name]
                if current and current.items() <= synced.seen.items():
                    continue
                self.run(server, ["mkdir", "-p", str(self.workdir), self.pid_dir], "making the run folder")
                self._copy(server, [*self._rsync(server), "--exclude", "*.log", f"{self.workdir}/",
                                    f"{server.user}@{server.address}:{self.workdir}/"], "copying the run folder")
                synced.seen = current

    def pull(self) -> None:
        """Copies back what nodes on other servers wrote in the run folder (client CSVs, ...);
        a file newer here (a log, growing through SSH) stays as it is."""
        with self._lock:
            for server in self.remote_servers:
                self._copy(server, [*self._rsync(server), "--update", "--exclude", "*.log",
                                    f"{server.user}@{server.address}:{self.workdir}/", f"{self.workdir}/"],
                           "copying the results back")

    def remove_remote_files(self) -> None:
        """Deletes the PID folder of this run on every other server (the run folder stays: it
        holds the nodes' outputs, as here)."""
        for server in self.remote_servers:
            try:
                self.run(server, ["rm", "-rf", self.pid_dir], "removing the PID files", timeout=20)
            except ClusterError:
                pass

    def close(self) -> None:
        """Ends the shared SSH connections this run opened."""
        for server in self.remote_servers:
            subprocess.run([*self.ssh(server, "-O", "exit")], capture_output=True, check=False, timeout=20)

    # ----- processes -----

    def pid_file(self) -> str:
        return f"{self.pid_dir}/{next(self._pids)}.pid"

    def tap_pair(self) -> tuple[int, int]:
        n = next(self._taps)
        return n, n + 1

    def as_dict(self) -> dict[str, Any]:
        return {**self.spec.as_dict(), "nodes": self.placement, "features": self.features, "tunnels": self.tunnels}


class RemoteProcess:
    """A process in a host on another server, as the ``subprocess.Popen`` that the testbed
    keeps for its processes: waiting and output are the local ``ssh``'s (it ends when the
    process ends, with its exit code); signals go to the process itself, by the PID it wrote
    on its server."""

    def __init__(self, ssh: subprocess.Popen[Any], cluster: Cluster, server: Server, pid_file: str) -> None:
        self._ssh = ssh
        self._cluster = cluster
        self._server = server
        self._pid_file = pid_file

    def __getattr__(self, name: str) -> Any:
        # pid, stdout, stderr, stdin, returncode, poll, wait, communicate: the local ssh's.
        return getattr(self._ssh, name)

    def send_signal(self, sig: int) -> None:
        if self._ssh.poll() is not None:
            return
        script = (f'for i in $(seq 50); do test -s {self._pid_file} && break; sleep 0.1; done; '
                  f'kill -{int(sig)} $(cat {self._pid_file}) 2>/dev/null || true')
        try:
            self._cluster.run(self._server, ["sh", "-c", script], f"signal {int(sig)}", timeout=30)
        except ClusterError:
            if sig == signal.SIGKILL:
                self._ssh.kill()

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
        # If the process is gone but the connection hangs, the local ssh goes too.
        try:
            self._ssh.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._ssh.kill()


def node_classes(cluster: Cluster) -> tuple[type, type, type]:
    """The Mininet host, switch and link classes of ``cluster``: Mininet's cluster classes
    (``mininet.examples.cluster``) with this run's SSH options, quoting, PID files and
    numbered tunnels. Each node takes ``cluster_server=<server name>``."""
    from mininet.examples.cluster import RemoteHost, RemoteLink, RemoteOVSSwitch
    from mininet.node import OVSSwitch

    class ClusterNode:
        """What the host and the switch share (a mix-in before Mininet's RemoteMixin)."""

        def __init__(self, name: str, cluster_server: str = LOCAL, **params: Any) -> None:
            self.cluster_server = cluster.servers[cluster_server]
            s = self.cluster_server
            params.update(server=LOCAL if s.local else s.address, serverIP=None if s.local else s.address,
                          user=s.user)
            super().__init__(name, **params)  # type: ignore[call-arg]

        def startShell(self, *args: Any, **kwargs: Any) -> Any:
            if self.isRemote:  # type: ignore[attr-defined]
                # Mininet's own starts with `sudo -E -u <user>`: not needed (nor installed) as root.
                self.sshcmd = cluster.ssh(self.cluster_server, tty=True)
            return super().startShell(*args, **kwargs)  # type: ignore[misc]

        def _popen(self, cmd: Any, sudo: bool = True, tt: bool = True, **params: Any) -> subprocess.Popen[Any]:
            if isinstance(cmd, str):
                cmd = cmd.split()
            if self.isRemote:  # type: ignore[attr-defined]
                if sudo:
                    cmd = cluster._sudo(self.cluster_server, cmd)
                ssh = cluster.ssh(self.cluster_server, tty=tt)
                # ssh joins its arguments with spaces for the remote shell: quote each.
                cmd = [*ssh, shlex.join(cmd)]
                # Its own process group: Ctrl-C reaches the testbed, which stops it in order.
                params.setdefault("preexec_fn", os.setpgrp)
            # Not for local processes: `mnexec -d` forks when it leads its process group, and
            # the testbed would wait for the parent that exited at once.
            return subprocess.Popen(cmd, **params)

        def popen(self, *args: Any, **kwargs: Any) -> Any:
            if not self.isRemote:  # type: ignore[attr-defined]
                kwargs.pop("tt", None)
                return super().popen(*args, **kwargs)  # type: ignore[misc]
            cmd = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else \
                (args[0].split() if len(args) == 1 else list(args))
            env = kwargs.pop("env", None)
            kwargs.setdefault("stdin", subprocess.DEVNULL)
            # `mnexec -a` without -d: over SSH, -d would fork (the session leads its process
            # group) and the session would end with the parent, exit code 0 whatever happened.
            kwargs["mncmd"] = ["mnexec", "-a", str(self.pid)]  # type: ignore[attr-defined]
            pid_file = cluster.pid_file()
            # The process writes its PID, then becomes the command (same PID); the environment
            # goes with the command (the local ssh's would stay here).
            wrapped = ["sh", "-c", 'echo $$ > "$0"; exec "$@"', pid_file]
            if env:
                wrapped += ["env", *(f"{k}={v}" for k, v in env.items())]
            cluster.sync()
            ssh = super().popen(wrapped + [str(a) for a in cmd], **kwargs)  # type: ignore[misc]
            return RemoteProcess(ssh, cluster, self.cluster_server, pid_file)

    class ClusterHost(ClusterNode, RemoteHost):  # type: ignore[misc]
        pass

    class ClusterSwitch(ClusterNode, RemoteOVSSwitch):  # type: ignore[misc]
        # A node's shell reads its commands through a terminal, whose lines end at 4,096
        # characters: Mininet's one ovs-vsctl line per server would be cut past that.
        argmax = 3000

        @classmethod
        def batchStartup(cls, switches: list[Any], **_kwargs: Any) -> list[Any]:
            by_server: dict[str, list[Any]] = {}
            for sw in switches:
                by_server.setdefault(sw.cluster_server.name, []).append(sw)
            for group in by_server.values():
                OVSSwitch.batchStartup.__func__(cls, group, run=group[0].cmd)  # type: ignore[attr-defined]
            return switches

        @classmethod
        def batchShutdown(cls, switches: list[Any], **_kwargs: Any) -> list[Any]:
            by_server: dict[str, list[Any]] = {}
            for sw in switches:
                by_server.setdefault(sw.cluster_server.name, []).append(sw)
            for group in by_server.values():
                OVSSwitch.batchShutdown.__func__(cls, group, run=group[0].rcmd)  # type: ignore[attr-defined]
            return switches

    class ClusterLink(RemoteLink):  # type: ignore[misc]
        def makeTunnel(self, node1: Any, node2: Any, intfname1: str, intfname2: str,
                       addr1: str | None = None, addr2: str | None = None) -> subprocess.Popen[Any]:
            # The SSH client runs on node1's server: the local one where there is one.
            if node2.cluster_server.local:
                return self.makeTunnel(node2, node1, intfname2, intfname1, addr2, addr1)
            started = time.monotonic()
            for _ in range(50):
                tap1, tap2 = cluster.tap_pair()
                said = node1.rcmd(f"ip tuntap add dev tap{tap1} mode tap user {node1.cluster_server.user}").strip()
                if not said:
                    said = node2.rcmd(f"ip tuntap add dev tap{tap2} mode tap user {node2.cluster_server.user}").strip()
                    if not said:
                        break
                    node1.rcmd(f"ip link del tap{tap1}")
                if "exists" not in said.lower() and "busy" not in said.lower():
                    raise ClusterError(f"creating tap{tap1}/tap{tap2} for {intfname1}: {said}")
            else:
                raise ClusterError(f"no free pair of tap devices for {intfname1} after 50 tries")
            server2 = node2.cluster_server
            if node1.cluster_server.local:
                ssh = cluster.ssh(server2, "-n", "-o", "Tunnel=Ethernet", "-w", f"{tap1}:{tap2}", shared=False)
                tunnel = subprocess.Popen([*ssh, "echo @"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, preexec_fn=os.setpgrp)
            else:
                # Between two other servers: node1's server reaches node2's with its own keys.
                ssh = ["ssh", "-q", "-n", "-o", "BatchMode=yes", "-o", "Tunnel=Ethernet", "-w", f"{tap1}:{tap2}",
                       f"{server2.user}@{server2.address}", "echo @"]
                tunnel = node1.rpopen(ssh, sudo=False)
            first = tunnel.stdout.read(1).decode(errors="replace")
            if first != "@":
                rest = first + tunnel.stdout.read().decode(errors="replace")
                raise ClusterError(
                    f"tunnel {intfname1} ({node1.cluster_server.name}) == {intfname2} ({server2.name}) failed: "
                    f"{rest.strip() or 'ssh exited'}; the server's sshd needs `PermitTunnel yes` (or ethernet) "
                    f"and root login by key")
            for node, tap, intf, addr in ((node1, tap1, intfname1, addr1), (node2, tap2, intfname2, addr2)):
                said = node.cmd(f"ip link set tap{tap} name {intf}" + (f" address {addr}" if addr else ""))
                if said.strip():
                    raise ClusterError(f"{node.cluster_server.name}: renaming tap{tap} to {intf}: {said.strip()}")
            cluster.tunnels.append({"link": f"{intfname1}=={intfname2}", "servers": [node1.cluster_server.name,
                                    server2.name], "taps": [tap1, tap2],
                                    "up_s": round(time.monotonic() - started, 3)})
            return tunnel

    return ClusterHost, ClusterSwitch, ClusterLink
