# lambdaroute: build, test, lint, bench and run experiments.
#
#   make experiment   install what is missing, build, run the default experiment
#   make experiments  the papers' experiments and their report (QUICK=1: minutes, not an hour)
#   make test         everything CI runs (lint, Rust tests, Python tests, vagrant validate)
#   make vm-check     the default experiment in a real Debian 12 VM (mk/vm.mk; not in make test)
#   make fuzz-smoke   every fuzz target 60 s (mk/fuzz.mk, docs/fuzzing.md; not in make test)
#
# Every install step is idempotent: it checks before it installs.

SHELL := /bin/bash
.DEFAULT_GOAL := build
.DELETE_ON_ERROR:

# rustup installs into ~/.cargo/bin: make it visible to every recipe, even right after the install.
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never
# One build directory for everything (tests, release binary, Python bindings).
export CARGO_TARGET_DIR ?= $(CURDIR)/target
BIN := $(CARGO_TARGET_DIR)/release/lambdaroute

# Prebuilt artifacts instead of a build, for machines that cannot build (make vm-check's VM:
# Debian's rustc is too old there and rustup may be out of reach): PREBUILT=DIR, where DIR holds
# `lambdaroute` (the release binary) and one `lambdaroute-*.whl` (the Python package, from
# `maturin build --release`). Then no Rust toolchain is installed and nothing is compiled: the
# binary is used where it is (LAMBDAROUTE_BIN) and the wheel is installed into the venv.
# Without PREBUILT (the normal path): rustup if needed, cargo, maturin.
PREBUILT ?=
ifneq ($(PREBUILT),)
BIN := $(abspath $(PREBUILT))/lambdaroute
export LAMBDAROUTE_BIN := $(BIN)
endif

.PHONY: build release test test-rust test-peer openwhisk-client lint bench bench-peer bench-smoke bench-criterion bench-trace experiment demo rust-toolchain clean

## ----- toolchain -----

ifneq ($(PREBUILT),)
rust-toolchain:
	@test -x $(BIN) || { echo "PREBUILT=$(PREBUILT): no executable $(BIN)"; exit 1; }
else
# The Rust toolchain through rustup where cargo is missing (a fresh Debian/Ubuntu machine).
rust-toolchain:
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "installing the Rust toolchain with rustup"; \
	  command -v curl >/dev/null || { apt-get update && apt-get install -y --no-install-recommends curl ca-certificates; }; \
	  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy -c rustfmt; }
	@command -v cc >/dev/null 2>&1 || { apt-get update && apt-get install -y --no-install-recommends build-essential; }
endif

## ----- Rust -----

build: rust-toolchain
	$(CARGO) build --workspace

ifneq ($(PREBUILT),)
release: rust-toolchain
	@echo "release: the prebuilt $(BIN)"
else
release: rust-toolchain
	$(CARGO) build --release -p lambdaroute
endif

# Apache OpenWhisk's official JavaScript client (npm `openwhisk`, the version pinned in
# rust/cli/tests/openwhisk/package.json and package-lock.json), for the gateway's test
# (rust/cli/tests/openwhisk.rs): `npm ci` there when that version is not installed yet.
OPENWHISK_CLIENT := $(CURDIR)/rust/cli/tests/openwhisk
openwhisk-client:
	@command -v npm >/dev/null 2>&1 || { echo "installing node and npm"; apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm; }
	@cd $(OPENWHISK_CLIENT) && node -e 'const p = require("./package.json"), i = require("./node_modules/openwhisk/package.json"); process.exit(i.version === p.dependencies.openwhisk ? 0 : 1)' 2>/dev/null || \
	  { echo "installing the OpenWhisk client (npm ci in rust/cli/tests/openwhisk)"; npm ci --no-audit --no-fund --ignore-scripts; }

test-rust: rust-toolchain openwhisk-client
	LAMBDAROUTE_OPENWHISK_CLIENT=required $(CARGO) test --workspace --lib --bins --tests --examples -- --skip peer_smoke
	$(CARGO) test --workspace --benches
	$(CARGO) test --workspace --doc

