# shellcheck shell=bash
# The Linux lane's snapshot part, sourced by run.sh --snapshot (needs the
# variables run.sh set: wafer, initrd, cmdline, cpus, memory, guestdir, kver,
# timeout_s, progress_s; and its fail/log/wait_for/cleanup). Boot with a shell left on
# the console, snapshot once the marker is out, kill the VM, restore it from
# the snapshot and talk to the restored guest's shell over the serial line.

snapshot_run() {
	local name="wafer-linux-snap-$$" name2="wafer-linux-restored-$$"
	local dir=$guestdir/snapshot bootlog=$guestdir/linux-boot.snapshot.log
	local restlog=$guestdir/linux-boot.restored.log fifo=${TMPDIR:-/tmp}/wafer-linux-snap-$$.fifo
	rm -rf "$dir"
	boot_shell "$name" "$bootlog"
	local t0 t1
	t0=$(date +%s%N)
	"$wafer" snapshot "$name" "$dir" || fail "wafer snapshot failed"
	t1=$(date +%s%N)
	log "snapshot written in $(( (t1 - t0) / 1000000 )) ms: $(du -h --apparent-size "$dir/memory" | cut -f1) RAM file ($(du -h "$dir/memory" | cut -f1) allocated), $(stat -c %s "$dir/state") bytes of state"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=''
	console_fifo "$fifo"
	log "restoring: $wafer run --restore $dir --name $name2 (log: $restlog)"
	t0=$(date +%s%N)
	"$wafer" run --restore "$dir" --name "$name2" --log-level info < "$fifo" > "$restlog" 2>&1 &
	pid=$!
	wait_for "$restlog" "restored from" "the restore"
	t1=$(date +%s%N)
	log "$(tr -d '\r' < "$restlog" | grep -a -o 'restored from.*' | head -n 1) (wall $(( (t1 - t0) / 1000000 )) ms)"
	answer_poweroff "$restlog" "$fifo" "the restored guest" SNAP
	log "PASS: booted $kver, snapshotted, restored, the restored guest answered on its console and powered off"
	exit 0
}
