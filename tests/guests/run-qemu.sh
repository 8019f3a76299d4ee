#!/usr/bin/env bash
# Boot one wafer test guest (a PVH ELF) under QEMU TCG, so guests can be
# checked on machines without /dev/kvm, and map QEMU's exit status back to the
# guest's exit code.
#
# usage: run-qemu.sh [options] GUEST.elf [CMDLINE] [extra qemu args...]
#   --timeout SEC          kill QEMU after SEC seconds (default 60)
#   --input STR            write STR to the guest's COM1 ...
#   --input-after TEXT     ... once TEXT has appeared on COM1 (default: at once)
#   --expect-status S      S is a number or "reset"
#   --expect-output TEXT   COM1 output must contain TEXT (repeatable)
# CMDLINE is taken as the guest cmdline unless it starts with '-'.
# Environment: QEMU (default qemu-system-x86_64).
#
# Exit status (without --expect-*): the guest's exit code V from the exit port
# (QEMU's isa-debug-exit exits with (V << 1) | 1, so V is 0..127);
#   128  QEMU exited 0: the guest reset the machine (-no-reboot) or powered off
#   124  timeout;  125  QEMU itself failed (bad arguments, missing file).
# With --expect-*: 0 when every expectation holds, 1 otherwise.
set -u

STATUS_RESET=128
STATUS_TIMEOUT=124
STATUS_QEMU_ERROR=125

die() { echo "run-qemu: $*" >&2; exit 2; }

timeout_s=60
input=""
have_input=0
input_after=""
expect_status=""
expect_out=()

while [[ $# -gt 0 && $1 == --* ]]; do
	case $1 in
	--timeout) timeout_s=${2:?}; shift 2 ;;
	--input) input=${2?}; have_input=1; shift 2 ;;
	--input-after) input_after=${2?}; shift 2 ;;
	--expect-status) expect_status=${2:?}; shift 2 ;;
	--expect-output) expect_out+=("${2?}"); shift 2 ;;
	--) shift; break ;;
	*) die "unknown option $1" ;;
	esac
done
[[ $# -ge 1 ]] || die "usage: run-qemu.sh [options] GUEST.elf [CMDLINE] [qemu args...]"
guest=$1
shift
[[ -r $guest ]] || die "$guest: not readable"
cmdline=""
if [[ $# -gt 0 && $1 != -* ]]; then
	cmdline=$1
	shift
fi

qemu=${QEMU:-qemu-system-x86_64}
work=$(mktemp -d "${TMPDIR:-/tmp}/run-qemu.XXXXXX") || die "mktemp failed"
qpid=""
tailpid=""
cleanup() {
	[[ -n $qpid ]] && kill "$qpid" 2>/dev/null
	[[ -n $tailpid ]] && kill "$tailpid" 2>/dev/null
	{ exec 3>&-; } 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# -M pc: SeaBIOS and QEMU's PVH option ROM enter the guest at its PVH note.
args=(-accel tcg -M pc -cpu max -m 128 -nographic -monitor none -nic none
      -no-reboot -serial stdio
      -device isa-debug-exit,iobase=0xf4,iosize=0x04
      -kernel "$guest")
[[ -n $cmdline ]] && args+=(-append "$cmdline")
args+=("$@")

: >"$work/serial"
if [[ $have_input == 1 ]]; then
	mkfifo "$work/in" || die "mkfifo failed"
	timeout -k 5 "$timeout_s" "$qemu" "${args[@]}" <"$work/in" >"$work/serial" 2>"$work/stderr" &
	qpid=$!
	# Open the writer after QEMU's reader so neither open blocks forever;
	# read-write keeps the fifo from hitting EOF between our writes.
	exec 3<>"$work/in"
else
	timeout -k 5 "$timeout_s" "$qemu" "${args[@]}" </dev/null >"$work/serial" 2>"$work/stderr" &
	qpid=$!
fi
tail -s 0.1 -n +1 -f --pid="$qpid" "$work/serial" &
tailpid=$!

if [[ $have_input == 1 ]]; then
	while kill -0 "$qpid" 2>/dev/null; do
		if [[ -z $input_after ]] || tr -d '\r' <"$work/serial" | grep -qF -- "$input_after"; then
			printf '%s' "$input" >&3
			break
		fi
		sleep 0.05
	done
fi

wait "$qpid"
s=$?
qpid=""
wait "$tailpid" 2>/dev/null
tailpid=""
echo

if [[ $s == 124 || $s == 137 ]]; then
	echo "run-qemu: timed out after ${timeout_s}s" >&2
	status=$STATUS_TIMEOUT
elif [[ $s == 0 ]]; then
	echo "run-qemu: machine reset or powered off (QEMU exited 0)" >&2
	status=$STATUS_RESET
elif (( s % 2 == 1 )) && ! { [[ $s == 1 ]] && grep -v 'warning:' "$work/stderr" | grep -q "^${qemu##*/}:"; }; then
	status=$(( s >> 1 ))
	echo "run-qemu: guest exit status $status" >&2
else
	cat "$work/stderr" >&2
	echo "run-qemu: QEMU failed with status $s" >&2
	status=$STATUS_QEMU_ERROR
fi

if [[ -z $expect_status && ${#expect_out[@]} -eq 0 ]]; then
	exit "$status"
fi

fail=0
if [[ -n $expect_status ]]; then
	want=$expect_status
	[[ $want == reset ]] && want=$STATUS_RESET
	if [[ $status != "$want" ]]; then
		echo "run-qemu: FAIL: status $status, expected $expect_status" >&2
		fail=1
	fi
fi
for t in "${expect_out[@]}"; do
	if ! tr -d '\r' <"$work/serial" | grep -qF -- "$t"; then
		echo "run-qemu: FAIL: output lacks \"$t\"" >&2
		fail=1
	fi
done
[[ $fail == 0 ]] && echo "run-qemu: PASS" >&2
exit "$fail"
