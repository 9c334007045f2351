#!/usr/bin/env bash
# The README's first command: installs what the example shop needs on a
# fresh machine (PostgreSQL and Redis from Debian's packages; kcat is not
# needed), then runs the shop in observe mode until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

missing=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v make >/dev/null 2>&1 || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing the shop's servers and tools: ${missing[*]}"
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q "${missing[@]}"
fi

say "building tapmesh (release)"
cargo build --release --bin tapmesh
# The shop's services, where tapmesh's own build of a `cargo` service looks
# (its cache's target directory), so this shows cargo's progress and the
# start below finds them built.
say "building the shop's services"
cargo build --bins --manifest-path examples/shop/services/Cargo.toml \
  --target-dir "${XDG_CACHE_HOME:-$HOME/.cache}/tapmesh/target"
say "starting the shop: PostgreSQL, Redis, a Kafka mock, gRPC inventory, HTTP orders and front, a load loop"
exec target/release/tapmesh up examples/shop/shop.yaml "$@"
