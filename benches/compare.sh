#!/usr/bin/env bash
# Compare tapmesh with well-known TCP relays on loopback.
#
#   bash benches/compare.sh tcp
#
# Environment:
#   DURATION     seconds per iperf3 measurement (default 10)
#   STREAMS      parallel iperf3 streams, passed as -P (default 1)
#   TAPMESH_BIN  use this tapmesh binary instead of building target/release/tapmesh
#   BASELINE_BIN tcp, http: also measure this tapmesh binary (an earlier
#                commit's), to show a change costs nothing
#   INSTALL=1    apt-get install missing iperf3/socat/haproxy instead of failing
#   KEEP_TMP=1   keep the temp dir (configs, logs, iperf3 JSON, events) for inspection
#
# Each subcommand is a cmd_<name> function; `http`, `grpc` and `kafka` are
# meant to be added the same way.
#
# Measurements run strictly one after another: the numbers are only
# comparable if no two relays compete for the (possibly few) cores.

set -euo pipefail

usage() {
    cat <<'EOF'
usage: bash benches/compare.sh SUBCOMMAND

subcommands:
  tcp    iperf3 throughput: direct vs tapmesh vs socat vs haproxy (mode tcp)
  http   wrk req/s: direct vs tapmesh --protocol http vs haproxy mode http
         with its access log; and a 1 GiB download direct vs tapmesh
  grpc   unary calls/s of a tonic client loop (peers/grpc-rs) direct vs
         tapmesh --protocol grpc with decoding (reflection) on
  redis  redis-benchmark SET/GET requests/s, not pipelined and -P 16:
         direct vs tapmesh --protocol redis vs haproxy mode tcp (if
         installed) (REQUESTS per run, default 100000; ROUNDS, default 3)
  kafka  an rdkafka producer sending 1 KiB messages to librdkafka's mock
         broker: direct vs tapmesh --protocol kafka, alternating rounds
         (MESSAGES per run, default 200000; ROUNDS, default 3)
  web    wrk req/s through an observed edge of a `tapmesh up` environment
         (nginx), with the web view open in a headless Chromium vs no page
         open, interleaved rounds (HTTP_ROUNDS); goal: open >= 0.95x closed
  postgres  pgbench -S (select-only) tps against a PostgreSQL the script
         starts: direct vs tapmesh --protocol postgres, interleaved rounds
         (PG_ROUNDS, default 3) for each query mode in PG_MODES (default
         "simple prepared"); goal: tapmesh >= 0.7x direct

environment: DURATION (s, default 10), STREAMS (default 1), TAPMESH_BIN,
             BASELINE_BIN (tcp, http: an earlier tapmesh measured beside),
             HTTP_ROUNDS (http, wrk rounds, default 5),
             CALLS (grpc, per round, default 50000), CONCURRENCY (grpc, default 8),
             PG_ROUNDS (default 3), PG_MODES (default "simple prepared"),
             PG_CLIENTS (pgbench -c, default 8), PG_THREADS (-j, default 2),
             PG_SCALE (pgbench -i -s, default 1),
             INSTALL=1 (apt-get missing tools), KEEP_TMP=1 (keep temp dir)
EOF
}

# Resolve paths against the repo root so the script works from any directory.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

DURATION="${DURATION:-10}"
HTTP_ROUNDS="${HTTP_ROUNDS:-5}"
STREAMS="${STREAMS:-1}"

TMP_DIR=""
# PIDs of background processes still running; each leads its own process
# group (see spawn), so cleanup also reaches socat's forked children.
PIDS=()

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Process management

# True while the process exists and is not a zombie. `kill -0` is not enough:
# it succeeds on an exited-but-unreaped child.
alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }" # drop "pid (comm) ", comm may contain spaces
    [[ -n "$stat" && "${stat%% *}" != Z ]]
}

forget_pid() {
    local pid="$1" p kept=()
    for p in "${PIDS[@]}"; do
        [[ "$p" == "$pid" ]] || kept+=("$p")
    done
    PIDS=("${kept[@]}")
}

# spawn LOGFILE CMD... : start CMD in the background in a new session, so it
# (and anything it forks) forms one process group we can signal as a whole and
# a Ctrl-C at the terminal reaches only this script, which then cleans up in
# order. Sets SPAWNED_PID (a `$(spawn ...)` subshell could not be waited for).
SPAWNED_PID=""
spawn() {
    local logfile="$1"
    shift
    setsid "$@" >"$logfile" 2>&1 </dev/null &
    SPAWNED_PID=$!
    PIDS+=("$SPAWNED_PID")
}

# stop PID [SIGNAL] : signal the process group, give it 5 s to exit, then
# SIGKILL it. Sets STOP_STATUS to its exit status (128+n if killed by signal
# n); not printed, since `$(stop ...)` would run `wait` in a subshell, which
# cannot reap our children.
STOP_STATUS=0
stop() {
    local pid="$1" sig="${2:-TERM}" i status=0
    kill -s "$sig" -- "-$pid" 2>/dev/null || kill -s "$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || status=$?
    # Forked children (socat) may outlive their parent briefly.
    kill -s KILL -- "-$pid" 2>/dev/null || true
    forget_pid "$pid"
    STOP_STATUS="$status"
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        stop "$pid"
    done
    if [[ -n "$TMP_DIR" && -d "$TMP_DIR" ]]; then
        if [[ "${KEEP_TMP:-0}" == 1 ]]; then
            log "kept temp dir: $TMP_DIR"
        else
            rm -rf "$TMP_DIR"
        fi
    fi
    exit "$rc"
}

# Exiting from the signal traps runs the EXIT trap, so every path goes
# through cleanup exactly once.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Helpers

# free_ports N : print N distinct free TCP ports on 127.0.0.1. All sockets are
# held open until every port is chosen, so the kernel cannot hand out one
# twice. (There is still a small window before our servers bind; acceptable
# on a benchmark machine.)
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# wait_listening PORT PID NAME LOG : wait (≤ 10 s) until PORT on 127.0.0.1 is
# in LISTEN state, i.e. the kernel accepts connections on it.
#
# We read /proc/net/tcp instead of connecting: a probe connection to a proxy
# would be relayed to the iperf3 server, which takes any connection as a test's
# control connection and may then turn the real client away with "the server
# is busy running a test"; it would also show up in tapmesh's events.
wait_listening() {
    local port="$1" pid="$2" name="$3" logfile="$4" hex i
    hex="$(printf '%04X' "$port")"
    for ((i = 0; i < 100; i++)); do
        # Fields: sl local_address rem_address st ...; 0A is TCP_LISTEN.
        if awk -v want="0100007F:$hex" '$2 == want && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp; then
            return 0
        fi
        if ! alive "$pid"; then
            log "$name exited before listening on 127.0.0.1:$port; its output:"
            sed 's/^/    /' "$logfile" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
    log "$name did not listen on 127.0.0.1:$port within 10 s; its output:"
    sed 's/^/    /' "$logfile" >&2 || true
    exit 1
}

