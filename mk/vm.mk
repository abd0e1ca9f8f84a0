# The Vagrantfile's Debian 12 VM, booted for real (docs/testbed.md, "In a VM"). Included by the
# root Makefile. Build outputs live in $(VM_DIR) (.vm/, ignored by git): never commit them.
#
#   make vm-validate   `vagrant validate` of the Vagrantfile, both providers (part of make test;
#                      installs vagrant and vagrant-libvirt when missing)
#   make vm-deps       what vm-check needs (only the missing packages)
#   make vm-box        the local Debian 12 box, built once: $(VM_BOX) (tools/vm/build-box.sh)
#   make vm-prebuilt   the release binary (stripped) and the Python wheel, for the VM
#   make vm-check      as root, not in make test: boots the Vagrantfile under libvirt with the
#                      local box, runs `sudo make experiment` and the 20 ms delay test in it with
#                      the prebuilt artifacts, copies the results to results/vm/, destroys the VM
#                      and stops what it started (tools/vm/check.sh)
#   make vm-cluster-check  as root, not in make test: the same VM as the second server of the
#                      tests of runs across servers (python/tests/test_testbed_cluster.py), run here
#
# VM_BIN=path takes an existing release binary instead of `make release`; VM_NICE=19 runs
# libvirt (and so the emulated VM) at that niceness, for machines shared with other work.

VM_DIR ?= $(CURDIR)/.vm
VM_BOX := $(VM_DIR)/lambdaroute-bookworm64.box
VM_PREBUILT := $(VM_DIR)/prebuilt
VM_BIN ?= $(BIN)
VM_NICE ?= 0
VM_RESULTS ?= $(RESULTS)/vm
# Vagrant's state stays in $(VM_DIR) too: its boxes (VAGRANT_HOME) and the machine's (.vagrant).
VM_VAGRANT_ENV := VAGRANT_HOME=$(VM_DIR)/vagrant.d VAGRANT_DOTFILE_PATH=$(VM_DIR)/vagrant
VM_APT := vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients dnsmasq-base qemu-system-x86 \
  qemu-utils mmdebstrap grub-pc-bin grub2-common fdisk rsync openssh-client

.PHONY: vm-validate vm-deps vm-box vm-prebuilt vm-check vm-cluster-check

vm-validate:
	@command -v vagrant >/dev/null && dpkg-query -W -f='$${Status}' vagrant-libvirt 2>/dev/null | grep -q "install ok installed" || { \
	  echo "installing vagrant and vagrant-libvirt (vagrant validate)"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends vagrant vagrant-libvirt; }
	$(VM_VAGRANT_ENV) vagrant validate

# qemu-utils must match qemu-system-x86 (a newer qemu-utils, e.g. from bookworm-backports, breaks
# Debian 12's QEMU 7.2): both at the version apt picks for qemu-system-x86, downgrading if needed.
vm-deps:
	@test "$$(id -u)" = 0 || { echo "make vm-check needs root (libvirt, losetup, mount)"; exit 1; }
	@missing=""; for p in $(VM_APT); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	qv=$$(dpkg-query -W -f='$${Version}' qemu-system-x86 2>/dev/null || true); \
	if [ -z "$$qv" ] || [ -n "$$missing" ]; then apt-get update >/dev/null; fi; \
	[ -n "$$qv" ] || qv=$$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ { print $$2 }'); \
	uv=$$(dpkg-query -W -f='$${Version}' qemu-utils 2>/dev/null || true); \
	if [ -n "$$missing" ] || [ "$$uv" != "$$qv" ]; then \
	  echo "installing$$missing (qemu-system-x86 and qemu-utils $$qv)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends --allow-downgrades \
	    $$(echo $$missing | tr ' ' '\n' | grep -vx -e qemu-system-x86 -e qemu-utils) \
	    "qemu-system-x86=$$qv" "qemu-utils=$$qv"; \
	fi

# A file target: built only when missing (delete it to build it again).
$(VM_BOX):
	@$(MAKE) --no-print-directory vm-deps
	nice -n 19 tools/vm/build-box.sh $@

vm-box: $(VM_BOX)

# The artifacts the VM runs: the release binary (VM_BIN, `make release` unless given) without
# its debug info, and the wheel of the Python package (its native module built in release).
vm-prebuilt: $(if $(filter $(BIN),$(VM_BIN)),release) venv
	@test -x $(VM_BIN) || { echo "no release binary $(VM_BIN)"; exit 1; }
	mkdir -p $(VM_PREBUILT)
	strip -o $(VM_PREBUILT)/lambdaroute $(VM_BIN)
	rm -f $(VM_PREBUILT)/lambdaroute-*.whl
	cd python && $(VENV)/bin/maturin build --release --interpreter $(SYSTEM_PYTHON) --out $(VM_PREBUILT)
	@ls -l $(VM_PREBUILT)

vm-check: vm-deps $(VM_BOX) vm-prebuilt
	$(VM_VAGRANT_ENV) VM_DIR=$(VM_DIR) VM_NICE=$(VM_NICE) tools/vm/check.sh $(VM_BOX) $(VM_PREBUILT) $(VM_RESULTS)

vm-cluster-check: vm-deps $(VM_BOX) vm-prebuilt testbed-deps
	$(VM_VAGRANT_ENV) VM_DIR=$(VM_DIR) VM_NICE=$(VM_NICE) VM_MODE=cluster tools/vm/check.sh $(VM_BOX) $(VM_PREBUILT) $(VM_RESULTS)
