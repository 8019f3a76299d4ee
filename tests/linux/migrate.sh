# shellcheck shell=bash
# The Linux lane's live-migration part, sourced by run.sh --migrate (uses the
# variables and helpers run.sh sets). Boot with a shell left on the console,
# start a destination with `wafer run --incoming tcp:127.0.0.1:PORT`, move the
# running guest there with `wafer migrate`, and talk to the migrated guest's
# shell over the destination's serial line: the source must have handed over
# (exit 0) and the destination must answer and power off cleanly.

migrate_run() {
	local name="wafer-linux-msrc-$$" name2="wafer-linux-mdst-$$"
	local srclog=$guestdir/linux-boot.migrate-src.log dstlog=$guestdir/linux-boot.migrate-dst.log
	local fifo=${TMPDIR:-/tmp}/wafer-linux-migr-$$.fifo miglog=$guestdir/linux-migrate.log
	local url spid rc i
	url=tcp:127.0.0.1:$(( 40000 + RANDOM % 20000 ))
	boot_shell "$name" "$srclog"
	spid=$pid
	console_fifo "$fifo"
	log "destination: $wafer run --incoming $url --name $name2 (log: $dstlog)"
	"$wafer" run --incoming "$url" --name "$name2" --log-level info < "$fifo" > "$dstlog" 2>&1 &
	pid=$!
	for i in $(seq 100); do
		ss -ltnH 2>/dev/null | grep -q ":${url##*:} " && break
		kill -0 "$pid" 2>/dev/null || { cat "$dstlog"; fail "the destination exited before listening"; }
		sleep 0.1
	done
	log "migrating: $wafer migrate $name $url"
	"$wafer" migrate "$name" "$url" --timeout "$timeout_s" > "$miglog" 2>&1 ||
		{ cat "$miglog"; fail "wafer migrate exited with status $?"; }
	log "migrate: $(grep -v '^ *$' "$miglog" | tail -n 1)"
	for i in $(seq 300); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$spid" 2>/dev/null && fail "the source still runs 30 s after the hand-over"
	wait "$spid"
	rc=$?
	[ $rc -eq 0 ] || { tail -n 20 "$srclog"; fail "the source exited with status $rc after the hand-over, expected 0"; }
	answer_poweroff "$dstlog" "$fifo" "the migrated guest" MIGR
	log "PASS: booted $kver, migrated it live over $url, the destination's guest answered on its console and powered off"
	exit 0
}
