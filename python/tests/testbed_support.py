"""Shared by the Mininet tests: they really run Mininet, and fail (never skip silently) when
they cannot; set LAMBDAROUTE_SKIP_MININET=1 to skip them on purpose."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SKIP_VAR = "LAMBDAROUTE_SKIP_MININET"


def require_mininet() -> str:
    """Fails the test with what to do when the machine cannot run Mininet; returns the binary."""
    if os.environ.get(SKIP_VAR) == "1":
        pytest.skip(f"{SKIP_VAR}=1: Mininet tests skipped on purpose")
    from lambdaroute.testbed.experiment import find_binary
    from lambdaroute.testbed.features import require_tools

    try:
        require_tools()
    except RuntimeError as e:
        pytest.fail(f"cannot run the Mininet tests: {e}. Run them as root with `make test-testbed` "
                    f"(which installs what is missing), or set {SKIP_VAR}=1 to skip them.", pytrace=False)
    running = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True, check=False)
    if running.returncode != 0:
        pytest.fail("Open vSwitch is not running: start it with `make testbed-deps` "
                    "(ovs-ctl start --system-id=random)", pytrace=False)
    try:
        return find_binary()
    except FileNotFoundError as e:
        pytest.fail(f"{e}", pytrace=False)


def root_iptables() -> str:
    """The root namespace's iptables rules (a run must leave them as it found them), without
    iptables-save's comment lines: they carry the time of the dump."""
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    return "".join(line for line in out.splitlines(keepends=True) if not line.startswith("#"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def loopback_server(folder: Path) -> Iterator[Path]:
    """A second "server" for runs across servers (``servers:``) that is this machine again,
    reached over SSH on loopback: an sshd of the test's own (127.0.0.1, a free port, its own
    host key, root login by a key made here, tunnels permitted). Yields the ``ssh -F`` file that
    reaches it as ``127.0.0.1``; stops the sshd (by its PID) on exit."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd):
        pytest.fail("no sshd for the loopback server: `make test-testbed` installs openssh-server "
                    "(without starting its service)", pytrace=False)
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("host_key", "id"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
    (folder / "authorized_keys").write_text((folder / "id.pub").read_text())
    port = free_port()
    (folder / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {folder / 'host_key'}\nPidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PermitTunnel yes\nMaxSessions 200\nMaxStartups 200:30:400\nUseDNS no\n")
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {(folder / 'host_key.pub').read_text()}")
    config = folder / "ssh_config"
    config.write_text(
        f"Host 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {folder / 'id'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {folder / 'known_hosts'}\n  StrictHostKeyChecking yes\n")
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation folder
    log = open(folder / "sshd.log", "wb")
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(folder / "sshd_config")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["ssh", "-F", str(config), "-o", "BatchMode=yes", "127.0.0.1", "true"],
                             capture_output=True, check=False).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the loopback sshd does not answer: {(folder / 'sshd.log').read_text()}", pytrace=False)
            time.sleep(0.1)
        yield config
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


#: A real second server for the runs across servers (``make vm-cluster-check`` sets them: the
#: VM's address and an ``ssh -F`` file that reaches it as root); unset, the loopback one.
SECOND_SERVER = "LAMBDAROUTE_SECOND_SERVER"
SECOND_SERVER_SSH_CONFIG = "LAMBDAROUTE_SECOND_SERVER_SSH_CONFIG"


@contextmanager
def second_server(folder: Path) -> Iterator[dict[str, str]]:
    """The ``servers:`` entry of a second server: the one :data:`SECOND_SERVER` names, or
    :func:`loopback_server`'s."""
    address = os.environ.get(SECOND_SERVER)
    if address:
        config = os.environ.get(SECOND_SERVER_SSH_CONFIG)
        yield {"name": "second", "address": address, **({"ssh_config": config} if config else {})}
        return
    with loopback_server(folder) as config:
        yield {"name": "second", "address": "127.0.0.1", "ssh_config": str(config)}
