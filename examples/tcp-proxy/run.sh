#!/usr/bin/env bash
# Observe one TCP edge: a small HTTP server behind `tapmesh proxy`, a few
# requests through it, and the events the proxy writes, live.
#
#   bash examples/tcp-proxy/run.sh          # runs until Ctrl-C
#   DEMO_ONCE=1 bash examples/tcp-proxy/run.sh   # sends the requests, shows the events, exits
#
# Needs only cargo and python3 (both on a fresh machine of this project's kind).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release --quiet --bin tapmesh
bin=target/release/tapmesh
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
target_port=$(free_port)
proxy_port=$(free_port)

# The "service": Python's HTTP server, serving this example's folder.
python3 -m http.server "$target_port" --bind 127.0.0.1 --directory examples/tcp-proxy >"$work/server.log" 2>&1 &
pids+=($!)

"$bin" proxy --listen "127.0.0.1:$proxy_port" --target "127.0.0.1:$target_port" \
  --source demo-client --target-name web --events "$work/events.jsonl" 2>"$work/proxy.log" &
pids+=($!)

for _ in $(seq 100); do
  grep -q "proxy listening" "$work/proxy.log" 2>/dev/null && break
  sleep 0.1
done
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $target_port)).close()" 2>/dev/null && break
  sleep 0.1
done

echo "tapmesh proxy: 127.0.0.1:$proxy_port -> web at 127.0.0.1:$target_port"
echo "events: $work/events.jsonl (one JSON object per line)"
echo
python3 - "$proxy_port" <<'PY'
import sys, urllib.request
port = sys.argv[1]
for path in ["/", "/run.sh", "/missing"]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as r:
            print(f"GET {path} -> {r.status}, {len(r.read())} bytes")
    except urllib.error.HTTPError as e:
        print(f"GET {path} -> {e.code}")
PY
sleep 0.5
echo
if [ -n "${DEMO_ONCE:-}" ]; then
  cat "$work/events.jsonl"
  exit 0
fi
echo "Following events; connect to 127.0.0.1:$proxy_port yourself (e.g. curl http://127.0.0.1:$proxy_port/). Ctrl-C stops."
tail -n +1 -f "$work/events.jsonl"
