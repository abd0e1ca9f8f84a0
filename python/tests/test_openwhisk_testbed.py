"""The testbed's OpenWhisk-API clients (``api: openwhisk``, docs/openwhisk.md): command lines
of the gateway and of the clients, without Mininet."""

from __future__ import annotations

from pathlib import Path

from lambdaroute import ScenarioBuilder
from lambdaroute.testbed.experiment import load
from lambdaroute.testbed.nodes import (
    GATEWAY_PORT,
    OPENWHISK_KEY,
    Nodes,
    client_command,
    gateway_command,
    openwhisk_routers,
)

REPO = Path(__file__).resolve().parents[2]


def test_the_openwhisk_grid_experiment_mixes_openwhisk_and_grpc_clients():
    s = load(REPO / "experiments" / "openwhisk-grid.yaml").scenario
    apis = {w.client: w.api for w in s.workloads}
    assert apis == {"u1": "openwhisk", "u2": "grpc", "u3": "grpc"}
    assert [h.name for h in openwhisk_routers(s)] == ["r1"]
    assert all(w.router == "r1" for w in s.workloads)


def test_an_openwhisk_client_calls_the_gateway_on_its_routers_host():
    s = load(REPO / "experiments" / "openwhisk-grid.yaml").scenario
    r1 = s.host("r1")
    u1, u2 = s.workloads[0], s.workloads[1]
    args = client_command(u1, r1, Path("o.csv"), 20.0, 3)
    assert args[args.index("--openwhisk") + 1] == f"http://{r1.ip}:{GATEWAY_PORT}"
    assert args[args.index("--openwhisk-auth") + 1] == OPENWHISK_KEY
    assert args[args.index("--lambda") + 1] == "clambda0"
    # the rest is the gRPC client's command line: the pattern, sizes, output
    assert args[args.index("--pattern") + 1] == "closed" and args[args.index("--sizes") + 1] == "20"
    grpc = client_command(u2, r1, Path("o.csv"), 20.0, 3)
    assert "--openwhisk" not in grpc and "--openwhisk-auth" not in grpc
    assert grpc[:3] == ["client", "--router", f"{r1.ip}:6473"]


def test_the_gateway_fronts_its_router_with_the_runs_keys(tmp_path):
    s = load(REPO / "experiments" / "openwhisk-grid.yaml").scenario
    r1 = s.host("r1")
    args, listens = gateway_command(r1, tmp_path / "keys.txt")
    assert args == ["gateway", "--listen", f"{r1.ip}:3233", "--router", f"{r1.ip}:6473",
                    "--router-table", f"{r1.ip}:6474", "--keys", str(tmp_path / "keys.txt")]
    assert listens == [f"{r1.ip}:3233"]


class _FakeNodes(Nodes):
    """Nodes that record what they would start, without Mininet."""

    def __init__(self, scenario, out: Path) -> None:  # noqa: D401 - no network
        self.scenario = scenario
        self.out = out
        self.started: list[tuple[str, str, list[str], list[str]]] = []

    def spawn(self, host, role, args, log_name, listens=(), program=None, outside=False):  # type: ignore[override]
        self.started.append((host, role, list(args), list(listens)))
        return None  # type: ignore[return-value]

    def wait_all_listening(self, nps, timeout=15.0) -> None:  # type: ignore[override]
        pass


def test_start_gateways_writes_the_key_and_starts_one_gateway_per_router(tmp_path):
    s = load(REPO / "experiments" / "openwhisk-grid.yaml").scenario
    nodes = _FakeNodes(s, tmp_path)
    nodes.start_gateways()
    assert [(host, role) for host, role, _, _ in nodes.started] == [("r1", "gateway")]
    keys = (tmp_path / "openwhisk-keys.txt").read_text()
    assert f"{OPENWHISK_KEY} guest" in keys
    grid = load(REPO / "experiments" / "grid.yaml").scenario
    assert _FakeNodes(grid, tmp_path).start_gateways() == []


def test_the_builder_writes_the_api_key_of_a_workload():
    b = ScenarioBuilder("openwhisk-api")
    b.add_switch("s1")
    b.add_host("r1", switch="s1", role="router")
    b.add_host("u1", switch="s1", role="client")
    b.add_host("c1", switch="s1", role="computer")
    b.add_workload("u1", "r1", lambda_="clambda0", pattern="poisson", rate=5, api="openwhisk")
    s = b.build()
    assert s.workloads[0].api == "openwhisk"
    assert "api: openwhisk" in s.to_yaml()
