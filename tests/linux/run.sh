#!/bin/bash
# The Linux lane: boot Debian's cloud kernel with wafer's default initramfs on
# 2 vCPUs and the baseline CPU template; pass on the guest's marker line
# (WAFER-LINUX-OK kernel=<kver> cpus=2) followed by a clean exit of wafer.
# With --devices the guest also gets an ext4 disk, a tap in a private network
# namespace and an RNG, and Linux's own virtio drivers must use all three
# (guest side: tests/linux/overlay/etc/wafer-test.d/virtio-*).
#
# With --snapshot (wafer only) the guest stays up with a shell on the console
# (wafer.end=shell): once the marker is out, `wafer snapshot` writes it to a
# directory, the VM is killed, `wafer run --restore` brings it back, and the
# restored guest must answer a command typed on its serial console and then
# power off cleanly.
#
# With --migrate (wafer only) the guest, again with a console shell, moves to a
# second wafer (`wafer run --incoming tcp:127.0.0.1:PORT`) by `wafer migrate`
# while it runs; the destination's guest must answer a typed command and power
# off cleanly, and the source must exit 0 after the hand-over.
#
# Usage: tests/linux/run.sh [--qemu] [--devices] [--snapshot] [--migrate] [WAFER_BIN]
#   WAFER_BIN               wafer binary (default: $WAFER_BIN or build/wafer)
#   --qemu                  boot under qemu-system-x86_64 -accel tcg instead of
#                           wafer: checks the guest side where /dev/kvm is absent
#   --devices               add virtio-blk, virtio-net and virtio-rng; the guest
#                           checks a host file's sha256, writes files, pings the
#                           host; the host then reads the image with debugfs and
#                           checks the namespace's ICMP and tap counters. Needs
#                           root (network namespace) and e2fsprogs.
# Environment:
#   WAFER_LINUX_TIMEOUT     seconds before the boot counts as hung (default 3600)
#   WAFER_LINUX_PROGRESS    seconds between progress lines (default 30)
#   WAFER_LINUX_CPUS        vCPUs, and the count the marker must show (default 2)
#   WAFER_LINUX_MEMORY      guest memory (default 512M)
#   WAFER_LINUX_CMDLINE     kernel command line (default: guest/defaults.sh)
#   WAFER_LINUX_MODULES     modules for the initramfs (default: build-initramfs.sh's)
#   WAFER_GUEST_DIR         where the initramfs, boot log and disk image go
#                           (default: <dir of WAFER_BIN>/guest)
#   WAFER_CACHE, WAFER_KERNEL_DIR  kernel cache (see guest/defaults.sh)
#   WAFER_KVM_REQUIRED=1    no usable /dev/kvm is a failure, not a skip (the KVM lane)
# Exit: 0 pass, 1 fail, 77 skip (no usable /dev/kvm; --devices: not root),
# as meson expects.
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/guest/defaults.sh"

mode=wafer
devices=0
snapshot=0
migrate=0
wafer=${WAFER_BIN:-}
while [ $# -gt 0 ]; do
	case $1 in
	--qemu) mode=qemu ;;
	--devices) devices=1 ;;
	--snapshot) snapshot=1 ;;
	--migrate) migrate=1 ;;
	-*) echo "usage: $0 [--qemu] [--devices] [--snapshot] [--migrate] [WAFER_BIN]" >&2; exit 1 ;;
	*) wafer=$1 ;;
	esac
	shift
done
wafer=${wafer:-$src/build/wafer}

timeout_s=${WAFER_LINUX_TIMEOUT:-3600}
progress_s=${WAFER_LINUX_PROGRESS:-30}
cpus=${WAFER_LINUX_CPUS:-2}
memory=${WAFER_LINUX_MEMORY:-512M}
cmdline=${WAFER_LINUX_CMDLINE:-$WAFER_DEFAULT_CMDLINE}

fail() { echo "linux: FAIL: $*"; exit 1; }
log() { echo "linux: $*"; }

# Runs on every exit, including a meson timeout's SIGTERM: a VMM left behind
# would hold the tap, the disk image and a CPU.
pid='' netns='' holder=''
# shellcheck disable=SC2317  # reached through the trap
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null
	[ -z "$holder" ] || kill "$holder" 2>/dev/null
	[ -z "$netns" ] || ip netns del "$netns" 2>/dev/null
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

