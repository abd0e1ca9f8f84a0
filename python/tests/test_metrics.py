"""The nodes' Prometheus metrics on the testbed side, without Mininet: parsing the text format,
``metrics.csv``, the scraper script against a server on loopback, the experiment key, the
nodes' flags, the series and the plot."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lambdaroute import Scenario
from lambdaroute.testbed import report, scrape
from lambdaroute.testbed.experiment import ExperimentError, for_scenario, load

REPO = Path(__file__).resolve().parents[2]

# As a router serves it (rust/node/src/metrics.rs), cut short, plus what the format allows.
ROUTER_TEXT = """\
# HELP lambdaroute_router_calls_total Calls taken for a lambda of the table.
# TYPE lambdaroute_router_calls_total counter
lambdaroute_router_calls_total{lambda="clambda0"} 25
# TYPE lambdaroute_router_latency_seconds histogram
lambdaroute_router_latency_seconds_bucket{lambda="clambda0",le="0.005"} 3
lambdaroute_router_latency_seconds_bucket{lambda="clambda0",le="+Inf"} 25
lambdaroute_router_latency_seconds_sum{lambda="clambda0"} 0.31
lambdaroute_router_latency_seconds_count{lambda="clambda0"} 25

lambdaroute_router_calls_in_flight 2
weird{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb"} NaN 1712345678000
lambdaroute_computer_utilization{computer="10.0.0.5:10000",processor="cpu"} 0.75
"""


def test_the_prometheus_text_parses_into_samples_with_labels_and_special_values():
    samples = scrape.parse(ROUTER_TEXT)
    assert [s.metric for s in samples[:2]] == ["lambdaroute_router_calls_total", "lambdaroute_router_latency_seconds_bucket"]
    assert samples[0].labels == (("lambda", "clambda0"),) and samples[0].value == 25.0
    inf = samples[2]
    assert inf.label("le") == "+Inf" and inf.value == 25.0
    assert samples[5] == scrape.Sample("lambdaroute_router_calls_in_flight", (), 2.0)
    weird = samples[6]
    assert dict(weird.labels) == {"path": "C:\\dir", "quote": 'say "hi"', "nl": "a\nb"}
    assert weird.value != weird.value  # NaN; the timestamp is dropped
    assert samples[7].label("processor") == "cpu" and samples[7].value == 0.75
    assert len(samples) == 8


@pytest.mark.parametrize("line, what", [
    ("lambdaroute_x", "expected `metric{labels} value`"),
    ('lambdaroute_x{lambda="a"}', "expected `metric{labels} value`"),
    ("lambdaroute_x twelve", "is not a number"),
    ('lambdaroute_x{lambda="a} 1', "unterminated label value"),
    ("lambdaroute_x{lambda=a} 1", 'expected key="value"'),
])
def test_a_line_that_is_no_sample_is_refused_with_its_number(line, what):
    with pytest.raises(ValueError, match="line 2") as e:
        scrape.parse("# HELP lambdaroute_x x\n" + line + "\n")
    assert what in str(e.value)


def test_metrics_csv_has_a_row_per_sample_and_reads_back(tmp_path):
    path = tmp_path / "metrics.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = scrape.MetricsWriter(f)
        samples = scrape.parse(ROUTER_TEXT)[:6]
        assert writer.write(1.23456, "r1", samples) == 6
        writer.write(2.5, "c1", scrape.parse(ROUTER_TEXT)[7:])
        assert writer.rows == 7
    lines = path.read_text().splitlines()
    assert lines[0] == "time,node,metric,labels,value"
    assert lines[1] == "1.235,r1,lambdaroute_router_calls_total,lambda=clambda0,25"
    assert lines[3] == "1.235,r1,lambdaroute_router_latency_seconds_bucket,lambda=clambda0;le=+Inf,25"
    assert lines[6] == "1.235,r1,lambdaroute_router_calls_in_flight,,2"
    assert lines[7] == "2.500,c1,lambdaroute_computer_utilization,computer=10.0.0.5:10000;processor=cpu,0.75"
    rows = scrape.read(path)
    assert rows[0] == (1.235, "r1", samples[0])
    assert rows[-1][2].labels == (("computer", "10.0.0.5:10000"), ("processor", "cpu"))
    assert scrape.parse_labels(scrape.format_labels(samples[2].labels)) == samples[2].labels


class _Counting(BaseHTTPRequestHandler):
    """Serves a counter that counts the scrapes, as a node's /metrics would move with calls."""

    scrapes = 0

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path != "/metrics":
            self.send_error(404)
            return
        type(self).scrapes += 1
        body = (f"# TYPE lambdaroute_router_calls_total counter\n"
                f"lambdaroute_router_calls_total{{lambda=\"f\"}} {type(self).scrapes}\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_scraper_script_writes_every_round_and_a_last_one_at_sigterm(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    closed = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    dead = f"127.0.0.1:{closed.server_address[1]}"
    closed.server_close()  # nothing listens there: its fetches fail, the others go on
    out = tmp_path / "metrics.csv"
    origin = time.monotonic()
    # As the testbed runs it in a host: the file as a script, isolated from the package.
    proc = subprocess.Popen([sys.executable, "-I", scrape.__file__, "--target", f"r1=127.0.0.1:{server.server_address[1]}",
                             "--target", f"r2={dead}", "--interval", "0.2", "--origin", repr(origin),
                             "--out", str(out)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while _Counting.scrapes < 3:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        before = _Counting.scrapes
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, err
    rows = scrape.read(out)
    assert {node for _, node, _ in rows} == {"r1"}
    values = [s.value for _, _, s in rows]
    assert values == [float(i) for i in range(1, len(values) + 1)], "one row per scrape, in order"
    assert len(values) == _Counting.scrapes >= before, "the last round at SIGTERM is in the file"
    times = [t for t, _, _ in rows]
    assert times == sorted(times) and 0 < times[0] < times[-1] < 10
    assert f"r2 ({dead})" in err and "failed fetches" in err, err


def test_the_experiment_key_metrics_sets_the_scrape_interval(tmp_path):
    grid = REPO / "experiments" / "grid.yaml"
    assert load(grid).metrics is None, "off unless the experiment says so"
    base = load(grid).raw
    assert load(grid, {**base, "metrics": {"interval": 0.5}}).metrics == 0.5
    assert load(grid, {**base, "metrics": True}).metrics == 1.0
    assert load(grid, {**base, "metrics": {}}).metrics == 1.0
    assert load(grid, {**base, "metrics": False}).metrics is None
    for bad, what in [({"interval": 0}, "metrics.interval `0`"), ({"every": 1}, "metrics.every: unknown"),
                      ("often", "metrics `often`"), ({"interval": True}, "metrics.interval `True`")]:
        with pytest.raises(ExperimentError, match="metrics") as e:
            load(grid, {**base, "metrics": bad})
        assert what in str(e.value)
    assert for_scenario(load(grid).scenario, metrics={"interval": 2}).metrics == 2.0


def _nodes(scenario: Scenario, out: Path):
    from types import SimpleNamespace

    from lambdaroute.testbed.nodes import Nodes

    return Nodes(SimpleNamespace(), scenario, "lambdaroute", out, SimpleNamespace(push=lambda what, action: None))


def test_with_metrics_every_node_listens_on_its_host_at_9464_and_is_a_target(tmp_path):
    from lambdaroute.testbed.nodes import METRICS_PORT

    scenario = load(REPO / "experiments" / "grid.yaml").scenario
    nodes = _nodes(scenario, tmp_path)
    r1, c1 = scenario.host("r1"), scenario.host("c1")
    args, listens = nodes.router_args(r1, 0, None)
    assert "--metrics-listen" not in args and len(listens) == 2
    nodes.metrics = True
    args, listens = nodes.router_args(r1, 0, None)
    assert args[args.index("--metrics-listen") + 1] == f"{r1.ip}:{METRICS_PORT}" == listens[-1]
    args, listens = nodes.computer_args(c1, None)
    assert args[args.index("--metrics-listen") + 1] == f"{c1.ip}:{METRICS_PORT}" == listens[-1]
    hosts = [r1, c1, scenario.host("c2")]
    assert nodes.metrics_targets() == {h.name: f"{h.ip}:{METRICS_PORT}" for h in hosts}, "no controller started"
    controller = scenario.hosts_with("controller")[0]
    nodes.controller = (controller, f"{controller.ip}:6475", None)
    assert nodes.metrics_targets() == {h.name: f"{h.ip}:{METRICS_PORT}" for h in [controller, *hosts]}


def _rows(text: str, tmp_path: Path) -> list[tuple[float, str, scrape.Sample]]:
    path = tmp_path / "metrics.csv"
    path.write_text(text, encoding="utf-8")
    return report.read_metrics(path)


METRICS_CSV = """time,node,metric,labels,value
1.0,r1,lambdaroute_router_calls_in_flight,,1
2.0,r1,lambdaroute_router_calls_in_flight,,3
1.0,c1,lambdaroute_computer_utilization,computer=10.0.0.5:10000;processor=xeon,0.5
1.0,c1,lambdaroute_computer_utilization,computer=10.0.0.5:10000;processor=gpu,0
2.0,c1,lambdaroute_computer_utilization,computer=10.0.0.5:10000;processor=xeon,0.75
1.0,c2,lambdaroute_computer_utilization,computer=10.0.0.6:10000;processor=cpu,0.25
1.0,c3,lambdaroute_computer_utilization,computer=10.0.0.7:10000;processor=cpu,0.1
1.0,c3,lambdaroute_computer_utilization,computer=10.0.0.7:10001;processor=cpu,0.2
"""


def test_metric_series_are_named_by_node_and_what_tells_a_nodes_series_apart(tmp_path):
    rows = _rows(METRICS_CSV, tmp_path)
    assert report.metric_series(rows, "lambdaroute_router_calls_in_flight") == {"r1": [(1.0, 1.0), (2.0, 3.0)]}
    assert report.metric_series(rows, "lambdaroute_computer_utilization") == {
        "c1 gpu": [(1.0, 0.0)], "c1 xeon": [(1.0, 0.5), (2.0, 0.75)], "c2": [(1.0, 0.25)],
        "c3 10.0.0.7:10000": [(1.0, 0.1)], "c3 10.0.0.7:10001": [(1.0, 0.2)]}


def test_the_metrics_plot_draws_both_panels_or_nothing(tmp_path):
    rows = _rows(METRICS_CSV, tmp_path)
    assert report.plot_metrics(rows, tmp_path / "metrics.png", "test")
    assert (tmp_path / "metrics.png").stat().st_size > 10_000
    other = [(1.0, "r1", scrape.Sample("lambdaroute_router_calls_total", (("lambda", "f"),), 3.0))]
    assert not report.plot_metrics(other, tmp_path / "none.png", "test")
    assert not (tmp_path / "none.png").exists()
