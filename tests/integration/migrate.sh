#!/bin/bash
# Live migration between two processes running the real engine with a
# simulated guest (migrate_peer): over tcp loopback, over a unix socket,
# between two network namespaces joined by a veth pair, a refusal by the
# destination, and a destination killed mid-stream. Both sides' memory
# checksums must match and the destination must have confirmed.
# Usage: migrate.sh tcp|unix|netns|refuse|kill (env: MIGRATE_PEER).
# Exit 0 = pass, 1 = fail, 77 = skipped (the reason is printed).
set -u
PEER=${MIGRATE_PEER:?MIGRATE_PEER must point to migrate_peer}
CASE=${1:?case name}
T=$(mktemp -d /tmp/wafer-mig.XXXXXX)
RPID=""
NSA="" NSB=""
cleanup() {
	[ -n "$RPID" ] && kill "$RPID" 2>/dev/null   # timeout(1) passes it on
	[ -n "$NSA" ] && ip netns del "$NSA" 2>/dev/null
	[ -n "$NSB" ] && ip netns del "$NSB" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL [migrate-$CASE]: $*"
	for f in "$T"/*.out "$T"/*.err; do
		[ -s "$f" ] && { echo "--- $(basename "$f"):"; tail -n 20 "$f"; }
	done
	exit 1
}
skip() { echo "SKIP [migrate-$CASE]: $*"; exit 77; }

# start_recv NAME URL [ARGS...]: receiver in the background ($RECV_NS: a
# netns to run it in); sets RPID and URL (the address it really listens on).
start_recv() {
	local name=$1 url=$2; shift 2
	${RECV_NS:+ip netns exec "$RECV_NS"} timeout 60 "$PEER" recv "$url" "$@" \
		>"$T/$name.recv.out" 2>"$T/$name.recv.err" &
	RPID=$!
	for _ in $(seq 200); do
		URL=$(sed -n 's/^listening //p' "$T/$name.recv.out")
		[ -n "$URL" ] && return 0
		kill -0 "$RPID" 2>/dev/null || break
		sleep 0.05
	done
	fail "$name: receiver did not start listening on $url"
}

# send NAME URL MEM_MIB DIRTY_MBS [ARGS...]: run the sender ($SEND_NS: its
# netns), then reap the receiver; sets src and dst (exit statuses).
send() {
	local name=$1; shift
	${SEND_NS:+ip netns exec "$SEND_NS"} timeout 60 "$PEER" send "$@" \
		>"$T/$name.send.out" 2>"$T/$name.send.err"
	src=$?
	wait "$RPID"; dst=$?; RPID=""
	grep -q 'Sanitizer' "$T/$name".*.err && fail "$name: sanitizer report"
	return 0
}

val() { sed -n "s/^$2 //p" "$T/$1" | tail -n 1; }

# expect_migrated NAME: both sides completed, confirmed, same checksum.
expect_migrated() {
	local name=$1
	[ "$src" = 0 ] || fail "$name: sender exit $src"
	[ "$dst" = 0 ] || fail "$name: receiver exit $dst"
	grep -q '^result completed' "$T/$name.send.out" || fail "$name: sender did not complete"
	grep -q '^confirmed' "$T/$name.recv.out" || fail "$name: receiver did not confirm"
	local a b
	a=$(val "$name.send.out" checksum) b=$(val "$name.recv.out" checksum)
	[ -n "$a" ] && [ "$a" = "$b" ] || fail "$name: checksums differ: source '$a', destination '$b'"
	echo "migrate-$CASE $name rounds $(val "$name.send.out" rounds) downtime_ms" \
	     "$(val "$name.send.out" downtime_ms) total_ms $(val "$name.send.out" total_ms)" \
	     "bandwidth_mbs $(val "$name.send.out" bandwidth_mbs) max_throttle_pct" \
	     "$(val "$name.send.out" max_throttle_pct) checksum $a"
}

case "$CASE" in
tcp)
	start_recv idle tcp:127.0.0.1:0
	send idle "$URL" 64 0
	expect_migrated idle
	start_recv busy tcp:127.0.0.1:0
	send busy "$URL" 64 100
	expect_migrated busy
	# A guest that outruns a 100 MB/s link: auto-converge throttles it.
	start_recv throttled tcp:127.0.0.1:0
	send throttled "$URL" 32 300 --auto-converge --max-bw-mbs 100 --timeout-ms 40000
	expect_migrated throttled
	[ "$(val throttled.send.out max_throttle_pct)" -ge 20 ] || fail "throttled: no throttle" ;;
unix)
	start_recv busy "unix:$T/mig.sock"
	send busy "$URL" 64 100
	expect_migrated busy
	[ -e "$T/mig.sock" ] && fail "receiver left its socket behind"
	true ;;
netns)
	[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
	command -v ip >/dev/null || skip "no ip(8)"
	NSA=wafer-miga-$$ NSB=wafer-migb-$$
	ip netns add "$NSA" 2>/dev/null || { NSA=""; skip "cannot create a network namespace"; }
	ip netns add "$NSB" || fail "second namespace"
	ip link add wmiga$$ type veth peer name wmigb$$ || fail "cannot create a veth pair"
	ip link set wmiga$$ netns "$NSA" && ip link set wmigb$$ netns "$NSB" || fail "veth into namespaces"
	ip -n "$NSA" addr add 10.213.7.1/24 dev wmiga$$ && ip -n "$NSA" link set wmiga$$ up &&
		ip -n "$NSA" link set lo up || fail "address in $NSA"
	ip -n "$NSB" addr add 10.213.7.2/24 dev wmigb$$ && ip -n "$NSB" link set wmigb$$ up &&
		ip -n "$NSB" link set lo up || fail "address in $NSB"
	RECV_NS=$NSB start_recv netns tcp:10.213.7.2:47123
	[ "$URL" = tcp:10.213.7.2:47123 ] || fail "listening on '$URL'"
	SEND_NS=$NSA send netns "$URL" 64 100
	expect_migrated netns ;;
refuse)
	start_recv refuse tcp:127.0.0.1:0 --refuse "CPU template 'baseline' differs from the source's"
	send refuse "$URL" 16 50
	[ "$src" = 1 ] || fail "sender exit $src, expected 1"
	[ "$dst" = 1 ] || fail "receiver exit $dst, expected 1"
	grep -q "^result failed: destination refused: CPU template 'baseline' differs" "$T/refuse.send.out" ||
		fail "sender does not report the refusal"
	[ "$(val refuse.send.out resumed)" = 1 ] || fail "source not running after the refusal" ;;
kill)
	# The destination dies in the middle of round 0 (link held to 20 MB/s).
	start_recv kill tcp:127.0.0.1:0
	( sleep 0.5; kill -9 $(cat /proc/"$RPID"/task/*/children) ) &
	send kill "$URL" 64 50 --max-bw-mbs 20
	[ "$src" = 1 ] || fail "sender exit $src, expected 1"
	grep -qE '^result failed: .*(closed|reset)' "$T/kill.send.out" || fail "sender does not report the hang-up"
	[ "$(val kill.send.out resumed)" = 1 ] || fail "source not running after the failure" ;;
*) echo "unknown case $CASE"; exit 1 ;;
esac
echo "PASS [migrate-$CASE]"
exit 0
