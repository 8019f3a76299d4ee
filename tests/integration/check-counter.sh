#!/bin/bash
# Checks the serial output of the counter test guest (tests/guests/counter.c)
# across a snapshot/restore or a migration: FILE... are the pieces in order
# (before the snapshot, after the restore; or source, destination). They are
# joined as one stream, so a line cut by the switch-over still reads whole.
# Verifies: one "counter: start" header, reports tick=1, 2, ... with no gap
# and no duplicate, every sum equal to the formula in counter.c (recomputed
# here independently), no "FAIL" line, nothing after "counter done". Prints
# the largest step of the guest's timestamp between consecutive reports (the
# downtime the guest saw) in ms.
#
# usage: check-counter.sh [--done] [--min-ticks N] FILE...
#   --done         the stream must end with "counter done"
#   --min-ticks N  at least N reports
# Exit 0 when everything holds, 1 otherwise, 2 on bad usage.
set -u

die() { echo "check-counter: $*" >&2; exit 2; }

need_done=0
min_ticks=1
while [ $# -gt 0 ]; do
	case $1 in
	--done) need_done=1; shift ;;
	--min-ticks) min_ticks=${2:?}; shift 2 ;;
	--) shift; break ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || die "usage: check-counter.sh [--done] [--min-ticks N] FILE..."
for f in "$@"; do [ -r "$f" ] || die "$f: not readable"; done

# Which reports each piece holds (informational: shows where the cut was);
# a piece's unterminated last line is not counted.
for f in "$@"; do
	tr -d '\r' <"$f" | awk -v f="$f" -v complete="$(wc -l <"$f")" '
		NR <= complete && /^tick=[0-9]+ / { split($1, a, "="); if (n++ == 0) first = a[2]; last = a[2] }
		END { if (n) printf "check-counter: %s: %d reports, tick=%s..%s\n", f, n, first, last
		      else printf "check-counter: %s: no complete report\n", f }'
done

# The joined stream's last line is cut short when the guest was stopped in
# the middle of printing it: awk sees it as a record, so it is skipped here.
complete=$(cat "$@" | wc -l)
cat "$@" | tr -d '\r' | awk -v need_done="$need_done" -v min_ticks="$min_ticks" -v complete="$complete" '
function bad(msg) { printf "check-counter: FAIL: line %d: %s\n", NR, msg; failed = 1; exit 1 }
# counter.c: V(j, p) and D(s, w), everything mod 2^32; exact in doubles.
function V(j, p) { return ((j + 16) * 2654435761 + p * 40503) % 4294967296 }
function D(s, w) { return ((s * 64 + w) * 2246822519 + 374761393) % 4294967296 }
function expected(k,    p, s) {
	s = 0
	for (p = 0; p < pages; p++)
		s += V(k, p) + V(k - 1, p) + V(k - 15, p)
	if (blk && k >= 2)
		s += blkfold[(k - 1) % 64]
	return s
}
BEGIN { last = 0; header = 0; done = 0; maxgap = -1 }
NR > complete { if ($0 != "") printf "check-counter: note: ignoring the unterminated last line \"%s\"\n", $0; next }
/FAIL/ { bad("the guest reported: " $0) }
/counter: start / {   # not anchored: firmware (SeaBIOS) may print before it
	if (header) bad("a second header: the guest started again")
	header = 1
	h = $0; sub(/.*counter: start /, "", h); n = split(h, f, " ")
	for (i = 1; i <= n; i++) { split(f[i], kv, "="); param[kv[1]] = kv[2] }
	pages = param["pages"] + 0; blk = param["blk"] + 0
	hz = param["hz"] + 0; every = param["every"] + 0
	if (pages < 1 || pages > 16384) bad("header without a usable pages=: " $0)
	for (s = 0; s < 64; s++) { blkfold[s] = 0; for (w = 0; w < 64; w++) blkfold[s] += D(s, w) }
	next
}
/^counter done/ { if (!header) bad("\"counter done\" before the header"); done = 1; next }
/^tick=/ {
	if (!header) bad("a report before the \"counter: start\" header")
	if (done) bad("a report after \"counter done\": " $0)
	if ($0 !~ /^tick=[0-9]+ sum=[0-9]+ t=[0-9]+$/) bad("malformed report: " $0)
	split($1, a, "="); split($2, b, "="); split($3, c, "=")
	k = a[2] + 0; sum = b[2]; t = c[2] + 0
	if (k == last) bad("tick=" k " printed twice")
	if (k != last + 1) bad("tick=" k " follows tick=" last ": " (k > last ? k - last - 1 " report(s) missing" : "went backwards"))
	if (k >= 2097152) bad("tick=" k ": beyond what this checker computes exactly (2^21)")
	want = sprintf("%.0f", expected(k))
	if (sum != want) bad("tick=" k " sum=" sum ", expected " want)
	if (last > 0) {
		gap = t - lastt
		if (gap < 0) bad(sprintf("the guest clock went back %.3f ms at tick=%d", -gap / 1e6, k))
		if (gap > maxgap) { maxgap = gap; gapat = k }
		total += gap
	}
	last = k; lastt = t
	next
}
END {
	if (failed) exit 1
	if (!header) { print "check-counter: FAIL: no \"counter: start\" header"; exit 1 }
	if (last < min_ticks) { printf "check-counter: FAIL: %d reports, expected at least %d\n", last, min_ticks; exit 1 }
	if (need_done && !done) { printf "check-counter: FAIL: no \"counter done\" after tick=%d\n", last; exit 1 }
	printf "check-counter: ok ticks=1..%d%s\n", last, done ? " done" : ""
	if (last >= 2)
		printf "check-counter: max_gap_ms=%.3f between tick=%d and tick=%d (mean %.3f ms, nominal %.3f ms)\n",
			maxgap / 1e6, gapat - 1, gapat, total / (last - 1) / 1e6, hz ? every * 1000 / hz : 0
	exit 0
}'
