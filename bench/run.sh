#!/usr/bin/env bash
# wafer side by side with QEMU (microvm, KVM) and the bare KVM_RUN harness:
# (a) process start -> first guest serial byte, (b) VMM RSS for 1 vCPU and
# 128 MiB with the guest idle, (c) PIO exit round trip. Prints "name value
# unit" lines and wafer/qemu, wafer/bare ratios.
#
# usage: bench/run.sh [BUILD_DIR]        (also: ninja -C BUILD_DIR bench)
# Environment: WAFER, QEMU, GUESTS, FIRSTBYTE, BARE_KVM override the paths;
#   BENCH_RUNS (default 10) start-time runs, BENCH_PIO_RUNS (default 5),
#   BENCH_PIO_N (default 100000) writes per PIO run;
#   BENCH_ALLOW_TCG=1 without /dev/kvm: measure QEMU under TCG only (checks
#   the script; the numbers mean nothing for KVM).
# Exits 77 when /dev/kvm is unusable (and TCG was not asked for).
set -u

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
WAFER=${WAFER:-$build/wafer}
QEMU=${QEMU:-qemu-system-x86_64}
GUESTS=${GUESTS:-$build/tests/guests}
FIRSTBYTE=${FIRSTBYTE:-$build/bench/firstbyte}
BARE_KVM=${BARE_KVM:-$build/bench/bare_kvm}
RUNS=${BENCH_RUNS:-10}
PIO_RUNS=${BENCH_PIO_RUNS:-5}
PIO_N=${BENCH_PIO_N:-100000}
MEM_MIB=128

say() { echo "bench: $*" >&2; }

# On real KVM, the way the tests get it: directly on a hardware KVM, else
# inside the nested-KVM test VM, where only ratios mean something (KVMVM is
# set once there).
[[ -n ${KVMVM:-} || ${BENCH_ALLOW_TCG:-0} == 1 ]] || exec "$root/tests/kvmvm/run.sh" -- "$0" "$@"

kvm_reason=""
if [[ ! -e /dev/kvm ]]; then
	kvm_reason="No such file or directory"
elif [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
	kvm_reason="Permission denied"
fi
accel=kvm
cpu=host
if [[ -n $kvm_reason ]]; then
	if [[ ${BENCH_ALLOW_TCG:-0} != 1 ]]; then
		echo "bench: /dev/kvm not available: $kvm_reason"
		exit 77
	fi
	say "/dev/kvm not available ($kvm_reason): QEMU under TCG only, wafer and bare skipped"
	accel=tcg
	cpu=max
fi

for f in "$FIRSTBYTE" "$GUESTS/pio.elf" "$GUESTS/echo.elf"; do
	[[ -e $f ]] || { say "$f missing: build first (ninja -C $build)"; exit 1; }
done

# vmm_cmd VMM GUEST CMDLINE: the command line for one VMM; empty when skipped.
vmm_cmd() {
	local vmm=$1 guest=$2 cmdline=$3
	case $vmm in
	wafer)
		[[ $accel == kvm ]] || return 1
		cmd=("$WAFER" run --kernel "$guest" --cmdline "$cmdline" --cpus 1 --memory "${MEM_MIB}M") ;;
	qemu)
		# microvm: qboot loads the PVH ELF and prints nothing itself, so the
		# first byte is the guest's; isa-serial and the ISA bus are on by default.
		cmd=("$QEMU" -M microvm -accel "$accel" -cpu "$cpu" -m "$MEM_MIB" -smp 1
		     -nodefaults -no-user-config -nographic -serial stdio
		     -device isa-debug-exit,iobase=0xf4,iosize=0x04
		     -kernel "$guest" -append "$cmdline") ;;
	bare)
		[[ $accel == kvm ]] || return 1
		cmd=("$BARE_KVM" "$guest" "$cmdline") ;;
	esac
}

# Exit status of a guest that returned 0: QEMU's isa-debug-exit reports 1.
ok_status() { [[ $1 == qemu ]] && echo 1 || echo 0; }

declare -A val

# emit NAME VALUE UNIT
emit() {
	printf '%s %s %s\n' "$1" "$2" "$3"
	val[$1]=$2
}

ratio() {
	local name=$1 a=${val[$2]:-} b=${val[$3]:-}
	[[ -n $a && -n $b ]] || return 0
	awk -v n="$name" -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%s %.2f ratio\n", n, a / b }'
}

