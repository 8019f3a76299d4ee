#!/bin/bash
# Fetch Debian's cloud kernel (linux-image-cloud-amd64, resolved to the real
# versioned package) and lay out OUTDIR/{vmlinuz,System.map,config,modules,kver}.
# Usage: guest/fetch-kernel.sh OUTDIR
#   WAFER_KERNEL_PKG  metapackage or package to fetch (default linux-image-cloud-amd64)
#   WAFER_KERNEL_DEB  use this local .deb instead of apt (offline use)
set -euo pipefail

die() { echo "fetch-kernel: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
outdir=$1
meta=${WAFER_KERNEL_PKG:-linux-image-cloud-amd64}

# kver is written last, so its presence means a complete earlier run.
if [ -s "$outdir/kver" ] && [ -f "$outdir/vmlinuz" ] && [ -f "$outdir/System.map" ] &&
   [ -d "$outdir/modules" ]; then
	echo "fetch-kernel: $outdir already holds kernel $(cat "$outdir/kver")"
	exit 0
fi

command -v dpkg >/dev/null || die "dpkg not found (this script needs a Debian host)"
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
work=$(mktemp -d "$outdir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A metapackage depends on exactly one linux-image-<ver>-<flavour>; a real
# image package has no such dependency and is used as it is.
resolve_pkg() {
	local dep
	apt-cache show "$meta" >/dev/null 2>&1 || return 1
	dep=$(apt-cache depends "$meta" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
	echo "${dep:-$meta}"
}

apt_updated=0
apt_update() {
	# Stale or empty package lists are the usual cause of a failed look-up;
	# refresh them once, which only root may do.
	[ $apt_updated -eq 0 ] || return 1
	apt_updated=1
	if [ "$(id -u)" -eq 0 ]; then
		echo "fetch-kernel: refreshing package lists (apt-get update)"
		apt-get update -qq >&2 || return 1
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		echo "fetch-kernel: refreshing package lists (sudo apt-get update)"
		sudo apt-get update -qq >&2 || return 1
	else
		return 1
	fi
}

if [ -n "${WAFER_KERNEL_DEB:-}" ]; then
	[ -f "$WAFER_KERNEL_DEB" ] || die "WAFER_KERNEL_DEB=$WAFER_KERNEL_DEB: no such file"
	deb=$WAFER_KERNEL_DEB
else
	command -v apt-get >/dev/null || die "apt-get not found; set WAFER_KERNEL_DEB to a local .deb"
	pkg=$(resolve_pkg) || { apt_update && pkg=$(resolve_pkg); } ||
		die "apt knows no package '$meta'; run 'apt-get update' (as root) and retry"
	echo "fetch-kernel: $meta -> $pkg"
	# apt-get download needs no root; as root it warns that the _apt user
	# cannot write here, which is harmless, so the sandbox is switched off.
	dl() { (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); }
	dl || { apt_update && dl; } ||
		die "'apt-get download $pkg' failed; check network access to the Debian mirror, or run 'apt-get update'"
	deb=$(ls "$work"/*.deb 2>/dev/null | head -n1 || true)
	[ -n "$deb" ] || die "apt-get download $pkg produced no .deb"
fi

echo "fetch-kernel: extracting $(basename "$deb")"
dpkg-deb --field "$deb" Package Version > "$work/pkgversion"
dpkg -x "$deb" "$work/pkg" || die "dpkg -x $deb failed"

# The image package holds exactly one lib/modules/<kver>.
kver=$(ls "$work/pkg/lib/modules" 2>/dev/null | head -n1 || true)
[ -n "$kver" ] || die "$(basename "$deb") has no lib/modules/<version>: not a kernel image package?"
[ -f "$work/pkg/boot/vmlinuz-$kver" ] || die "$(basename "$deb") has no boot/vmlinuz-$kver"

rm -rf "$outdir/pkg" "$outdir/kver"
mv "$work/pkg" "$outdir/pkg"
mv "$work/pkgversion" "$outdir/pkgversion"
cp "$outdir/pkg/boot/vmlinuz-$kver" "$outdir/vmlinuz"
cp "$outdir/pkg/boot/System.map-$kver" "$outdir/System.map"
cp "$outdir/pkg/boot/config-$kver" "$outdir/config"
ln -sfn "pkg/lib/modules/$kver" "$outdir/modules"
echo "$kver" > "$outdir/kver.tmp"
mv "$outdir/kver.tmp" "$outdir/kver"
echo "fetch-kernel: kernel $kver in $outdir"
