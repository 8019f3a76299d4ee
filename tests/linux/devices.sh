# The Linux lane's --devices mode, host side (sourced by tests/linux/run.sh,
# which provides mode, guestdir, cmdline, bootlog, netns, fail and log): an ext4
# image, a tap in a network namespace of its own, and the checks after boot.
# shellcheck shell=bash disable=SC2034,SC2154  # shares run.sh's variables

# One /24 between the guest and the host end of the tap. The namespace is
# private to this run, so the addresses cannot clash with the host's.
dev_tap=wtap0
dev_host_ip=192.168.77.1
dev_guest_ip=192.168.77.2/24
dev_mac=52:54:00:77:00:02
dev_tests=virtio-rng,virtio-blk,virtio-net

devices_preflight() {
	local t
	if [ "$(id -u)" -ne 0 ]; then
		echo "linux: SKIP: --devices needs root (ip netns add, a tap in it)"
		exit 77
	fi
	for t in mke2fs debugfs e2fsck; do
		command -v "$t" >/dev/null || fail "$t not found (apt-get install e2fsprogs)"
	done
	command -v ip >/dev/null || fail "ip not found (apt-get install iproute2)"
	[ -c /dev/net/tun ] || fail "/dev/net/tun missing (modprobe tun)"
}

# Builds the disk image, the namespace and the tap; appends the guest's
# parameters to cmdline and sets devargs (VMM device flags) and prefix (runs
# the VMM inside the namespace).
devices_setup() {
	local dir sha
	dev_img=$guestdir/devices.ext4
	dir=$guestdir/devices.d
	rm -rf "$dir" "$dev_img"
	mkdir -p "$dir" || fail "cannot create $dir"
	# 3 MiB: reading it back takes many virtio-blk requests, not one.
	head -c $((3 * 1024 * 1024)) /dev/urandom > "$dir/data.bin" || fail "cannot write $dir/data.bin"
	sha=$(sha256sum "$dir/data.bin" | cut -d' ' -f1)
	truncate -s 64M "$dev_img" || fail "cannot create $dev_img"
	mke2fs -q -F -t ext4 -L wafer-lane -d "$dir" "$dev_img" ||
		fail "mke2fs -t ext4 -d $dir $dev_img failed"
	rm -rf "$dir"
	dev_sectors=$(( $(stat -c %s "$dev_img") / 512 ))
	# A fresh word per run: /guest.txt on the image proves this boot wrote it.
	dev_nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')

	# The pid keeps names apart when several lanes run at once.
	netns=wafer-lane-$$
	ip netns add "$netns" || fail "ip netns add $netns failed"
	ip -n "$netns" tuntap add "$dev_tap" mode tap || fail "creating tap $dev_tap in $netns failed"
	ip -n "$netns" addr add "$dev_host_ip/24" dev "$dev_tap" || fail "ip addr add on $dev_tap failed"
	ip -n "$netns" link set "$dev_tap" up || fail "ip link set $dev_tap up failed"
	log "devices: $dev_img ($dev_sectors sectors, data.bin sha256 $sha); tap $dev_tap $dev_host_ip in netns $netns"

	cmdline="$cmdline wafer.test=$dev_tests wafer.sha=$sha wafer.sectors=$dev_sectors"
	cmdline="$cmdline wafer.nonce=$dev_nonce wafer.mac=$dev_mac wafer.ip=$dev_guest_ip"
	cmdline="$cmdline wafer.peer=$dev_host_ip"
	prefix=(ip netns exec "$netns")
	if [ "$mode" = wafer ]; then
		devargs=(--disk "$dev_img" --net "tap=$dev_tap,mac=$dev_mac" --rng)
	else
		# Modern-only virtio-pci devices, as wafer offers; vhost off so the
		# data path is QEMU's own, like wafer's.
		# shellcheck disable=SC2054  # the commas are QEMU's
		devargs=(-nic none
			-drive "if=none,id=d0,file=$dev_img,format=raw"
			-device virtio-blk-pci,drive=d0,disable-legacy=on
			-netdev "tap,id=n0,ifname=$dev_tap,script=no,downscript=no,vhost=off"
			-device "virtio-net-pci,netdev=n0,mac=$dev_mac,disable-legacy=on"
			-device virtio-rng-pci,disable-legacy=on)
	fi
}

