"""Descriptor flood (docs/security.md): N idle connections to a router under a 1,024-descriptor
limit, then calls and a table dump. Usage: python3 flood.py BINARY N [ROUTER FLAGS...]; writes
flood-router.log in the current directory. Loopback ports 18001, 18002, 18473, 18474."""
import os, socket, subprocess, sys, time
B, N = sys.argv[1], int(sys.argv[2])
extra = sys.argv[3:]
cfg = os.path.join(os.path.dirname(os.path.abspath(__file__)), "computer.yaml")
comp = subprocess.Popen([B, "computer", "--listen", "127.0.0.1:18001", "--util-listen", "127.0.0.1:18002", "--config", cfg], stderr=subprocess.DEVNULL)
log = open("flood-router.log", "w")
router = subprocess.Popen(["prlimit", "--nofile=1024:1024", B, "router", "--listen", "127.0.0.1:18473", "--table-listen", "127.0.0.1:18474", *extra], stderr=log)
time.sleep(1)
subprocess.run([B, "table", "--router", "127.0.0.1:18474", "change", "--lambda", "clambda0", "--destination", "127.0.0.1:18001", "--final"], check=True, capture_output=True)
def cpu():
    f = open(f"/proc/{router.pid}/stat").read().rsplit(") ", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100
c0, t0 = cpu(), time.time()
conns = []
for _ in range(N):
    s = socket.socket(); s.settimeout(3)
    try: s.connect(("127.0.0.1", 18473)); conns.append(s)
    except OSError: s.close()
print(f"{len(conns)} idle connections in {time.time()-t0:.1f} s; router fds {len(os.listdir(f'/proc/{router.pid}/fd'))}")
t1 = time.time()
r = subprocess.run([B, "client", "--router", "127.0.0.1:18473", "--lambda", "clambda0", "--sizes", "20", "--duration", "0", "--max-calls", "3", "--timeout", "10"], capture_output=True, text=True)
print("client:", (r.stdout.splitlines() or [r.stderr.strip()[-200:]])[0], f"after {time.time()-t1:.1f} s")
time.sleep(2)
print(f"router CPU {cpu()-c0:.2f} s over {time.time()-t0:.1f} s wall (flood and calls)", flush=True)
try:
    r = subprocess.run([B, "table", "--router", "127.0.0.1:18474", "dump"], capture_output=True, text=True, timeout=20)
except subprocess.TimeoutExpired:
    r = subprocess.CompletedProcess([], 1, "", "table dump: no answer in 20 s")
print("table dump:", "ok" if r.returncode == 0 else r.stderr.strip()[-200:])
for p in (router, comp): p.terminate(); p.wait()
log.close()
lines = open("flood-router.log").read()
print("log lines about descriptors:", lines.count("out of file descriptors"))