# wait_for FILE PATTERN WHAT: until PATTERN is in FILE (serial CR LF removed),
# while $pid lives, within timeout_s; progress lines as run.sh prints them.
wait_for() {
	local file=$1 pat=$2 what=$3 start now next
	start=$(date +%s)
	next=$((start + progress_s))
	while ! tr -d '\r' < "$file" 2>/dev/null | grep -aq -- "$pat"; do
		kill -0 "$pid" 2>/dev/null || { tr -d '\r' < "$file" | tail -n 30; fail "wafer exited before $what"; }
		now=$(date +%s)
		[ $((now - start)) -lt "$timeout_s" ] || { tr -d '\r' < "$file" | tail -n 30; fail "no $what within ${timeout_s}s"; }
		if [ "$now" -ge "$next" ]; then
			log "$((now - start))s: waiting for $what: $(tail -c 2000 "$file" | tr '\r' '\n' | grep -av '^[[:space:]]*$' | tail -n 1 | cut -c 1-120)"
			next=$((now + progress_s))
		fi
		sleep 1
	done
}


# boot_shell NAME LOG: wafer boots the guest with a shell left on its console
# (wafer.end=shell) in the background ($pid); returns once the shell is up.
boot_shell() {
	log "booting with a console shell: $wafer run --name $1 ... (log: $2)"
	"$wafer" run --name "$1" --kernel "$WAFER_KERNEL_DIR/vmlinuz" --initrd "$initrd" \
		--cmdline "$cmdline wafer.end=shell" --cpus "$cpus" --memory "$memory" \
		--cpu-template baseline < /dev/null > "$2" 2>&1 &
	pid=$!
	wait_for "$2" "WAFER-LINUX-OK kernel=$kver cpus=$cpus" "the boot marker"
	wait_for "$2" "wafer.end=shell" "the console shell"
	sleep 2
}

# answer_poweroff LOG FIFO WHAT TAG: type a command only a live shell can
# answer (arithmetic and the boot id, not an echo of input) into FIFO, the
# console of the wafer $pid logging to LOG; then power the guest off, which
# must end wafer with status 0.
answer_poweroff() {
	local log_=$1 fifo=$2 what=$3 tag=$4 waited=0 rc
	printf 'echo %s-ANSWER-$((6*7))-$(cat /proc/sys/kernel/random/boot_id | cut -c1-8)\n' "$tag" > "$fifo"
	wait_for "$log_" "$tag-ANSWER-42-" "$what's answer on the serial console"
	log "$what answered: $(tr -d '\r' < "$log_" | grep -a -o "$tag-ANSWER-42-[0-9a-f]*" | tail -n 1)"
	printf 'poweroff -f\n' > "$fifo"
	while kill -0 "$pid" 2>/dev/null && [ $waited -lt 300 ]; do sleep 1; waited=$((waited + 1)); done
	wait "$pid"
	rc=$?
	pid=''
	kill "$holder" 2>/dev/null
	holder=''
	rm -f "$fifo"
	[ $rc -eq 0 ] || { tr -d '\r' < "$log_" | tail -n 30; fail "$what: wafer exited with status $rc (expected 0 after poweroff)"; }
}

# console_fifo FIFO: a FIFO for a guest's console, kept open by a holder so
# that wafer sees no end of input while the test types. (On tmpfs: 9p, as in
# the KVM test VM, cannot hold FIFOs.)
console_fifo() {
	rm -f "$1"
	mkfifo "$1" || fail "mkfifo $1"
	sleep 100000 > "$1" &
	holder=$!
}

if [ $mode = wafer ]; then
	# Checked before any download: without KVM nothing here can pass.
	# In the KVM lane (WAFER_KVM_REQUIRED=1) a missing KVM is a failure.
	no_kvm() {
		[ "${WAFER_KVM_REQUIRED:-0}" = 1 ] && fail "$1 (WAFER_KVM_REQUIRED=1)"
		echo "linux: SKIP: $1"
		exit 77
	}
	[ -e /dev/kvm ] || no_kvm "/dev/kvm does not exist (no KVM on this host; tests/kvmvm/run.sh gives one)"
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || no_kvm "/dev/kvm is not read-writable by $(id -un) (join the kvm group)"
	[ -x "$wafer" ] || fail "wafer binary $wafer not found; build it (ninja -C build) or pass its path"
	guestdir=${WAFER_GUEST_DIR:-$(cd "$(dirname "$wafer")" && pwd)/guest}
else
	command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
	guestdir=${WAFER_GUEST_DIR:-$src/build/guest}
fi
mkdir -p "$guestdir" || fail "cannot create $guestdir"
if [ $devices = 1 ]; then
	. "$src/tests/linux/devices.sh"
	devices_preflight
fi

"$src/guest/fetch-kernel.sh" "$WAFER_KERNEL_DIR" || fail "fetching the kernel failed"
kver=$(cat "$WAFER_KERNEL_DIR/kver")
initrd=$guestdir/initramfs.cpio.gz
modargs=()
[ -z "${WAFER_LINUX_MODULES:-}" ] || modargs=(--modules "$WAFER_LINUX_MODULES")
if [ $devices = 1 ]; then
	initrd=$guestdir/initramfs-devices.cpio.gz
	modargs+=(--overlay "$src/tests/linux/overlay")