# Prints one Icmp counter (by its /proc/net/snmp name) of the namespace.
devices_icmp() {
	ip netns exec "$netns" cat /proc/net/snmp | awk -v k="$1" '
		$1 == "Icmp:" && !h { for (i = 2; i <= NF; i++) if ($i == k) c = i; h = 1; next }
		$1 == "Icmp:" && h { print $c; exit }'
}

devices_check() {
	local out t line wsha txt got rx tx echos replies
	out=$(tr -d '\r' < "$bootlog")
	echo "$out" | grep -a -E '^(virtio-(rng|blk|net): |WAFER-DEV |WAFER-TEST-|WAFER-TESTS-)' |
		sed 's/^/linux: guest: /'
	for t in ${dev_tests//,/ }; do
		echo "$out" | grep -aq "^WAFER-TEST-PASS $t\$" || fail "guest test $t did not pass (see above)"
	done
	echo "$out" | grep -aq '^WAFER-TESTS-DONE passed=3 failed=0$' ||
		fail "no 'WAFER-TESTS-DONE passed=3 failed=0' line"
	echo "$out" | grep -aq '^WAFER-DEV rng ok source=virtio_rng' || fail "no virtio-rng result line"
	echo "$out" | grep -aq "^WAFER-DEV net ok .* mac=$dev_mac ping=3/3 peer=$dev_host_ip\$" ||
		fail "no virtio-net result line with mac=$dev_mac ping=3/3"
	line=$(echo "$out" | grep -a "^WAFER-DEV blk ok sectors=$dev_sectors data-sha256=match " | head -n 1)
	[ -n "$line" ] || fail "no virtio-blk result line with sectors=$dev_sectors data-sha256=match"
	wsha=$(echo "$line" | sed -n 's/.* guest.bin-sha256=\([0-9a-f]\{64\}\)$/\1/p')
	[ -n "$wsha" ] || fail "virtio-blk line has no guest.bin sha256: $line"

	# What the guest wrote must be on the image, read without the guest's
	# kernel: debugfs parses ext4 itself.
	txt=$(debugfs -R 'cat /guest.txt' "$dev_img" 2>/dev/null)
	[ "$txt" = "wafer guest wrote this, nonce=$dev_nonce" ] ||
		fail "/guest.txt on the image reads '$txt', expected nonce=$dev_nonce"
	got=$(debugfs -R 'cat /guest.bin' "$dev_img" 2>/dev/null | sha256sum | cut -d' ' -f1)
	[ "$got" = "$wsha" ] || fail "/guest.bin on the image has sha256 $got, the guest wrote $wsha"
	e2fsck -fn "$dev_img" > "$guestdir/devices.e2fsck.log" 2>&1 ||
		fail "e2fsck -fn finds the image inconsistent (see $guestdir/devices.e2fsck.log)"
	log "devices: image: /guest.txt has nonce=$dev_nonce, /guest.bin sha256 matches, e2fsck clean"

	# The host end saw the guest's echo requests and answered them; tap rx
	# counts frames the VMM wrote (guest to host), tx the other way.
	echos=$(devices_icmp InEchos)
	replies=$(devices_icmp OutEchoReps)
	rx=$(ip netns exec "$netns" cat "/sys/class/net/$dev_tap/statistics/rx_packets")
	tx=$(ip netns exec "$netns" cat "/sys/class/net/$dev_tap/statistics/tx_packets")
	log "devices: netns $netns: Icmp InEchos=$echos OutEchoReps=$replies; $dev_tap rx_packets=$rx tx_packets=$tx"
	if [ "${echos:-0}" -lt 3 ] || [ "${replies:-0}" -lt 3 ]; then
		fail "the host answered ${replies:-0} of ${echos:-0} echo requests, expected at least 3"
	fi
	# ARP plus 3 echo requests each way at least.
	if [ "${rx:-0}" -lt 4 ] || [ "${tx:-0}" -lt 4 ]; then
		fail "$dev_tap passed too few frames (rx $rx, tx $tx; expected at least 4 each)"
	fi
}