# iperf_run PORT OUT.json [iperf3 args...] : one measurement against
# 127.0.0.1:PORT. Sets RUN_BPS and RUN_BYTES (receiver side), or fails.
#
# iperf3 runs in the background and we `wait` for it: a trapped signal
# interrupts `wait` at once, whereas bash holds it while a foreground child
# runs, and drops it entirely when that child (iperf3 catches SIGINT) exits
# normally, so Ctrl-C would only end the current measurement. For the same
# reason this is not called as `$(iperf_run ...)`.
RUN_BPS=""
RUN_BYTES=""
iperf_run() {
    local port="$1" out="$2" pid status=0 result
    shift 2
    # The timeout only guards against a relay that stalls a test.
    setsid timeout -k 5 "$((DURATION + 30))" \
        iperf3 -c 127.0.0.1 -p "$port" -t "$DURATION" -P "$STREAMS" -J "$@" \
        >"$out" 2>"$out.err" </dev/null &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || status=$?
    forget_pid "$pid"
    if ((status != 0)); then
        log "iperf3 against port $port failed (status $status):"
        python3 -c 'import json,sys; print("    " + json.load(open(sys.argv[1])).get("error", "?"))' "$out" >&2 2>/dev/null ||
            sed 's/^/    /' "$out.err" >&2
        return 1
    fi
    result="$(python3 - "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if "error" in d:
    sys.exit("iperf3: " + d["error"])
r = d["end"]["sum_received"]
print(r["bits_per_second"], r["bytes"])
PY
)" || return 1
    read -r RUN_BPS RUN_BYTES <<<"$result"
}

# Results, indexed in run order.
LABELS=()
FWD_BPS=() # client -> target
REV_BPS=() # target -> client (iperf3 -R)
FAILED=0

# measure LABEL PORT : run both directions against PORT, record the results
# ("fail" for a failed run, so the other relays still get reported).
# Sets LAST_FWD_BYTES / LAST_REV_BYTES for the tapmesh sanity check.
LAST_FWD_BYTES=0
LAST_REV_BYTES=0
measure() {
    local label="$1" port="$2" slug
    slug="${label%% *}"
    log "measuring: $label (2 x ${DURATION} s)"
    LABELS+=("$label")
    if iperf_run "$port" "$TMP_DIR/$slug-fwd.json"; then
        FWD_BPS+=("$RUN_BPS")
        LAST_FWD_BYTES="$RUN_BYTES"
    else
        FWD_BPS+=(fail)
        LAST_FWD_BYTES=0
        FAILED=1
    fi
    if iperf_run "$port" "$TMP_DIR/$slug-rev.json" -R; then
        REV_BPS+=("$RUN_BPS")
        LAST_REV_BYTES="$RUN_BYTES"
    else
        REV_BPS+=(fail)
        LAST_REV_BYTES=0
        FAILED=1
    fi
}

# print_table TITLE BPS... : one line per relay, Gbit/s and ratio to the first
# (direct) entry.
print_table() {
    local title="$1" i base
    shift
    local bps=("$@")
    echo "$title"
    base="${bps[0]}"
    for i in "${!LABELS[@]}"; do
        awk -v label="${LABELS[$i]}" -v b="${bps[$i]}" -v base="$base" 'BEGIN {
            if (b == "fail") { printf "%-18s  failed\n", label; exit }
            ratio = (base != "fail" && base > 0) ? sprintf("%.2fx", b / base) : "-"
            printf "%-18s %6.2f Gbit/s  %5s\n", label, b / 1e9, ratio
        }'
    done
}

# Tools the tcp comparison needs; fail (or install with INSTALL=1) before any
# build or measurement starts.
require_tcp_tools() {
    local missing=() tool
    command -v python3 >/dev/null || die "python3 is required (parses iperf3 JSON and picks ports)"
    command -v setsid >/dev/null || die "setsid (util-linux) is required"
    for tool in iperf3 socat haproxy; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ "${INSTALL:-0}" == 1 ]]; then
        log "installing missing: ${missing[*]}"
        apt-get update && apt-get install -y iperf3 socat haproxy
        return 0
    fi
    log "missing: ${missing[*]}"
    log "install with: apt-get install -y iperf3 socat haproxy   (or rerun with INSTALL=1)"
    exit 1
}

tapmesh_bin() {
    if [[ -n "${TAPMESH_BIN:-}" ]]; then
        [[ -x "$TAPMESH_BIN" ]] || die "TAPMESH_BIN=$TAPMESH_BIN is not an executable"
        echo "$TAPMESH_BIN"
        return
    fi
    # Release build: a debug build would measure the compiler, not the relay.
    cargo build --release --bin tapmesh >&2
    echo "${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/tapmesh"
}

# ---------------------------------------------------------------------------
# tcp: iperf3 throughput direct and through each relay.

