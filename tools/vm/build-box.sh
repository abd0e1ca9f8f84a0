#!/bin/bash
# A local Debian 12 (bookworm) box for vagrant-libvirt, for machines that cannot download the
# public debian/bookworm64 box (make vm-check, docs/testbed.md "In a VM").
#
#   tools/vm/build-box.sh OUT.box        (as root; about 2-3 minutes, ~300 MB)
#
# What it does, and why this way:
# - a sparse raw disk with one msdos partition, attached with `losetup`; `partx -a` adds the
#   partition device (kernels without a partition-table parser make none on their own), and
#   nothing uses device-mapper (vmdb2 and kpartx need it; some kernels have none);
# - `mmdebstrap` of bookworm into the mounted partition, from the Debian mirror this machine's apt
#   uses: kernel, grub-pc, openssh-server, sudo, rsync, ifupdown with DHCP on eth0 (net.ifnames=0);
# - grub installed into the disk's MBR from here (a stand-in `udevadm` tells it where the
#   partition starts when udev is missing), grub.cfg written by grub-mkconfig in the
#   chroot with `root=UUID=...` forced (without udev it writes the loop device);
# - the CA certificates this machine added locally (/usr/local/share/ca-certificates), so that
#   the VM reaches the registries through the same TLS-inspecting proxy as this machine;
# - user vagrant (password vagrant), NOPASSWD sudo, Vagrant's insecure public key (from the
#   vagrant package), which `vagrant up` replaces; ssh host keys made on the first boot;
# - `qemu-img convert -O qcow2 -c`, then the box: box.img + metadata.json in a tar.
# Everything it mounts or attaches is undone on exit, success or not; OUT appears only when
# complete.
set -euo pipefail

OUT=${1:?usage: build-box.sh OUT.box}
SIZE_GB=${BOX_SIZE_GB:-8}
SUITE=bookworm

[ "$(id -u)" = 0 ] || { echo "build-box.sh: needs root (losetup, mount, chroot)" >&2; exit 1; }
for tool in mmdebstrap losetup partx sfdisk mkfs.ext4 blkid grub-install qemu-img tar; do
  command -v "$tool" >/dev/null || { echo "build-box.sh: $tool missing (make vm-deps installs it)" >&2; exit 1; }
done
[ -d /usr/lib/grub/i386-pc ] || { echo "build-box.sh: grub-pc-bin missing (make vm-deps)" >&2; exit 1; }
KEY=$(find /usr/share/rubygems-integration /usr/lib/ruby /opt/vagrant -path '*vagrant*/keys/vagrant.pub' 2>/dev/null | head -1 || true)
[ -n "$KEY" ] || { echo "build-box.sh: Vagrant's insecure public key (keys/vagrant.pub) not found: install vagrant" >&2; exit 1; }

# The mirrors this machine's apt uses (one-line or deb822 sources), else Debian's own.
sources=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
MIRROR=$(grep -v '^ *#' <<<"$sources" | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)
SECURITY=$(grep -v '^ *#' <<<"$sources" | grep -oE 'https?://[^ ]+/debian-security/?( |$)' | head -1 | tr -d ' ' || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}

OUT=$(realpath -m "$OUT")
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d "$(dirname "$OUT")/box-build.XXXXXX")
RAW=$WORK/disk.raw
MNT=$WORK/root
LOOP=""

cleanup() {
  set +e
  for d in dev/pts dev proc sys; do mountpoint -q "$MNT/$d" && umount "$MNT/$d"; done
  mountpoint -q "$MNT" && umount "$MNT"
  if [ -n "$LOOP" ]; then partx -d "$LOOP" 2>/dev/null; losetup -d "$LOOP"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { echo "build-box: $*"; }

step "disk: ${SIZE_GB} GB raw, one partition"
truncate -s "${SIZE_GB}G" "$RAW"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$RAW"
LOOP=$(losetup -f --show "$RAW")
partx -a "$LOOP" 2>/dev/null || true  # the kernel may have added it already
PART=${LOOP}p1
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -b "$PART" ] && break; sleep 0.2; done
[ -b "$PART" ] || { echo "build-box.sh: no partition device $PART after partx -a" >&2; exit 1; }
mkfs.ext4 -q -L root "$PART"
UUID=$(blkid -s UUID -o value "$PART")
mkdir -p "$MNT"
mount "$PART" "$MNT"

step "Debian $SUITE from $MIRROR (mmdebstrap)"
mmdebstrap --variant=important --quiet \
  --include=linux-image-amd64,grub-pc,openssh-server,sudo,rsync,ifupdown,isc-dhcp-client,iproute2,kmod,ca-certificates \
  --aptopt='Acquire::Languages "none"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  "$SUITE" "$MNT" \
  "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY $SUITE-security main"

