#!/usr/bin/env bash
# Installs everything ferry needs on a fresh Debian 12 machine, idempotently:
# Debian packages (QEMU, qemu-utils, libvirt, busybox, sshd, ...), npm packages,
# the build (tsc, then the bundle that bin/ferry runs).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  qemu-system-x86 qemu-utils busybox-static cpio
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  openssh-server openssh-client rsync zstd
  procps iproute2 util-linux file tmux
  e2fsprogs fdisk gdisk parted dosfstools kpartx lvm2
  debootstrap grub-pc-bin grub2-common ovmf swtpm swtpm-tools
  tgt qemu-block-extra
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ferry setup: missing Debian packages: ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "ferry setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# libvirtd's QEMU driver will not start without the user it was built for,
# which only libvirt-daemon-system (not installed: it starts a host-wide
# libvirtd) creates. The lab's libvirtds run QEMU as root.
if ! getent passwd libvirt-qemu >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ferry setup: the user libvirt-qemu is missing; run as root" >&2
    exit 1
  fi
  useradd --system --user-group --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu
fi

# npm packages: reinstall only when the lock file changed since the last install.
stamp=node_modules/.ferry-lock-stamp
lockhash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lockhash" ]; then
  npm ci --no-audit --no-fund >&2
  echo "$lockhash" > "$stamp"
fi

npx tsc -p tsconfig.json >&2
node scripts/bundle.mjs >&2
