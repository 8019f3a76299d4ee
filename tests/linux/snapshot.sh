# shellcheck shell=bash
# The Linux lane's snapshot part, sourced by run.sh --snapshot (needs the
# variables run.sh set: wafer, initrd, cmdline, cpus, memory, guestdir, kver,
# timeout_s, progress_s; and its fail/log/cleanup). Boot with a shell left on
# the console, snapshot once the marker is out, kill the VM, restore it from
# the snapshot and talk to the restored guest's shell over the serial line.

# wait_for FILE PATTERN WHAT: until PATTERN is in FILE (serial CR LF removed),
# while $pid lives, within timeout_s; progress lines as run.sh prints them.
wait_for() {
	local file=$1 pat=$2 what=$3 start now next
	start=$(date +%s)
	next=$((start + progress_s))
	while ! tr -d '\r' < "$file" 2>/dev/null | grep -aq -- "$pat"; do
		kill -0 "$pid" 2>/dev/null || { tr -d '\r' < "$file" | tail -n 30; fail "wafer exited before $what"; }
		now=$(date +%s)
		[ $((now - start)) -lt "$timeout_s" ] || { tr -d '\r' < "$file" | tail -n 30; fail "no $what within ${timeout_s}s"; }
		if [ "$now" -ge "$next" ]; then
			log "$((now - start))s: waiting for $what: $(tail -c 2000 "$file" | tr '\r' '\n' | grep -av '^[[:space:]]*$' | tail -n 1 | cut -c 1-120)"
			next=$((now + progress_s))
		fi
		sleep 1
	done
}

snapshot_run() {
	local name="wafer-linux-snap-$$" name2="wafer-linux-restored-$$"
	local dir=$guestdir/snapshot bootlog=$guestdir/linux-boot.snapshot.log
	local restlog=$guestdir/linux-boot.restored.log fifo=$guestdir/console.fifo
	rm -rf "$dir" "$fifo"
	log "booting with a console shell: $wafer run --name $name ... (log: $bootlog)"
	"$wafer" run --name "$name" --kernel "$WAFER_KERNEL_DIR/vmlinuz" --initrd "$initrd" \
		--cmdline "$cmdline wafer.end=shell" --cpus "$cpus" --memory "$memory" \
		--cpu-template baseline < /dev/null > "$bootlog" 2>&1 &
	pid=$!
	wait_for "$bootlog" "WAFER-LINUX-OK kernel=$kver cpus=$cpus" "the boot marker"
	wait_for "$bootlog" "wafer.end=shell" "the console shell"
	sleep 2
	local t0 t1
	t0=$(date +%s%N)
	"$wafer" snapshot "$name" "$dir" || fail "wafer snapshot failed"
	t1=$(date +%s%N)
	log "snapshot written in $(( (t1 - t0) / 1000000 )) ms: $(du -h --apparent-size "$dir/memory" | cut -f1) RAM file ($(du -h "$dir/memory" | cut -f1) allocated), $(stat -c %s "$dir/state") bytes of state"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=''
	# The restored guest reads the console from a FIFO kept open by a holder,
	# so wafer sees no end of input while the test types.
	mkfifo "$fifo" || fail "mkfifo $fifo"
	sleep 100000 > "$fifo" &
	holder=$!
	log "restoring: $wafer run --restore $dir --name $name2 (log: $restlog)"
	t0=$(date +%s%N)
	"$wafer" run --restore "$dir" --name "$name2" --log-level info < "$fifo" > "$restlog" 2>&1 &
	pid=$!
	wait_for "$restlog" "restored from" "the restore"
	t1=$(date +%s%N)
	log "$(tr -d '\r' < "$restlog" | grep -a -o 'restored from.*' | head -n 1) (wall $(( (t1 - t0) / 1000000 )) ms)"
	# A command only a live shell can answer: arithmetic, not an echo of input.
	printf 'echo SNAP-ANSWER-$((6*7))-$(cat /proc/sys/kernel/random/boot_id | cut -c1-8)\n' > "$fifo"
	wait_for "$restlog" "SNAP-ANSWER-42-" "the restored guest's answer on the serial console"
	log "restored guest answered: $(tr -d '\r' < "$restlog" | grep -a -o 'SNAP-ANSWER-42-[0-9a-f]*' | tail -n 1)"
	printf 'poweroff -f\n' > "$fifo"
	local waited=0
	while kill -0 "$pid" 2>/dev/null && [ $waited -lt 300 ]; do sleep 1; waited=$((waited + 1)); done
	wait "$pid"
	local rc=$?
	pid=''
	kill "$holder" 2>/dev/null
	holder=''
	[ $rc -eq 0 ] || { tr -d '\r' < "$restlog" | tail -n 30; fail "the restored VM exited with status $rc (expected 0 after poweroff)"; }
	log "PASS: booted $kver, snapshotted, restored, the restored guest answered on its console and powered off"
	exit 0
}
