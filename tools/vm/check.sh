#!/bin/bash
# make vm-check (mk/vm.mk): the Vagrantfile booted for real under libvirt with a local box, the
# default experiment and the 20 ms delay test run in it with prebuilt artifacts, the results
# copied out, everything it started undone.
# make vm-cluster-check (VM_MODE=cluster): the same VM made a second Mininet server (the
# testbed's packages, root login by a key of .vm/, tunnels permitted in its sshd), then the
# tests of runs across servers here with the VM as their second server.
#
#   tools/vm/check.sh BOX PREBUILT RESULTS      (as root)
#
# BOX: the .box of tools/vm/build-box.sh; PREBUILT: a folder with `lambdaroute` and one
# `lambdaroute-*.whl` (make vm-prebuilt); RESULTS: where this run's folder goes (results/vm).
# From the environment: VAGRANT_HOME and VAGRANT_DOTFILE_PATH (Vagrant's state, under .vm/),
# VM_NICE (niceness of the libvirt daemons this starts, and so of the VM; default 0).
#
# What it starts it stops, and only that: virtlogd, virtlockd and libvirtd (`-d`) when libvirt
# does not answer (each only if it is not running); the `default` network and storage pool when
# missing or stopped; the VM (vagrant destroy -f, then by libvirt if anything is left); the
# storage volumes that appeared during the run (the box's and the VM's disk); libvirt's iptables
# chains that were not there before, and IP forwarding as it was. On every exit.
set -euo pipefail

BOX=$(realpath "${1:?usage: check.sh BOX PREBUILT RESULTS}")
PREBUILT=$(realpath "${2:?usage: check.sh BOX PREBUILT RESULTS}")
RESULTS=$(realpath -m "${3:?usage: check.sh BOX PREBUILT RESULTS}")
REPO=$(cd "$(dirname "$0")/../.." && pwd)
NICE=${VM_NICE:-0}
MODE=${VM_MODE:-experiment}
export VAGRANT_HOME=${VAGRANT_HOME:-$REPO/.vm/vagrant.d}
export VAGRANT_DOTFILE_PATH=${VAGRANT_DOTFILE_PATH:-$REPO/.vm/vagrant}
export VAGRANT_CHECKPOINT_DISABLE=1
# What the Vagrantfile reads for this run (its header says what each does).
export LAMBDAROUTE_VM_BOX=lambdaroute/bookworm64-local
export LAMBDAROUTE_VM_NETWORK=default
export LAMBDAROUTE_VM_PREBUILT=$PREBUILT
VIRSH=(virsh -q -c qemu:///system)
POOL_DIR=/var/lib/libvirt/images

[ "$(id -u)" = 0 ] || { echo "vm-check: needs root (libvirt)" >&2; exit 1; }
[ -x "$PREBUILT/lambdaroute" ] && compgen -G "$PREBUILT/lambdaroute-*.whl" >/dev/null \
  || { echo "vm-check: $PREBUILT needs lambdaroute and lambdaroute-*.whl (make vm-prebuilt)" >&2; exit 1; }

OUT=$RESULTS/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
SSH_CONFIG=$(mktemp)
T0=$(date +%s)
declare -A took=()
# Whether the network is active, the pool running, the box added. Never `virsh ... | grep -q`:
# under pipefail, grep leaving early can fail virsh (SIGPIPE) and with it the test.
net_active() { [[ $("${VIRSH[@]}" net-info default 2>/dev/null) =~ Active:\ *yes ]]; }
pool_running() { [[ $("${VIRSH[@]}" pool-info default 2>/dev/null) =~ State:\ *running ]]; }
box_added() { [[ $'\n'$(vagrant box list 2>/dev/null) == *$'\n'"$LAMBDAROUTE_VM_BOX "* ]]; }
log() { printf '%s vm-check: %s\n' "$(date +%T)" "$*"; }
since() { echo $(( $(date +%s) - $1 )); }

started_daemons=()   # "name pid", in start order
# What libvirt's network changes in the root namespace, to put back: IP forwarding, and its
# iptables chains (LIBVIRT_*), which stay, empty, after the network stops.
ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)
chains_before=$( { iptables-save; ip6tables-save; } 2>/dev/null | grep -o '^:LIBVIRT_[A-Z]*' | sort -u || true)
network_started=0 network_defined=0 pool_started=0 pool_defined=0
volumes_before=""
domain=""