fi
"$src/guest/build-initramfs.sh" "$WAFER_KERNEL_DIR" "$initrd" "${modargs[@]}" ||
	fail "building the initramfs failed"

bootlog=$guestdir/linux-boot.$mode.log
devargs=() prefix=()
if [ $devices = 1 ]; then
	bootlog=$guestdir/linux-boot.$mode-devices.log
	devices_setup  # sets cmdline additions, devargs and prefix
fi
[ $snapshot = 1 ] && [ $mode != wafer ] && fail "--snapshot needs wafer"
if [ $snapshot = 1 ]; then
	. "$src/tests/linux/snapshot.sh"
	snapshot_run   # boots, snapshots, restores, checks; exits
fi
[ $migrate = 1 ] && [ $mode != wafer ] && fail "--migrate needs wafer"
if [ $migrate = 1 ]; then
	. "$src/tests/linux/migrate.sh"
	migrate_run    # boots, migrates, checks the destination; exits
fi
if [ $mode = wafer ]; then
	cmd=("$wafer" run --kernel "$WAFER_KERNEL_DIR/vmlinuz" --initrd "$initrd"
		--cmdline "$cmdline" --cpus "$cpus" --memory "$memory" --cpu-template baseline)
else
	cmd=(qemu-system-x86_64 -accel tcg -m "$memory" -smp "$cpus" -nographic -no-reboot
		-kernel "$WAFER_KERNEL_DIR/vmlinuz" -initrd "$initrd" -append "$cmdline")
fi
cmd=("${prefix[@]}" "${cmd[@]}" "${devargs[@]}")
log "booting: ${cmd[*]}"
log "console log: $bootlog (timeout ${timeout_s}s)"

# stdin from /dev/null: the VMM must not wait on or steal the terminal.
"${cmd[@]}" < /dev/null > "$bootlog" 2>&1 &
pid=$!

last_line() {
	# Serial output ends lines with CR LF; show the newest non-empty line.
	tail -c 4096 "$bootlog" 2>/dev/null | tr '\r' '\n' | grep -av '^[[:space:]]*$' |
		tail -n 1 | cut -c 1-160
}

start=$(date +%s)
next=$((start + progress_s))
timed_out=0
while kill -0 "$pid" 2>/dev/null; do
	now=$(date +%s)
	if [ $((now - start)) -ge "$timeout_s" ]; then
		timed_out=1
		kill "$pid" 2>/dev/null
		for _ in 1 2 3 4 5; do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
		kill -9 "$pid" 2>/dev/null
		break
	fi
	if [ "$now" -ge "$next" ]; then
		log "$((now - start))s: $(last_line)"
		next=$((now + progress_s))
	fi
	sleep 1
done
wait "$pid"
rc=$?
pid=''
elapsed=$(( $(date +%s) - start ))

show_tail() {
	echo "linux: last 40 console lines:"
	tr -d '\r' < "$bootlog" | tail -n 40 | sed 's/^/  | /'
}

# A digit after the count would make it a different count (cpus=2 vs cpus=20).
marker=$(tr -d '\r' < "$bootlog" |
	grep -a -o "WAFER-LINUX-OK kernel=$kver cpus=[0-9]*" | head -n 1)
if [ $timed_out -eq 1 ]; then
	show_tail
	fail "no power-off within ${timeout_s}s (marker: ${marker:-none})"
fi
if tr -d '\r' < "$bootlog" | grep -aq 'Kernel panic'; then
	show_tail
	fail "the guest kernel panicked (exit status $rc)"
fi
if [ -z "$marker" ]; then
	show_tail
	fail "no 'WAFER-LINUX-OK kernel=$kver' line; ${mode} exited with status $rc after ${elapsed}s"
fi
if [ "$marker" != "WAFER-LINUX-OK kernel=$kver cpus=$cpus" ]; then
	show_tail
	fail "guest saw the wrong CPU count: '$marker', expected cpus=$cpus"
fi
if [ $rc -ne 0 ]; then
	show_tail
	fail "marker seen but $mode exited with status $rc (expected 0 after power-off)"
fi
tr -d '\r' < "$bootlog" | grep -a '^wafer-init: ' | sed 's/^/linux: guest: /'
log "$marker"
if [ $devices = 1 ]; then
	devices_check
	log "PASS: booted $kver on $cpus vCPUs, used virtio-blk, virtio-net and virtio-rng, and powered off in ${elapsed}s ($mode)"
	exit 0
fi
log "PASS: booted $kver on $cpus vCPUs and powered off in ${elapsed}s ($mode)"
exit 0
