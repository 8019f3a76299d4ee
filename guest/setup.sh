#!/bin/bash
# One command from a fresh Debian checkout to a booted Linux guest: install
# the build and runtime packages, build wafer, fetch Debian's cloud kernel,
# build the default initramfs and boot it under wafer on the serial console.
# Usage: guest/setup.sh [--deps-only] [extra wafer run arguments...]
#   --deps-only: install the packages and stop (what .ci/run uses).
#   WAFER_CPUS (2), WAFER_MEMORY (512M), WAFER_CMDLINE (guest/defaults.sh),
#   WAFER_BUILD_DIR (build), WAFER_SKIP_APT=1 to leave packages alone.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/guest/defaults.sh"

say() { echo "setup: $*"; }
die() { echo "setup: $*" >&2; exit 1; }

# qemu-system-x86 is only for the side-by-side tests and benchmarks;
# e2fsprogs and iproute2 for the Linux lane's disk image and tap (--devices).
packages=(meson ninja-build curl pkg-config gcc libcmocka-dev libjson-c-dev liburing-dev
	libseccomp-dev libmicrohttpd-dev zlib1g-dev liblzma-dev libzstd-dev liblz4-dev libcurl4-openssl-dev
	busybox-static cpio qemu-system-x86 e2fsprogs iproute2 util-linux clang libclang-rt-14-dev)

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root for '$*' and sudo is not installed; run it as root, or set WAFER_SKIP_APT=1"
	fi
}

if [ "${WAFER_SKIP_APT:-0}" != 1 ]; then
	missing=()
	for p in "${packages[@]}"; do
		dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]}"
		as_root apt-get update || die "apt-get update failed"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			"${missing[@]}" || die "apt-get install failed"
	else
		say "all packages already installed"
	fi
fi

if [ "${1:-}" = "--deps-only" ]; then
	exit 0
fi

build=${WAFER_BUILD_DIR:-$src/build}
case $build in /*) ;; *) build=$src/$build ;; esac
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" || die "meson setup $build failed"
fi
ninja -C "$build" || die "building wafer failed"

"$src/guest/fetch-kernel.sh" "$WAFER_KERNEL_DIR" || die "fetching the kernel failed"
initrd=$build/guest/initramfs.cpio.gz
"$src/guest/build-initramfs.sh" "$WAFER_KERNEL_DIR" "$initrd" || die "building the initramfs failed"

cmd=("$build/wafer" run --kernel "$WAFER_KERNEL_DIR/vmlinuz" --initrd "$initrd"
	--cmdline "${WAFER_CMDLINE:-$WAFER_DEFAULT_CMDLINE}"
	--cpus "${WAFER_CPUS:-2}" --memory "${WAFER_MEMORY:-512M}" --cpu-template baseline "$@")
# Without a hardware KVM here, the guest boots inside the nested-KVM test VM
# (tests/kvmvm/run.sh), whose /dev/kvm is real KVM under QEMU's emulation.
where=$("$src/tests/kvmvm/run.sh" --print-mode)
if [ "${where%% *}" = vm ]; then
	# tests/kvmvm/run.sh says so, and why it is slow, in one line.
	[ "$(id -u)" -eq 0 ] || die "the nested-KVM test VM needs root (it shares / over 9p and runs the guest as root); run: sudo $0"
	cmd=("$src/tests/kvmvm/run.sh" -- "${cmd[@]}")
elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	die "built everything, but $(id -un) cannot open /dev/kvm read-write; join its group
  ($(stat -c %G /dev/kvm)) and log in again"
fi
say "booting: ${cmd[*]}"
say "the guest prints 'WAFER-LINUX-OK kernel=... cpus=N' and powers off"
exec "${cmd[@]}"
