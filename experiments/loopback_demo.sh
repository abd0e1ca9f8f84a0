#!/usr/bin/env bash
# Loopback demo: two simulated computers of different speed, one router, one client, all on
# 127.0.0.1. Shows the router learning each computer's latency and splitting the calls.
#
#   experiments/loopback_demo.sh [path/to/lambdaroute] [seconds] [policy]
#
# Results go to results/loopback-demo/<timestamp>/: calls.csv (one row per call), tables.txt
# (the router's learned weights), and one log per process.
set -euo pipefail

BIN=${1:-target/release/lambdaroute}
SECONDS_TO_RUN=${2:-15}
POLICY=${3:-rp}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=results/loopback-demo/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"

# Ports of this demo (loopback only).
FAST=127.0.0.1:10001 SLOW=127.0.0.1:10002
ROUTER=127.0.0.1:6473 TABLE=127.0.0.1:6474

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# Wait until a TCP port accepts connections (probing, not sleeping a fixed time).
wait_port() {
  local address=$1 pid=$2
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { echo "process for $address exited; see $OUT" >&2; exit 1; }
    (exec 3<>"/dev/tcp/${address%:*}/${address#*:}") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $address after 10 s; see $OUT" >&2
  exit 1
}

"$BIN" computer --listen $FAST --util-listen 127.0.0.1:6477 \
  --config "$HERE/computers/fast.yaml" >"$OUT/computer-fast.log" 2>&1 &
PIDS+=($!); wait_port $FAST $!
"$BIN" computer --listen $SLOW --util-listen 127.0.0.1:6478 \
  --config "$HERE/computers/slow.yaml" >"$OUT/computer-slow.log" 2>&1 &
PIDS+=($!); wait_port $SLOW $!
"$BIN" router --listen $ROUTER --table-listen $TABLE --policy "$POLICY" >"$OUT/router.log" 2>&1 &
PIDS+=($!); wait_port $ROUTER $!; wait_port $TABLE $!

for computer in $FAST $SLOW; do
  "$BIN" table --router $TABLE change --lambda clambda0 --destination $computer --final
done

echo "== $SECONDS_TO_RUN s of clambda0 calls, 4 closed-loop threads, policy $POLICY"
"$BIN" client --router $ROUTER --lambda clambda0 --threads 4 --sizes 20 \
  --duration "$SECONDS_TO_RUN" --output "$OUT/calls.csv" 2>"$OUT/client.log" | tee "$OUT/summary.txt"
echo
"$BIN" table --router $TABLE dump | tee "$OUT/tables.txt"
echo
echo "fast computer: $FAST   slow computer: $SLOW"
echo "results: $OUT"
