#!/bin/bash
# The test command (README, .ci/run): builds wafer twice -- a normal build and
# an ASan+UBSan build -- and runs the unit and host integration suites of both
# on this host while, beside them, the 'kvm' suite (every case that boots a
# guest, and the Linux lanes) of both builds runs on real KVM through
# tests/kvmvm/run.sh: directly on a hardware KVM, otherwise inside the
# nested-KVM test VM. A KVM case that skips there counts as failed. Ends with
# the KVM summary and "N passed, N failed".
# Usage: tests/run-all.sh [--quick]   (--quick: normal build only, no fuzzing)
# Environment: WAFER_KVMVM_* (tests/kvmvm/run.sh), WAFER_SKIP_KVM=1 leaves the
# KVM lane out (by hand only: the summary then says so and the run fails).
set -u
cd "$(dirname "$0")/.."
. guest/defaults.sh
builds=("build:" "build-asan:-Db_sanitize=address,undefined -Db_lundef=false")
quick=0
[ "${1:-}" = "--quick" ] && { builds=("build:"); quick=1; }
t_start=$(date +%s)

pass=0 fail=0 skip=0 status=0 kvm_ran=0 kvm_skip=0
failed=() skipped=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# tally LOG WHAT: add a meson test log (JSON) to the counts. In the KVM lane
# a skip is a failure.
tally() {
	local log=$1 p f s names
	[ -f "$log" ] || { fail=$((fail + 1)); failed+=("$2: no test log $log"); return; }
	p=$(grep -c '"result": "OK"' "$log")
	f=$(grep -cE '"result": "(FAIL|ERROR|TIMEOUT|UNEXPECTEDPASS)"' "$log")
	s=$(grep -c '"result": "SKIP"' "$log")
	names=$(grep -E '"result": "(FAIL|ERROR|TIMEOUT|UNEXPECTEDPASS)"' "$log" |
		sed -n 's/.*"name": "\([^"]*\)".*"result": "\([A-Z]*\)".*/\1 (\2)/p' | tr '\n' ' ')
	[ -z "$names" ] || failed+=("$2: $names")
	names=$(grep -E '"result": "SKIP"' "$log" | sed -n 's/.*"name": "\([^"]*\)".*/\1/p' | tr '\n' ' ')
	if [ -n "$names" ]; then
		case $2 in *kvm*) failed+=("$2, skipped: $names") ;; *) skipped+=("$2: $names") ;; esac
	fi
	pass=$((pass + p)) fail=$((fail + f))
	case $2 in
	*kvm*) kvm_ran=$((kvm_ran + p + f)) kvm_skip=$((kvm_skip + s)) fail=$((fail + s)) ;;
	*) skip=$((skip + s)) ;;
	esac
}

for b in "${builds[@]}"; do
	dir=${b%%:*} opts=${b#*:}
	echo "=== $dir ${opts:+($opts)}: build"
	if [ ! -f "$dir/build.ninja" ]; then
		# shellcheck disable=SC2086
		meson setup "$dir" $opts >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; echo "0 passed, 1 failed"; exit 1; }
	fi
	ninja -C "$dir" >/dev/null || { ninja -C "$dir"; echo "0 passed, 1 failed"; exit 1; }
done

# ---- the KVM lane, in the background ------------------------------------
# The 'kvm' suite of each build on real KVM. In the test VM it keeps one host
# core busy (one vCPU under TCG) while the host suites below use the other.
# Its own log base (kvmlog.*) keeps meson's logs of the two runs apart.
lane_log=build/kvm-lane.log
lane_pid=''
if [ "${WAFER_SKIP_KVM:-0}" = 1 ]; then
	echo "=== KVM lane left out (WAFER_SKIP_KVM=1): this run proves nothing about guests"
	fail=$((fail + 1)); failed+=("KVM lane: left out by WAFER_SKIP_KVM=1")