step "system: fstab, network, user vagrant, ssh"
echo "UUID=$UUID / ext4 errors=remount-ro 0 1" > "$MNT/etc/fstab"
echo bookworm > "$MNT/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 bookworm\n' > "$MNT/etc/hosts"
cat > "$MNT/etc/network/interfaces" <<'EOF'
source /etc/network/interfaces.d/*
auto lo
iface lo inet loopback
auto eth0
iface eth0 inet dhcp
EOF
chroot "$MNT" useradd -m -s /bin/bash -U vagrant
echo 'vagrant:vagrant' | chroot "$MNT" chpasswd
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' > "$MNT/etc/sudoers.d/vagrant"
chmod 440 "$MNT/etc/sudoers.d/vagrant"
VUID=$(chroot "$MNT" id -u vagrant)
install -d -m 700 -o "$VUID" -g "$VUID" "$MNT/home/vagrant/.ssh"
install -m 600 -o "$VUID" -g "$VUID" "$KEY" "$MNT/home/vagrant/.ssh/authorized_keys"
echo 'UseDNS no' > "$MNT/etc/ssh/sshd_config.d/vagrant.conf"
# No host keys in the image: every VM makes its own on its first boot.
rm -f "$MNT"/etc/ssh/ssh_host_*
mkdir -p "$MNT/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  > "$MNT/etc/systemd/system/ssh.service.d/host-keys.conf"

if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  step "CA certificates added on this machine: $(cd /usr/local/share/ca-certificates && echo *.crt)"
  cp /usr/local/share/ca-certificates/*.crt "$MNT/usr/local/share/ca-certificates/"
  chroot "$MNT" update-ca-certificates >/dev/null
fi

step "boot loader: grub-pc in the MBR, root=UUID=$UUID"
cat > "$MNT/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF
for d in dev dev/pts proc sys; do mount --bind "/$d" "$MNT/$d"; done
# grub-install finds where a partition starts with `udevadm info --query path --name DEV` and
# its sysfs `start` (its other way, HDIO_GETGEO, fails on loop partitions). Without udev, a
# stand-in that answers that one question from sysfs.
if ! command -v udevadm >/dev/null; then
  mkdir -p "$WORK/bin"
  cat > "$WORK/bin/udevadm" <<'EOF'
#!/bin/sh
dev=""; prev=""
for a in "$@"; do case $a in --name=*) dev=${a#--name=};; esac; [ "$prev" = --name ] && dev=$a; prev=$a; done
[ -n "$dev" ] && [ -e "/sys/class/block/${dev##*/}" ] || exit 1
p=$(realpath "/sys/class/block/${dev##*/}"); echo "${p#/sys}"
EOF
  chmod +x "$WORK/bin/udevadm"
  export PATH="$WORK/bin:$PATH"
fi
grub-install --target=i386-pc --boot-directory="$MNT/boot" --modules="part_msdos ext2" "$LOOP"
chroot "$MNT" grub-mkconfig -o /boot/grub/grub.cfg 2>/dev/null || true
sed -i -E "s#root=/dev/loop[0-9]+p1#root=UUID=$UUID#g" "$MNT/boot/grub/grub.cfg" 2>/dev/null || true
if ! grep -q "root=UUID=$UUID" "$MNT/boot/grub/grub.cfg" 2>/dev/null; then
  # grub-mkconfig could not probe this disk: a grub.cfg by hand (the kernel's /vmlinuz link).
  cat > "$MNT/boot/grub/grub.cfg" <<EOF
serial --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=1
insmod part_msdos
insmod ext2
search --no-floppy --fs-uuid --set=root $UUID
menuentry Debian {
  linux /vmlinuz root=UUID=$UUID ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0
  initrd /initrd.img
}
EOF
fi
grep -q "root=UUID=$UUID" "$MNT/boot/grub/grub.cfg"

step "clean and compress"
chroot "$MNT" apt-get clean
rm -rf "$MNT"/var/lib/apt/lists/* "$MNT"/var/log/*.log
for d in sys proc dev/pts dev; do umount "$MNT/$d"; done
fstrim "$MNT" >/dev/null 2>&1 || true
umount "$MNT"
partx -d "$LOOP" 2>/dev/null || true
losetup -d "$LOOP"
LOOP=""
qemu-img convert -O qcow2 -c "$RAW" "$WORK/box.img"
rm -f "$RAW"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %s}\n' "$SIZE_GB" > "$WORK/metadata.json"
tar -C "$WORK" -cf "$WORK/out.box" metadata.json box.img
mv "$WORK/out.box" "$OUT"
step "$OUT: $(du -h "$OUT" | cut -f1)"