# measure VMM CMDLINE RUNS: sets fb_ns and total_ns (medians) via firstbyte.
measure() {
	local vmm=$1 cmdline=$2 runs=$3 out
	vmm_cmd "$vmm" "$GUESTS/pio.elf" "$cmdline" || return 1
	out=$("$FIRSTBYTE" -n "$runs" -t 120 -e "$(ok_status "$vmm")" -- "${cmd[@]}") || return 1
	fb_ns=$(awk '$1 == "first_byte_ns" { print $2 }' <<<"$out")
	total_ns=$(awk '$1 == "total_ns" { print $2 }' <<<"$out")
	[[ -n $fb_ns && -n $total_ns ]]
}

vmms=(wafer qemu bare)
# Without KVM only QEMU (TCG) runs; the others are left out silently.
[[ $accel == kvm ]] || vmms=(qemu)

# ---- (a) start -> first guest serial byte --------------------------------
for v in "${vmms[@]}"; do
	if measure "$v" "n=0" "$RUNS"; then
		emit "start_first_byte_$v" "$(awk -v x="$fb_ns" 'BEGIN { printf "%.3f", x / 1e6 }')" ms
	else
		say "start time: $v failed"
	fi
done
ratio start_first_byte_wafer/qemu start_first_byte_wafer start_first_byte_qemu
ratio start_first_byte_wafer/bare start_first_byte_wafer start_first_byte_bare

# ---- (b) RSS with the guest idle -------------------------------------------
# Guest RAM is the largest anonymous mapping of MEM_MIB..MEM_MIB+8 MiB; its Rss
# is what the guest touched, so VMM overhead = process RSS - that.
guest_ram_rss_kib() {
	awk -v lo=$((MEM_MIB * 1024)) -v hi=$(((MEM_MIB + 8) * 1024)) '
		/^[0-9a-f]+-[0-9a-f]+ / { size = -1; next }
		$1 == "Size:" { size = $2; next }
		$1 == "Rss:" && size >= lo && size <= hi && $2 > best { best = $2 }
		END { print best + 0 }' "/proc/$1/smaps"
}

status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

rss_one() {
	local vmm=$1 tmp pid i ready=0 hwm rss anon guest
	vmm_cmd "$vmm" "$GUESTS/echo.elf" "" || return 1
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/wafer-bench.XXXXXX") || return 1
	mkfifo "$tmp/in"
	: >"$tmp/out"
	"${cmd[@]}" <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	exec 4<>"$tmp/in"
	for ((i = 0; i < 300; i++)); do
		if tr -d '\r' <"$tmp/out" | grep -q 'echo ready'; then
			ready=1
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [[ $ready == 1 ]]; then
		sleep 1         # let lazy allocations settle
		hwm=$(status_kib "$pid" VmHWM)
		rss=$(status_kib "$pid" VmRSS)
		anon=$(status_kib "$pid" RssAnon)
		guest=$(guest_ram_rss_kib "$pid")
	fi
	printf 'q' >&4
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	exec 4>&-
	if [[ $ready != 1 || -z ${rss:-} ]]; then
		say "rss: $vmm never printed 'echo ready':"; cat "$tmp/err" >&2
		rm -rf "$tmp"
		return 1
	fi
	rm -rf "$tmp"
	emit "rss_peak_$vmm" "$(((hwm - guest) / 1024))" MiB
	emit "rss_steady_$vmm" "$(((rss - guest) / 1024))" MiB
	emit "rss_anon_$vmm" "$((anon / 1024))" MiB
	emit "rss_guest_ram_$vmm" "$((guest / 1024))" MiB
}

for v in "${vmms[@]}"; do
	[[ $v == bare ]] && continue        # bare_kvm has no UART input to idle on
	rss_one "$v" || say "rss: $v failed"
done
ratio rss_steady_wafer/qemu rss_steady_wafer rss_steady_qemu
ratio rss_peak_wafer/qemu rss_peak_wafer rss_peak_qemu

# ---- (c) PIO exit round trip -------------------------------------------------
# Whole-run wall time with n=N minus with n=0, over N; medians of PIO_RUNS.
for v in "${vmms[@]}"; do
	measure "$v" "n=0" "$PIO_RUNS" || { say "pio: $v failed"; continue; }
	t0=$total_ns
	measure "$v" "n=$PIO_N" "$PIO_RUNS" || { say "pio: $v failed"; continue; }
	emit "pio_exit_$v" "$(awk -v a="$total_ns" -v b="$t0" -v n="$PIO_N" \
		'BEGIN { printf "%.1f", (a - b) / n }')" ns
done
if [[ $accel == kvm ]]; then
	out=$("$BARE_KVM" "$GUESTS/pio.elf" "n=$PIO_N" | awk '$1 == "bare_pio_exit_ns" { print $2 }')
	[[ -n $out ]] && emit pio_exit_bare_inloop "$out" ns
fi
ratio pio_exit_wafer/qemu pio_exit_wafer pio_exit_qemu
ratio pio_exit_wafer/bare pio_exit_wafer pio_exit_bare
exit 0
