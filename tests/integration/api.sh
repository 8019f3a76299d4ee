#!/bin/bash
# Control API end to end: the real HTTP server (libmicrohttpd on a UNIX socket)
# and router in front of a fake VMM (api_testserver), driven with curl: flows,
# bad input, 100 concurrent clients, mid-body disconnects, oversized bodies,
# socket hygiene, config-file mode and a short load run.
# Env: TESTSERVER, LOADGEN (optional). Exit 0 pass, 1 fail, 77 skip.
set -u
TESTSERVER=${TESTSERVER:?TESTSERVER must point to api_testserver}
LOADGEN=${LOADGEN:-}
command -v curl >/dev/null || { echo "SKIP: curl is not installed (guest/setup.sh installs it)"; exit 77; }

# The server thread runs under wafer's API seccomp filter (a forbidden call
# ends the server with exit status 5 and a line naming it).
export WAFER_SECCOMP=${WAFER_SECCOMP:-on}
T=$(mktemp -d /tmp/wafer-api.XXXXXX)
SOCK=$T/run/vm1/api.sock
SRV_PID=
cleanup() {
	[ -n "$SRV_PID" ] && kill -KILL "$SRV_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	[ -s "$T/srv.err" ] && { echo "--- server stderr:"; tail -n 30 "$T/srv.err"; }
	exit 1
}

# start_server [ARGS...]: run api_testserver on $SOCK and wait until it serves.
start_server() {
	"$TESTSERVER" "$SOCK" "$@" >"$T/srv.out" 2>"$T/srv.err" &
	SRV_PID=$!
	for _ in $(seq 200); do
		grep -q '^listening' "$T/srv.out" 2>/dev/null && return 0
		kill -0 "$SRV_PID" 2>/dev/null || { wait "$SRV_PID"; SRV_PID=; fail "server exited during startup"; }
		sleep 0.05
	done
	fail "server did not come up"
}

# stop_server: SIGTERM must give a clean exit (0), no sanitizer report, no socket left.
stop_server() {
	kill -TERM "$SRV_PID"
	wait "$SRV_PID"
	local rc=$?
	SRV_PID=
	[ $rc -eq 0 ] || fail "server exited with $rc after SIGTERM"
	grep -q 'Sanitizer' "$T/srv.err" && fail "sanitizer report from the server"
	[ -e "$SOCK" ] && fail "socket $SOCK left behind after a clean stop"
	return 0
}

# api METHOD PATH [BODY]: sets $code and $body.
api() {
	local m=$1 p=$2 args=()
	[ $# -ge 3 ] && args=(-H 'Content-Type: application/json' --data-binary "$3")
	code=$(curl -sS --max-time 10 --unix-socket "$SOCK" -X "$m" "${args[@]}" -o "$T/body" \
		-w '%{http_code}' "http://localhost$p") || fail "curl $m $p failed (server down?)"
	body=$(cat "$T/body")
}

# expect STATUS REGEX METHOD PATH [BODY]
expect() {
	local want=$1 pat=$2
	shift 2
	api "$@"
	[ "$code" = "$want" ] || fail "$1 $2: status $code, expected $want (body: $body)"
	if [ -n "$pat" ]; then
		grep -qE -- "$pat" <<<"$body" || fail "$1 $2: body '$body' does not match '$pat'"
	fi
	return 0
}

touch "$T/vmlinux" "$T/rootfs.img"
start_server

# --- socket hygiene
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "socket mode $(stat -c %a "$SOCK"), expected 600"
[ "$(stat -c %a "$T/run/vm1")" = 700 ] || fail "created directory mode is not 700"
[ "$(stat -c %a "$T/run")" = 700 ] || fail "created directory mode is not 700"
if "$TESTSERVER" "$SOCK" >"$T/second.out" 2>"$T/second.err"; then
	fail "a second server took over a live socket"
fi
grep -q 'another process is serving' "$T/second.err" || fail "second server: $(cat "$T/second.err")"

# --- pre-boot flow and bad input
expect 200 '"state":"Not started"' GET /
expect 200 '"app_name":"wafer"' GET /
expect 200 'firecracker_version' GET /version
expect 200 '"vcpu_count":1,"mem_size_mib":128' GET /machine-config
expect 400 'not supported before starting the microVM' PATCH /vm '{"state":"Paused"}'
expect 400 'without a boot source' PUT /actions '{"action_type":"InstanceStart"}'
expect 400 'malformed JSON' PUT /machine-config '{"vcpu_count":'
expect 400 'empty body' PUT /machine-config ''
expect 400 'unknown field \\"x\\"' PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128,"x":1}'
expect 400 'expected an integer, got a string' PUT /machine-config '{"vcpu_count":"1","mem_size_mib":128}'
expect 400 'out of range' PUT /machine-config '{"vcpu_count":1,"mem_size_mib":99999999999999999999}'
expect 400 'must not be negative' PUT /machine-config '{"vcpu_count":-2,"mem_size_mib":128}'
expect 204 '' PUT /machine-config '{"vcpu_count":2,"mem_size_mib":256}'
expect 400 'No such file' PUT /boot-source '{"kernel_image_path":"/nonexistent/vmlinux"}'
expect 204 '' PUT /boot-source "{\"kernel_image_path\":\"$T/vmlinux\",\"boot_args\":\"console=ttyS0\"}"
expect 400 'does not match the id in the path' PUT /drives/rootfs \
	"{\"drive_id\":\"other\",\"path_on_host\":\"$T/rootfs.img\",\"is_root_device\":true}"
