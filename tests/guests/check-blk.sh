#!/usr/bin/env bash
# Host side of the virtio-blk guest test: builds a raw image with a known
# sector 0, boots virtio_blk.elf on it under QEMU TCG (run-qemu.sh), checks the
# guest's report of sector 0, then the pattern it left in sector 1.
#
# usage: check-blk.sh VIRTIO_BLK.elf
# Environment: QEMU (passed through to run-qemu.sh); WAFER=path boots the
# guest under wafer (--disk) instead of QEMU, with the same checks.
set -u

die() { echo "check-blk: $*" >&2; exit 2; }

[[ $# -eq 1 ]] || die "usage: check-blk.sh VIRTIO_BLK.elf"
guest=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/check-blk.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$work"' EXIT
img=$work/disk.img
serial=wafer-blk-0001

# FNV-1a (32-bit) of sector 0, as the guest computes it.
sector0_fnv() {
	local h=2166136261 b
	for b in $(dd if="$img" bs=512 count=1 status=none | od -An -v -tu1); do
		h=$(( ((h ^ b) * 16777619) & 0xffffffff ))
	done
	printf '0x%08x' "$h"
}

# 1 MiB image; sector 0 holds every byte value (after some text, so the
# guest's hex dump is recognizable), the rest is zero.
truncate -s 1M "$img" || die "cannot create $img"
{
	printf 'wafer sector 0: '
	for ((i = 0; i < 496; i++)); do
		printf -v o '%03o' $(( i < 256 ? i : (i * 7 + 3) & 255 ))
		printf "\\$o"
	done
} | dd of="$img" conv=notrunc status=none || die "cannot write sector 0"
fnv=$(sector0_fnv)
first=$(dd if="$img" bs=16 count=1 status=none | od -An -v -tx1 | tr -d ' \n')

expect=("blk capacity 2048 sectors" "blk sector0 fnv1a=$fnv first=$first"
	"blk write+readback ok" "blk serial \"$serial\"" "blk ok")
if [[ -n ${WAFER:-} ]]; then
	timeout 120 "$WAFER" run --kernel "$guest" --memory 64M --no-rng \
		--disk "$img,serial=$serial" </dev/null >"$work/out" 2>"$work/err"
	rc=$?
	[[ $rc == 0 ]] || { echo "check-blk: FAIL: wafer exited $rc" >&2; cat "$work/err" >&2; }
	for e in "${expect[@]}"; do
		grep -qF -- "$e" "$work/out" || { echo "check-blk: FAIL: no '$e' in the guest output" >&2; rc=1; }
	done
else
	args=()
	for e in "${expect[@]}"; do args+=(--expect-output "$e"); done
	"$here/run-qemu.sh" --timeout 60 --expect-status 0 "${args[@]}" \
		"$guest" \
		-drive "if=none,id=d0,file=$img,format=raw" \
		-device "virtio-blk-pci,drive=d0,disable-legacy=on,serial=$serial"
	rc=$?
fi

# Sector 1 must hold 32 records "WAFER-BLK-TEST" + two hex digits 00..1f.
want=$work/want
for ((r = 0; r < 32; r++)); do printf 'WAFER-BLK-TEST%02x' "$r"; done >"$want"
if ! dd if="$img" bs=512 skip=1 count=1 status=none | cmp -s - "$want"; then
	echo "check-blk: FAIL: sector 1 does not hold the guest's pattern:" >&2
	dd if="$img" bs=512 skip=1 count=1 status=none | od -A d -c | head -4 >&2
	rc=1
fi
if [[ $(sector0_fnv) != "$fnv" ]]; then
	echo "check-blk: FAIL: sector 0 changed" >&2
	rc=1
fi
if [[ -n $(dd if="$img" bs=512 skip=2 status=none | tr -d '\0' | head -c 1) ]]; then
	echo "check-blk: FAIL: bytes past sector 1 changed" >&2
	rc=1
fi
[[ $rc == 0 ]] && echo "check-blk: PASS (sector 1 verified on the host)" >&2
exit "$rc"
