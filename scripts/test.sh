#!/usr/bin/env bash
# The project's whole test suite, as CI runs it (.ci/run calls this).
# Installs what the tests need on a fresh machine, then: format, lints,
# every test, benches and fuzz targets built, each fuzz target run briefly.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

# Peers the integration tests drive (PEERS.md): curl, nginx, nghttp2's
# h2load and nghttp, kcat, PostgreSQL (server, psql, pgbench) and Redis
# (server, redis-cli, redis-benchmark); tmux, the terminal `tapmesh up`
# draws in (tests/terminal_view.rs); Chromium and chromedriver (tests/browser);
# iperf3 (tests/faults.rs).
missing=()
# python3 -m venv (the Python peers' .venv, below) needs Debian's venv module.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v h2load >/dev/null 2>&1 && command -v nghttp >/dev/null 2>&1 || missing+=(nghttp2-client)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null && command -v psql >/dev/null 2>&1 \
  && command -v pgbench >/dev/null 2>&1 || missing+=(postgresql postgresql-client)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
# iperf3 measures a bandwidth fault (tests/faults.rs).
command -v iperf3 >/dev/null 2>&1 || missing+=(iperf3)
# The web view's browser tests (tests/browser) drive Debian's headless
# Chromium through its chromedriver (selenium never downloads a browser).
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || missing+=(chromium chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing test peers: ${missing[*]}"
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}"
fi

# Python peers (tests/peers/requirements.txt) in a project venv; the tests
# find it at .venv/bin/python (or $TAPMESH_PYTHON).
if [ ! -x .venv/bin/python ]; then
  say "creating .venv for the Python test peers"
  python3 -m venv .venv
fi
.venv/bin/pip install -q -r tests/peers/requirements.txt

# Rust components the checks use (present with a rustup toolchain; cheap no-ops then).
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

say "cargo build (the test peers' binaries, e.g. grpc-peer, beside tapmesh)"
cargo build --workspace --bins

# The example shop's services, where `tapmesh up` builds them (its cache's
# target directory): the shop test then starts them at once instead of
# spending its time budget on a first build.
say "cargo build (the example shop's services)"
cargo build --bins --manifest-path examples/shop/services/Cargo.toml \
  --target-dir "${XDG_CACHE_HOME:-$HOME/.cache}/tapmesh/target"

# The Python test API (clients/python), installed into .venv as a user
# would install it, and its pytest suite against the tapmesh just built and
# the example shop (whose services were built above). A failure here is
# reported at the end, so that it hides none of cargo test's results.
say "Python client tests (clients/python)"
.venv/bin/pip install -q pytest ./clients/python
# Whole failure output (long tracebacks, untruncated assertion diffs), kept
# in target/ and its tail printed again at the very end when it fails (CI
# shows the script's tail).
PYTEST_FLAGS=(-q -rfE --tb=long -o verbosity_assertions=2)
mkdir -p target
python_status=0
TAPMESH_BIN="$PWD/target/debug/tapmesh" .venv/bin/python -m pytest "${PYTEST_FLAGS[@]}" clients/python/tests \
  2>&1 | tee target/python-tests.txt || python_status=$?

# The web view in a real headless Chromium (tests/browser: the example
# shop's page, hostile markup in traffic, 20,000 events/s into an open
# page); screenshots and the load figures go to target/web-view/.
say "browser tests (tests/browser)"
browser_status=0
TAPMESH_BIN="$PWD/target/debug/tapmesh" .venv/bin/python -m pytest "${PYTEST_FLAGS[@]}" -rP tests/browser \
  2>&1 | tee target/browser-tests.txt || browser_status=$?

# A failed pytest suite's tail again as the script's last output, however
# the script ends (cargo test below stops it on a failure).
pytest_tails() {
  local code=$?
  if [ "$python_status" -ne 0 ]; then
    say "the Python client's tests failed (status $python_status); the last 80 lines of target/python-tests.txt:"
    tail -n 80 target/python-tests.txt
  fi
  if [ "$browser_status" -ne 0 ]; then
    say "the browser tests failed (status $browser_status); the last 80 lines of target/browser-tests.txt:"
    tail -n 80 target/browser-tests.txt
  fi
  exit "$code"
}
trap pytest_tails EXIT

say "cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt
# Summarise every test binary's result line into one closing line.
python3 - <<'PY'
import re
passed = failed = ignored = 0
for line in open("target/test-output.txt", encoding="utf-8", errors="replace"):
    m = re.match(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", line)
    if m:
        passed += int(m[1]); failed += int(m[2]); ignored += int(m[3])
print(f"\nall test binaries: {passed} passed, {failed} failed, {ignored} skipped")
PY

# Fuzz targets arrive with the protocol decoders; run each briefly when present.
if compgen -G "fuzz/fuzz_targets/*.rs" >/dev/null; then
  say "fuzz targets (30 s each)"
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
  rm -f fuzz/target/.rustc_info.json
  for target in fuzz/fuzz_targets/*.rs; do
    name=$(basename "$target" .rs)
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$name" -- -max_total_time="${FUZZ_SECONDS:-30}"
  done
fi

if [ "$python_status" -ne 0 ]; then
  echo "the Python client's tests failed (see \"Python client tests\" above)" >&2
  exit "$python_status"
fi
if [ "$browser_status" -ne 0 ]; then
  echo "the browser tests failed (see \"browser tests\" above)" >&2
  exit "$browser_status"
fi