expect 204 '' PUT /drives/rootfs \
	"{\"drive_id\":\"rootfs\",\"path_on_host\":\"$T/rootfs.img\",\"is_root_device\":true,\"is_read_only\":false}"
expect 204 '' PUT /network-interfaces/eth0 '{"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"02:fc:00:00:00:05"}'
expect 204 '' PUT /entropy '{}'
expect 204 '' PUT /metrics "{\"metrics_path\":\"$T/metrics.json\"}"
expect 400 'no resource' GET /nope
expect 400 'not allowed' DELETE /machine-config
expect 200 '"drive_id":"rootfs"' GET /vm/config

# --- oversized bodies: announced (refused before it is sent) and chunked
head -c 100000 /dev/zero | tr '\0' 'a' >"$T/big"
code=$(curl -sS --max-time 10 --unix-socket "$SOCK" -X PUT --data-binary @"$T/big" \
	-o "$T/body" -w '%{http_code}' http://localhost/machine-config)
[ "$code" = 413 ] || fail "oversized body: status $code, expected 413"
grep -q 'larger than 65536' "$T/body" || fail "oversized body: $(cat "$T/body")"
code=$(curl -sS --max-time 10 --unix-socket "$SOCK" -X PUT -H 'Transfer-Encoding: chunked' \
	--data-binary @"$T/big" -o "$T/body" -w '%{http_code}' http://localhost/machine-config)
[ "$code" = 413 ] || fail "oversized chunked body: status $code, expected 413"
code=$(curl -sS --max-time 10 --unix-socket "$SOCK" -X PUT -H 'Expect: 100-continue' \
	--data-binary @"$T/big" -o "$T/body" -w '%{http_code}' http://localhost/machine-config)
[ "$code" = 413 ] || fail "oversized body with Expect: 100-continue: status $code, expected 413"

# --- clients that vanish: mid-body (streamed upload killed) and mid-headers
pids=()
for i in $(seq 10); do
	(printf '{"vcpu_count": 1,'; sleep 5) 2>/dev/null | curl -sS --max-time 8 --unix-socket "$SOCK" \
		-X PUT -T - http://localhost/machine-config >/dev/null 2>&1 &
	pids+=($!)
done
if command -v python3 >/dev/null; then
	python3 - "$SOCK" <<'EOF' || fail "raw partial-request client failed"
import socket, sys
for req in (b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"vcpu",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Half: "):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(req); s.close()
EOF
fi
sleep 0.5
kill "${pids[@]}" 2>/dev/null
wait "${pids[@]}" 2>/dev/null
kill -0 "$SRV_PID" 2>/dev/null || fail "server died after clients disconnected mid-request"
expect 200 '"vcpu_count":2' GET /machine-config   # the aborted PUTs changed nothing

# --- start, post-boot rules
expect 204 '' PUT /actions '{"action_type":"InstanceStart"}'
expect 200 '"state":"Running"' GET /
expect 400 'not supported after starting the microVM' PUT /actions '{"action_type":"InstanceStart"}'
expect 400 'not supported after starting the microVM' PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128}'
expect 400 'not supported after starting the microVM' PUT /drives/rootfs '{}'
expect 204 '' PATCH /vm '{"state":"Paused"}'
expect 200 '"state":"Paused"' GET /
expect 204 '' PATCH /vm '{"state":"Resumed"}'
expect 200 '"state":"Running"' GET /
expect 204 '' PUT /actions '{"action_type":"FlushMetrics"}'
expect 204 '' PUT /actions '{"action_type":"SendCtrlAltDel"}'
ctype=$(curl -sS --unix-socket "$SOCK" -o "$T/metrics" -w '%{content_type}' http://localhost/metrics)
[ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "GET /metrics content type '$ctype'"
grep -q '^wafer_vm_state{state="Running"} 1$' "$T/metrics" || fail "GET /metrics: $(head -5 "$T/metrics")"
grep -q '^wafer_vcpu_exits_total{vcpu="1",reason="hlt"} ' "$T/metrics" || fail "GET /metrics lacks vCPU 1 exits"

# --- 100 concurrent clients: GET / and PATCH /vm mixed
pids=()
for i in $(seq 100); do
	case $((i % 3)) in
	0) args=(http://localhost/) ;;
	1) args=(-X PATCH --data-binary '{"state":"Paused"}' http://localhost/vm) ;;
	2) args=(-X PATCH --data-binary '{"state":"Resumed"}' http://localhost/vm) ;;
	esac
	curl -sS --max-time 20 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}\n' "${args[@]}" \
		>"$T/c.$i" 2>&1 &
	pids+=($!)
done
wait "${pids[@]}"
ok=$(cat "$T"/c.* | grep -cE '^(200|204)$')
[ "$ok" -eq 100 ] || fail "concurrent clients: $ok of 100 succeeded: $(cat "$T"/c.* | sort | uniq -c)"
expect 204 '' PATCH /vm '{"state":"Resumed"}'
expect 200 '"state":"Running"' GET /

# --- load run (keep-alive clients)
if [ -n "$LOADGEN" ]; then
	"$LOADGEN" "$SOCK" 8 2500 >"$T/load" 2>&1 || fail "load run failed: $(cat "$T/load")"
	sed 's/^/load: /' "$T/load"
fi
expect 200 '"state":"Running"' GET /
stop_server

# --- a socket left by a killed server is replaced; a non-socket file is not
start_server
{ kill -KILL "$SRV_PID"; wait "$SRV_PID"; } 2>/dev/null
SRV_PID=
[ -S "$SOCK" ] || fail "expected a stale socket after SIGKILL"
start_server
expect 200 '"state":"Not started"' GET /
stop_server
touch "$SOCK"
if "$TESTSERVER" "$SOCK" >"$T/second.out" 2>"$T/second.err"; then
	fail "server replaced a regular file with its socket"
fi
grep -q 'exists and is not a socket' "$T/second.err" || fail "non-socket: $(cat "$T/second.err")"
rm -f "$SOCK"
long=$T/$(printf 'x%.0s' $(seq 120))/api.sock
if "$TESTSERVER" "$long" >"$T/second.out" 2>"$T/second.err"; then
	fail "server accepted a socket path longer than sun_path"
fi
grep -q 'socket path must be' "$T/second.err" || fail "long path: $(cat "$T/second.err")"

# --- config-file mode: the VM starts from the file and the API shows it
cat >"$T/vm.json" <<EOF
{
  "boot-source": { "kernel_image_path": "$T/vmlinux", "boot_args": "console=ttyS0" },
  "drives": [ { "drive_id": "rootfs", "path_on_host": "$T/rootfs.img",
                "is_root_device": true, "is_read_only": true } ],
  "machine-config": { "vcpu_count": 4, "mem_size_mib": 512 },
  "network-interfaces": [],
  "vsock": null
}
EOF
start_server --config "$T/vm.json"
expect 200 '"state":"Running"' GET /
expect 200 '"vcpu_count":4,"mem_size_mib":512' GET /machine-config
expect 200 '"is_read_only":true' GET /vm/config
stop_server
echo '{"machine-config": {"vcpu_count": 4, "mem_size_mib": 512, "bogus": 1}}' >"$T/bad.json"
if "$TESTSERVER" "$SOCK" --config "$T/bad.json" >"$T/second.out" 2>"$T/second.err"; then
	fail "a bad config file was accepted"
fi
grep -q 'bad.json: machine-config: unknown field "bogus"' "$T/second.err" ||
	fail "bad config: $(cat "$T/second.err")"

# --- the serial console over the socket (GET /console upgrade), driven by
# `wafer console NAME`; the fake VMM upper-cases what it receives.
if [ -n "${WAFER:-}" ]; then
	name=console-it-$$
	if [ "$(id -u)" = 0 ]; then
		SOCK=/run/wafer/$name/api.sock
	else
		export XDG_RUNTIME_DIR=$T
		SOCK=$T/wafer/$name/api.sock
	fi
	start_server
	"$WAFER" console "$name" </dev/null >"$T/c.out" 2>"$T/c.err" && fail "console before start succeeded"
	grep -q 'not supported before starting' "$T/c.err" || fail "console before start: $(cat "$T/c.err")"
	expect 204 '' PUT /boot-source "{\"kernel_image_path\": \"$T/vmlinux\"}"
	expect 204 '' PUT /actions '{"action_type": "InstanceStart"}'
	# a first client holds the console (its echo proves it is attached)
	# while a second one is refused
	(printf 'first\n'; sleep 3) | timeout 10 "$WAFER" console "$name" >"$T/c1.out" 2>"$T/c1.err" & C1=$!
	for _ in $(seq 200); do grep -q FIRST "$T/c1.out" && break; sleep 0.05; done
	grep -q FIRST "$T/c1.out" || fail "first console client got no echo: $(cat "$T/c1.err")"
	"$WAFER" console "$name" </dev/null >"$T/c2.out" 2>"$T/c2.err" && fail "a second console client was let in"
	grep -q 'already attached' "$T/c2.err" || fail "second console: $(cat "$T/c2.err")"
	wait $C1 || fail "first console client exited $?"
	# input flows to the VMM and its output comes back; end of input detaches
	printf 'hello console\n' | timeout 10 "$WAFER" console "$name" >"$T/c.out" 2>"$T/c.err" ||
		fail "console exited $?: $(cat "$T/c.err")"
	grep -q 'HELLO CONSOLE' "$T/c.out" || fail "console output: $(cat "$T/c.out")"
	expect 200 '"state":"Running"' GET /
	# `wafer set NAME`: PATCH /machine-config on the running VM (wafer's
	# extension); the fake VMM prints what reached it
	"$WAFER" set "$name" --cpu-weight 512 --cpu-cap 50 --memory-limit 256M 2>"$T/set.err" ||
		fail "wafer set exited $?: $(cat "$T/set.err")"
	grep -q 'resources: cpu_weight=512 cpu_cap=50 memory_limit_mib=256$' "$T/srv.out" ||
		fail "wafer set: the VMM got $(grep resources "$T/srv.out")"
	"$WAFER" set --memory-limit 0 "$name" || fail "wafer set --memory-limit 0 exited $?"
	grep -q 'resources: memory_limit_mib=0$' "$T/srv.out" || fail "wafer set --memory-limit 0"
	"$WAFER" set "$name" --cpu-weight 7 2>"$T/set.err" && fail "a refused change succeeded"
	grep -q "$name: PATCH /machine-config: Cannot change the resource limits: fake VMM refuses weight 7" \
		"$T/set.err" || fail "refused change: $(cat "$T/set.err")"
	expect 400 'cpu_weight.*0 is out of range' PATCH /machine-config '{"cpu_weight": 0}'
	expect 400 'vcpu_count.*cannot change after the microVM started' PATCH /machine-config '{"vcpu_count": 2}'
	stop_server
	rmdir "$(dirname "$SOCK")"   # the test server made the VM's runtime directory
fi

echo "PASS: control API over HTTP"
exit 0
