#!/bin/bash
# Build wafer's default guest initramfs: Debian's static busybox, the requested
# kernel modules with their dependencies, and an /init that prints a marker.
# Usage: guest/build-initramfs.sh KERNELDIR OUT.cpio.gz [--modules "m1 m2 ..."]
#                                 [--overlay DIR]...
#   KERNELDIR  as laid out by guest/fetch-kernel.sh (needs KERNELDIR/modules, kver)
#   --overlay  copy DIR's tree over the initramfs root (e.g. etc/wafer-test.d/*)
set -euo pipefail
umask 022  # modes go into the archive; keep them the same on every host

die() { echo "build-initramfs: $*" >&2; exit 1; }

default_modules="virtio_pci virtio_blk virtio_net virtio_rng virtio_console"
usage="usage: $0 KERNELDIR OUT.cpio.gz [--modules \"m1 m2 ...\"] [--overlay DIR]..."

[ $# -ge 2 ] || die "$usage"
kdir=$1 out=$2
shift 2
modules=$default_modules
overlays=()
while [ $# -gt 0 ]; do
	case $1 in
	--modules) [ $# -ge 2 ] || die "$usage"; modules=$2; shift 2 ;;
	--modules=*) modules=${1#--modules=}; shift ;;
	--overlay) [ $# -ge 2 ] || die "$usage"; overlays+=("$2"); shift 2 ;;
	--overlay=*) overlays+=("${1#--overlay=}"); shift ;;
	*) die "unknown argument '$1'; $usage" ;;
	esac
done

busybox=${WAFER_BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "$busybox not found; install Debian's busybox-static"
# A dynamic busybox would need its libraries inside the initramfs.
if command -v file >/dev/null && ! file -L "$busybox" | grep -q 'statically linked'; then
	die "$busybox is not statically linked; install busybox-static (not busybox)"
fi
command -v cpio >/dev/null || die "cpio not found; install cpio"
[ -s "$kdir/kver" ] || die "$kdir/kver missing; run guest/fetch-kernel.sh $kdir first"
kver=$(cat "$kdir/kver")
moddir=$kdir/modules
[ -d "$moddir" ] || die "$moddir missing; run guest/fetch-kernel.sh $kdir first"
for d in "${overlays[@]}"; do
	[ -d "$d" ] || die "--overlay $d: not a directory"
done

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "${TMPDIR:-/tmp}/wafer-initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# --- module index: name -> path. Module names use '_' where files may use '-'
# (virtio-rng.ko is module virtio_rng). Debian ships no modules.dep (its
# postinst runs depmod), so dependencies come from each module's .modinfo.
declare -A modpath=()
while IFS= read -r f; do
	base=${f##*/}
	name=${base%%.ko*}
	modpath[${name//-/_}]=$f
done < <(cd "$moddir" && find kernel -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' | LC_ALL=C sort)

declare -A builtin=()
if [ -f "$moddir/modules.builtin" ]; then
	while IFS= read -r f; do
		base=${f##*/}
		builtin[${base%%.ko*}]=1
		b=${base%%.ko*}
		builtin[${b//-/_}]=1
	done < "$moddir/modules.builtin"
fi

# Writes the module, uncompressed, to $2: busybox insmod passes the file
# straight to init_module, and this kernel may lack in-kernel decompression.
mod_uncompressed() {
	case $1 in
	*.ko) cat "$1" ;;
	*.ko.xz) xz -dc "$1" ;;
	*.ko.zst) zstd -qdc "$1" ;;
	*.ko.gz) gzip -dc "$1" ;;
	*) die "unknown module format: $1" ;;
	esac > "$2"
}

declare -A state=()  # "" unvisited, 1 visiting, 2 done
order=()
mod_visit() {
	local name=${1//-/_} dep deps tmp
	case ${state[$name]:-} in
	2) return 0 ;;
	1) die "module dependency cycle through $name" ;;
	esac
	if [ -z "${modpath[$name]:-}" ]; then
		if [ -n "${builtin[$name]:-}" ]; then
			echo "build-initramfs: $name is built into $kver; skipping"
			state[$name]=2
			return 0
		fi
		die "module $name not found under $moddir"
	fi
	state[$name]=1
	tmp=$work/mod.$name.ko
	mod_uncompressed "$moddir/${modpath[$name]}" "$tmp"
	deps=$(tr '\0' '\n' < "$tmp" | sed -n 's/^depends=//p' | head -n1)
	for dep in ${deps//,/ }; do
		mod_visit "$dep"
	done
	state[$name]=2
	order+=("$name")
}

for m in $modules; do
	mod_visit "$m"
done

# --- root tree
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/wafer-test.d,proc,sys,dev,tmp,run,root}
mkdir -p "$root/lib/modules/$kver"
cp "$busybox" "$root/bin/busybox"
while IFS= read -r applet; do
	[ "$applet" = bin/busybox ] && continue
	d=${applet%/*}
	[ "$d" = "$applet" ] || [ -d "$root/$d" ] || mkdir -p "$root/$d"
	ln -sf /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)

: > "$root/etc/wafer-modules"
for name in "${order[@]}"; do
	mv "$work/mod.$name.ko" "$root/lib/modules/$kver/$name.ko"
	echo "$name" >> "$root/etc/wafer-modules"
done
echo "$kver" > "$root/etc/wafer-kver"

cat > "$root/init" <<'EOF'
#!/bin/sh
# wafer guest init: mount the pseudo filesystems, load the modules listed in
# /etc/wafer-modules (dependency order), print the boot marker, run the
# test hooks in /etc/wafer-test.d, power off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run

# Kernel command line options read here (all optional):
#   wafer.test=a,b   run only /etc/wafer-test.d scripts named a, b (or NN-a);
#                    wafer.test=none runs none; default: run every script
#   wafer.end=shell  drop to a shell on the console instead of powering off
wafer_test='' wafer_end=poweroff
for arg in $(cat /proc/cmdline); do
	case $arg in
	wafer.test=*) wafer_test=${arg#wafer.test=} ;;
	wafer.end=*) wafer_end=${arg#wafer.end=} ;;
	esac
done

kver=$(cat /etc/wafer-kver)
while read -r m; do
	[ -n "$m" ] || continue
	if insmod "/lib/modules/$kver/$m.ko"; then
		echo "wafer-init: loaded $m"
	else
		echo "wafer-init: FAILED to load $m"
	fi
done < /etc/wafer-modules

# Count online CPUs from ranges such as "0-1,3"; fall back to nproc.
count_cpus() {
	n=0
	list=$(cat /sys/devices/system/cpu/online 2>/dev/null) || { nproc; return; }
	for r in $(echo "$list" | tr ',' ' '); do
		lo=${r%-*} hi=${r#*-}
		n=$((n + hi - lo + 1))
	done
	echo "$n"
}

echo "WAFER-LINUX-OK kernel=$(uname -r) cpus=$(count_cpus)"

# Test hooks for later lanes: each script prints its own details and exits 0
# on success; the summary line lets the host side check them all at once.
pass=0 fail=0 ran=''
for t in /etc/wafer-test.d/*; do
	[ -f "$t" ] || continue
	name=${t##*/}
	if [ -n "$wafer_test" ]; then
		case ",$wafer_test," in
		*,"$name",*|*,"${name#[0-9][0-9]-}",*) ;;
		*) continue ;;
		esac
	fi
	echo "wafer-init: running test $name"
	if sh "$t"; then
		echo "WAFER-TEST-PASS $name"
		pass=$((pass + 1))
	else
		echo "WAFER-TEST-FAIL $name rc=$?"
		fail=$((fail + 1))
	fi
	ran=1
