#!/usr/bin/env bash
# Benchmark: direct to a mock upstream, Envoy alone, Envoy + the Wasm filter, Portkey's gateway.
# Installs what is missing (wrk from Debian packages, Portkey from npm into .cache/portkey, Envoy
# through ./dev setup), builds the release .wasm and the mock, then runs bench/bench.py inside a
# private network namespace so that every server is reachable on loopback only.
#
#   bench/run.sh                      # all scenarios (a-h), all systems, 10 s per run
#   bench/run.sh --duration 5 --scenarios ab --doc docs/benchmarks.md
#   bench/run.sh --breakdown --duration 5 --rounds 3 --doc docs/benchmarks.md   # cost per piece of (a)
#   bench/run.sh --instructions --doc docs/benchmarks.md   # instructions per request under callgrind (a-c)
#   bench/run.sh --instructions --breakdown --scenarios a --doc docs/benchmarks.md
# Other options: python3 bench/bench.py --help
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ORIG_ARGS="$*"

PORTKEY_VERSION="1.15.2"
PORTKEY_DIR="$ROOT/.cache/portkey"
PORTKEY_PKG="$PORTKEY_DIR/node_modules/@portkey-ai/gateway"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "$1 is missing and apt-get is not available: install $1"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  log "installing $* (Debian packages)"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v taskset >/dev/null 2>&1 || apt_install util-linux
command -v ip >/dev/null 2>&1 || apt_install iproute2
command -v node >/dev/null 2>&1 || apt_install nodejs npm
# --instructions runs Envoy under valgrind's callgrind (Debian's valgrind package, installed the
# way ./dev installs binaryen); the other modes do not need it.
for a in "$@"; do
  if [[ "$a" == "--instructions" ]]; then
    command -v callgrind_control >/dev/null 2>&1 || apt_install valgrind
    command -v callgrind_control >/dev/null 2>&1 || die "valgrind's callgrind_control is missing: install Debian's valgrind package"
  fi
done

if [[ "$(cat "$PORTKEY_PKG/package.json" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])' 2>/dev/null)" != "$PORTKEY_VERSION" ]]; then
  log "installing @portkey-ai/gateway@$PORTKEY_VERSION into .cache/portkey"
  mkdir -p "$PORTKEY_DIR"
  npm install --silent --no-audit --no-fund --omit=dev --prefix "$PORTKEY_DIR" "@portkey-ai/gateway@$PORTKEY_VERSION" >/dev/null
fi

./dev setup
PY="$ROOT/.venv/bin/python"
ENVOY="$("$PY" -c 'import envoy, pathlib; print(pathlib.Path(envoy.__file__).parent / "_bin" / "envoy")')"
[[ -x "$ENVOY" ]] || die "Envoy binary not found at $ENVOY"

# --breakdown: a second module with the bench-only switches (filter/src/knobs.rs), built and
# optimised exactly like the shipped one, before the shipped one is rebuilt over cargo's output.
PASS=()
BREAKDOWN=""
for a in "$@"; do
  if [[ "$a" == "--breakdown" ]]; then BREAKDOWN=1; else PASS+=("$a"); fi
done
if [[ -n "$BREAKDOWN" ]]; then
  log "building the breakdown filter (--features bench-breakdown)"
  cargo build --quiet -p ai-gateway-filter --target wasm32-wasip1 --release --features bench-breakdown
  BD_WASM="$ROOT/target/ai_gateway_filter_breakdown.wasm"
  wasm-opt -O3 --one-caller-inline-max-function-size=200 --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types \
    "$ROOT/target/wasm32-wasip1/release/ai_gateway_filter.wasm" -o "$BD_WASM"
  PASS+=(--breakdown "$BD_WASM" --systems envoy,filter)
  # The shipped module must not be the breakdown build.
  touch filter/src/lib.rs
fi
set -- "${PASS[@]+"${PASS[@]}"}"

log "building the filter (.wasm, release) and the benchmark tools"
"$ROOT/dev" build
cargo build --quiet -p bench --release
WASM="$ROOT/target/ai_gateway_filter.wasm"

ARGS=(--envoy "$ENVOY" --wasm "$WASM" --mock "$ROOT/target/release/mock-upstream"
      --rate-load "$ROOT/target/release/rate-load" --wrk "$(command -v wrk)" --portkey "$PORTKEY_PKG"
      --command "bench/run.sh $ORIG_ARGS" "$@")

log "load: $(cut -d' ' -f1-3 /proc/loadavg) (other work on these cores makes the figures noisy)"
# A private network namespace: only loopback exists, so Portkey (which binds every interface)
# and the rest are unreachable from outside. Needs root or unprivileged user namespaces.
if unshare -n true 2>/dev/null; then
  exec unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh python3 bench/bench.py "${ARGS[@]}"
elif unshare -rn true 2>/dev/null; then
  exec unshare -rn -- sh -c 'ip link set lo up && exec "$@"' sh python3 bench/bench.py "${ARGS[@]}"
else
  log "no network namespace available: Portkey is left out (it would listen on every interface)"
  exec python3 bench/bench.py "${ARGS[@]}" --systems direct,envoy,filter
fi
