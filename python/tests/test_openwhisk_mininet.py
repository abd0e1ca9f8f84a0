"""OpenWhisk-API clients and emulated clients in the 4x4 grid together, in Mininet (marker
``mininet``; `make test-testbed` runs it as root): experiments/openwhisk-grid.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdaroute.testbed.experiment import load
from lambdaroute.testbed.run import run
from testbed_support import require_mininet

pytestmark = pytest.mark.mininet

REPO = Path(__file__).resolve().parents[2]


def test_openwhisk_clients_and_grpc_clients_share_the_grid(tmp_path):
    require_mininet()
    exp = load(REPO / "experiments" / "openwhisk-grid.yaml")
    result = run(exp, results=tmp_path, progress=False)
    print(result.summary_text)
    assert result.metadata["gateways"] == ["r1"], result.metadata
    by_client = {s.client: s for s in result.summaries if s.client != "all"}
    assert set(by_client) == {"u1", "u2", "u3"}, result.summary_text
    for client, summary in by_client.items():
        assert summary.calls > 50 and summary.errors == 0, f"{client}: {result.summary_text}"
    # The OpenWhisk client's calls reach both computers, named by the gateway's annotations.
    assert {"c1", "c2"} <= set(by_client["u1"].responders), result.summary_text
    log = (result.out / "logs" / "gateway-r1.log").read_text()
    assert "gateway ready" in log, log
    assert (result.out / "openwhisk-keys.txt").exists()
    # The gateway stops after the clients and before the computers and routers.
    order = [what.split()[0] for what in result.metadata["stop_order"]]
    assert order == sorted(order, key=["client", "gateway", "computer", "router", "controller"].index), order
    assert result.metadata["leftovers"] == []
