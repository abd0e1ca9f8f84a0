"""48 concurrent calls of 15 MiB through a router (docs/security.md): its RSS before, at peak,
and after. Usage: python3 big_calls.py BINARY [ROUTER FLAGS...]; writes big-calls.csv in the
current directory. Loopback ports 18011, 18012, 18483, 18484."""
import os, subprocess, sys, time
B = sys.argv[1]
extra = sys.argv[2:]
comp = subprocess.Popen([B, "computer", "--listen", "127.0.0.1:18011", "--util-listen", "127.0.0.1:18012", "--config", os.path.join(os.path.dirname(os.path.abspath(__file__)), "computer.yaml")], stderr=subprocess.DEVNULL)
router = subprocess.Popen([B, "router", "--listen", "127.0.0.1:18483", "--table-listen", "127.0.0.1:18484", *extra], stderr=subprocess.DEVNULL)
def mem(field):
    for line in open(f"/proc/{router.pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
try:
    time.sleep(1)
    subprocess.run([B, "table", "--router", "127.0.0.1:18484", "change", "--lambda", "clambda0", "--destination", "127.0.0.1:18011", "--final"], check=True, capture_output=True)
    print(f"router RSS before: {mem('VmRSS'):.0f} MiB", flush=True)
    t = time.time()
    r = subprocess.run([B, "client", "--router", "127.0.0.1:18483", "--lambda", "clambda0", "--threads", "48", "--sizes", "15728640", "--duration", "0", "--max-calls", "48", "--output", "big-calls.csv"], capture_output=True, text=True, timeout=120)
    print("client:", r.stdout.splitlines()[0] if r.stdout else r.stderr[-300:], f"in {time.time()-t:.1f} s")
    import csv, collections
    print(collections.Counter(row["status"][:60] for row in csv.DictReader(open("big-calls.csv"))))
    print(f"router RSS peak (VmHWM): {mem('VmHWM'):.0f} MiB; just after: {mem('VmRSS'):.0f} MiB", flush=True)
    time.sleep(10)
    print(f"router RSS 10 s after: {mem('VmRSS'):.0f} MiB")
    t = time.time()
    r = subprocess.run([B, "client", "--router", "127.0.0.1:18483", "--lambda", "clambda0", "--sizes", "20", "--duration", "0", "--max-calls", "3"], capture_output=True, text=True, timeout=60)
    print("then 3 small calls:", r.stdout.splitlines()[0])
finally:
    for p in (router, comp): p.terminate(); p.wait()
