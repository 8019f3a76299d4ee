#!/usr/bin/env bash
# Snapshot/restore and live migration: wafer side by side with QEMU (-M
# microvm, KVM) on the same tiny PVH guests (tests/guests). Prints "name value
# unit" lines as it measures, then a table: metric, wafer, QEMU, wafer/QEMU,
# target. A benchmark: it reports, it asserts nothing.
#
# With /dev/kvm:
#  - snapshot create and restore, 128 MiB and 1 GiB guests whose RAM the
#    dirtier guest has written once (so every page is in the image): wafer
#    snapshot NAME DIR vs QMP stop + migrate "exec:cat > FILE" (each resumed
#    after, untimed);
#    wafer run --restore DIR vs QEMU -incoming defer + migrate-incoming
#    "exec:cat FILE". Each as the VMM's own figure and as wall time.
#  - live migration of a 1 GiB guest over tcp loopback, idle (counter, a
#    report every 1 ms) and busy (dirtier, 992 MiB rewritten as fast as it
#    can): wafer migrate vs QMP migrate (downtime-limit 20 ms, auto-converge
#    on both): total time, the VMM's reported downtime, and the downtime the
#    guest saw (the largest step of its own timestamps across the cut).
# Always (no KVM needed; labelled as such): the migration engine alone over
# tcp loopback (migrate_peer: simulated guest, no vCPU/device state), and the
# part of wafer run --restore that precedes KVM (state file read and
# validation, memory file open), timed to its KVM-absent error.
#
# usage: bench/snapshot.sh [BUILD_DIR]   (also: ninja -C BUILD_DIR bench-snapshot)
# Environment: WAFER, QEMU, GUESTS, QMP, SNAPGEN, MIGRATE_PEER override paths;
#   BENCH_RUNS (3) snapshot and restore repetitions, BENCH_ENGINE_RUNS (3),
#   BENCH_PREP_RUNS (15): medians are reported, with min..max;
#   BENCH_MIG_TIMEOUT (120 s) per migration; BENCH_BUSY_MBS (1000) the
#   simulated guest's dirty rate in the engine-only busy run;
#   BENCH_QEMU_MACHINE (microvm); BENCH_PARTS (default "engine prep snapshot
#   migrate"): which parts to run; BENCH_KEEP=1 keeps the guests' output
#   (the work directory is named at exit) -- mind the images' size;
#   BENCH_ALLOW_TCG=1 without /dev/kvm: also run the QEMU half under TCG
#   (checks the script; the numbers mean nothing for KVM).
# Exits 77 when /dev/kvm is unusable (after the parts that run without it),
# else 0.
set -u
export LC_ALL=C    # $EPOCHREALTIME and awk with a '.' decimal point

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
[[ $build == /* ]] || build=$PWD/$build
WAFER=${WAFER:-$build/wafer}
QEMU=${QEMU:-qemu-system-x86_64}
GUESTS=${GUESTS:-$build/tests/guests}
QMP=${QMP:-$build/bench/qmp}
SNAPGEN=${SNAPGEN:-$build/tests/integration/snapgen}
MIGRATE_PEER=${MIGRATE_PEER:-$build/tests/integration/migrate_peer}
CHECK_COUNTER=$root/tests/integration/check-counter.sh
RUNS=${BENCH_RUNS:-3}
ENGINE_RUNS=${BENCH_ENGINE_RUNS:-3}
PREP_RUNS=${BENCH_PREP_RUNS:-15}
MIG_TIMEOUT=${BENCH_MIG_TIMEOUT:-120}
BUSY_MBS=${BENCH_BUSY_MBS:-1000}
MACHINE=${BENCH_QEMU_MACHINE:-microvm}
PARTS=" ${BENCH_PARTS:-engine prep snapshot migrate} "

# On real KVM, the way the tests get it: directly on a hardware KVM, else
# inside the nested-KVM test VM, where only ratios mean something (KVMVM is
# set once there).
[[ -n ${KVMVM:-} || ${BENCH_ALLOW_TCG:-0} == 1 ]] || exec "$root/tests/kvmvm/run.sh" -- "$0" "$@"
part() { [[ $PARTS == *" $1 "* ]]; }
SNAP_SIZES=(128 1024)       # MiB
MIG_MIB=1024
IDLE_CMDLINE="hz=1000 every=1 mib=1"                    # counter: a report per ms
BUSY_CMDLINE="mib=$((MIG_MIB - 32)) every_ms=10"        # dirtier, 16 MiB .. 1008 MiB

say() { echo "bench: $*" >&2; }

# ---- KVM, tools --------------------------------------------------------------
kvm_reason=""
if [[ ! -e /dev/kvm ]]; then
	kvm_reason="/dev/kvm: No such file or directory"
elif [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
	kvm_reason="/dev/kvm: Permission denied"
fi
accel=kvm cpu=host
qemu_ok=1
if [[ -n $kvm_reason ]]; then
	accel=tcg cpu=max
	[[ ${BENCH_ALLOW_TCG:-0} == 1 ]] || qemu_ok=0
fi
if [[ $qemu_ok == 1 ]] && ! command -v "$QEMU" >/dev/null; then
	say "$QEMU not found: the QEMU half is skipped"
	qemu_ok=0
fi
for f in "$QMP" "$GUESTS/counter.elf" "$GUESTS/dirtier.elf"; do
	[[ -x $f || -f $f ]] || { say "$f missing: build first (ninja -C $build)"; exit 1; }
done
have_engine=1 have_snapgen=1
[[ -x $MIGRATE_PEER ]] || { say "$MIGRATE_PEER missing (-Dtests=false?): engine-only figures skipped"; have_engine=0; }
[[ -x $SNAPGEN ]] || { say "$SNAPGEN missing (-Dtests=false?): restore-preparation figures skipped"; have_snapgen=0; }

# ---- processes, files, cleanup ---------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/wafer-bench-snap.XXXXXX") || exit 1
declare -A live=()     # pids of background processes we started and not reaped
names=()               # wafer VM names we used
if [[ $(id -u) == 0 ]]; then
	rundir=/run/wafer
else
	export XDG_RUNTIME_DIR=$work/xdg    # wafer finds VMs by name here
	mkdir -m 700 "$XDG_RUNTIME_DIR"
	rundir=$XDG_RUNTIME_DIR/wafer
fi
cleanup() {
	local p n i
	for p in "${!live[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for ((i = 0; i < 30; i++)); do
		n=0
		for p in "${!live[@]}"; do kill -0 "$p" 2>/dev/null && n=1; done
		[[ $n == 0 ]] && break
		sleep 0.1
	done
	for p in "${!live[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	for n in "${names[@]}"; do rm -rf "${rundir:?}/$n"; done
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# reap PID [SECS]: wait for it to exit (TERM after SECS, default 10, then
# KILL); its status in $rc.
reap() {
	local pid=$1 secs=${2:-10} i
	for ((i = 0; i < secs * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	unset "live[$pid]"
}

# bg_run CMD...: CMD in the background, waited for, so that a signal to this
# script ends it at once (bash runs traps only between foreground commands,
# but interrupts a wait); its status in $rc.
bg_run() {
	"$@" &
	local p=$!
	live[$p]=1
	wait "$p"
	rc=$?
	unset "live[$p]"
}

# wait_for FILE ERE SECS [PID]: until a line of FILE matches; 1 on timeout or
# when PID exits first.
wait_for() {
	local f=$1 re=$2 secs=$3 pid=${4:-} i
	for ((i = 0; i < secs * 20; i++)); do
		grep -qE -- "$re" "$f" 2>/dev/null && return 0
		[[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null && { grep -qE -- "$re" "$f" 2>/dev/null; return; }
		sleep 0.05
	done
	return 1
}

# stamp FILE: stdin to FILE, each line prefixed with $EPOCHREALTIME on arrival.
stamp() { local l; while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done >"$1"; }

ms_since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) * 1e3 }'; }

# stats V...: "median min max" of the numbers given (nothing if none).
stats() {
	(($#)) || return 0
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.3f %.3f %.3f\n", m, v[1], v[NR] }'
}

# A port nobody listens on (for QEMU; wafer and migrate_peer take port 0).
free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		if command -v ss >/dev/null; then
			[[ -z $(ss -ltnH "sport = :$p" 2>/dev/null) ]] || continue
		else
			(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		fi
		echo "$p"
		return 0
	done
	return 1
}

# ---- results -------------------------------------------------------------------
declare -A val=()
# emit KEY WHO VALUES...: prints "KEY_WHO median unit" (with n and min..max
# when repeated) and keeps the median for the tables; WHO is wafer, qemu,
# engine or prep; the unit is the one of the key's row.
emit() {
	local key=$1 who=$2 v nums=(); shift 2
	local unit=${unit_of[$key]:-ms} s
	for v in "$@"; do [[ $v =~ ^-?[0-9]+(\.[0-9]*)?$ ]] && nums+=("$v"); done
	s=$(stats "${nums[@]}")
	[[ -n $s ]] || return 0
	set -- $s
	val[$key:$who]=$1
	if ((${#nums[@]} > 1)); then
		printf '%s_%s %s %s (n=%d, %s..%s)\n' "$key" "$who" "$1" "$unit" ${#nums[@]} "$2" "$3"
	else
		printf '%s_%s %s %s\n' "$key" "$who" "$1" "$unit"
	fi
}
note() { echo "note: $*"; }

# Rows of the final tables: KEY|label|unit|target ("<= N" or "").
declare -A unit_of=()
rows_vs=() rows_engine=() rows_prep=()
row() { # LIST KEY LABEL UNIT [TARGET]
	local -n list=$1
	list+=("$2|$3|$4|${5:-}")
	unit_of[$2]=$4
}
for m in "${SNAP_SIZES[@]}"; do
	sz=$( ((m >= 1024)) && echo "$((m / 1024)) GiB" || echo "$m MiB")
	row rows_vs "create_${m}_own" "snapshot create $sz: VMM's own" ms
	row rows_vs "create_${m}_wall" "snapshot create $sz: CLI/QMP wall" ms
	row rows_vs "restore_${m}_own" "restore $sz: VMM's own (memory CRC checked)" ms
	row rows_vs "restore_${m}_wall" "restore $sz: exec to running" ms
	tgt=""; ((m == 128)) && tgt="<= 5"
	row rows_vs "restore_${m}_noverify_own" "  --restore-no-verify: VMM's own" ms "$tgt"
	row rows_vs "restore_${m}_noverify_wall" "  --restore-no-verify: exec to running" ms
	row rows_vs "image_${m}" "snapshot image $sz: bytes on disk" MiB
done
for k in idle busy; do
	row rows_vs "mig_${k}_total" "migrate 1 GiB $k: total" ms
	tgt=""; [[ $k == idle ]] && tgt="<= 10"
	row rows_vs "mig_${k}_downtime" "migrate 1 GiB $k: reported downtime" ms "$tgt"
	row rows_vs "mig_${k}_gap" "migrate 1 GiB $k: guest-observed gap" ms "$tgt"
	row rows_vs "mig_${k}_rounds" "migrate 1 GiB $k: rounds" count
	row rows_vs "mig_${k}_throttle" "migrate 1 GiB $k: max throttle" pct
	row rows_vs "mig_${k}_sent" "migrate 1 GiB $k: sent" MiB
done
for k in idle busy; do
	row rows_engine "eng_${k}_total" "engine 1 GiB $k: total" ms
	row rows_engine "eng_${k}_downtime" "engine 1 GiB $k: downtime" ms
	row rows_engine "eng_${k}_rounds" "engine 1 GiB $k: rounds" count
	row rows_engine "eng_${k}_throttle" "engine 1 GiB $k: max throttle" pct
	row rows_engine "eng_${k}_bw" "engine 1 GiB $k: link rate" MB/s
	row rows_engine "eng_${k}_sent" "engine 1 GiB $k: sent" MiB
done
for m in "${SNAP_SIZES[@]}"; do
	sz=$( ((m >= 1024)) && echo "$((m / 1024)) GiB" || echo "$m MiB")
	row rows_prep "prep_${m}_strace" "restore prep $sz: open(state) to open(KVM), memory CRC checked" ms
	row rows_prep "prep_${m}_noverify_strace" "  the same with --restore-no-verify" ms
	row rows_prep "prep_${m}_sparse_strace" "  the same, an idle guest's image (1 page per MiB)" ms
	row rows_prep "prep_${m}" "restore prep $sz: process wall to KVM error, memory CRC checked" ms
	row rows_prep "prep_${m}_noverify" "  the same with --restore-no-verify" ms
	row rows_prep "prep_${m}_sparse" "  the same, an idle guest's image (1 page per MiB)" ms
done
row rows_prep "prep_baseline" "baseline: wafer run --kernel, wall to KVM error" ms

# print_table TITLE LIST COLUMNS...: COLUMNS are WHO names; with two, a
# ratio column (first/second) and, if show_targets=1, the target.
show_targets=0
print_table() {
	local title=$1; local -n list=$2; shift 2
	local cols=("$@") r key label unit tgt a b ratio met line c
	echo
	echo "== $title"
	if ((${#cols[@]} == 2)); then
		printf '%-50s %12s %12s %10s  %s\n' "metric" "${cols[0]}" "${cols[1]}" "ratio" "target"
	else
		printf '%-50s %12s\n' "metric" "value"
	fi
	for r in "${list[@]}"; do
		IFS='|' read -r key label unit tgt <<<"$r"
		line=$(printf '%-50s' "$label ($unit)")
		local any=0
		for c in "${cols[@]}"; do [[ -n ${val[$key:$c]:-} ]] && any=1; done
		[[ $any == 1 ]] || continue
		for c in "${cols[@]}"; do line+=$(printf ' %12s' "${val[$key:$c]:--}"); done
		if ((${#cols[@]} == 2)); then
			a=${val[$key:${cols[0]}]:-} b=${val[$key:${cols[1]}]:-}
			ratio=-
			[[ -n $a && -n $b ]] && ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { print (b > 0) ? sprintf("%.2f", a / b) : "-" }')
			line+=$(printf ' %10s' "$ratio")
			if [[ -n $tgt && $show_targets == 1 ]]; then
				met="not measured"
				[[ -n $a ]] && met=$(awk -v a="$a" -v t="${tgt#<= }" 'BEGIN { print (a <= t) ? "met" : "NOT met" }')
				line+="  $tgt $unit (wafer): $met"
			fi
		fi
		echo "$line"
	done
}

# ---- guests under wafer and QEMU ----------------------------------------------------
# wafer_start NAME OUT ARGS...: wafer run in the background; serial to OUT,
# stderr to OUT.log with each line stamped; pid in $VPID.
wafer_start() {
	local name=$1 out=$2; shift 2
	names+=("$name")
	"$WAFER" run --name "$name" --log-level info "$@" </dev/null >"$out" 2> >(stamp "$out.log") &
	VPID=$!
	live[$VPID]=1
}

wafer_stop() { # NAME PID
	"$WAFER" stop --force "$1" >/dev/null 2>&1
	reap "$2" 10
}

# qemu_start OUT SOCK MEM_MIB GUEST CMDLINE [ARGS...]: QEMU in the background,
# serial to OUT, QMP on SOCK; pid in $QPID. Both ends of a migration get the
# same machine. Without the global run state in the stream, a destination
# runs once loaded even though the source was stopped (as wafer's restore).
qemu_start() {
	local out=$1 sock=$2 mem=$3 guest=$4 cmdline=$5; shift 5
	"$QEMU" -M "$MACHINE" -accel "$accel" -cpu "$cpu" -m "$mem" -smp 1 \
		-nodefaults -no-user-config -display none \
		-global migration.store-global-state=off \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-kernel "$guest" -append "$cmdline" \
		-serial "file:$out" -qmp "unix:$sock,server=on,wait=off" "$@" \
		</dev/null >"$out.stdout" 2>"$out.err" &
	QPID=$!
	live[$QPID]=1
}

kv() { awk -v k="$1" '$1 == k { print $2; exit }' "$2"; }

# guest_fails CONTEXT FILE...: a note for each guest output that reports a
# broken page or counter (the guests check themselves; see their headers).
guest_fails() {
	local ctx=$1 f l where; shift
	for f in "$@"; do
		l=$(tr -d '\r' <"$f" 2>/dev/null | grep -m 1 'FAIL')
		[[ -n $l ]] || continue
		case ${f##*/} in
		src.out) where="the source" ;;
		dst.out) where="the destination" ;;
		rest*) where="a restored VM" ;;
		*) where=${f##*/} ;;
		esac
		note "$ctx: the guest on $where reported: $l"
	done
}

