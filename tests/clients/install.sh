#!/usr/bin/env bash
# Installs the pinned agent clients (package.json + package-lock.json beside this file) with
# `npm ci`, once per machine: a stamp holds the lock file's hash, so a second run is a no-op.
# Called by `./dev setup` and by tests/e2e/test_claude_code.py and test_codex.py when a client is missing.
# Codex CLI's native binary comes from its platform package (`@openai/codex@<version>-linux-x64`,
# an optional dependency in the lock file), fetched from the registry like any other package.
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STAMP="$DIR/node_modules/.package-lock.sha256"
want="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [[ -x "$DIR/node_modules/.bin/claude" && -x "$DIR/node_modules/.bin/codex" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    echo "installing nodejs and npm from Debian's packages" >&2
    apt-get install -y -q nodejs npm >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q nodejs npm >/dev/null)
  else
    echo "error: npm not found (install Node.js 20+ with npm)" >&2
    exit 1
  fi
fi
echo "installing the pinned agent clients (tests/clients: npm ci)" >&2
# The package's postinstall puts the native binary for this platform in place of bin/claude.exe.
(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
"$DIR/node_modules/.bin/claude" --version >/dev/null
"$DIR/node_modules/.bin/codex" --version >/dev/null
echo "$want" >"$STAMP"
