#!/bin/bash
# The test command (README, .ci/run): builds wafer twice -- a normal build and
# an ASan+UBSan build -- and runs the unit and integration suites in both.
# Ends with "N passed, N failed". Cases that need /dev/kvm are reported as
# skipped (with the reason) where KVM is absent; skips never count as passes.
# Usage: tests/run-all.sh [--quick]   (--quick: normal build only)
set -u
cd "$(dirname "$0")/.."
builds=("build:" "build-asan:-Db_sanitize=address,undefined -Db_lundef=false")
[ "${1:-}" = "--quick" ] && builds=("build:")

pass=0 fail=0 skip=0 status=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for b in "${builds[@]}"; do
	dir=${b%%:*} opts=${b#*:}
	echo "=== $dir ${opts:+($opts)}"
	if [ ! -f "$dir/build.ninja" ]; then
		# shellcheck disable=SC2086
		meson setup "$dir" $opts >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; echo "0 passed, 1 failed"; exit 1; }
	fi
	ninja -C "$dir" >/dev/null || { ninja -C "$dir"; echo "0 passed, 1 failed"; exit 1; }
	suites=(--suite unit --suite integration)
	# The guests under QEMU TCG and the Linux lane's guest side (kernel from
	# Debian's archive) run once, in the plain build: they test the guests,
	# not a sanitizer-relevant part of wafer.
	[ "$dir" = build ] && suites+=(--suite guests-qemu --suite linux-guest)
	meson test -C "$dir" --no-rebuild --print-errorlogs "${suites[@]}" || status=1
	log="$dir/meson-logs/testlog.json"
	p=$(grep -c '"result": "OK"' "$log"); f=$(grep -cE '"result": "(FAIL|ERROR|TIMEOUT|UNEXPECTEDPASS)"' "$log")
	s=$(grep -c '"result": "SKIP"' "$log")
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done
# libFuzzer smoke run (tests/fuzz/README.md): 10 s per target, clang only.
if command -v clang >/dev/null; then
	echo "=== build-fuzz (CC=clang -Dfuzz=true, 10 s per target)"
	{ [ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true >build-fuzz.setup.log 2>&1; } &&
		ninja -C build-fuzz >/dev/null && tests/fuzz/run.sh 10 build-fuzz &&
		pass=$((pass + 1)) || { fail=$((fail + 1)); status=1; }
else
	echo "SKIP fuzz: clang not installed (guest/setup.sh --deps-only installs it)"
fi
[ $fail -gt 0 ] && status=1
echo "$skip skipped (need /dev/kvm or root; see the SKIP lines above)"
echo "$pass passed, $fail failed"
exit $status
