#!/usr/bin/env bash
# Host side of the counter guest under QEMU TCG: boots counter.elf, then checks
# its serial output with tests/integration/check-counter.sh. --migrate stops
# the guest after a few reports, saves it with QEMU's own migration to a file
# and continues it in a second QEMU, then checks both outputs as one stream:
# this proves the guest and the checker handle a cut, independently of wafer.
#
# usage: check-counter-qemu.sh [--disk] [--migrate|--live] COUNTER.elf CHECK-COUNTER.sh CMDLINE
#   --disk     attach a scratch 1 MiB virtio-blk disk (for blk=1)
#   --migrate  the stop, save and restore run described above
#   --live     the same with a live (pre-copy) save: the guest keeps running
#              while QEMU copies it. Not in the meson suite: in ~30 runs
#              under QEMU 7.2 TCG, one destination resumed with the register
#              copy of the counter current and its RAM copy one report old,
#              i.e. a page written during pre-copy never arrived.
# Environment: QEMU (default qemu-system-x86_64).
set -u

die() { echo "check-counter-qemu: $*" >&2; exit 2; }

disk=0
migrate=0
while [[ $# -gt 0 && $1 == --* ]]; do
	case $1 in
	--disk) disk=1; shift ;;
	--migrate) migrate=1; shift ;;
	--live) migrate=2; shift ;;
	*) die "unknown option $1" ;;
	esac
done
[[ $# -eq 3 ]] || die "usage: check-counter-qemu.sh [--disk] [--migrate|--live] COUNTER.elf CHECK-COUNTER.sh CMDLINE"
guest=$1 checker=$2 cmdline=$3
here=$(cd "$(dirname "$0")" && pwd)
qemu=${QEMU:-qemu-system-x86_64}
work=$(mktemp -d "${TMPDIR:-/tmp}/check-counter.XXXXXX") || die "mktemp failed"
qpid=""
cleanup() {
	[[ -n $qpid ]] && kill "$qpid" 2>/dev/null
	{ exec 3>&- 4>&-; } 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

extra=()
if [[ $disk == 1 ]]; then
	truncate -s 1M "$work/disk.img" || die "cannot create a disk image"
	extra=(-drive "if=none,id=d0,file=$work/disk.img,format=raw"
	       -device virtio-blk-pci,drive=d0,disable-legacy=on)
fi

if [[ $migrate == 0 ]]; then
	"$here/run-qemu.sh" --timeout 120 --expect-status 0 --expect-output 'counter done' \
		"$guest" "$cmdline" "${extra[@]}" >"$work/out"
	rc=$?
	cat "$work/out"
	[[ $rc == 0 ]] || exit 1
	exec "$checker" --done "$work/out"
fi

# Both sides must describe the same machine for QEMU's migration. Without
# the global run state in the stream, the destination starts running on its
# own even though the source was stopped.
args=(-accel tcg -M pc -cpu qemu64 -m 128 -display none -nic none -no-reboot
      -global migration.store-global-state=off
      -device isa-debug-exit,iobase=0xf4,iosize=0x04
      -kernel "$guest" -append "$cmdline" "${extra[@]}")

mkfifo "$work/mon.in" "$work/mon.out" || die "mkfifo failed"
timeout -k 5 120 "$qemu" "${args[@]}" -serial "file:$work/src.out" -monitor "pipe:$work/mon" \
	</dev/null >/dev/null 2>"$work/src.err" &
qpid=$!
# Read-write opens never block; QEMU has its own ends. The monitor's replies
# are a few hundred bytes: the fifo holds them unread.
exec 3<>"$work/mon.in"
exec 4<>"$work/mon.out"
for _ in $(seq 600); do
	grep -q '^tick=5 ' "$work/src.out" 2>/dev/null && break
	kill -0 "$qpid" 2>/dev/null || break
	sleep 0.1
done
grep -q '^tick=5 ' "$work/src.out" || { cat "$work/src.out" "$work/src.err" >&2; die "the source never printed tick=5"; }
# HMP's migrate (without -d) answers once the state is written; quit waits
# behind it in the monitor's input.
stop='stop\n'
[[ $migrate == 2 ]] && stop=''
printf "${stop}migrate_set_parameter max-bandwidth 1G\\nmigrate \"exec:cat > %s\"\\nquit\\n" "$work/state" >&3
wait "$qpid"
qpid=""
exec 3>&- 4>&-
[[ -s $work/state ]] || { cat "$work/src.err" >&2; die "no migration stream was written"; }
echo "check-counter-qemu: source stopped after $(grep -c '^tick=' "$work/src.out") reports; state $(stat -c %s "$work/state") bytes" >&2

timeout -k 5 120 "$qemu" "${args[@]}" -serial "file:$work/dst.out" -monitor none \
	-incoming "exec:cat $work/state" </dev/null >/dev/null 2>"$work/dst.err"
s=$?
cat "$work/src.out"
echo "--- restored:"
cat "$work/dst.out"
# isa-debug-exit: (0 << 1) | 1.
[[ $s == 1 ]] || { cat "$work/dst.err" >&2; echo "check-counter-qemu: FAIL: the restored QEMU exited $s" >&2; exit 1; }
grep -q '^tick=' "$work/dst.out" || { echo "check-counter-qemu: FAIL: no report after the restore" >&2; exit 1; }
exec "$checker" --done "$work/src.out" "$work/dst.out"
