"""Shared by the Mininet tests: they really run Mininet, and fail (never skip silently) when
they cannot; set LAMBDAROUTE_SKIP_MININET=1 to skip them on purpose."""

from __future__ import annotations

import os
import subprocess

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
