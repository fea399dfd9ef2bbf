"""The git hooks: commit-msg enforces Conventional Commits; pre-push runs every check in order
and fails on a bad commit message among the pushed commits. cargo is replaced by a recorder so
the test does not rebuild the workspace (the real fmt/clippy run in ./dev lint)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.mark.parametrize("msg,ok", [
    ("feat(ops): container images", True),
    ("fix: off by one", True),
    ("feat(control-plane)!: new table layout", True),
    ("feat(filter,control-plane): two scopes, as commitlint allows", True),
    ("Merge branch 'x'", True),
    ("added stuff", False),
    ("feat:no space", False),
    ("feature(ops): wrong type", False),
])
def test_commit_msg_hook(tmp_path, msg, ok):
    f = tmp_path / "MSG"
    f.write_text(msg + "\n\nbody\n")
    r = subprocess.run([str(ROOT / "hooks/commit-msg"), str(f)], capture_output=True, text=True, timeout=10)
    assert (r.returncode == 0) == ok, r.stderr


def run_pre_push(tmp_path: Path, stdin: str) -> subprocess.CompletedProcess:
    shim = tmp_path / "bin"
    shim.mkdir(exist_ok=True)
    record = tmp_path / "cargo-calls"
    (shim / "cargo").write_text(f'#!/bin/sh\necho "$*" >> {record}\n')
    (shim / "cargo").chmod(0o755)
    env = dict(os.environ, PATH=f"{shim}:{os.environ['PATH']}")
    return subprocess.run([str(ROOT / "hooks/pre-push"), "origin", "unused"], input=stdin, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=110)


def test_pre_push_runs_every_check(tmp_path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    base = subprocess.run(["git", "rev-parse", "HEAD~3"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    r = run_pre_push(tmp_path, f"refs/heads/main {head} refs/heads/main {base}\n")
    assert r.returncode == 0, r.stderr[-3000:]
    calls = (tmp_path / "cargo-calls").read_text().splitlines()
    assert calls[0].startswith("fmt --all -- --check")
    assert any("clippy --workspace" in c for c in calls) and any("wasm32-wasip1" in c for c in calls)
    for step in ("hadolint", "checkov", "conventional commit"):
        assert step in r.stderr


def test_pre_push_rejects_a_bad_commit_message(tmp_path):
    # A commit object that exists only in the object store (no ref moves, the tree is HEAD's).
    tree = subprocess.run(["git", "rev-parse", "HEAD^{tree}"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com")
    bad = subprocess.run(["git", "commit-tree", tree, "-p", head, "-m", "wip stuff"], cwd=ROOT, env=env,
                         capture_output=True, text=True).stdout.strip()
    assert len(bad) == 40
    r = run_pre_push(tmp_path, f"refs/heads/main {bad} refs/heads/main {head}\n")
    assert r.returncode != 0
    assert "wip stuff" in r.stderr and bad in r.stderr
    assert not (tmp_path / "cargo-calls").exists(), "the message check should fail before the slow steps"


def test_mise_tasks_are_dev_commands():
    """Every mise task is a ./dev command that exists, so the docs' commands work without mise."""
    import re
    import tomllib
    tasks = tomllib.loads((ROOT / "mise.toml").read_text())["tasks"]
    assert {"install", "build", "run", "test", "lint", "scan", "bench"} <= set(tasks)
    dev = (ROOT / "dev").read_text()
    top = set(re.findall(r"^  ([a-z|-]+)\)", dev, re.M))
    top = {w for t in top for w in t.split("|")}
    ops = set(re.findall(r"^    ([a-z]+)\)", dev, re.M))
    for name, task in tasks.items():
        runs = task["run"] if isinstance(task["run"], list) else [task["run"]]
        for cmd in runs:
            words = cmd.split()
            assert words[0] == "./dev" and words[1] in top, f"{name}: {cmd}"
            if words[1] == "ops":
                assert words[2] in ops, f"{name}: {cmd}"
