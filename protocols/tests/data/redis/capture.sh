#!/usr/bin/env bash
# Re-makes the captures in this directory against a real redis-server.
# Needs: redis-server and redis-cli (Debian redis-server, redis-tools), python3
# and a venv with redis-py (PY=path/to/python with `redis` installed).
# Each capture is one connection through relay.py: records of
# [1 byte 'C' client->server | 'S' server->client][u32 BE length][bytes].
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-python3}
work=$(mktemp -d)
P=${REDIS_PORT:-16379}
redis-server --port $P --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --dir "$work" --enable-debug-command yes >"$work/log" 2>&1 &
srv=$!
trap 'kill $srv; rm -rf "$work"' EXIT
sleep 1
run() { # name port -- command…
  local name=$1 port=$2; shift 3
  python3 "$here/relay.py" "$port" $P "$work/$name" & local rp=$!
  sleep 0.5; "$@"; sleep 0.5; kill $rp
  cp "$work/$name/conn-1.bin" "$here/$name.bin"
}
raw() { python3 "$here/raw.py" "$@"; }
run cli 17001 -- sh -c 'printf "%s\n" "SET greeting hello" "GET greeting" "LPUSH list a b c" "LRANGE list 0 -1" "GET list" "INCR counter" "HSET h f1 v1 f2 v2" "HGETALL h" "GET missing" "CONFIG GET maxmemory" "CLIENT SETNAME tester" "NOSUCHCOMMAND x" "SET bin \"\\xff\\x00\\x01\"" "GET bin" "XADD st * a 1" "XINFO STREAM st" "CLIENT TRACKING off" | redis-cli -p 17001'
run cli3 17002 -- sh -c 'printf "%s\n" "HGETALL h" "SMEMBERS nothing" "SADD s x y" "SMEMBERS s" "ZADD z 1.5 m" "ZSCORE z m" "GET missing" "DEBUG PROTOCOL true" "DEBUG PROTOCOL false" "DEBUG PROTOCOL verbatim" "DEBUG PROTOCOL double" "DEBUG PROTOCOL null" "DEBUG PROTOCOL map" "DEBUG PROTOCOL set" "CONFIG GET maxmemory*" "GET list" | redis-cli -3 -p 17002'
run resp3types 17003 -- raw 17003 'HELLO 3\r\n' 'DEBUG PROTOCOL bignum\r\n' 'DEBUG PROTOCOL attrib\r\n' 'DEBUG PROTOCOL verbatim\r\n' 'DEBUG PROTOCOL true\r\n' 'DEBUG PROTOCOL double\r\n' 'DEBUG PROTOCOL null\r\n' 'DEBUG PROTOCOL push\r\n' 'HELLO 2\r\n' 'DEBUG PROTOCOL map\r\n' 'DEBUG PROTOCOL bignum\r\n'
run inline 17004 -- raw 17004 'PING\r\n' '\r\n' 'SET "my key" "a \\"quoted\\" value"\r\n' 'GET "my key"\n' "ECHO 'single quoted'\r\n" 'PING\r\nPING\r\nECHO x\r\n' 'GET \\"unbalanced\r\n'
python3 - >"$work/pipe.txt" <<'PY'
import sys
for i in range(3000):
    k, v = f"key:{i}", f"value-{i}"
    sys.stdout.write(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${len(v)}\r\n{v}\r\n")
PY
run pipe 17005 -- sh -c "redis-cli -p 17005 --pipe < $work/pipe.txt"
(sleep 1.2; redis-cli -p $P PUBLISH a hello-a; redis-cli -p $P PUBLISH news.1 hello-news; redis-cli -p $P PUBLISH b "$(printf 'bin\x01')") >/dev/null &
run pubsub2 17006 -- raw 17006 '*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n' '*2\r\n$10\r\nPSUBSCRIBE\r\n$5\r\nnews*\r\n' 'PING\r\n' '' '' '' '' '' '' '' '' '*1\r\n$11\r\nUNSUBSCRIBE\r\n' 'PUNSUBSCRIBE\r\n' 'PING\r\n' 'UNSUBSCRIBE\r\n' 'GET greeting\r\n'
run py3 17007 -- "$PY" "$here/py3.py" 17007 $P
(sleep 1.5; redis-cli -p $P SET trk changed; sleep 1.0; redis-cli -p $P RPUSH q job1) >/dev/null &
run tracking 17008 -- raw 17008 'HELLO 3\r\n' 'CLIENT TRACKING ON\r\n' 'GET trk\r\n' '' '' '' '' '' '' '' '' 'PING\r\n' 'BLPOP q 5\r\n' '' '' '' '' '' '' 'FLUSHDB\r\n' 'PING\r\n'
(sleep 1.0; redis-cli -p $P SET mon 1; redis-cli -p $P GET mon) >/dev/null &
run monitor 17009 -- raw 17009 '*1\r\n$7\r\nMONITOR\r\n' '' '' '' '' '' '' '' '' '' ''
run clientreply 17010 -- raw 17010 '*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n' 'CLIENT REPLY OFF\r\nSET b 2\r\nGET b\r\n' 'CLIENT REPLY ON\r\n' 'GET b\r\n'
run auth 17011 -- raw 17011 'ACL SETUSER alice on >Sup3rSecretA ~* &* +@all\r\n' 'AUTH alice Sup3rSecretA\r\n' '*3\r\n$4\r\nAUTH\r\n$5\r\nalice\r\n$13\r\nWrongSecretW1\r\n' 'HELLO 3 AUTH alice Sup3rSecretA SETNAME app\r\n' 'CONFIG SET requirepass Sup3rSecretB\r\n' 'AUTH Sup3rSecretB\r\n' 'CONFIG GET requirepass\r\n' 'CONFIG SET requirepass ""\r\n' 'MIGRATE 127.0.0.1 1 k 0 10 AUTH Sup3rSecretC\r\n' 'MIGRATE 127.0.0.1 1 k 0 10 AUTH2 bob Sup3rSecretD\r\n' 'ACL SETUSER alice <Sup3rSecretA >Sup3rSecretE\r\n' 'ACL DELUSER alice\r\n'