cmd_tcp() {
    [[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds), got '$DURATION'"
    [[ "$STREAMS" =~ ^[1-9][0-9]*$ ]] || die "STREAMS must be a positive integer, got '$STREAMS'"
    require_tcp_tools

    local bin
    bin="$(tapmesh_bin)"
    TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tapmesh-compare.XXXXXX")"

    local ports server_port tapmesh_port socat_port haproxy_port pid
    ports="$(free_ports 4)"
    read -r server_port tapmesh_port socat_port haproxy_port <<<"$ports"

    # One iperf3 server serves every run; it handles one test at a time, and
    # we run them sequentially anyway.
    spawn "$TMP_DIR/iperf3-server.log" iperf3 -s -B 127.0.0.1 -p "$server_port"
    pid="$SPAWNED_PID"
    wait_listening "$server_port" "$pid" "iperf3 server" "$TMP_DIR/iperf3-server.log"

    # 1. direct
    measure "direct" "$server_port"

    # 2. tapmesh
    local events="$TMP_DIR/tapmesh-events.jsonl"
    spawn "$TMP_DIR/tapmesh.log" "$bin" proxy \
        --listen "127.0.0.1:$tapmesh_port" --target "127.0.0.1:$server_port" \
        --protocol tcp --events "$events"
    pid="$SPAWNED_PID"
    wait_listening "$tapmesh_port" "$pid" "tapmesh" "$TMP_DIR/tapmesh.log"
    measure "tapmesh" "$tapmesh_port"
    local tap_fwd_bytes="$LAST_FWD_BYTES" tap_rev_bytes="$LAST_REV_BYTES"
    # SIGTERM is tapmesh's clean shutdown: it flushes the events file.
    stop "$pid" TERM
    local tap_status="$STOP_STATUS"

    # 2b. an earlier tapmesh, when asked, right after this one.
    if [[ -n "${BASELINE_BIN:-}" ]]; then
        local baseline_port
        baseline_port="$(free_ports 1)"
        spawn "$TMP_DIR/baseline.log" "$BASELINE_BIN" proxy \
            --listen "127.0.0.1:$baseline_port" --target "127.0.0.1:$server_port" \
            --protocol tcp --events "$TMP_DIR/baseline-events.jsonl"
        pid="$SPAWNED_PID"
        wait_listening "$baseline_port" "$pid" "baseline tapmesh" "$TMP_DIR/baseline.log"
        measure "baseline (BASELINE_BIN)" "$baseline_port"
        stop "$pid" TERM
    fi

    # 3. socat; -b matches the buffer a splice/copy relay would typically use.
    spawn "$TMP_DIR/socat.log" socat -b 262144 \
        "TCP-LISTEN:$socat_port,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$server_port"
    pid="$SPAWNED_PID"
    wait_listening "$socat_port" "$pid" "socat" "$TMP_DIR/socat.log"
    measure "socat -b 262144" "$socat_port"
    stop "$pid"

    # 4. haproxy, mode tcp. Deliberately haproxy's defaults beyond the
    # minimum it needs (no splice-* options, default nbthread/buffers): the
    # point is "what you get out of the box".
    haproxy_tcp "$haproxy_port" "$server_port" tcp
    pid="$SPAWNED_PID"
    measure "haproxy mode tcp" "$haproxy_port"
    stop "$pid"

    local streams_word="streams"
    ((STREAMS == 1)) && streams_word="stream"
    local what="iperf3, $STREAMS $streams_word, $DURATION s each, loopback"
    echo
    print_table "tcp throughput, client -> target ($what)" "${FWD_BPS[@]}"
    echo
    print_table "tcp throughput, target -> client (iperf3 -R; $what)" "${REV_BPS[@]}"
    echo

    # Sanity: tapmesh must have reported the connections it relayed, and its
    # byte counts must cover what iperf3 received (they also include the
    # control connection, so they are slightly larger).
    [[ "$tap_status" == 0 ]] || {
        log "tapmesh exited with status $tap_status after SIGTERM; log:"
        sed 's/^/    /' "$TMP_DIR/tapmesh.log" >&2
        FAILED=1
    }
    if ! python3 - "$events" "$tap_fwd_bytes" "$tap_rev_bytes" "$((2 * (STREAMS + 1)))" <<'EOF'; then
import json, sys
path, fwd, rev, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
closed, bytes_in, bytes_out = 0, 0, 0
try:
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            ev = json.loads(line)
            if ev.get("type") == "connection.closed":
                closed += 1
                bytes_in += ev["connection"]["bytes_in"]
                bytes_out += ev["connection"]["bytes_out"]
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"tapmesh events: cannot read {path}: {e}")
if closed == 0:
    sys.exit("tapmesh events: no connection.closed event")
print(f"tapmesh events: {closed} connection.closed (expected {expected}), "
      f"bytes_in {bytes_in} (iperf3 received {fwd} client->target), "
      f"bytes_out {bytes_out} (iperf3 received {rev} target->client)")
problems = []
if closed != expected:
    problems.append(f"{closed} connections closed, expected {expected}")
if bytes_in < fwd:
    problems.append("bytes_in below what iperf3 received")
if bytes_out < rev:
    problems.append("bytes_out below what iperf3 received")
if problems:
    sys.exit("tapmesh events: " + "; ".join(problems))
EOF
        FAILED=1
    fi

    return "$FAILED"
}

# ---------------------------------------------------------------------------
# http: wrk request rate and a 1 GiB download, direct vs tapmesh decoding
# HTTP/1.1 vs haproxy mode http with its access log on.