# ---- snapshot and restore ----------------------------------------------------------
# The guest: the dirtier writing all of its region (16 MiB .. MEM - 16 MiB)
# once, so the image holds every page; restore then has all of it to bring in.
snap_cmdline() { echo "mib=$(($1 - 32)) every_ms=100"; }

snap_wafer() { # MEM_MIB
	local m=$1 d=$work/wsnap$1 n=bsnap-$$-$1 r t0 t1 out pid create_own=() create_wall=() \
		rest_own=() rest_wall=() line pause write dir="" x
	mkdir -p "$d"
	wafer_start "$n" "$d/src.out" --kernel "$GUESTS/dirtier.elf" --cpus 1 --memory "${m}M" \
		--cmdline "$(snap_cmdline "$m")"
	pid=$VPID
	if ! wait_for "$d/src.out" '^dirtier: pass=[1-9]' 300 "$pid"; then
		say "wafer $m MiB: the dirtier never finished its first pass over its memory"; tail -n 5 "$d/src.out.log" >&2
		wafer_stop "$n" "$pid"; return 1
	fi
	for ((r = 1; r <= RUNS; r++)); do
		[[ -n $dir ]] && rm -rf "$dir"     # keep one image on disk at a time
		dir=$d/snap$r
		t0=$EPOCHREALTIME
		bg_run "$WAFER" snapshot "$n" "$dir" >"$d/snapshot.out" 2>&1
		x=$rc
		t1=$EPOCHREALTIME
		line=$(cat "$d/snapshot.out")
		# A failed snapshot resumes the VM itself.
		if [[ $x != 0 ]]; then say "wafer snapshot: $line"; dir=""; break; fi
		"$WAFER" resume "$n" >/dev/null 2>&1 || say "wafer resume $n failed"
		pause=$(sed -n 's/.*(pause \([0-9.]*\) ms, write \([0-9.]*\) ms).*/\1/p' <<<"$line")
		write=$(sed -n 's/.*(pause \([0-9.]*\) ms, write \([0-9.]*\) ms).*/\2/p' <<<"$line")
		[[ -n $pause && -n $write ]] && create_own+=("$(awk -v a="$pause" -v b="$write" 'BEGIN { print a + b }')")
		create_wall+=("$(ms_since "$t0" "$t1")")
	done
	wafer_stop "$n" "$pid"
	guest_fails "wafer $m MiB" "$d/src.out"
	emit "create_${m}_own" wafer "${create_own[@]}"
	emit "create_${m}_wall" wafer "${create_wall[@]}"
	[[ -n $dir && -f $dir/memory ]] || return 1
	emit "image_${m}" wafer "$(du -k "$dir/memory" | awk '{ printf "%.1f", $1 / 1024 }')"
	# The default (the memory file's CRC checked first: it reads the whole
	# image) and --restore-no-verify (RAM read lazily, as the target assumes).
	for v in "" noverify; do
		rest_own=() rest_wall=()
		for ((r = 1; r <= RUNS; r++)); do
			out=$d/rest$v$r.out
			t0=$EPOCHREALTIME
			wafer_start "$n-r$r" "$out" --restore "$dir" ${v:+--restore-no-verify}
			pid=$VPID
			if wait_for "$out.log" 'restored from .* in [0-9.]+ ms' 60 "$pid"; then
				line=$(grep -m 1 -E 'restored from .* in [0-9.]+ ms' "$out.log")
				rest_own+=("$(sed -n 's/.*restored from .* in \([0-9.]*\) ms.*/\1/p' <<<"$line")")
				rest_wall+=("$(ms_since "$t0" "${line%% *}")")
				sleep 0.5     # the guest goes on (and checks its pages)
				grep -q '^dirtier: pass=' "$out" || note "wafer $m MiB: no guest output in 0.5 s after the restore"
			else
				say "wafer run --restore $dir: no 'restored from' line"; tail -n 5 "$out.log" >&2
			fi
			wafer_stop "$n-r$r" "$pid"
			guest_fails "wafer $m MiB" "$out"
		done
		emit "restore_${m}${v:+_$v}_own" wafer "${rest_own[@]}"
		emit "restore_${m}${v:+_$v}_wall" wafer "${rest_wall[@]}"
	done
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$d"
}

