#!/usr/bin/env bash
# Rebuilds the file-based seed corpora of the fuzz targets from the repository's own files
# (docs/fuzzing.md). The structured targets (netem_delay_line, router_request) keep the
# minimized corpora of earlier runs instead. Run from the repository's root.
set -euo pipefail
C=rust/fuzz/corpus
prefixed() { # selector byte, source file, destination
  { printf "\\x$(printf %02x "$1")"; cat "$2"; } > "$3"
}
rm -rf $C/scenario_yaml $C/controller_files $C/computer_files $C/trace_files
mkdir -p $C/scenario_yaml $C/controller_files $C/computer_files $C/trace_files

for f in topologies/line.yaml topologies/grid.yaml topologies/pods.yaml topologies/ring-tree.yaml \
         rust/scenario/tests/valid/*.yaml experiments/scenarios/congestion.yaml \
         rust/scenario/tests/malformed/{05-dangling-switch,12-disconnected,30-billion-laughs,36-aot-bad-window,38-event-negative-time}.yaml; do
  cp "$f" "$C/scenario_yaml/$(echo "${f%.yaml}" | tr / -).yaml"
done

prefixed 0 experiments/controller/loopback-distances.yaml $C/controller_files/distances.yaml
prefixed 1 experiments/controller/loopback-paths.yaml $C/controller_files/paths.yaml

prefixed 0 experiments/computers/fast.yaml $C/computer_files/config-fast.yaml
prefixed 0 experiments/computers/slow.yaml $C/computer_files/config-slow.yaml
prefixed 0 experiments/security/computer.yaml $C/computer_files/config-security.yaml
printf '\x01speed-factor: 0.5\nbackground: 0.3\n' > $C/computer_files/conditions.yaml

{ zcat traces/aot/chicago-30min.csv.gz || true; } | head -30 > /tmp/lambdaroute-seed-data.csv
prefixed 0 /tmp/lambdaroute-seed-data.csv $C/trace_files/data.csv
prefixed 1 /tmp/lambdaroute-seed-data.csv $C/trace_files/data-nodes.csv
head -12 data/aot/nodes.csv > /tmp/lambdaroute-seed-nodes.csv
prefixed 2 /tmp/lambdaroute-seed-nodes.csv $C/trace_files/nodes.csv
head -12 data/aot/sensors.csv > /tmp/lambdaroute-seed-sensors.csv
prefixed 3 /tmp/lambdaroute-seed-sensors.csv $C/trace_files/sensors.csv
printf 'time,trace_time,node,lambda,size,readings,rows\n0.5,2018/09/04 13:30:00,001e06114fd6,clambda0,20,2,\n1.0,2018/09/04 13:30:30,001e06114fd6,clambda0,5,1,a;b;c\n' \
  > /tmp/lambdaroute-seed-schedule.csv
prefixed 4 /tmp/lambdaroute-seed-schedule.csv $C/trace_files/schedule.csv
rm -f /tmp/lambdaroute-seed-{data,nodes,sensors,schedule}.csv
du -sh $C/*
