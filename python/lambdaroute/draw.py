"""Drawing a scenario to an image with matplotlib.

Switches are grey squares at their positions (computed by a spring layout when a scenario has
none); hosts are small dots around their switch, coloured by role. A ``geo`` scenario (the
Array of Things) is drawn on longitude/latitude axes with equal-distance scaling.
"""

from __future__ import annotations

import math
import os

from lambdaroute.scenario import Scenario

#: Colour of each role.
ROLE_COLOURS = {
    "router": "#d62728",
    "computer": "#2ca02c",
    "controller": "#9467bd",
    "client": "#1f77b4",
    "traffic-source": "#ff7f0e",
    "traffic-sink": "#8c564b",
    "nat": "#000000",
}


def _layout(scenario: Scenario) -> dict[str, tuple[float, float]]:
    """Switch positions: the scenario's, or a simple force-directed layout."""
    pos = {s.name: s.position for s in scenario.switches if s.position is not None}
    if len(pos) == len(scenario.switches):
        return pos  # type: ignore[return-value]
    names = [s.name for s in scenario.switches]
    n = len(names)
    xy = {name: (math.cos(2 * math.pi * i / n), math.sin(2 * math.pi * i / n)) for i, name in enumerate(names)}
    k = 1.0 / math.sqrt(max(n, 1))
    for step in range(200):
        force = {name: [0.0, 0.0] for name in names}
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                dx, dy = xy[a][0] - xy[b][0], xy[a][1] - xy[b][1]
                d = max(math.hypot(dx, dy), 1e-3)
                f = k * k / d
                force[a][0] += f * dx / d
                force[a][1] += f * dy / d
                force[b][0] -= f * dx / d
                force[b][1] -= f * dy / d
        for link in scenario.links:
            dx, dy = xy[link.a][0] - xy[link.b][0], xy[link.a][1] - xy[link.b][1]
            d = max(math.hypot(dx, dy), 1e-3)
            f = d * d / k
            force[link.a][0] -= f * dx / d
            force[link.a][1] -= f * dy / d
            force[link.b][0] += f * dx / d
            force[link.b][1] += f * dy / d
        t = 0.1 * (1 - step / 200)
        for name in names:
            fx, fy = force[name]
            m = max(math.hypot(fx, fy), 1e-9)
            xy[name] = (xy[name][0] + fx / m * min(m, t), xy[name][1] + fy / m * min(m, t))
    return {**xy, **pos}  # type: ignore[dict-item]


def draw(scenario: Scenario, path: str | os.PathLike[str], *, labels: bool | None = None) -> None:
    """Draws ``scenario`` to ``path`` (PNG, SVG or PDF by its extension)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = _layout(scenario)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
    geo = scenario.coordinates == "geo"
    if labels is None:
        labels = len(scenario.switches) <= 40

    fig, ax = plt.subplots(figsize=(9, 9) if geo else (8, 6.5), dpi=110)
    for link in scenario.links:
        (x1, y1), (x2, y2) = pos[link.a], pos[link.b]
        ax.plot([x1, x2], [y1, y2], color="#999999", linewidth=0.8, zorder=1)
    ax.scatter(xs, ys, marker="s", s=60 if not geo else 25, color="#555555", zorder=2, label="switch")

    by_switch: dict[str, list[str]] = {}
    for h in scenario.hosts:
        by_switch.setdefault(h.switch, []).append(h.role)
    r = span * (0.035 if not geo else 0.012)
    seen: set[str] = set()
    for sw, roles in by_switch.items():
        x0, y0 = pos[sw]
        for i, role in enumerate(roles):
            a = 2 * math.pi * i / len(roles) + math.pi / 4
            hx, hy = x0 + r * math.cos(a), y0 + r * math.sin(a)
            ax.plot([x0, hx], [y0, hy], color="#cccccc", linewidth=0.5, zorder=1)
            ax.scatter(
                [hx],
                [hy],
                s=22 if not geo else 10,
                color=ROLE_COLOURS.get(role, "#7f7f7f"),
                zorder=3,
                label=None if role in seen else role,
            )
            seen.add(role)
    if labels:
        for name, (x, y) in pos.items():
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7, color="#333333")

    if geo:
        mid = math.radians(sum(ys) / len(ys))
        ax.set_aspect(1 / math.cos(mid))
        ax.set_xlabel("longitude (°)")
        ax.set_ylabel("latitude (°)")
    else:
        ax.set_aspect("equal")
        ax.set_axis_off()
    counts = {role: len(scenario.hosts_with(role)) for role in ROLE_COLOURS}
    summary = ", ".join(f"{n} {role}" for role, n in counts.items() if n)
    ax.set_title(
        f"{scenario.name}: {len(scenario.switches)} switches, {len(scenario.links)} links\n{summary}",
        fontsize=10,
    )
    ax.legend(loc="best", fontsize=8, markerscale=1.2, framealpha=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