snap_qemu() { # MEM_MIB
	local m=$1 d=$work/qsnap$1 r t0 out pid file="" create_own=() create_wall=() \
		rest_own=() rest_wall=() x
	mkdir -p "$d"
	qemu_start "$d/src.out" "$d/src.qmp" "$m" "$GUESTS/dirtier.elf" "$(snap_cmdline "$m")"
	pid=$QPID
	if ! wait_for "$d/src.out" '^dirtier: pass=[1-9]' 300 "$pid"; then
		say "QEMU $m MiB: the dirtier never finished its first pass over its memory"; cat "$d/src.out.err" >&2
		reap "$pid" 0; return 1
	fi
	for ((r = 1; r <= RUNS; r++)); do
		[[ -n $file ]] && rm -f "$file"
		file=$d/state$r
		bg_run "$QMP" "$d/src.qmp" \
			'{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 107374182400}}' \
			mark '{"execute": "stop"}' \
			"$(printf '{"execute": "migrate", "arguments": {"uri": "exec:cat > %s"}}' "$file")" \
			wait-migrate 300 '{"execute": "cont"}' >"$d/save$r" 2>"$d/save$r.err"
		x=$rc
		if [[ $x != 0 || $(kv status "$d/save$r") != completed ]]; then
			say "QEMU save to $file failed: $(cat "$d/save$r.err")"; file=""; break
		fi
		create_own+=("$(kv total_time_ms "$d/save$r")")
		create_wall+=("$(kv wall_ms "$d/save$r")")
	done
	reap "$pid" 0
	guest_fails "QEMU $m MiB" "$d/src.out"
	emit "create_${m}_own" qemu "${create_own[@]}"
	emit "create_${m}_wall" qemu "${create_wall[@]}"
	[[ -n $file && -f $file ]] || return 1
	emit "image_${m}" qemu "$(du -k "$file" | awk '{ printf "%.1f", $1 / 1024 }')"
	for ((r = 1; r <= RUNS; r++)); do
		out=$d/rest$r.out
		t0=$EPOCHREALTIME
		qemu_start "$out" "$d/rest$r.qmp" "$m" "$GUESTS/dirtier.elf" "$(snap_cmdline "$m")" \
			-incoming defer
		pid=$QPID
		bg_run "$QMP" "$d/rest$r.qmp" --t0 "$t0" mark \
			"$(printf '{"execute": "migrate-incoming", "arguments": {"uri": "exec:cat %s"}}' "$file")" \
			wait-status running 120 >"$d/load$r" 2>"$d/load$r.err"
		if [[ $rc == 0 ]]; then
			rest_own+=("$(kv wall_ms "$d/load$r")")
			rest_wall+=("$(kv wall_t0_ms "$d/load$r")")
			sleep 0.5
			grep -q '^dirtier: pass=' "$out" || note "QEMU $m MiB: no guest output in 0.5 s after the restore"
		else
			say "QEMU restore from $file failed: $(cat "$d/load$r.err")"; cat "$out.err" >&2
		fi
		reap "$pid" 0
		guest_fails "QEMU $m MiB" "$out"
	done
	emit "restore_${m}_own" qemu "${rest_own[@]}"
	emit "restore_${m}_wall" qemu "${rest_wall[@]}"
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$d"
}

