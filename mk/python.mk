# Python package `lambdaroute` (python/, native module built from rust/py by maturin) in a venv
# made from Debian's /usr/bin/python3 with --system-site-packages, so the same venv can import
# Mininet (a dist-package of that interpreter) later. Included by the root Makefile.
#
#   make venv          .venv with pip, maturin, pytest, OpenCV (installed only when missing)
#   make python        build the native module and install the package into .venv (maturin develop)
#   make test-python   pytest python/tests (without the Mininet runs: mk/testbed.mk has those)
#   make topologies    regenerate the shipped scenarios and their drawings under topologies/

SYSTEM_PYTHON ?= /usr/bin/python3
VENV ?= $(CURDIR)/.venv
VENV_PY := $(VENV)/bin/python
PYTHON_TEST_TARGETS := test-python
TOPOLOGIES := $(CURDIR)/topologies

.PHONY: venv python mininet-python test-python topologies

venv:
	@test -x $(SYSTEM_PYTHON) || { echo "installing python3"; apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3; }
	@$(SYSTEM_PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { echo "installing python3-venv"; apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv; }
	@test -x $(VENV_PY) || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	@$(VENV_PY) -c 'import maturin, pytest, matplotlib, yaml' 2>/dev/null || \
	  $(VENV_PY) -m pip install --quiet --disable-pip-version-check 'maturin>=1.9,<2' 'pytest>=7' 'matplotlib>=3.6' 'pyyaml>=6'
	@# The face function (python -m lambdaroute.facerec): OpenCV with its Haar cascades in the wheel
	@# (cv2.data.haarcascades; the 5.x wheels ship none): one 62 MB wheel, 162 MB installed, 4 s.
	@$(VENV_PY) -c 'import cv2; cv2.data.haarcascades' 2>/dev/null || \
	  $(VENV_PY) -m pip install --quiet --disable-pip-version-check 'opencv-python-headless>=4.8,<5'

ifneq ($(PREBUILT),)
# The prebuilt wheel (PREBUILT, see the Makefile), installed over whatever the venv had; its
# native module also goes into python/lambdaroute/, as `maturin develop` puts it there, so that
# the tests (run from python/, which comes first on sys.path) import the same package.
python: venv rust-toolchain
	@set -- $(PREBUILT)/lambdaroute-*.whl; test -f "$$1" || { echo "PREBUILT=$(PREBUILT): no lambdaroute-*.whl there"; exit 1; }; \
	  echo "installing the prebuilt $$1"; \
	  $(VENV_PY) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$$1" && \
	  $(VENV_PY) -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
	    [z.extract(n, "python") for n in z.namelist() if n.startswith("lambdaroute/_native") and n.endswith(".so")]' "$$1"
else
# maturin develop needs the venv "active": VIRTUAL_ENV and its bin first on PATH.
python: venv rust-toolchain
	cd python && VIRTUAL_ENV=$(VENV) PATH=$(VENV)/bin:$$PATH $(VENV)/bin/maturin develop --release
endif
	@$(VENV_PY) -c 'import lambdaroute' || { echo "lambdaroute does not import from $(VENV_PY)"; exit 1; }

# The Topo tests import Mininet (Debian's package `mininet`, a dist-package of /usr/bin/python3
# that the venv sees): installed when missing, as root; otherwise those tests say what to do.
mininet-python:
	@$(SYSTEM_PYTHON) -c 'import mininet.topo' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then echo "installing mininet"; apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mininet; \
	  else echo "mininet is not installed and this is not root: the Topo tests will say what to do"; fi; }

# The face function's tests run the release binary (computer, router, client) on 127.0.0.1.
test-python: python mininet-python release
	cd python && CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) $(VENV_PY) -m pytest -q -m 'not mininet'

topologies: python
	$(VENV_PY) -m lambdaroute topo line 5 --bw 10 --delay 5 -o $(TOPOLOGIES)/line.yaml
	$(VENV_PY) -m lambdaroute topo pods 3 --bw 100 --delay 1 -o $(TOPOLOGIES)/pods.yaml
	$(VENV_PY) -m lambdaroute topo ring-tree 4 2 2 --bw 100 --delay 1 -o $(TOPOLOGIES)/ring-tree.yaml
	$(VENV_PY) -m lambdaroute topo grid 4 4 --bw 100 --delay 1 -o $(TOPOLOGIES)/grid.yaml
	$(VENV_PY) -m lambdaroute topo aot-chicago -o $(TOPOLOGIES)/aot-chicago.yaml
	# The testbed's setup-time benchmark (docs/testbed.md, "Setup time"): 36 hosts.
	$(VENV_PY) -m lambdaroute topo grid 6 6 --bw 100 --delay 1 --routers s1,s4,s7,s10,s13,s16,s19,s22,s25,s28,s31 --computers s2,s5,s8,s11,s14,s17,s20,s23,s26,s29,s32,s35 --controller s18 -o $(TOPOLOGIES)/grid-6x6.yaml
