#!/bin/bash
# The KVM test VM: run a command on a real /dev/kvm. Where the host has a
# hardware KVM (kvm_intel or kvm_amd) the command runs right here, as the
# caller. Otherwise it runs, as root, inside a throwaway VM under QEMU's TCG,
# which emulates AMD SVM with nested paging: Debian's generic kernel loads
# kvm-amd there, the host's / is mounted read-only over 9p, the checkout (and
# each --rw DIR) read-write at the same path, and the command runs chrooted
# into that -- the same binaries and paths, on real KVM. Everything inside
# runs under TCG (a guest PIO exit costs ~64 us, a Linux boot ~9 s): compare
# ratios, never absolute times.
#
# Usage: tests/kvmvm/run.sh [options] [--] COMMAND [ARG...]
#   --mode auto|direct|vm   (WAFER_KVMVM, default auto: direct only on a
#                           hardware KVM; a software KVM such as PVM runs guest
#                           kernels in its instruction emulator, so the VM is used)
#   --timeout S             kill the VM after S seconds (WAFER_KVMVM_TIMEOUT, 3600)
#   --stall S               a VM whose heartbeat stops for S seconds has wedged
#                           and is killed (WAFER_KVMVM_STALL, 300)
#   --memory SIZE           VM RAM (WAFER_KVMVM_MEMORY, 8G)
#   --cpus N                VM vCPUs (WAFER_KVMVM_CPUS, 1; see README)
#   --rw DIR                also share DIR read-write (repeatable)
#   --prepare               build the VM image (cached) and exit
#   --print-mode            print "direct (why)" or "vm (why)": where commands
#                           would run; then exit
# The command sees KVMVM=direct or KVMVM=vm (where it runs); its exit status
# is this script's; 125 means the VM itself failed
# (no image, no /dev/kvm inside, a crash, a wedge, the timeout), with a reason.
# The image (Debian's linux-image-amd64 + a busybox initramfs) is built once and
# cached in $WAFER_CACHE/kvmvm (guest/defaults.sh); the console log of the last
# run is kept there too.
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/guest/defaults.sh"

die() { echo "kvmvm: $*" >&2; exit 125; }
say() { echo "kvmvm: $*" >&2; }

mode=${WAFER_KVMVM:-auto}
timeout_s=${WAFER_KVMVM_TIMEOUT:-3600}
stall_s=${WAFER_KVMVM_STALL:-300}
memory=${WAFER_KVMVM_MEMORY:-8G}
cpus=${WAFER_KVMVM_CPUS:-1}
rw=("$src")
prepare=0
print_mode=0
usage="usage: $0 [--mode auto|direct|vm] [--timeout S] [--stall S] [--memory SIZE] [--cpus N] [--rw DIR]... [--prepare] [--] COMMAND [ARG...]"
while [ $# -gt 0 ]; do
	case $1 in
	--mode) mode=${2:?$usage}; shift 2 ;;
	--timeout) timeout_s=${2:?$usage}; shift 2 ;;
	--stall) stall_s=${2:?$usage}; shift 2 ;;
	--memory) memory=${2:?$usage}; shift 2 ;;
	--cpus) cpus=${2:?$usage}; shift 2 ;;
	--rw) [ -d "${2:-}" ] || die "--rw ${2:-}: not a directory"; rw+=("$(cd "$2" && pwd)"); shift 2 ;;
	--prepare) prepare=1; shift ;;
	--print-mode) print_mode=1; shift ;;
	--help|-h) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	--) shift; break ;;
	-*) die "$1: unknown option; $usage" ;;
	*) break ;;
	esac
done
[ $prepare -eq 1 ] || [ $print_mode -eq 1 ] || [ $# -gt 0 ] || die "no command; $usage"
case $mode in auto|direct|vm) ;; *) die "--mode $mode: expected auto, direct or vm" ;; esac
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "--timeout $timeout_s: expected seconds"
[[ $stall_s =~ ^[1-9][0-9]*$ ]] || die "--stall $stall_s: expected seconds"
[[ $cpus =~ ^[1-9][0-9]*$ ]] || die "--cpus $cpus: expected a count"

