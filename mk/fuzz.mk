# Fuzzing (docs/fuzzing.md): cargo-fuzz targets in rust/fuzz, on nightly. Not in `make test`.
#
#   make fuzz-smoke                    every target FUZZ_SECONDS (60) from the committed corpora
#   make fuzz-smoke FUZZ_SECONDS=600 FUZZ_TARGETS=router_request
#
# Each run starts from rust/fuzz/corpus/TARGET (read only) and a working corpus under
# FUZZ_OUT/corpus/TARGET (new inputs go there, and the next run starts from them too); a crash,
# panic, timeout (FUZZ_TIMEOUT s per input) or memory use past FUZZ_RSS_MB leaves its input in
# FUZZ_OUT/artifacts/TARGET/ and fails the target. Logs and summary.txt: FUZZ_OUT.

.PHONY: fuzz-toolchain fuzz-build fuzz-smoke

FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 10
FUZZ_RSS_MB ?= 2048
FUZZ_TARGETS ?= scenario_yaml controller_files computer_files netem_delay_line router_request trace_files
FUZZ_OUT ?= $(CURDIR)/results/fuzz
FUZZ_DIR := rust/fuzz
# Release with debug assertions and overflow checks; no sanitizer (safe Rust: ASan would only
# halve the executions per second).
FUZZ_FLAGS := --fuzz-dir $(FUZZ_DIR) --target-dir $(CARGO_TARGET_DIR)/fuzz -O -a -s none

# The nightly toolchain and cargo-fuzz, each only when missing.
fuzz-toolchain: rust-toolchain
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

fuzz-build: fuzz-toolchain
	cargo +nightly fuzz build $(FUZZ_FLAGS)

fuzz-smoke: fuzz-build
	@mkdir -p $(FUZZ_OUT)
	@failed=""; : > $(FUZZ_OUT)/summary.txt; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_OUT)/corpus/$$t $(FUZZ_OUT)/artifacts/$$t; \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  cargo +nightly fuzz run $(FUZZ_FLAGS) $$t $(FUZZ_OUT)/corpus/$$t $(FUZZ_DIR)/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=$(FUZZ_RSS_MB) \
	    -artifact_prefix=$(FUZZ_OUT)/artifacts/$$t/ -print_final_stats=1 \
	    > $(FUZZ_OUT)/$$t.log 2>&1 || failed="$$failed $$t"; \
	  awk -v t=$$t '/^#[0-9]+.*cov:/ { cov = $$0 } \
	    /stat::number_of_executed_units/ { execs = $$2 } /stat::average_exec_per_sec/ { rate = $$2 } \
	    END { sub(/^#[0-9]+[ \t]+[A-Z]+[ \t]+/, "", cov); split(cov, c, " "); \
	          printf "%-18s %10s execs %8s/s  cov %s ft %s corpus %s\n", t, execs, rate, c[2], c[4], c[6] }' \
	    $(FUZZ_OUT)/$$t.log | tee -a $(FUZZ_OUT)/summary.txt; \
	done; \
	if [ -n "$$failed" ]; then \
	  echo "fuzz-smoke: failures in:$$failed (inputs in $(FUZZ_OUT)/artifacts, logs in $(FUZZ_OUT))"; exit 1; \
	fi; echo "fuzz-smoke: no crash in $(FUZZ_TARGETS)"
