"""Batched commands: many changes in one process instead of one process (or one round trip
through a Mininet host's shell) per change.

Pure text builders, no root needed: the callers write the text to a file and run one
``iptables-restore --noflush FILE``, ``ip -batch FILE`` or ``tc -batch FILE`` for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["htb", "iptables_restore", "neighbours", "pfifo_queues", "veth_pairs"]


def iptables_restore(rules: Iterable[Sequence[str]]) -> str:
    """``iptables-restore --noflush`` input for ``rules``, each the arguments of one
    ``iptables`` command that appends (``-A CHAIN ...``), optionally after ``-t TABLE``
    (``filter`` when absent). Rules keep their order within each table; tables appear in the
    order of their first rule. Other commands (``-P``, ``-I``, ``-D``) are refused."""
    tables: dict[str, list[str]] = {}
    for rule in rules:
        args = list(rule)
        table = "filter"
        if args[:1] == ["-t"]:
            table, args = args[1], args[2:]
        if args[:1] != ["-A"] or len(args) < 2:
            raise ValueError(f"only -A rules can be batched: {' '.join(rule)}")
        for a in args:
            if not a or any(c.isspace() for c in a) or a[0] in "\"'":
                raise ValueError(f"argument {a!r} of `{' '.join(rule)}` cannot be batched")
        tables.setdefault(table, []).append(" ".join(args))
    return "".join(f"*{table}\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"
                   for table, lines in tables.items())


def neighbours(device: str, entries: Iterable[tuple[str, str]]) -> str:
    """``ip -batch`` input: a permanent neighbour entry on ``device`` for each (IP, MAC)."""
    return "".join(f"neigh replace {ip} lladdr {mac} dev {device} nud permanent\n" for ip, mac in entries)


def pfifo_queues(queues: Iterable[tuple[str, int]]) -> str:
    """``tc -batch`` input: a ``pfifo`` of ``limit`` packets under HTB class ``5:1`` (TCLink's
    leaf) of each (interface, limit)."""
    return "".join(f"qdisc replace dev {intf} parent 5:1 handle 10: pfifo limit {int(limit)}\n"
                   for intf, limit in queues)


def veth_pairs(pairs: Iterable[tuple[str, str, str | None, int | None]]) -> str:
    """``ip -batch`` input, run in the root namespace: a veth pair for each (root end, other end,
    MAC of the other end or None, pid whose namespace the other end goes to or None: it stays
    in the root namespace), then each root end up."""
    lines, up = [], []
    for root_end, other, mac, pid in pairs:
        line = f"link add name {root_end} type veth peer name {other}"
        if mac:
            line += f" address {mac}"
        if pid is not None:
            line += f" netns {pid}"
        else:
            up.append(other)
        lines.append(line + "\n")
        up.append(root_end)
    return "".join(lines) + "".join(f"link set {name} up\n" for name in up)


def htb(intf: str, bw: float) -> str:
    """``tc -batch`` input: TCLink's HTB shaping of ``intf`` at ``bw`` Mbit/s, exactly Mininet's
    commands (root ``5:0``, default class ``5:1``, burst 15k)."""
    return (f"qdisc add dev {intf} root handle 5:0 htb default 1\n"
            f"class add dev {intf} parent 5:0 classid 5:1 htb rate {bw:f}Mbit burst 15k\n")