# ---- live migration ------------------------------------------------------------------
# guest_gap KIND WHO SRC DST HOST_MS: the guest-observed gap across the cut,
# the largest step between consecutive guest timestamps (t=NS ends every
# counter report and dirtier progress line) in the joined output (a line cut
# at the switch-over reads whole). HOST_MS: host time from the source's start
# to the end: a guest clock that ran faster than that is not real time
# (QEMU microvm under TCG: no kvmclock, and without an emulated port 0x61
# the guest's PIT calibration of the TSC ends at once) and its gaps are left
# out.
guest_gap() {
	local kind=$1 who=$2 src=$3 dst=$4 host_ms=$5 g span
	if [[ $kind == idle ]]; then
		"$CHECK_COUNTER" "$src" "$dst" >"$src.check" 2>&1 ||
			note "$who idle: check-counter: $(grep -m 1 FAIL "$src.check")"
	fi
	guest_fails "$who $kind" "$src" "$dst"
	read -r g span < <(cat "$src" "$dst" | tr -d '\r' | awk '/ t=[0-9]+$/ {
		t = substr($NF, 3) + 0
		if (n++) { if (t - last > gap) gap = t - last } else first = t
		last = t }
		END { if (n > 1) printf "%.3f %.3f\n", gap / 1e6, (last - first) / 1e6 }')
	[[ -n ${g:-} ]] || { note "$who $kind: no guest timestamps"; return 0; }
	if awk -v s="$span" -v h="$host_ms" 'BEGIN { exit !(s > 1.25 * h) }'; then
		echo "mig_${kind}_gap_${who} n/a (the guest clock ran ${span} ms in ${host_ms} ms of host time: not real time)"
		return 0
	fi
	emit "mig_${kind}_gap" "$who" "$g"
	[[ $kind == busy ]] &&
		note "$who busy: the dirtier prints every 10 ms; its largest step includes throttling"
	return 0
}

