#!/bin/bash
# Run every libFuzzer target in tests/fuzz for a bounded time, starting from a
# temporary copy of its seed corpus (the repository is never modified), and
# print per target: executions, exec/s, coverage, corpus growth and crashes.
# Exits 1 if any target crashed (artifacts are kept in BUILD_DIR/fuzz-artifacts).
# Usage: tests/fuzz/run.sh [SECONDS_PER_TARGET (60)] [BUILD_DIR (build-fuzz)] [TARGET...]
#   FUZZ_JOBS: targets run at once (default: number of CPUs).
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
build=${2:-$src/build-fuzz}
shift $(( $# < 2 ? $# : 2 ))
case $build in /*) ;; *) build=$PWD/$build ;; esac
jobs=${FUZZ_JOBS:-$(nproc)}

if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=()
	for f in "$build"/tests/fuzz/fuzz_*; do
		[ -x "$f" ] && [ -f "$f" ] && targets+=("$(basename "$f")")
	done
fi
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no targets in $build/tests/fuzz (CC=clang meson setup $build -Dfuzz=true && ninja -C $build)" >&2
	exit 2
fi

work=$(mktemp -d /tmp/wafer-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT

run_one() {
	local t=$1 name=${1#fuzz_} dir=$work/$1
	mkdir -p "$dir/corpus" "$dir/artifacts"
	[ -d "$src/tests/fuzz/corpus/$name" ] && cp "$src/tests/fuzz/corpus/$name"/* "$dir/corpus/" 2>/dev/null
	ls "$dir/corpus" | wc -l >"$dir/seeds"
	# close_fd_mask=1: the product's own logging stays out of the report;
	# libFuzzer and the sanitizers keep writing to stderr.
	"$build/tests/fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 -close_fd_mask=1 -artifact_prefix="$dir/artifacts/" \
		"$dir/corpus" >"$dir/log" 2>&1
	echo $? >"$dir/rc"
}

running=0
for t in "${targets[@]}"; do
	run_one "$t" &
	running=$((running + 1))
	if [ $running -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

status=0
printf '%-18s %12s %9s %7s %7s %7s %s\n' target execs exec/s cov ft corpus crashes
for t in "${targets[@]}"; do
	dir=$work/$t
	stat() { sed -n "s/^stat::$1: *//p" "$dir/log" | tail -1; }
	execs=$(stat number_of_executed_units) eps=$(stat average_exec_per_sec)
	last=$(grep -E '^#[0-9]+' "$dir/log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last") ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corpus="$(cat "$dir/seeds")->$(ls "$dir/corpus" | wc -l)"
	crashes=$(find "$dir/artifacts" -type f | wc -l)
	rc=$(cat "$dir/rc" 2>/dev/null || echo 1)
	printf '%-18s %12s %9s %7s %7s %7s %s\n' "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" \
		"$corpus" "$crashes"
	if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
		status=1
		keep=$build/fuzz-artifacts/$t
		mkdir -p "$keep"
		cp "$dir/log" "$keep/log"
		cp "$dir"/artifacts/* "$keep/" 2>/dev/null
		echo "  $t: FAILED (exit $rc); log and inputs in $keep:" >&2
		grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error' "$dir/log" | sed 's/^/    /' >&2
	fi
done
exit $status