else
	# The Linux lanes' kernel is fetched here: the test VM sees this host's
	# files read-only, apart from the checkout.
	guest/fetch-kernel.sh "$WAFER_KERNEL_DIR" >/dev/null || { echo "fetching the Linux lanes' kernel failed"; exit 1; }
	where=$(tests/kvmvm/run.sh --print-mode)
	echo "=== KVM lane started: $where; its log follows the host suites ($lane_log)"
	(
		for b in "${builds[@]}"; do
			dir=${b%%:*}
			scale=1
			[ "$dir" = build ] || scale=3
			echo "=== $dir: the 'kvm' suite on real KVM ($where)"
			rm -f "$dir"/meson-logs/kvmlog.*
			t0=$(date +%s)
			tests/kvmvm/run.sh -- env WAFER_KVM_REQUIRED=1 WAFER_TIME_SCALE=$scale \
				WAFER_LINUX_TIMEOUT=$((600 * scale)) meson test -C "$dir" --no-rebuild \
				--print-errorlogs --suite kvm --logbase kvmlog --timeout-multiplier $scale
			echo "=== $dir: KVM lane exit status $? after $(( $(date +%s) - t0 )) s"
		done
	) > "$lane_log" 2>&1 &
	lane_pid=$!
fi

for b in "${builds[@]}"; do
	dir=${b%%:*}
	echo "=== $dir: unit and host integration tests"
	suites=(--suite unit --suite integration)
	# The guests under QEMU TCG and the Linux lane's guest side (kernel from
	# Debian's archive) run once, in the plain build: they test the guests,
	# not a sanitizer-relevant part of wafer.
	[ "$dir" = build ] && suites+=(--suite guests-qemu --suite linux-guest)
	WAFER_KVM_ELSEWHERE=1 meson test -C "$dir" --no-rebuild --print-errorlogs "${suites[@]}" || status=1
	tally "$dir/meson-logs/testlog.json" "$dir host"
done

# libFuzzer smoke run (tests/fuzz/README.md): 10 s per target, clang only.
if [ $quick -eq 1 ]; then
	echo "=== fuzzing left out (--quick)"
elif command -v clang >/dev/null; then
	echo "=== build-fuzz (CC=clang -Dfuzz=true, 10 s per target)"
	{ [ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true >build-fuzz.setup.log 2>&1; } &&
		ninja -C build-fuzz >/dev/null && tests/fuzz/run.sh 10 build-fuzz &&
		pass=$((pass + 1)) || { fail=$((fail + 1)); failed+=("fuzz smoke run"); }
else
	echo "SKIP fuzz: clang not installed (guest/setup.sh --deps-only installs it)"
fi
if [ -n "$lane_pid" ]; then
	echo "=== waiting for the KVM lane"
	wait "$lane_pid"
	cat "$lane_log"
	for b in "${builds[@]}"; do
		dir=${b%%:*}
		if grep -q "^=== $dir: KVM lane exit status 125 " "$lane_log"; then
			fail=$((fail + 1)); failed+=("$dir kvm: the KVM test VM failed (see its log above)")
		else
			tally "$dir/meson-logs/kvmlog.json" "$dir kvm"
			# meson shows only failures' output: the Linux lanes' verdicts.
			grep -h '^linux: PASS' "$dir/meson-logs/kvmlog.txt" 2>/dev/null | sed "s/^/$dir: /"
		fi
	done
fi
[ $fail -gt 0 ] && status=1
echo "=== summary ($(( $(date +%s) - t_start )) s)"
for l in "${skipped[@]}"; do echo "skipped: $l"; done
for l in "${failed[@]}"; do echo "not passed: $l"; done
echo "$kvm_ran KVM cases ran on real KVM (${where:-not run}), $kvm_skip KVM cases skipped (each counted as failed)"
echo "$skip host cases skipped (need root or a tool; see the SKIP lines above)"
echo "$pass passed, $fail failed"
exit $status
