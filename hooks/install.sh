#!/usr/bin/env bash
# Points git at hooks/ (pre-push: fmt, clippy, hadolint, checkov, commit messages; commit-msg).
set -euo pipefail
ROOT="$(git rev-parse --show-toplevel)"
chmod +x "$ROOT/hooks/pre-push" "$ROOT/hooks/commit-msg"
git -C "$ROOT" config core.hooksPath hooks
echo "git hooks installed from hooks/ (undo: git config --unset core.hooksPath)"
