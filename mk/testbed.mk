# The Mininet testbed (python/lambdaroute/testbed). Included by the root Makefile after
# mk/python.mk. Every step checks before it acts.
#
#   make testbed-deps    apt packages the testbed needs (only the missing ones); Open vSwitch started
#   make test-testbed    the real Mininet tests (pytest -m mininet), as root
#   make experiment      deps, release build, Python package, then the default experiment
#   make experiments     the papers' experiments (experiments/paper/), every policy over seeds, then
#                        the report (results/report/<time>/report.md); QUICK=1: the short versions
#
# Open vSwitch is started without --delete-bridges: that would delete every bridge on the
# machine, other people's too. Bridges that killed runs of ours left behind are removed, and
# only those, by `lambdaroute-testbed clean` (each run also does it before it starts).

TESTBED_APT := mininet openvswitch-switch iperf3 iputils-ping ethtool bridge-utils iptables
OVS_CTL := /usr/share/openvswitch/scripts/ovs-ctl
EXPERIMENT ?= experiments/grid.yaml
RESULTS ?= $(CURDIR)/results

PAPER_EXPERIMENTS ?= $(sort $(wildcard experiments/paper/*.yaml))
QUICK ?=

.PHONY: testbed-deps ovs-start ssh-server-deps test-testbed run-experiment experiments

testbed-deps:
	@test "$$(id -u)" = 0 || { echo "the testbed needs root (Mininet, Open vSwitch, iptables); run make as root"; exit 1; }
	@missing=""; for p in $(TESTBED_APT); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
	@$(MAKE) --no-print-directory ovs-start

# sshd for the tests of runs across servers, whose second server is this machine again on
# loopback (an sshd of the test's own, python/tests/testbed_support.py). Installed without
# starting the package's own service: where no policy-rc.d says otherwise, one that forbids
# service starts stands for the install and goes after it.
ssh-server-deps:
	@test -x /usr/sbin/sshd || { \
	  echo "installing openssh-server (its service is not started)"; \
	  own=0; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	    chmod +x /usr/sbin/policy-rc.d; own=1; fi; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server; rc=$$?; \
	  [ $$own = 1 ] && rm -f /usr/sbin/policy-rc.d; exit $$rc; }

ovs-start:
	@ovs-vsctl --timeout=5 show >/dev/null 2>&1 || { \
	  echo "starting Open vSwitch"; $(OVS_CTL) start --system-id=random >/dev/null; \
	  ovs-vsctl --timeout=5 show >/dev/null; }

# The Mininet tests need the release binary (nodes, netem element) and the Python package.
# LAMBDAROUTE_SKIP_MININET=1 skips them on purpose (they fail, never skip, otherwise).
# PYTEST_ARGS selects some, e.g. PYTEST_ARGS='-k 20_ms' (the delay test).
PYTEST_ARGS ?=
ifeq ($(LAMBDAROUTE_SKIP_MININET),1)
test-testbed:
	@echo "test-testbed: skipped (LAMBDAROUTE_SKIP_MININET=1)"
else
test-testbed: testbed-deps ssh-server-deps release python
	cd python && CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) $(VENV_PY) -m pytest -q -rP -p no:warnings -m mininet $(PYTEST_ARGS)
endif

run-experiment: testbed-deps release python
	@CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) $(VENV)/bin/lambdaroute-testbed run $(EXPERIMENT) --results $(RESULTS)

# Every file is checked before the first run; a failed run is recorded and the others go on;
# the report is written in any case (exit 1 after it when a run failed).
experiments: testbed-deps release python
	@CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) $(VENV)/bin/lambdaroute-testbed run $(PAPER_EXPERIMENTS) \
	  $(if $(filter 1 yes true,$(QUICK)),--quick) --no-progress --report --results $(RESULTS)
