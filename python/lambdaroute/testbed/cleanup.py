"""Undo everything a run made, always: on success, on error and on Ctrl-C.

A run pushes an undo action onto a :class:`Cleanup` stack right after each thing it makes (a
process, a bridge, the Mininet network, a veth); :meth:`Cleanup.run` undoes them in reverse
order, each once, and keeps going when one fails. Nothing here matches by a broad pattern: a
process is stopped by its handle, a bridge deleted by its own name (``ovs-vsctl --if-exists
del-br``). ``mn -c``, ``killall`` and ``pkill`` are never used: they would hit other people's
networks on a shared machine.

Every run has a short random *tag*; the names it gives to root-namespace objects (bridges, their
ports, the NAT veth) start with ``l<tag>``, and a state file in :data:`STATE_DIR` lists them with
the run's process ids. :func:`leftovers` says what of a run still exists (the tests check it is
nothing); :func:`clean_stale` removes what runs that died without cleaning (SIGKILL, power loss)
left behind, and only theirs.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import string
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "Cleanup",
    "RunState",
    "new_tag",
    "stop_process",
    "pid_alive",
    "process_id",
    "leftovers",
    "clean_stale",
    "our_bridges",
    "STATE_DIR",
    "BRIDGE_MARK",
    "terminate_on_sigterm",
]

log = logging.getLogger(__name__)

#: Where runs record what they made (one JSON file per run, removed when the run cleans up).
STATE_DIR = Path(os.environ.get("LAMBDAROUTE_TESTBED_STATE", "/run/lambdaroute-testbed"))

_ALPHABET = string.ascii_lowercase + string.digits

#: The ``external_ids`` key that marks a bridge as made by a run (value: the run's tag).
BRIDGE_MARK = "lambdaroute-testbed"


def new_tag() -> str:
    """A 3-character tag not used by a bridge on this machine (names ``l<tag>...``)."""
    existing = set(_list_bridges())
    for _ in range(100):
        tag = "".join(secrets.choice(_ALPHABET) for _ in range(3))
        if not any(b.startswith(f"l{tag}s") for b in existing) and not (STATE_DIR / f"{tag}.json").exists():
            return tag
    raise RuntimeError("cannot find a free run tag: too many lambdaroute runs on this machine?")


def _list_bridges() -> list[str]:
    try:
        out = subprocess.run(
            ["ovs-vsctl", "--timeout=10", "list-br"], capture_output=True, text=True, check=False, timeout=15
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.stdout.split() if out.returncode == 0 else []


def our_bridges(tag: str) -> list[str]:
    """Bridges of the run ``tag`` that exist now."""
    return [b for b in _list_bridges() if b.startswith(f"l{tag}s")]


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_id(pid: int) -> str | None:
    """``"PID:START"``: the pid with its start time, so a reused pid is never mistaken for it."""
    stat = _stat(pid)
    return f"{pid}:{stat[19]}" if stat else None


def pid_alive(pid: int | str) -> bool:
    """Whether a process exists and is not a zombie; ``"PID:START"`` must also match the start."""
    if isinstance(pid, str):
        number, start = pid.split(":", 1)
        stat = _stat(int(number))
        return bool(stat) and stat[0] != "Z" and stat[19] == start
    stat = _stat(pid)
    return bool(stat) and stat[0] != "Z"


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> int | None:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL; returns the exit code. The wait after
    SIGKILL is at least :data:`KILL_WAIT` s whatever ``timeout`` is: a short ``timeout`` (the
    last of many nodes stopped against one deadline) must not turn a process that dies a moment
    later into a failed run."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=max(timeout, KILL_WAIT))
        except ProcessLookupError:
            pass
    return proc.returncode


#: Seconds a process has to be gone after SIGKILL (it cannot refuse; a loaded machine reaps slowly).
KILL_WAIT = 10.0


class Cleanup:
    """A stack of undo actions, run in reverse order, each once; failures are logged and kept."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], Any]]] = []
        self.errors: list[str] = []

    def push(self, what: str, action: Callable[[], Any]) -> None:
        """Registers ``action`` to undo ``what`` (a short description for the log)."""
        self._actions.append((what, action))

    def run(self) -> list[str]:
        """Undoes everything pushed so far; returns the errors (also logged)."""
        # Ctrl-C during cleanup must not leave half of it undone.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
        try:
            while self._actions:
                what, action = self._actions.pop()
                try:
                    action()
                except Exception as e:  # noqa: BLE001 - keep undoing the rest
                    message = f"cleanup: {what}: {e}"
                    log.warning(message)
                    self.errors.append(message)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        return self.errors

    def __enter__(self) -> Cleanup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.run()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turns SIGTERM into KeyboardInterrupt while inside, so ``finally`` blocks clean up."""
    if not _main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class RunState:
    """The state file of one run: its tag, its owner, its bridges, veths and process ids."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.path = STATE_DIR / f"{tag}.json"
        self.data: dict[str, Any] = {"tag": tag, "owner": os.getpid(), "started": time.time(),
                                     "bridges": [], "links": [], "pids": []}

    def add(self, kind: str, value: Any) -> None:
        """Records a bridge (``bridges``), a root-namespace link (``links``) or a process
        (``pids``, as :func:`process_id` gives it)."""
        self.data[kind].append(value)
        self._write()

    def _write(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data), encoding="utf-8")
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @staticmethod
    def load(path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def _root_links(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False)
    names = []
    for line in out.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return [n for n in names if n.startswith(prefix)]


def leftovers(state: dict[str, Any]) -> list[str]:
    """What the run of ``state`` (a :class:`RunState` ``data``) made that still exists."""
    tag = state["tag"]
    found = [f"bridge {b}" for b in our_bridges(tag)]
    found += [f"link {n}" for n in _root_links(f"l{tag}")]
    found += [f"process {pid}" for pid in state.get("pids", []) if pid_alive(pid)]
    return found


def clean_stale() -> list[str]:
    """Removes what runs whose owner process died left behind; returns what it removed."""
    removed: list[str] = []
    for path in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.is_dir() else []:
        state = RunState.load(path)
        if state is None or pid_alive(int(state.get("owner", 0))):
            continue
        tag = state["tag"]
        for pid in state.get("pids", []):
            if pid_alive(pid):
                try:
                    os.kill(int(str(pid).split(":", 1)[0]), signal.SIGKILL)
                    removed.append(f"process {pid}")
                except OSError:
                    pass
        for bridge in our_bridges(tag):
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", bridge], check=False)
            removed.append(f"bridge {bridge}")
        for link in _root_links(f"l{tag}"):
            subprocess.run(["ip", "link", "del", link], check=False, stderr=subprocess.DEVNULL)
            removed.append(f"link {link}")
        path.unlink(missing_ok=True)
    # Bridges marked by a run that has no live state file (e.g. left in OVS's database across a
    # reboot, when /run was emptied).
    live = set()
    for path in STATE_DIR.glob("*.json"):
        state = RunState.load(path)
        if state is not None and pid_alive(int(state.get("owner", 0))):
            live.add(state["tag"])
    for bridge, tag in _marked_bridges().items():
        if tag not in live:
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", bridge], check=False)
            removed.append(f"bridge {bridge}")
    return removed


def _marked_bridges() -> dict[str, str]:
    """Bridge name -> tag of every bridge a run marked."""
    out = subprocess.run(
        ["ovs-vsctl", "--timeout=10", "--format=csv", "--data=bare", "--no-headings",
         "--columns=name,external_ids", "list", "Bridge"],
        capture_output=True, text=True, check=False,
    )
    found = {}
    for line in out.stdout.splitlines():
        name, _, ids = line.partition(",")
        for item in ids.strip('"').split():
            key, _, value = item.partition("=")
            if key == BRIDGE_MARK:
                found[name] = value
    return found