# ----- teardown (every exit) -----

stop_daemon() {  # name pid: SIGTERM, SIGKILL after 15 s; only if the pid is still that daemon
  local name=$1 pid=$2
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 0
  kill "$pid"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

teardown() {
  local rc=$?
  set +e
  local t
  t=$(date +%s)
  if [ -d "$VAGRANT_DOTFILE_PATH/machines" ]; then
    log "vagrant destroy -f"
    (cd "$REPO" && vagrant destroy -f --no-tty) >>"$OUT/vagrant.log" 2>&1
  fi
  if [ -n "$domain" ] && "${VIRSH[@]}" dominfo "$domain" >/dev/null 2>&1; then
    log "the domain $domain outlived vagrant destroy: removing it"
    "${VIRSH[@]}" destroy "$domain" >/dev/null 2>&1
    "${VIRSH[@]}" undefine "$domain" --remove-all-storage >/dev/null 2>&1
  fi
  if "${VIRSH[@]}" pool-info default >/dev/null 2>&1; then
    local vol
    for vol in $("${VIRSH[@]}" vol-list default 2>/dev/null | awk '{ print $1 }'); do
      grep -qxF "$vol" <<<"$volumes_before" && continue
      log "deleting the volume $vol (made by this run)"
      "${VIRSH[@]}" vol-delete --pool default "$vol" >/dev/null
    done
  fi
  # A libvirtd this run started autostarts the network: stop it as well.
  if [ "$network_started" = 1 ] || [[ " ${started_daemons[*]} " == *" libvirtd "* ]]; then
    if net_active; then
      log "stopping the network default"; "${VIRSH[@]}" net-destroy default >/dev/null
    fi
  fi
  [ "$network_defined" = 1 ] && "${VIRSH[@]}" net-undefine default >/dev/null
  [ "$pool_started" = 1 ] && "${VIRSH[@]}" pool-destroy default >/dev/null
  [ "$pool_defined" = 1 ] && "${VIRSH[@]}" pool-undefine default >/dev/null
  local i
  for (( i=${#started_daemons[@]}-1; i>=0; i-- )); do
    log "stopping ${started_daemons[i]%% *} (pid ${started_daemons[i]#* }, started by this run)"
    stop_daemon ${started_daemons[i]}
  done
  local cmd table chain
  for cmd in iptables ip6tables; do
    for table in filter nat mangle; do
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^LIBVIRT_/ { print $2 }'); do
        grep -qxF ":$chain" <<<"$chains_before" && continue
        "$cmd" -t "$table" -S 2>/dev/null | awk -v c="$chain" '$1 == "-A" && $NF == c && $(NF-1) == "-j" { $1 = "-D"; print }' \
          | while read -r rule; do "$cmd" -t "$table" $rule; done
        "$cmd" -t "$table" -F "$chain" && "$cmd" -t "$table" -X "$chain"
      done
    done
  done
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$ip_forward" ] || echo "$ip_forward" > /proc/sys/net/ipv4/ip_forward
  rm -f "$SSH_CONFIG"
  took[teardown]=$(since "$t")
  took[total]=$(since "$T0")
  {
    echo "vm-check $(date -Is): exit $rc"
    for k in daemons box-add vagrant-up boot prepare cluster-test experiment rtt-test copy teardown total; do
      [ -n "${took[$k]:-}" ] && printf '%-11s %5s s\n' "$k" "${took[$k]}"
    done
    [ -n "${RTT_LINE:-}" ] && echo "$RTT_LINE"
  } | tee "$OUT/vm-check.txt"
  log "results in $OUT"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ----- libvirt -----

t=$(date +%s)
if ! "${VIRSH[@]}" version >/dev/null 2>&1; then
  for d in virtlogd virtlockd libvirtd; do
    pgrep -x "$d" >/dev/null && continue
    rm -f "/run/$d.pid"
    log "starting $d -d (nice $NICE)"
    nice -n "$NICE" "$d" -d
    for _ in $(seq 100); do [ -s "/run/$d.pid" ] && break; sleep 0.1; done
    [ -s "/run/$d.pid" ] || { echo "vm-check: $d wrote no /run/$d.pid" >&2; exit 1; }
    started_daemons+=("$d $(cat "/run/$d.pid")")
  done
  for _ in $(seq 100); do "${VIRSH[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
fi
"${VIRSH[@]}" version >/dev/null

if ! "${VIRSH[@]}" net-info default >/dev/null 2>&1; then
  log "defining the network default (NAT, 192.168.122.0/24)"
  xml=/usr/share/libvirt/networks/default.xml
  if [ ! -f "$xml" ]; then
    xml=$(mktemp)
    cat > "$xml" <<'EOF'
<network>
  <name>default</name>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
  </ip>
</network>
EOF
  fi
  "${VIRSH[@]}" net-define "$xml" >/dev/null
  network_defined=1
fi
if ! net_active; then
  log "starting the network default"
  "${VIRSH[@]}" net-start default >/dev/null
  network_started=1
fi
if ! "${VIRSH[@]}" pool-info default >/dev/null 2>&1; then
  log "defining the storage pool default ($POOL_DIR)"
  mkdir -p "$POOL_DIR"
  "${VIRSH[@]}" pool-define-as default dir --target "$POOL_DIR" >/dev/null
  pool_defined=1
fi
if ! pool_running; then
  "${VIRSH[@]}" pool-start default >/dev/null
  pool_started=1
fi
"${VIRSH[@]}" pool-refresh default >/dev/null
volumes_before=$("${VIRSH[@]}" vol-list default | awk '{ print $1 }')
took[daemons]=$(since "$t")

# ----- the box, the VM -----

cd "$REPO"
t=$(date +%s)
marker=$VAGRANT_HOME/lambdaroute-box.added
if ! box_added || [ "$BOX" -nt "$marker" ]; then
  log "vagrant box add $LAMBDAROUTE_VM_BOX ($BOX)"
  vagrant box add --force --name "$LAMBDAROUTE_VM_BOX" "$BOX" >>"$OUT/vagrant.log" 2>&1
  touch "$marker"
fi
took[box-add]=$(since "$t")

log "vagrant up --provider libvirt (log: $OUT/vagrant-up.log)"
t=$(date +%s)
boot_start=""
set +e
vagrant up --provider libvirt --no-tty 2>&1 | while IFS= read -r line; do
  printf '%s %s\n' "$(date +%s)" "$line"
done >"$OUT/vagrant-up.log"
up_rc=${PIPESTATUS[0]}
set -e
took[vagrant-up]=$(since "$t")
id_file=$VAGRANT_DOTFILE_PATH/machines/default/libvirt/id
[ -f "$id_file" ] && domain=$("${VIRSH[@]}" domname "$(cat "$id_file")" 2>/dev/null || true)
boot_start=$(awk '/Starting domain/ { print $1; exit }' "$OUT/vagrant-up.log")
boot_end=$(awk '/Machine booted and ready/ { print $1; exit }' "$OUT/vagrant-up.log")
[ -n "$boot_start" ] && [ -n "$boot_end" ] && took[boot]=$(( boot_end - boot_start ))
if [ "$up_rc" != 0 ]; then
  tail -30 "$OUT/vagrant-up.log" >&2
  echo "vm-check: vagrant up failed ($up_rc); the log: $OUT/vagrant-up.log" >&2
  exit 1
fi
log "up in ${took[vagrant-up]} s (boot to ssh ${took[boot]:-?} s), domain $domain"
vagrant ssh-config > "$SSH_CONFIG"
vm() { ssh -F "$SSH_CONFIG" -o LogLevel=ERROR default "$@"; }
vm 'uname -r; grep -m1 "model name" /proc/cpuinfo' | sed 's/^/vm-check: in the VM: /'

# ----- the VM as a second server -----

if [ "$MODE" = cluster ]; then
  t=$(date +%s)
  key=${VM_DIR:-$REPO/.vm}/cluster_key
  [ -f "$key" ] || ssh-keygen -q -t ed25519 -N '' -C lambdaroute-vm-cluster -f "$key"
  log "the testbed's packages in the VM (log: $OUT/cluster-deps.log)"
  vm 'cd /vagrant && sudo make testbed-deps PREBUILT=/prebuilt' >"$OUT/cluster-deps.log" 2>&1
  log "root login by key, tunnels permitted"
  vm "sudo sh -c 'mkdir -p /root/.ssh && cat >> /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys'" <"$key.pub"
  vm "printf 'PermitTunnel yes\nMaxSessions 200\nMaxStartups 200:30:400\nUseDNS no\n' | sudo tee /etc/ssh/sshd_config.d/lambdaroute.conf >/dev/null && sudo systemctl restart ssh"
  vm_ip=$(awk '$1 == "HostName" { print $2; exit }' "$SSH_CONFIG")
  vm 'cat /etc/ssh/ssh_host_ed25519_key.pub' | awk -v ip="$vm_ip" '{ print ip, $1, $2 }' >"$OUT/known_hosts"
  printf 'Host %s\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n' \
    "$vm_ip" "$key" "$OUT/known_hosts" >"$OUT/cluster-ssh-config"
  took[prepare]=$(since "$t")
  log "the tests across servers, the VM ($vm_ip) second (log: $OUT/cluster-test.log)"
  t=$(date +%s)
  set +e
  LAMBDAROUTE_SECOND_SERVER=$vm_ip LAMBDAROUTE_SECOND_SERVER_SSH_CONFIG=$OUT/cluster-ssh-config \
    make -C "$REPO" --no-print-directory test-testbed PYTEST_ARGS=tests/test_testbed_cluster.py \
    >"$OUT/cluster-test.log" 2>&1
  test_rc=$?
  set -e
  took[cluster-test]=$(since "$t")
  RTT_LINE=$(grep -m1 -oE 'nfqueue: .*Mbit/s link|netem: .*Mbit/s link' "$OUT/cluster-test.log" || true)
  grep -E 'passed|failed|error' "$OUT/cluster-test.log" | tail -3
  [ "$test_rc" = 0 ] || { tail -40 "$OUT/cluster-test.log" >&2; echo "vm-cluster-check: the tests failed ($test_rc): $OUT/cluster-test.log" >&2; }
  exit "$test_rc"
fi

# ----- in the VM -----

log "sudo make experiment PREBUILT=/prebuilt (log: $OUT/experiment.log)"
t=$(date +%s)
set +e
vm 'cd /vagrant && sudo make experiment PREBUILT=/prebuilt RESULTS=/vagrant/results' >"$OUT/experiment.log" 2>&1
exp_rc=$?
took[experiment]=$(since "$t")
log "sudo make test-testbed PYTEST_ARGS='-k 20_ms' (log: $OUT/rtt-test.log)"
t=$(date +%s)
vm "cd /vagrant && sudo make test-testbed PREBUILT=/prebuilt PYTEST_ARGS='-k 20_ms'" >"$OUT/rtt-test.log" 2>&1
rtt_rc=$?
took[rtt-test]=$(since "$t")
set -e
RTT_LINE=$(grep -m1 -oE 'delay mechanism: [a-z]+; .*' "$OUT/rtt-test.log" || true)

t=$(date +%s)
mkdir -p "$OUT/vm"
vm 'sudo tar -C /vagrant/results -cf - .' | tar -C "$OUT/vm" -xf - || true
took[copy]=$(since "$t")

# ----- what it found -----

meta=$(find "$OUT/vm" -name metadata.json | sort | tail -1)
ok=1
if [ -z "$meta" ]; then
  echo "vm-check: the experiment left no metadata.json (exit $exp_rc); see $OUT/experiment.log" >&2
  tail -30 "$OUT/experiment.log" >&2
  ok=0
else
  python3 - "$meta" <<'EOF' || ok=0
import json, sys
m = json.load(open(sys.argv[1]))
print(f"vm-check: {sys.argv[1]}")
print(f"vm-check: datapath {m.get('datapath')}, delay {m.get('delay_mechanism')}, kernel {m.get('features', {}).get('kernel')}")
summary = open(sys.argv[1].replace("metadata.json", "summary.txt")).read()
print(summary)
sys.exit(0 if (m.get("datapath"), m.get("delay_mechanism")) == ("kernel", "netem") else 1)
EOF
fi
[ "$exp_rc" = 0 ] || { echo "vm-check: make experiment failed in the VM ($exp_rc): $OUT/experiment.log" >&2; ok=0; }
if [ "$rtt_rc" != 0 ]; then
  echo "vm-check: the 20 ms delay test failed in the VM ($rtt_rc): $OUT/rtt-test.log" >&2
  tail -30 "$OUT/rtt-test.log" >&2
  ok=0
fi
log "${RTT_LINE:-no RTT measured}"
[ "$ok" = 1 ]