lint: rust-toolchain
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The router benchmark (docs/benchmarks.md), ~9 min on 2 vCPUs: results/bench/{bench.csv,
# memory.csv,summary.txt,bench.png}. BENCH_ARGS passes options, e.g. BENCH_ARGS="--policies rr --duration 1".
# Then the criterion benches of the e-table, with short windows, ~2 min (make bench-criterion: full).
BENCH_OUT ?= $(CURDIR)/results/bench
BENCH_ARGS ?=
bench: release venv
	mkdir -p $(BENCH_OUT)
	set -o pipefail; $(BIN) --log warn bench --out $(BENCH_OUT) $(BENCH_ARGS) | tee $(BENCH_OUT)/summary.txt
	$(VENV_PY) python/lambdaroute/bench_plot.py $(BENCH_OUT)/bench.csv -o $(BENCH_OUT)/bench.png
	$(CARGO) bench -p lambdaroute-core --bench policies -- --warm-up-time 1 --measurement-time 2

# The same harness at tiny sizes (seconds); `make test` runs it through cargo test (rust/cli/tests/bench.rs).
# Side by side with the original prototype's router (docs/benchmarks.md, "Against the
# original"): SOE_BIN=dir of serverlessonedge's binaries; skipped, saying so, without it.
PEER_OUT ?= $(CURDIR)/results/bench-peer
bench-peer: release
	mkdir -p $(PEER_OUT)
	set -o pipefail; $(BIN) --log warn bench --peer --out $(PEER_OUT) $(BENCH_ARGS) | tee $(PEER_OUT)/summary.txt

# The peer benchmark's smoke test (short windows); prints SKIPPED without SOE_BIN. --workspace:
# the features of the whole workspace, so the test build of test-rust is reused, not redone.
test-peer: rust-toolchain
	$(CARGO) test --workspace --test bench_peer -- --nocapture

bench-smoke: release
	$(BIN) --log warn bench --smoke --out $(BENCH_OUT)-smoke

# Criterion benches of the e-table's select + complete per policy, 10 to 100,000 destinations.
bench-criterion: rust-toolchain
	$(CARGO) bench -p lambdaroute-core --bench policies

# Streaming an Array of Things digest with flat memory (docs/traces.md, "Benchmark"): generates
# TRACE_BENCH_HOURS of data (49 h: about 2 GB of CSV) as data.csv and data.csv.gz under
# results/bench-trace/, and 1/10 of it, then reads each with `lambdaroute trace aot read` under
# /usr/bin/time: rows/s, MB/s and the largest resident memory, in summary.txt. Needs ~2.5 GB of disk.
TRACE_BENCH_OUT ?= $(CURDIR)/results/bench-trace
TRACE_BENCH_HOURS ?= 49
bench-trace: release
	mkdir -p $(TRACE_BENCH_OUT)
	$(BIN) trace aot generate --hours $(TRACE_BENCH_HOURS) --seed 1 -o $(TRACE_BENCH_OUT)/data.csv
	$(BIN) trace aot generate --hours $(TRACE_BENCH_HOURS) --seed 1 --level 1 -o $(TRACE_BENCH_OUT)/data.csv.gz
	$(BIN) trace aot generate --hours $$(awk "BEGIN { print $(TRACE_BENCH_HOURS) / 10 }") --seed 1 -o $(TRACE_BENCH_OUT)/small.csv
	set -o pipefail; for f in small.csv data.csv data.csv.gz; do \
	  /usr/bin/time -f "$$f: max resident %M KiB, %e s wall, %U s user" \
	    $(BIN) --log warn trace aot read $(TRACE_BENCH_OUT)/$$f 2>&1 | grep -E " rows, |^read |max resident"; \
	done | tee $(TRACE_BENCH_OUT)/summary.txt

## ----- Python package and testbed (mk/python.mk) -----

-include mk/python.mk
-include mk/testbed.mk
-include mk/vm.mk
-include mk/fuzz.mk

## ----- top level -----

test: lint test-rust test-peer $(PYTHON_TEST_TARGETS) test-testbed vm-validate

# The default experiment in Mininet (mk/testbed.mk): a 4x4 grid, one router, two computers of
# different speed, two clients, round robin, 20 s. `make experiment EXPERIMENT=file.yaml` runs another.
experiment: run-experiment

# The loopback demo: two simulated computers of different speed, a router and a client, all on
# 127.0.0.1, no Mininet.
demo: release
	experiments/loopback_demo.sh $(BIN)

clean:
	$(CARGO) clean