done
[ -z "$ran" ] || echo "WAFER-TESTS-DONE passed=$pass failed=$fail"

if [ "$wafer_end" = shell ]; then
	echo "wafer-init: wafer.end=shell; exit the shell to power off"
	setsid cttyhack sh
fi
sync
poweroff -f
# Reached only if power-off failed; init exiting makes the kernel panic,
# and with panic=-1 that turns into a reboot the VMM can see.
echo "wafer-init: poweroff failed"
exit 1
EOF
chmod 755 "$root/init"

for d in "${overlays[@]}"; do
	cp -a "$d/." "$root/"
done
chmod 755 "$root"/etc/wafer-test.d/* 2>/dev/null || true

# --- archive. Fixed mtimes, owners and inode numbers plus a sorted list make
# the same inputs give the same bytes.
find "$root" -exec touch -h -d @0 {} +
# /dev/console must exist before /init runs (the kernel opens it for init's
# stdio) and making a device node needs root, so that one entry is written
# by hand in the newc format and appended as a second archive, which the
# kernel's initramfs unpacker accepts.
newc_entry() { # name mode rdevmajor rdevminor
	local name=$1 namesize=$((${#1} + 1)) pad
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$5" "$2" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0
	printf '%s\0' "$name"
	pad=$(( (4 - (110 + namesize) % 4) % 4 ))
	[ $pad -eq 0 ] || head -c "$pad" /dev/zero
}
{
	(cd "$root" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible)
	newc_entry dev/console $((0020600)) 5 1 900001
	newc_entry TRAILER!!! 0 0 0 0
} | gzip -9 -n > "$out.tmp"
mv "$out.tmp" "$out"

echo "build-initramfs: $out ($(stat -c %s "$out") bytes), kernel $kver, modules: ${order[*]:-none}"