mig_setup() { # KIND: sets guest, cmdline, warm (ERE of a line to wait for)
	if [[ $1 == idle ]]; then
		guest=$GUESTS/counter.elf cmdline=$IDLE_CMDLINE warm='^tick=2000 '
	else
		guest=$GUESTS/dirtier.elf cmdline=$BUSY_CMDLINE warm='^dirtier: pass=[1-9]'
	fi
}

mig_wafer() { # KIND
	local kind=$1 d=$work/wmig$1 dn=bmigd-$$-$1 sn=bmigs-$$-$1 dpid spid url x guest cmdline warm t0
	mig_setup "$kind"
	mkdir -p "$d"
	wafer_start "$dn" "$d/dst.out" --incoming tcp:127.0.0.1:0
	dpid=$VPID
	if ! wait_for "$d/dst.out.log" 'waiting for an incoming migration on tcp:' 30 "$dpid"; then
		say "wafer --incoming did not start listening"; tail -n 5 "$d/dst.out.log" >&2
		reap "$dpid" 0; return 1
	fi
	url=$(grep -m 1 -o 'waiting for an incoming migration on tcp:[^ ]*' "$d/dst.out.log" | sed 's/.* on //')
	t0=$EPOCHREALTIME
	wafer_start "$sn" "$d/src.out" --kernel "$guest" --cpus 1 --memory "${MIG_MIB}M" \
		--cmdline "$cmdline"
	spid=$VPID
	if ! wait_for "$d/src.out" "$warm" 300 "$spid"; then
		say "wafer $kind: the guest never printed '$warm'"; tail -n 5 "$d/src.out.log" >&2
		wafer_stop "$sn" "$spid"; wafer_stop "$dn" "$dpid"; return 1
	fi
	[[ $kind == busy ]] && sleep 1
	bg_run timeout --kill-after=5 $((MIG_TIMEOUT + 30)) "$WAFER" migrate "$sn" "$url" --downtime-ms 20 \
		--timeout "$MIG_TIMEOUT" --json </dev/null >"$d/mig.json" 2>"$d/mig.err"
	x=$rc
	jget() { grep -o "\"$1\": *[-0-9.eE+]*" "$d/mig.json" | head -n 1 | sed 's/.*: *//'; }
	if [[ $x == 0 ]]; then
		emit "mig_${kind}_total" wafer "$(jget total_ms)"
		emit "mig_${kind}_downtime" wafer "$(jget downtime_ms)"
		emit "mig_${kind}_rounds" wafer "$(($(jget round) + 1))"
		emit "mig_${kind}_throttle" wafer "$(jget throttle_pct)"
		emit "mig_${kind}_sent" wafer "$(awk -v b="$(jget bytes_transferred)" 'BEGIN { printf "%.1f", b / 1048576 }')"
		[[ $kind == busy ]] && note "wafer busy: throttle is the final status's throttle_pct (at switch-over)"
		reap "$spid" 30      # the source exits once the destination confirmed
		sleep 1              # the destination goes on
		kill -0 "$dpid" 2>/dev/null || { reap "$dpid" 0; note "wafer $kind: the destination exited (status $rc)"; }
		guest_gap "$kind" wafer "$d/src.out" "$d/dst.out" "$(ms_since "$t0" "$EPOCHREALTIME")"
	else
		say "wafer migrate $kind failed (exit $x): $(cat "$d/mig.err") $(grep -o '"error": *"[^"]*"' "$d/mig.json")"
		wafer_stop "$sn" "$spid"
	fi
	wafer_stop "$dn" "$dpid"
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$d"
}

mig_qemu() { # KIND
	local kind=$1 d=$work/qmig$1 dpid spid port x guest cmdline warm t0
	mig_setup "$kind"
	mkdir -p "$d"
	for _ in 1 2 3; do     # the port may be taken between the check and QEMU's bind
		port=$(free_port) || { say "no free port"; return 1; }
		qemu_start "$d/dst.out" "$d/dst.qmp" "$MIG_MIB" "$guest" "$cmdline" \
			-incoming "tcp:127.0.0.1:$port"
		dpid=$QPID
		"$QMP" "$d/dst.qmp" wait-status inmigrate 30 >/dev/null 2>&1 && break
		reap "$dpid" 0
		dpid=""
	done
	[[ -n $dpid ]] || { say "QEMU -incoming did not start: $(cat "$d/dst.out.err")"; return 1; }
	t0=$EPOCHREALTIME
	qemu_start "$d/src.out" "$d/src.qmp" "$MIG_MIB" "$guest" "$cmdline"
	spid=$QPID
	if ! wait_for "$d/src.out" "$warm" 300 "$spid"; then
		say "QEMU $kind: the guest never printed '$warm'"; cat "$d/src.out.err" >&2
		reap "$spid" 0; reap "$dpid" 0; return 1
	fi
	[[ $kind == busy ]] && sleep 1
	bg_run "$QMP" "$d/src.qmp" \
		'{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "auto-converge", "state": true}]}}' \
		'{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": 20, "max-bandwidth": 107374182400}}' \
		mark "$(printf '{"execute": "migrate", "arguments": {"uri": "tcp:127.0.0.1:%s"}}' "$port")" \
		wait-migrate "$MIG_TIMEOUT" >"$d/mig" 2>"$d/mig.err"
	x=$rc
	if [[ $x == 0 ]]; then
		emit "mig_${kind}_total" qemu "$(kv total_time_ms "$d/mig")"
		emit "mig_${kind}_downtime" qemu "$(kv downtime_ms "$d/mig")"
		emit "mig_${kind}_rounds" qemu "$(kv dirty_sync_count "$d/mig")"
		emit "mig_${kind}_throttle" qemu "$(kv max_throttle_pct "$d/mig")"
		emit "mig_${kind}_sent" qemu "$(awk -v b="$(kv transferred_bytes "$d/mig")" 'BEGIN { printf "%.1f", b / 1048576 }')"
		"$QMP" "$d/dst.qmp" wait-status running 30 >/dev/null 2>"$d/dst.wait.err"
		sleep 1
		# isa-debug-exit: status (code << 1) | 1; a guest that found a bad page exits 1.
		kill -0 "$dpid" 2>/dev/null || { reap "$dpid" 0; note "QEMU $kind: the destination exited (status $rc)"; }
		guest_gap "$kind" qemu "$d/src.out" "$d/dst.out" "$(ms_since "$t0" "$EPOCHREALTIME")"
	else
		say "QEMU migrate $kind: $(cat "$d/mig.err")"
	fi
	reap "$spid" 0
	reap "$dpid" 0
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$d"
}

# ---- without KVM: the engine alone, the restore preparation ------------------------------------
engine_one() { # KIND MBS
	local kind=$1 mbs=$2 d=$work/eng$1 r url x rp tot=() dt=() rounds=() thr=() bw=() sent=() a b
	mkdir -p "$d"
	for ((r = 1; r <= ENGINE_RUNS; r++)); do
		"$MIGRATE_PEER" recv tcp:127.0.0.1:0 >"$d/recv" 2>"$d/recv.err" &
		rp=$!
		live[$rp]=1
		if ! wait_for "$d/recv" '^listening ' 10 "$rp"; then
			say "migrate_peer recv did not listen: $(cat "$d/recv.err")"; reap "$rp" 0; return 1
		fi
		url=$(sed -n 's/^listening //p' "$d/recv")
		bg_run timeout --kill-after=5 $((MIG_TIMEOUT + 60)) "$MIGRATE_PEER" send "$url" "$MIG_MIB" "$mbs" \
			--auto-converge --downtime-ms 20 --timeout-ms $((MIG_TIMEOUT * 1000)) \
			>"$d/send" 2>"$d/send.err"
		x=$rc
		reap "$rp" 30
		if [[ $x != 0 ]]; then
			say "engine $kind: $(grep -m 1 '^result' "$d/send") $(cat "$d/send.err")"; continue
		fi
		a=$(kv checksum "$d/send") b=$(kv checksum "$d/recv")
		[[ -n $a && $a == "$b" ]] || note "engine $kind: memory checksums differ: source '$a', destination '$b'"
		tot+=("$(kv total_ms "$d/send")")
		dt+=("$(kv downtime_ms "$d/send")")
		rounds+=("$(($(kv rounds "$d/send") + 1))")
		thr+=("$(kv max_throttle_pct "$d/send")")
		bw+=("$(kv bandwidth_mbs "$d/send")")
		sent+=("$(awk -v b="$(kv bytes_sent "$d/send")" 'BEGIN { printf "%.1f", b / 1048576 }')")
	done
	emit "eng_${kind}_total" engine "${tot[@]}"
	emit "eng_${kind}_downtime" engine "${dt[@]}"
	emit "eng_${kind}_rounds" engine "${rounds[@]}"
	emit "eng_${kind}_throttle" engine "${thr[@]}"
	emit "eng_${kind}_bw" engine "${bw[@]}"
	emit "eng_${kind}_sent" engine "${sent[@]}"
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$d"
}

# time_err RUNS CMD...: wall times (ms) of CMD, which must fail with the
# KVM-absent error, into the array t_err.
time_err() {
	local n=$1 r t0 t1; shift
	t_err=()
	for ((r = 0; r < n; r++)); do
		t0=$EPOCHREALTIME
		"$@" </dev/null >/dev/null 2>"$work/prep.err"
		t1=$EPOCHREALTIME
		if ! grep -q 'no-kvm: not present' "$work/prep.err"; then
			say "$*: not the KVM-absent error: $(cat "$work/prep.err")"; t_err=(); return 1
		fi
		t_err+=("$(ms_since "$t0" "$t1")")
	done
}

# strace_window RUNS DIR [ARGS...]: under strace, the time from wafer's
# open of DIR/state to its open of the (missing) KVM device, into t_err:
# the restore's own work without process start-up (strace adds a little).
strace_window() {
	local n=$1 dir=$2 r; shift 2
	t_err=()
	for ((r = 0; r < n; r++)); do
		strace -f $strace_bpf -ttt -e trace=openat -o "$work/prep.strace" \
			"$WAFER" run --restore "$dir" "$@" --name bprep-$$ --no-api </dev/null >/dev/null 2>&1
		t_err+=("$(awk -v st="$dir/state" -v kv="$WAFER_KVM_DEVICE" '
			index($0, "\"" st "\"") && !a { a = $2 } index($0, "\"" kv "\"") && !b { b = $2 }
			END { if (a && b) printf "%.3f", (b - a) * 1e3 }' "$work/prep.strace")")
	done
}

restore_prep() {
	local m d t_err v args
	export WAFER_KVM_DEVICE=$work/no-kvm
	time_err "$PREP_RUNS" "$WAFER" run --kernel "$GUESTS/counter.elf" --name bprep-$$ --no-api &&
		emit prep_baseline prep "${t_err[@]}"
	strace_bpf=""
	if command -v strace >/dev/null; then
		strace -f --seccomp-bpf -e trace=openat -o /dev/null true 2>/dev/null && strace_bpf=--seccomp-bpf
	else
		say "strace not installed: no open(state)-to-open(KVM) figures"
	fi
	for m in "${SNAP_SIZES[@]}"; do
		d=$work/prep$m
		mkdir -p "$d"
		"$SNAPGEN" --mib "$m" "$d" || { say "snapgen --mib $m failed"; continue; }
		for v in "" noverify sparse; do
			if [[ $v == sparse ]]; then
				rm -rf "$d"; mkdir -p "$d"
				"$SNAPGEN" --mib "$m" --sparse "$d" || { say "snapgen --sparse failed"; continue; }
			fi
			args=(); [[ $v == noverify ]] && args=(--restore-no-verify)
			time_err "$PREP_RUNS" "$WAFER" run --restore "$d" "${args[@]}" --name bprep-$$ --no-api ||
				continue
			emit "prep_${m}${v:+_$v}" prep "${t_err[@]}"
			command -v strace >/dev/null || continue
			strace_window "$PREP_RUNS" "$d" "${args[@]}"
			emit "prep_${m}${v:+_$v}_strace" prep "${t_err[@]}"
		done
		rm -rf "$d"
	done
	unset WAFER_KVM_DEVICE
}

# ---- run ---------------------------------------------------------------------------------
[[ -n $kvm_reason ]] && say "$kvm_reason: wafer cannot run guests here; running the parts that need no KVM"

if [[ $have_engine == 1 ]] && part engine; then
	echo "# engine only, simulated guest, no vCPU/device state: migrate_peer, ${MIG_MIB} MiB over tcp loopback," \
	     "idle and dirtying ${BUSY_MBS} MB/s, --auto-converge --downtime-ms 20"
	engine_one idle 0
	engine_one busy "$BUSY_MBS"
fi
if [[ $have_snapgen == 1 ]] && part prep; then
	echo "# restore preparation without KVM: wafer run --restore DIR (snapgen image, every page written; --sparse: one page per MiB, as an idle guest's) to its" \
	     "KVM-absent error: state file read + validation + memory file open; the window from open(DIR/state)" \
	     "to open(KVM) under strace, and the process wall time (baseline: wafer run --kernel to the same error)"
	restore_prep
fi

if [[ -z $kvm_reason ]]; then
	echo "# wafer vs QEMU ($MACHINE, KVM)"
	part snapshot && for m in "${SNAP_SIZES[@]}"; do
		snap_wafer "$m"
		[[ $qemu_ok == 1 ]] && snap_qemu "$m"
	done
	part migrate && for k in idle busy; do
		mig_wafer "$k"
		[[ $qemu_ok == 1 ]] && mig_qemu "$k"
	done
elif [[ $qemu_ok == 1 ]]; then
	echo "# QEMU ($MACHINE) under TCG: not comparable to KVM, checks the script"
	part snapshot && for m in "${SNAP_SIZES[@]}"; do snap_qemu "$m"; done
	part migrate && for k in idle busy; do mig_qemu "$k"; done
fi

[[ $have_engine == 1 ]] && part engine &&
	print_table "engine only, simulated guest, no vCPU/device state (migrate_peer, tcp loopback)" rows_engine engine
[[ $have_snapgen == 1 ]] && part prep &&
	print_table "restore preparation without KVM (state read + validation + memory file open, up to opening KVM)" rows_prep prep
if [[ -z $kvm_reason ]]; then
	show_targets=1
	print_table "wafer vs QEMU $MACHINE, KVM (medians; ratio = wafer/QEMU)" rows_vs wafer qemu
	echo
	echo "VMM's own: wafer = its log/CLI figures (restore: state read -> VM built and loaded;" \
	     "create: pause + write); QEMU = query-migrate total-time (create), migrate-incoming ->" \
	     "running (restore; its machine was built before). Page cache warm. Rounds: wafer's" \
	     "pre-copy passes with the final one; QEMU's dirty-sync-count. Throttle: wafer's at" \
	     "switch-over, QEMU's largest cpu-throttle-percentage seen."
	exit 0
fi
if [[ $qemu_ok == 1 ]]; then
	print_table "QEMU $MACHINE under TCG: not comparable to KVM, checks the script" rows_vs qemu
fi
echo
echo "bench: $kvm_reason: nothing wafer-vs-QEMU was measured"
exit 77
