#!/bin/bash
# Tap backend on the real kernel, in throwaway network namespaces: the backend's
# unit program (create/attach, errors, offloads, vnet header on the wire), then
# an operator-made tap (`ip tuntap add`) attached and left in place.
# Usage: net-tap-check.sh PATH/TO/test_net_tap. Exit 0 pass, 1 fail, 77 skipped.
set -u
BIN=${1:?path to test_net_tap}

skip() { echo "SKIP [net-tap]: $*"; exit 77; }
fail() { echo "FAIL [net-tap]: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (taps and network namespaces)"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
command -v ip >/dev/null || skip "no ip(8)"
command -v unshare >/dev/null || skip "no unshare(1)"
unshare -n true 2>/dev/null || skip "cannot create a network namespace"

unshare -n -- "$BIN"
rc=$?
[ $rc -eq 77 ] && skip "test_net_tap skipped"
[ $rc -eq 0 ] || fail "test_net_tap exited $rc"

# What an operator does: a persistent tap, then wafer attaches to it. The tap
# must survive wafer; one wafer did not create is never brought up by it.
out=$(unshare -n -- bash -c '
	set -e
	ip tuntap add wchk0 mode tap
	"$1" --open wchk0
	ip -o link show wchk0 | grep -q "state DOWN" && echo "still-there-down"
	"$1" --open wchk1 >/dev/null
	ip link show wchk1 >/dev/null 2>&1 && echo "wchk1-leaked" || echo "wchk1-gone"
' _ "$BIN" 2>&1) || fail "operator tap flow: $out"
echo "$out"
echo "$out" | grep -q "^attached to wchk0$" || fail "did not attach to the operator's tap"
echo "$out" | grep -q "^still-there-down$" || fail "operator's tap vanished or was brought up"
echo "$out" | grep -q "^wchk1-gone$" || fail "a tap wafer created outlived it"
echo "PASS [net-tap]"