# A hardware KVM is one whose vendor module is loaded; kvm_pvm (and any other
# software KVM) emulates guest kernel code and is not what the tests are for.
hardware_kvm() {
	[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	[ -d /sys/module/kvm_pvm ] && return 1
	[ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]
}
why="--mode $mode"
if [ "$mode" = auto ]; then
	if hardware_kvm; then
		mode=direct why="this host has a hardware KVM"
	elif [ -d /sys/module/kvm_pvm ]; then
		mode=vm why="this host's /dev/kvm is PVM, a software KVM that emulates guest kernels"
	else
		mode=vm why="this host has no usable hardware /dev/kvm"
	fi
fi
if [ $print_mode -eq 1 ]; then
	echo "$mode ($why)"
	exit 0
fi
if [ "$mode" = direct ]; then
	[ $prepare -eq 0 ] || exit 0
	KVMVM=direct exec timeout --foreground --kill-after=10 "$timeout_s" "$@"
fi

# ---- the image ------------------------------------------------------------
kdir=$WAFER_CACHE/kernel-amd64
vmdir=$WAFER_CACHE/kvmvm
modules="kvm_amd 9p 9pnet_virtio virtio_pci virtio_rng tun veth"
image_prepare() {
	local key overlay tmp
	WAFER_KERNEL_PKG=linux-image-amd64 "$src/guest/fetch-kernel.sh" "$kdir" >/dev/null ||
		die "cannot fetch Debian's generic kernel (linux-image-amd64) into $kdir"
	# The image depends on the kernel, the module list, /init and the builder.
	key=$({ cat "$kdir/kver"; echo "$modules"; cat "$src/tests/kvmvm/init" \
		"$src/guest/build-initramfs.sh"; } | sha256sum | cut -c1-16)
	initrd=$vmdir/initramfs-$key.cpio.gz
	[ -f "$initrd" ] && return 0
	mkdir -p "$vmdir" || die "cannot create $vmdir"
	overlay=$(mktemp -d "${TMPDIR:-/tmp}/kvmvm-overlay.XXXXXX")
	install -m 755 "$src/tests/kvmvm/init" "$overlay/init"
	# A temporary name of this run's own: two runs may build at once.
	tmp=$initrd.tmp.$$
	"$src/guest/build-initramfs.sh" "$kdir" "$tmp" --modules "$modules" --overlay "$overlay" >&2
	local rc=$?
	rm -rf "$overlay"
	[ $rc -eq 0 ] || { rm -f "$tmp"; die "building the KVM test VM's initramfs failed"; }
	mv "$tmp" "$initrd"
	# Images of an older init or module list are not used again.
	find "$vmdir" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -name "${initrd##*/}" -delete
}
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found; install qemu-system-x86"
image_prepare
[ $prepare -eq 0 ] || exit 0
say "running inside the nested-KVM test VM ($why): everything runs under QEMU's TCG emulation (a Linux boot takes ~30 s, not ~1 s)"
[ "$(id -u)" -eq 0 ] || die "the KVM test VM shares / through QEMU's 9p as the caller; run it as root"

# ---- one run ---------------------------------------------------------------
ctl=$(mktemp -d "${TMPDIR:-/tmp}/kvmvm.XXXXXX") || die "mktemp failed"
qpid='' tpid=''
cleanup() {
	[ -z "$qpid" ] || kill -9 "$qpid" 2>/dev/null
	[ -z "$tpid" ] || kill "$tpid" 2>/dev/null
	rm -rf "$ctl"
}
trap cleanup EXIT
trap 'die "interrupted"' INT TERM

# The command, with the caller's directory and exported environment.
{
	export -p | grep -vE '^declare -x (PWD|OLDPWD|SHLVL|_)='
	printf 'export KVMVM=vm\ncd %q || exit 125\nexec' "$PWD"
	printf ' %q' "$@"
	echo
} > "$ctl/cmd.sh"
echo "KVMVM_RW='${rw[*]}'" > "$ctl/params"
: > "$ctl/output"

shares=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$ctl,mount_tag=wctl,security_model=none,multidevs=remap")
i=0
for d in "${rw[@]}"; do
	shares+=(-virtfs "local,path=$d,mount_tag=wrw$i,security_model=none,multidevs=remap")
	i=$((i + 1))
done
console=$vmdir/console.log
qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "$cpus" -m "$memory" \
	-nodefaults -no-user-config -display none -monitor none -no-reboot \
	-serial "file:$console" -device virtio-rng-pci \
	-kernel "$kdir/vmlinuz" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 quiet mitigations=off rdinit=/init" \
	"${shares[@]}" </dev/null >"$ctl/qemu.log" 2>&1 &
qpid=$!
tail -n +1 -f --pid=$qpid "$ctl/output" &
tpid=$!

start=$(date +%s)
reason=''
while kill -0 "$qpid" 2>/dev/null; do
	sleep 2
	now=$(date +%s)
	if [ $((now - start)) -ge "$timeout_s" ]; then
		reason="timed out after ${timeout_s}s"
	elif [ -f "$ctl/heartbeat" ]; then
		beat=$(stat -c %Y "$ctl/heartbeat")
		[ $((now - beat)) -lt "$stall_s" ] || reason="wedged: no heartbeat for $((now - beat))s (limit ${stall_s}s)"
	elif [ $((now - start)) -ge "$stall_s" ]; then
		reason="no heartbeat ${stall_s}s after start: the VM did not boot"
	fi
	[ -z "$reason" ] || { kill -9 "$qpid" 2>/dev/null; break; }
done
wait "$qpid" 2>/dev/null
qpid=''
wait "$tpid" 2>/dev/null
tpid=''
if [ -z "$reason" ] && [ -f "$ctl/rc" ]; then
	exit "$(cat "$ctl/rc")"
fi
[ -n "$reason" ] || reason="the VM stopped without an exit status"
say "FAIL: $reason; the last console lines ($console):"
tail -n 15 "$console" >&2
[ -s "$ctl/qemu.log" ] && { say "QEMU said:"; tail -n 5 "$ctl/qemu.log" >&2; }
exit 125