require_http_tools() {
    local missing=() tool
    command -v python3 >/dev/null || die "python3 is required"
    command -v setsid >/dev/null || die "setsid (util-linux) is required"
    for tool in wrk haproxy curl; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
    ((${#missing[@]} == 0)) && return 0
    if [[ "${INSTALL:-0}" == 1 ]]; then
        log "installing missing: ${missing[*]}"
        apt-get update && apt-get install -y "${missing[@]}"
        return 0
    fi
    log "missing: ${missing[*]}"
    log "install with: apt-get install -y wrk haproxy curl nginx-light   (or rerun with INSTALL=1)"
    exit 1
}

# wrk_rate NAME PORT: requests/s of wrk (1 thread, 10 keep-alive connections,
# a 5-byte response) into WRK_RATES[NAME].
declare -A WRK_RATES=()
WRK_ORDER=()
wrk_rate() {
    local name="$1" port="$2" out
    log "wrk: $name"
    out="$(wrk -t1 -c10 -d"${DURATION}s" "http://127.0.0.1:$port/small.txt")"
    WRK_RATES["$name"]="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    WRK_ORDER+=("$name")
}

# download_rate PORT: bytes/s of curl fetching the 1 GiB file.
download_rate() {
    curl -sS -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$1/big.bin"
}

# nginx_conf PORT: a one-worker nginx serving $TMP_DIR/html on PORT, with
# no access log and endless keep-alive.
nginx_conf() {
    cat <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $TMP_DIR/nginx.pid;
error_log $TMP_DIR/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP_DIR/cb; proxy_temp_path $TMP_DIR/px;
    fastcgi_temp_path $TMP_DIR/fc; uwsgi_temp_path $TMP_DIR/uw; scgi_temp_path $TMP_DIR/sc;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$1; root $TMP_DIR/html; }
}
EOF
}

cmd_http() {
    [[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds), got '$DURATION'"
    [[ "$HTTP_ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "HTTP_ROUNDS must be a positive integer, got '$HTTP_ROUNDS'"
    require_http_tools
    local bin nginx_bin
    bin="$(tapmesh_bin)"
    nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
    TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tapmesh-compare.XXXXXX")"

    local ports nginx_port tapmesh_port haproxy_port pid
    ports="$(free_ports 3)"
    read -r nginx_port tapmesh_port haproxy_port <<<"$ports"

    mkdir -p "$TMP_DIR/html"
    printf 'hello' >"$TMP_DIR/html/small.txt"
    # Sparse: 1 GiB of zeros costs no disk.
    truncate -s 1G "$TMP_DIR/html/big.bin"
    nginx_conf "$nginx_port" >"$TMP_DIR/nginx.conf"
    spawn "$TMP_DIR/nginx.log" "$nginx_bin" -p "$TMP_DIR" -c "$TMP_DIR/nginx.conf" -e "$TMP_DIR/nginx-error.log"
    pid="$SPAWNED_PID"
    wait_listening "$nginx_port" "$pid" "nginx" "$TMP_DIR/nginx-error.log"

    local events="$TMP_DIR/tapmesh-events.jsonl"
    spawn "$TMP_DIR/tapmesh.log" "$bin" proxy \
        --listen "127.0.0.1:$tapmesh_port" --target "127.0.0.1:$nginx_port" \
        --protocol http --events "$events"
    local tapmesh_pid="$SPAWNED_PID"
    wait_listening "$tapmesh_port" "$tapmesh_pid" "tapmesh" "$TMP_DIR/tapmesh.log"
    local baseline_port="" baseline_pid=""
    if [[ -n "${BASELINE_BIN:-}" ]]; then
        baseline_port="$(free_ports 1)"
        spawn "$TMP_DIR/baseline.log" "$BASELINE_BIN" proxy \
            --listen "127.0.0.1:$baseline_port" --target "127.0.0.1:$nginx_port" \
            --protocol http --events "$TMP_DIR/baseline-events.jsonl"
        baseline_pid="$SPAWNED_PID"
        wait_listening "$baseline_port" "$baseline_pid" "baseline tapmesh" "$TMP_DIR/baseline.log"
    fi

    # haproxy logging every request (its access log is its events).
    cat >"$TMP_DIR/haproxy.cfg" <<EOF
global
    maxconn 1000
    log stderr format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend bench_in
    bind 127.0.0.1:$haproxy_port
    default_backend bench_out
backend bench_out
    server nginx 127.0.0.1:$nginx_port
EOF
    spawn "$TMP_DIR/haproxy.log" haproxy -f "$TMP_DIR/haproxy.cfg" -db
    local haproxy_pid="$SPAWNED_PID"
    wait_listening "$haproxy_port" "$haproxy_pid" "haproxy" "$TMP_DIR/haproxy.log"

    # Interleaved rounds, so drift on a shared machine hits all three alike;
    # tapmesh and haproxy take turns going first, so neither always runs
    # right after the other has warmed (or tired) the machine.
    local round
    for ((round = 1; round <= HTTP_ROUNDS; round++)); do
        wrk_rate "direct#$round" "$nginx_port"
        if ((round % 2)); then
            wrk_rate "tapmesh#$round" "$tapmesh_port"
            [[ -z "$baseline_port" ]] || wrk_rate "baseline#$round" "$baseline_port"
            wrk_rate "haproxy#$round" "$haproxy_port"
        else
            wrk_rate "haproxy#$round" "$haproxy_port"
            [[ -z "$baseline_port" ]] || wrk_rate "baseline#$round" "$baseline_port"
            wrk_rate "tapmesh#$round" "$tapmesh_port"
        fi
    done
    # The first read of the file is slower (cold page cache): warm up first,
    # then interleave rounds and average.
    log "1 GiB download: warm-up"
    download_rate "$nginx_port" >/dev/null
    local big_direct=0 big_tapmesh=0
    for round in 1 2 3; do
        log "1 GiB download: direct, tapmesh (round $round)"
        big_direct="$(python3 -c "print($big_direct + $(download_rate "$nginx_port") / 3)")"
        big_tapmesh="$(python3 -c "print($big_tapmesh + $(download_rate "$tapmesh_port") / 3)")"
    done

    stop "$haproxy_pid"
    [[ -z "$baseline_pid" ]] || stop "$baseline_pid" TERM
    stop "$tapmesh_pid" TERM
    [[ "$STOP_STATUS" == 0 ]] || { log "tapmesh exited with $STOP_STATUS"; FAILED=1; }

    python3 - "$events" "$big_direct" "$big_tapmesh" "$DURATION" <<EOF || FAILED=1
import json, statistics, sys
rates = {}
for pair in """$(for k in "${WRK_ORDER[@]}"; do echo "$k=${WRK_RATES[$k]}"; done)""".split():
    name, value = pair.split("=")
    rates.setdefault(name.split("#")[0], []).append(float(value))
avg = {k: sum(v) / len(v) for k, v in rates.items()}
print()
print(f"http/1.1 requests per second (wrk -t1 -c10, 5-byte responses, {sys.argv[4]} s x {len(rates['direct'])} interleaved rounds)")
for name, label in [("direct", "direct"), ("tapmesh", "tapmesh --protocol http"), ("haproxy", "haproxy mode http + log")]:
    runs = " ".join(f"{r:,.0f}" for r in rates[name])
    print(f"{label:26} {avg[name]:>10,.0f} req/s  {avg[name] / avg['direct']:.2f}x direct  {avg[name] / avg['haproxy']:.2f}x haproxy   ({runs})")
# Rounds ran back to back, so their ratio is the steadier figure on a
# machine whose load drifts between rounds.
per_round = [t / h for t, h in zip(rates["tapmesh"], rates["haproxy"])]
print(f"{'tapmesh / haproxy':26} median of rounds {statistics.median(per_round):.2f}x  (" + " ".join(f"{r:.2f}" for r in per_round) + ")")
if "baseline" in rates:
    runs = " ".join(f"{r:,.0f}" for r in rates["baseline"])
    print(f"{'baseline (BASELINE_BIN)':26} {avg['baseline']:>10,.0f} req/s  {avg['baseline'] / avg['direct']:.2f}x direct   ({runs})")
    per_round = [t / b for t, b in zip(rates["tapmesh"], rates["baseline"])]
    print(f"{'tapmesh / baseline':26} median of rounds {statistics.median(per_round):.2f}x  (" + " ".join(f"{r:.2f}" for r in per_round) + ")")
direct, tap = float(sys.argv[2]), float(sys.argv[3])
print()
print("1 GiB response through curl (mean of 3 interleaved rounds after a warm-up)")
print(f"{'direct':26} {direct * 8 / 1e9:>10.2f} Gbit/s")
print(f"{'tapmesh --protocol http':26} {tap * 8 / 1e9:>10.2f} Gbit/s  {tap / direct:.2f}x direct")
requests = 0
with open(sys.argv[1]) as f:
    for line in f:
        e = json.loads(line)
        if e["type"] == "request.completed":
            requests += 1
            if e["request"]["path"] == "/big.bin":
                big = e["request"]
print()
print(f"tapmesh events: {requests} request.completed; the 1 GiB one: status {big['status_code']}, "
      f"response_size {big['response_size']}, truncated {big['response_body_truncated']}")
if big["response_size"] != 1 << 30:
    sys.exit("tapmesh events: the 1 GiB response was not counted in full")
EOF
    return "$FAILED"
}

# ---------------------------------------------------------------------------
# grpc: a tonic unary loop direct vs through the observing proxy.

cmd_grpc() {
    local calls="${CALLS:-50000}" concurrency="${CONCURRENCY:-8}"
    local bin peer ports server_port tapmesh_port
    bin="$(tapmesh_bin)"
    cargo build --release -p tapmesh-grpc-peer >&2
    peer="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/grpc-peer"
    TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tapmesh-compare.XXXXXX")"
    ports="$(free_ports 2)"
    read -r server_port tapmesh_port <<<"$ports"

    spawn "$TMP_DIR/server.log" "$peer" serve --port "$server_port"
    wait_listening "$server_port" "$SPAWNED_PID" "grpc-peer" "$TMP_DIR/server.log"
    local events="$TMP_DIR/tapmesh-events.jsonl"
    spawn "$TMP_DIR/tapmesh.log" "$bin" proxy \
        --listen "127.0.0.1:$tapmesh_port" --target "127.0.0.1:$server_port" \
        --protocol grpc --events "$events"
    local tapmesh_pid="$SPAWNED_PID"
    wait_listening "$tapmesh_port" "$tapmesh_pid" "tapmesh" "$TMP_DIR/tapmesh.log"

    local round results=()
    for round in 1 2 3; do
        log "grpc unary: direct, tapmesh (round $round, $calls calls, concurrency $concurrency)"
        results+=("direct=$("$peer" bench --addr "127.0.0.1:$server_port" --calls "$calls" --concurrency "$concurrency")")
        results+=("tapmesh=$("$peer" bench --addr "127.0.0.1:$tapmesh_port" --calls "$calls" --concurrency "$concurrency")")
    done
    stop "$tapmesh_pid" TERM
    [[ "$STOP_STATUS" == 0 ]] || { log "tapmesh exited with $STOP_STATUS"; FAILED=1; }

    printf '%s\n' "${results[@]}" | python3 -c '
import json, sys
events_path, calls, concurrency = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rates = {}
for line in sys.stdin:
    name, result = line.strip().split("=", 1)
    rates.setdefault(name, []).append(json.loads(result)["calls_per_sec"])
avg = {k: sum(v) / len(v) for k, v in rates.items()}
direct = avg["direct"]
print()
print(f"gRPC unary calls per second (tonic, one connection, {concurrency} in flight, {calls} calls x 3 interleaved rounds)")
for name, label in [("direct", "direct"), ("tapmesh", "tapmesh --protocol grpc")]:
    runs = " ".join(f"{r:,.0f}" for r in rates[name])
    print(f"{label:26} {avg[name]:>10,.0f} calls/s  {avg[name] / direct:.2f}x direct   ({runs})")
decoded = {}
with open(events_path) as f:
    for line in f:
        e = json.loads(line)
        if e["type"] == "grpc.call.completed":
            with_ = e["grpc_call"]["decoded_with"]
            decoded[with_] = decoded.get(with_, 0) + 1
total = sum(decoded.values())
print()
print(f"tapmesh events: {total} grpc.call.completed, decoded with {decoded}")
if total != 3 * calls:
    sys.exit(f"tapmesh events: expected {3 * calls} calls")
' "$events" "$calls" "$concurrency" || FAILED=1
    return "$FAILED"
}

# ---------------------------------------------------------------------------
# postgres: pgbench -S transactions/s against a real PostgreSQL, direct vs
# through tapmesh --protocol postgres (every statement decoded into an event).

# The newest installed PostgreSQL's bin directory (Debian keeps each major
# version's server programs there, off PATH).
pg_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/postgres" && -x "$dir/pgbench" && -x "$dir/pg_isready" ]] || return 1
    echo "$dir"
}

require_postgres_tools() {
    command -v python3 >/dev/null || die "python3 is required"
    command -v setsid >/dev/null || die "setsid (util-linux) is required"
    pg_bindir >/dev/null && return 0
    if [[ "${INSTALL:-0}" == 1 ]]; then
        log "installing missing: postgresql postgresql-client"
        apt-get update && apt-get install -y postgresql postgresql-client
        pg_bindir >/dev/null && return 0
    fi
    log "missing: PostgreSQL's initdb, postgres, pgbench and pg_isready (/usr/lib/postgresql/*/bin)"
    log "install with: apt-get install -y postgresql postgresql-client   (or rerun with INSTALL=1)"
    exit 1
}

# pgbench_tps PORT MODE OUT : one pgbench -S run against 127.0.0.1:PORT in
# query mode MODE; sets PG_TPS and PG_TXNS (transactions processed), or fails.
PG_TPS=""
PG_TXNS=""
pgbench_tps() {
    local port="$1" mode="$2" out="$3" pid status=0
    # In the background and waited for, so Ctrl-C is seen at once (see
    # iperf_run); the timeout only guards against a relay that stalls.
    setsid timeout -k 5 "$((DURATION + 60))" \
        "$PG_BIN/pgbench" -h 127.0.0.1 -p "$port" -U bench -n -S -M "$mode" \
        -c "$PG_CLIENTS" -j "$PG_THREADS" -T "$DURATION" bench \
        >"$out" 2>&1 </dev/null &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || status=$?
    forget_pid "$pid"
    if ((status != 0)); then
        log "pgbench against port $port failed (status $status):"
        sed 's/^/    /' "$out" >&2
        return 1
    fi
    # "tps = 12345.678901 (without initial connection time)"
    PG_TPS="$(awk '$1 == "tps" && $2 == "=" { print $3; exit }' "$out")"
    PG_TXNS="$(awk -F': ' '/number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' "$out")"
    [[ -n "$PG_TPS" && -n "$PG_TXNS" ]] || { log "no tps in pgbench's output:"; sed 's/^/    /' "$out" >&2; return 1; }
}

# haproxy_tcp PORT TARGET_PORT NAME : starts haproxy (mode tcp, its
# defaults) relaying 127.0.0.1:PORT to 127.0.0.1:TARGET_PORT: a relay in
# the tcp comparison, and the reference the postgres and redis comparisons
# set beside tapmesh when haproxy is installed. Sets SPAWNED_PID.
haproxy_tcp() {
    local port="$1" target="$2" name="$3" cfg="$TMP_DIR/haproxy-$3.cfg"
    cat >"$cfg" <<EOF
global
    maxconn 1000

defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s

listen $name
    bind 127.0.0.1:$port
    server target 127.0.0.1:$target
EOF
    spawn "$TMP_DIR/haproxy-$name.log" haproxy -f "$cfg" -db
    wait_listening "$port" "$SPAWNED_PID" "haproxy" "$TMP_DIR/haproxy-$name.log"
}

cmd_postgres() {
    local rounds="${PG_ROUNDS:-3}" modes="${PG_MODES:-simple prepared}" scale="${PG_SCALE:-1}"
    PG_CLIENTS="${PG_CLIENTS:-8}"
    PG_THREADS="${PG_THREADS:-2}"
    [[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds), got '$DURATION'"
    local n
    for n in "$rounds" "$scale" "$PG_CLIENTS" "$PG_THREADS"; do
        [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "PG_ROUNDS, PG_SCALE, PG_CLIENTS and PG_THREADS must be positive integers, got '$n'"
    done
    local mode
    for mode in $modes; do
        [[ "$mode" =~ ^(simple|extended|prepared)$ ]] || die "PG_MODES: '$mode' is not a pgbench query mode (simple, extended, prepared)"
    done
    require_postgres_tools
    PG_BIN="$(pg_bindir)"
    local bin
    bin="$(tapmesh_bin)"
    TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tapmesh-compare.XXXXXX")"

    # PostgreSQL refuses to run as root: as root, its programs run as the
    # postgres user (the Debian package creates it), owning the temp dir.
    local as=()
    if [[ "$(id -u)" == 0 ]]; then
        id -u postgres >/dev/null 2>&1 || die "running as root needs a postgres user to run the server (apt-get install postgresql creates it)"
        chown postgres "$TMP_DIR"
        as=(runuser -u postgres --)
    fi

    local ports server_port tapmesh_port haproxy_port
    ports="$(free_ports 3)"
    read -r server_port tapmesh_port haproxy_port <<<"$ports"

    log "initdb (into $TMP_DIR/data)"
    "${as[@]}" "$PG_BIN/initdb" -D "$TMP_DIR/data" -U bench --auth=trust >"$TMP_DIR/initdb.log" 2>&1 ||
        { sed 's/^/    /' "$TMP_DIR/initdb.log" >&2; die "initdb failed"; }
    spawn "$TMP_DIR/postgres.log" "${as[@]}" "$PG_BIN/postgres" -D "$TMP_DIR/data" \
        -p "$server_port" -k "$TMP_DIR" -c listen_addresses=127.0.0.1 \
        -c fsync=off -c max_connections=200
    local pg_pid="$SPAWNED_PID"
    wait_listening "$server_port" "$pg_pid" "postgres" "$TMP_DIR/postgres.log"
    # Listening is not yet accepting queries (startup may still run).
    local i
    for ((i = 0; i < 100; i++)); do
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$server_port" && break
        sleep 0.1
    done
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$server_port" || die "postgres did not accept connections within 10 s"
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$server_port" -U bench bench
    log "pgbench -i -s $scale (direct, not observed)"
    "$PG_BIN/pgbench" -h 127.0.0.1 -p "$server_port" -U bench -i -q -s "$scale" bench >"$TMP_DIR/pgbench-init.log" 2>&1 ||
        { sed 's/^/    /' "$TMP_DIR/pgbench-init.log" >&2; die "pgbench -i failed"; }

    local events="$TMP_DIR/tapmesh-events.jsonl"
    spawn "$TMP_DIR/tapmesh.log" "$bin" proxy \
        --listen "127.0.0.1:$tapmesh_port" --target "127.0.0.1:$server_port" \
        --protocol postgres --events "$events"
    local tapmesh_pid="$SPAWNED_PID"
    wait_listening "$tapmesh_port" "$tapmesh_pid" "tapmesh" "$TMP_DIR/tapmesh.log"
    # The reference: a relay that decodes nothing, on the same cores.
    local relays="direct tapmesh" reversed="tapmesh direct" haproxy_pid=""
    if command -v haproxy >/dev/null; then
        haproxy_tcp "$haproxy_port" "$server_port" pg
        haproxy_pid="$SPAWNED_PID"
        relays="direct tapmesh haproxy"
        reversed="haproxy tapmesh direct"
    else
        log "haproxy is not installed: no reference relay (apt-get install haproxy)"
    fi

    # Interleaved rounds, taking turns at going first, so drift on a shared
    # machine hits all alike.
    local round results=() tapmesh_txns=0 order name port
    for ((round = 1; round <= rounds; round++)); do
        for mode in $modes; do
            order="$relays"
            ((round % 2)) || order="$reversed"
            for name in $order; do
                port="$server_port"
                [[ "$name" == tapmesh ]] && port="$tapmesh_port"
                [[ "$name" == haproxy ]] && port="$haproxy_port"
                log "pgbench -S -M $mode: $name (round $round, $DURATION s, $PG_CLIENTS clients)"
                if pgbench_tps "$port" "$mode" "$TMP_DIR/pgbench-$mode-$name-$round.txt"; then
                    results+=("$mode $name $PG_TPS")
                    [[ "$name" == tapmesh ]] && tapmesh_txns=$((tapmesh_txns + PG_TXNS))
                else
                    FAILED=1
                fi
            done
        done
    done

    stop "$tapmesh_pid" TERM
    [[ "$STOP_STATUS" == 0 ]] || { log "tapmesh exited with $STOP_STATUS"; FAILED=1; }
    [[ -z "$haproxy_pid" ]] || stop "$haproxy_pid" TERM
    # SIGINT: PostgreSQL's fast shutdown.
    stop "$pg_pid" INT

    printf '%s\n' "${results[@]}" | python3 -c '
import json, statistics, sys
events_path, txns, clients, threads, duration, scale = sys.argv[1:7]
runs = {}
for line in sys.stdin:
    mode, name, tps = line.split()
    runs.setdefault(mode, {}).setdefault(name, []).append(float(tps))
print()
print(f"postgres pgbench -S transactions per second ({clients} clients, {threads} threads, "
      f"{duration} s per run, scale {scale}, direct and tapmesh interleaved)")
below = []
for mode, by in runs.items():
    d, t = by.get("direct", []), by.get("tapmesh", [])
    if not d or not t:
        print(f"  -M {mode}: a run failed"); below.append(mode); continue
    ratio = statistics.mean(t) / statistics.mean(d)
    per_round = [b / a for a, b in zip(d, t)]
    print(f"  -M {mode:9} direct                       {statistics.mean(d):>10,.0f} tps   (" + " ".join(f"{r:,.0f}" for r in d) + ")")
    print(f"  -M {mode:9} tapmesh --protocol postgres  {statistics.mean(t):>10,.0f} tps   (" + " ".join(f"{r:,.0f}" for r in t) + ")")
    print(f"  -M {mode:9} ratio tapmesh/direct {ratio:.2f}x  (per round: " + " ".join(f"{r:.2f}" for r in per_round) + ")   goal >= 0.70")
    h = by.get("haproxy", [])
    if h:
        print(f"  -M {mode:9} haproxy mode tcp (reference)  {statistics.mean(h):>10,.0f} tps   (" + " ".join(f"{r:,.0f}" for r in h) + ")")
        print(f"  -M {mode:9} ratio haproxy/direct {statistics.mean(h) / statistics.mean(d):.2f}x, tapmesh/haproxy {statistics.mean(t) / statistics.mean(h):.2f}x")
    if ratio < 0.7:
        below.append(mode)
queries = errors = 0
with open(events_path) as f:
    for line in f:
        e = json.loads(line)
        if e["type"] == "postgres.query.completed":
            queries += 1
            if e["query"].get("error"):
                errors += 1
        elif e["type"] == "decode.error":
            sys.exit(f"tapmesh events: decode.error: {e}")
print()
print(f"tapmesh events: {queries} postgres.query.completed ({errors} with an error) "
      f"for {txns} pgbench transactions through the proxy")
if queries < int(txns):
    sys.exit("tapmesh events: fewer statements than transactions")
if below:
    print("below the 0.7x goal: " + ", ".join(below))
' "$events" "$tapmesh_txns" "$PG_CLIENTS" "$PG_THREADS" "$DURATION" "$scale" || FAILED=1
    return "$FAILED"
}

# ---------------------------------------------------------------------------
# kafka: producer messages/s direct vs through tapmesh --protocol kafka. The
# mock broker and the producer live in one Rust program (benches/kafka_compare.rs).

cmd_kafka() {
    local bin
    bin="$(tapmesh_bin)"
    TAPMESH_BIN="$bin" cargo bench --bench kafka_compare
}

# ---------------------------------------------------------------------------
# redis: redis-benchmark SET/GET requests/s, not pipelined and pipelined
# (-P 16), direct vs through tapmesh --protocol redis, interleaved rounds.

cmd_redis() {
    local requests="${REQUESTS:-100000}" rounds="${ROUNDS:-3}"
    local bin ports server_port tapmesh_port haproxy_port tool
    for tool in redis-server redis-benchmark; do
        command -v "$tool" >/dev/null || die "$tool is missing: apt-get install redis-server redis-tools"
    done
    bin="$(tapmesh_bin)"
    TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tapmesh-compare.XXXXXX")"
    ports="$(free_ports 3)"
    read -r server_port tapmesh_port haproxy_port <<<"$ports"
    spawn "$TMP_DIR/redis.log" redis-server --port "$server_port" --bind 127.0.0.1 \
        --save '' --appendonly no --daemonize no
    wait_listening "$server_port" "$SPAWNED_PID" "redis-server" "$TMP_DIR/redis.log"
    local events="$TMP_DIR/tapmesh-events.jsonl"
    spawn "$TMP_DIR/tapmesh.log" "$bin" proxy \
        --listen "127.0.0.1:$tapmesh_port" --target "127.0.0.1:$server_port" \
        --protocol redis --events "$events"
    local tapmesh_pid="$SPAWNED_PID"
    wait_listening "$tapmesh_port" "$tapmesh_pid" "tapmesh" "$TMP_DIR/tapmesh.log"
    local relays="direct tapmesh" haproxy_pid=""
    if command -v haproxy >/dev/null; then
        haproxy_tcp "$haproxy_port" "$server_port" redis
        haproxy_pid="$SPAWNED_PID"
        relays="direct tapmesh haproxy"
    else
        log "haproxy is not installed: no reference relay (apt-get install haproxy)"
    fi

    local round pipeline where port results="$TMP_DIR/results.csv"
    for round in $(seq "$rounds"); do
        for pipeline in 1 16; do
            for where in $relays; do
                port="$server_port"
                [[ "$where" == tapmesh ]] && port="$tapmesh_port"
                [[ "$where" == haproxy ]] && port="$haproxy_port"
                log "redis-benchmark: $where, -P $pipeline (round $round, $requests requests x SET, GET)"
                timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -n "$requests" \
                    -c 50 -P "$pipeline" --csv 2>/dev/null |
                    awk -F'"' -v w="$where" -v p="$pipeline" 'NR > 1 { print w "," p "," $2 "," $4 }' >>"$results"
            done
        done
    done
    stop "$tapmesh_pid" TERM
    [[ "$STOP_STATUS" == 0 ]] || { log "tapmesh exited with $STOP_STATUS"; FAILED=1; }
    [[ -z "$haproxy_pid" ]] || stop "$haproxy_pid" TERM

    python3 - "$results" "$events" "$requests" "$rounds" <<'PY' || FAILED=1
import sys
from collections import defaultdict
results, events_path, requests, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rates = defaultdict(list)
for line in open(results):
    where, pipeline, test, rps = line.strip().split(",")
    rates[(test, int(pipeline), where)].append(float(rps))
print()
print(f"redis-benchmark requests/s (50 clients, {requests} requests, {rounds} interleaved rounds)")
for test in ("SET", "GET"):
    for pipeline in (1, 16):
        d, t = rates[(test, pipeline, "direct")], rates[(test, pipeline, "tapmesh")]
        if not d or not t:
            sys.exit(f"no result for {test} -P {pipeline}")
        avg_d, avg_t = sum(d) / len(d), sum(t) / len(t)
        runs = " ".join(f"{x:,.0f}" for x in t)
        line = f"{test:3} -P {pipeline:<2}  direct {avg_d:>11,.0f}  tapmesh {avg_t:>11,.0f}  {avg_t / avg_d:.2f}x"
        h = rates[(test, pipeline, "haproxy")]
        if h:
            avg_h = sum(h) / len(h)
            line += f"  haproxy {avg_h:>11,.0f}  {avg_h / avg_d:.2f}x"
        print(line + f"   (tapmesh runs: {runs})")
commands = 0
with open(events_path) as f:
    for line in f:
        if '"type":"redis.command.completed"' in line:
            commands += 1
expected = rounds * 2 * 2 * requests
print(f"\ntapmesh events: {commands} redis.command.completed (the benchmark sent {expected} SET/GET plus its CONFIG calls)")
if commands < expected:
    sys.exit("tapmesh reported fewer commands than were sent")
PY
    return "$FAILED"
}

# ---------------------------------------------------------------------------
# web: the proxy's throughput with the web view open in a browser, against
# the same environment with no page open.

# A headless Chromium showing URL, in the background (its pid in SPAWNED_PID).
open_page() {
    spawn "$TMP_DIR/chromium.log" "$CHROMIUM" --headless=new --no-sandbox --disable-gpu \
        --user-data-dir="$TMP_DIR/chromium-profile" --remote-debugging-port=0 \
        --window-size=1600,1000 "$1"
}

cmd_web() {
    [[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds), got '$DURATION'"
    [[ "$HTTP_ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "HTTP_ROUNDS must be a positive integer, got '$HTTP_ROUNDS'"
    require_http_tools
    CHROMIUM="$(command -v chromium || true)"
    [[ -n "$CHROMIUM" ]] || die "chromium is required (apt-get install -y chromium)"
    local bin nginx_bin
    bin="$(tapmesh_bin)"
    nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
    TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tapmesh-compare.XXXXXX")"
    mkdir -p "$TMP_DIR/html"
    printf 'hello' >"$TMP_DIR/html/small.txt"
    # nginx as a service of an environment: its port comes from tapmesh.
    nginx_conf NGINX_PORT >"$TMP_DIR/nginx.conf.in"
    cat >"$TMP_DIR/web.yaml" <<EOF
name: web-bench
services:
  nginx:
    type: script
    script: |
      sed "s/NGINX_PORT/\$PORT/" $TMP_DIR/nginx.conf.in > $TMP_DIR/nginx.conf
      exec $nginx_bin -p $TMP_DIR -c $TMP_DIR/nginx.conf -e $TMP_DIR/nginx-error.log
    ingresses:
      default: { protocol: http, ready: { type: tcp } }
EOF
    local web_port
    web_port="$(free_ports 1)"
    spawn "$TMP_DIR/up.log" "$bin" up "$TMP_DIR/web.yaml" --dir "$TMP_DIR/env" --web "127.0.0.1:$web_port"
    local up_pid="$SPAWNED_PID" observed="" i
    for ((i = 0; i < 300; i++)); do
        observed="$(curl -s "http://127.0.0.1:$web_port/environments/web-bench" 2>/dev/null |
            python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["endpoints"]["nginx"]["default"]["observed"] if d.get("state")=="up" else "")' 2>/dev/null || true)"
        [[ -n "$observed" ]] && break
        alive "$up_pid" || die "tapmesh up exited: $(tail -5 "$TMP_DIR/up.log")"
        sleep 0.2
    done
    [[ -n "$observed" ]] || die "the environment did not come up: $(tail -5 "$TMP_DIR/up.log")"
    local port="${observed##*:}" page_url="http://127.0.0.1:$web_port/?env=web-bench"
    log "nginx observed at $observed; web view at $page_url"

    # Interleaved: each round measures both, taking turns going first.
    local round page_pid which order
    for ((round = 1; round <= HTTP_ROUNDS; round++)); do
        order="closed open"
        ((round % 2)) || order="open closed"
        for which in $order; do
            if [[ "$which" == open ]]; then
                open_page "$page_url"
                page_pid="$SPAWNED_PID"
                # Started (a browser's start takes a few seconds of CPU),
                # loaded, and caught up with the history.
                sleep 10
                wrk_rate "open#$round" "$port"
                stop "$page_pid"
            else
                wrk_rate "closed#$round" "$port"
            fi
        done
    done
    stop "$up_pid" TERM
    python3 - <<EOF
import statistics
rates = {}
for pair in """$(for k in "${WRK_ORDER[@]}"; do echo "$k=${WRK_RATES[$k]}"; done)""".split():
    name, value = pair.split("=")
    kind, rnd = name.split("#")
    rates.setdefault(int(rnd), {})[kind] = float(value)
ratios = []
print(f"{'round':>5}  {'no page req/s':>14}  {'page open req/s':>15}  {'open/closed':>11}")
for rnd in sorted(rates):
    r = rates[rnd]
    ratio = r["open"] / r["closed"]
    ratios.append(ratio)
    print(f"{rnd:>5}  {r['closed']:>14.0f}  {r['open']:>15.0f}  {ratio:>11.3f}")
print(f"median open/closed: {statistics.median(ratios):.3f}  (goal: >= 0.95)")
EOF
}

main() {
    case "${1:-}" in
        web) cmd_web ;;
        tcp) cmd_tcp ;;
        http) cmd_http ;;
        grpc) cmd_grpc ;;
        postgres) cmd_postgres ;;
        kafka) cmd_kafka ;;
        redis) cmd_redis ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
