"""What secured mode (TLS on every port, client certificates) costs per call: a computer and a
router on loopback, plain then secured, driven by `lambdaroute client` with 1 and 5 threads,
alternating windows (docs/security.md, "What secured mode costs").
Usage: python3 tls_cost.py BINARY [SECONDS] [ROUNDS]; works in a temporary folder.
Loopback ports 18111-18114."""
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

B = sys.argv[1]
SECONDS = sys.argv[2] if len(sys.argv) > 2 else "5"
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 2
# clambda0 takes 1 us: what a call costs is the nodes' own work.
CONFIG_TEXT = """processors: [{name: cpu, type: cpu, speed: 1.0e9, cores: 64, memory: 1000000000000}]
containers: [{name: c0, processor: cpu, lambda: clambda0, num_workers: 64}]
lambdas: [{name: clambda0, op_offset: 1.0e3, op_coeff: 0, mem_offset: 0, mem_coeff: 1, output: echo}]
"""
COMPUTER, UTIL, ROUTER, TABLE = (f"127.0.0.1:{p}" for p in (18111, 18112, 18113, 18114))


def nodes(tls: list[str], config: Path) -> list[subprocess.Popen]:
    computer = subprocess.Popen([B, "computer", "--listen", COMPUTER, "--util-listen", UTIL,
                                 "--config", str(config), *tls, *(["--tls-name", "c1"] if tls else [])],
                                stderr=subprocess.DEVNULL)
    router = subprocess.Popen([B, "router", "--listen", ROUTER, "--table-listen", TABLE, *tls,
                               *(["--tls-name", "r1"] if tls else [])], stderr=subprocess.DEVNULL)
    time.sleep(1)
    subprocess.run([B, "table", "--router", TABLE, *tls, "change", "--lambda", "clambda0",
                    "--destination", COMPUTER, "--final"], check=True, capture_output=True)
    return [computer, router]


def window(tls: list[str], threads: int) -> tuple[float, float, float]:
    """calls/s, p50 ms, p99 ms of one window."""
    out = subprocess.run([B, "client", "--router", ROUTER, "--lambda", "clambda0", "--threads", str(threads),
                          "--sizes", "20", "--duration", SECONDS, *tls], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    calls = int(re.search(r"calls (\d+)\s+errors 0", out).group(1))
    p50, _, p99 = (float(x) for x in re.search(r"^all\s+\d+\s+\S+\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M).groups())
    return calls / float(SECONDS), p50, p99


with tempfile.TemporaryDirectory() as tmp:
    pki = Path(tmp) / "pki"
    config = Path(tmp) / "computer.yaml"
    config.write_text(CONFIG_TEXT)
    for args in (["--ca"], ["--node", "r1", "--role", "router", "--ip", "127.0.0.1"],
                 ["--node", "c1", "--role", "computer", "--ip", "127.0.0.1"],
                 ["--node", "operator", "--role", "operator"], ["--node", "client", "--role", "client"]):
        subprocess.run([B, "certs", "--out", str(pki), *args], check=True, capture_output=True)
    modes = {"plain": [], "secured": ["--tls-dir", str(pki)]}
    print("mode     threads  calls/s   p50 ms   p99 ms")
    for _ in range(ROUNDS):
        for mode, tls in modes.items():
            running = nodes(tls, config)
            try:
                for threads in (1, 5):
                    rate, p50, p99 = window(tls, threads)
                    print(f"{mode:8} {threads:7} {rate:8.0f} {p50:8.3f} {p99:8.3f}", flush=True)
            finally:
                for p in running:
                    p.terminate()
                    p.wait()
