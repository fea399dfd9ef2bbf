"""`./dev run` as a user runs it (scripts/stack.py run, its own work directory): no secret in any
file it writes, private files, and fail-static when the control plane dies (issue 13 items 6 and
10).

The stack runs with debug logging everywhere, so "no token in any log" holds at any level. The
test creates a provider, a route and two virtual keys, calls the gateway with them, reads with
the read-only token, revokes a key, then kills the control plane: Envoy and the replay upstream
keep serving the last snapshot (the revoked key stays refused, the live key keeps working) and
the output says so. Finally every file under the work directory is searched for the admin,
read-only and watch tokens and the keys' secrets.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import WASM

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "scripts" / "stack.py"


class DevRun:
    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir = workdir
        self.out_path = workdir.parent / "dev-run.out"
        out = self.out_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(STACK), "run", "--workdir", str(workdir), "--wasm", str(os.environ.get("GATEWAY_WASM", WASM)),
             "--log-level", "debug"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO, start_new_session=True)
        out.close()
        deadline = time.monotonic() + 90
        while "Ctrl-C stops" not in self.output():
            assert self.proc.poll() is None, self.output()[-3000:]
            assert time.monotonic() < deadline, self.output()[-3000:]
            time.sleep(0.2)
        text = self.output()
        self.gateway = re.search(r"AI gateway is up: Envoy (http://127\.0\.0\.1:\d+)", text).group(1)
        self.cp = re.search(r"Control plane: REST (http://127\.0\.0\.1:\d+)", text).group(1)
        self.console = re.search(r"Console: (http://127\.0\.0\.1:\d+/ui/)", text).group(1)
        self.admin_token = (workdir / "control-plane" / "admin-token").read_text().strip()

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(self.cp + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"authorization": f"Bearer {token or self.admin_token}",
                                              "content-type": "application/json"})
        return call(req)

    def chat(self, key: str, model: str) -> int:
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}]}).encode()
        req = urllib.request.Request(self.gateway + "/v1/chat/completions", data=body, method="POST",
                                     headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
        return call(req)[0]

    def children(self) -> dict[str, int]:
        """The stack's processes by name (they are stack.py's children)."""
        out = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(fields[1]) != self.proc.pid or not cmdline or not cmdline[0]:
                continue
            argv = " ".join(a.decode(errors="replace") for a in cmdline)
            name = "control-plane" if "control-plane" in argv.split()[0] else "envoy" if "envoy" in argv.split()[0] \
                else "replay" if "replay" in argv else argv
            out[name] = int(entry.name)
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def call(req: urllib.request.Request) -> tuple[int, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=15) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


def until(check, what: str, limit_s: float = 15.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("dev-run")
    tokens = {"read-only": "cp-ro-" + secrets.token_hex(16), "watch": "cp-watch-" + secrets.token_hex(16)}
    env = dict(os.environ, CP_READONLY_TOKEN=tokens["read-only"], CP_WATCH_TOKEN=tokens["watch"], CP_LOG="debug",
               REPLAY_VERBOSE="1")
    for name in ("CP_ADMIN_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        env.pop(name, None)
    dev = DevRun(base / "run", env)
    dev.tokens = tokens
    yield dev
    dev.stop()


def test_dev_run_writes_no_secret_and_serves_without_its_control_plane(run: DevRun) -> None:
    tokens = {**run.tokens, "admin": run.admin_token}
    assert run.admin_token and run.admin_token not in run.output(), "the admin token must be printed nowhere"
    # The printed console URL serves the console, without a token, from the control plane's port.
    assert run.console == run.cp + "/ui/"
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(run.console, timeout=10) as resp:
        assert resp.status == 200 and b'<div id="app">' in resp.read()
        assert "default-src 'self'" in resp.headers["content-security-policy"]
    # A provider, a route, two keys; the read-only token reads.
    assert run.api("POST", "/v1/providers", {"name": "replay-openai", "kind": "openai", "cluster": "replay_openai"})[0] == 201
    assert run.api("POST", "/v1/routes", {"model": "my-gpt", "targets": [{"provider": "replay-openai",
                                                                           "model": "gpt-4o-mini"}]})[0] == 201
    keys = {}
    for name in ("team-a", "team-b"):
        status, doc = run.api("POST", "/v1/keys", {"name": name, "owner": f"{name}@example.com", "allowed_models": ["my-gpt"]})
        assert status == 201, doc
        keys[name] = doc["secret"]
    assert run.api("GET", "/v1/keys", token=tokens["read-only"])[0] == 200
    until(lambda: all(run.chat(k, "my-gpt") == 200 for k in keys.values()), "keys never reached Envoy")
    assert run.api("POST", "/v1/keys/team-a/revoke")[0] in (200, 204)
    until(lambda: run.chat(keys["team-a"], "my-gpt") == 401, "revocation never reached Envoy")

    # The control plane dies: Envoy keeps its last snapshot, the replay keeps answering.
    procs = run.children()
    assert {"control-plane", "envoy", "replay"} <= set(procs), procs
    os.kill(procs["control-plane"], signal.SIGKILL)
    until(lambda: "fail-static" in run.output().split("Ctrl-C stops", 1)[1], "no word about the control plane's exit")
    for _ in range(10):
        assert run.chat(keys["team-b"], "my-gpt") == 200
        assert run.chat(keys["team-a"], "my-gpt") == 401
    assert run.proc.poll() is None, "./dev run stopped with its control plane"
    alive = run.children()
    assert "envoy" in alive and "replay" in alive and "control-plane" not in alive, alive
    run.stop()

    # No token or key secret in any file the stack wrote, at any log level, nor in its output.
    secrets_ = {**{f"{k} token": v for k, v in tokens.items()}, **{f"key {k}": v for k, v in keys.items()}}
    files = [p for p in run.workdir.rglob("*") if p.is_file()]
    assert any(p.name == "envoy.log" for p in files) and any(p.name == "control-plane.log" for p in files), files
    for path in files + [run.out_path]:
        data = path.read_bytes()
        if path.name == "admin-token":
            continue
        for what, value in secrets_.items():
            assert value.encode() not in data, f"{what} found in {path}"
    # The logs are not empty (debug level really was on) and private.
    assert b"debug" in (run.workdir / "envoy.log").read_bytes()
    assert stat.S_IMODE(run.workdir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run.workdir / "control-plane").stat().st_mode) == 0o700
    assert stat.S_IMODE((run.workdir / "control-plane" / "admin-token").stat().st_mode) == 0o600
    for log in run.workdir.glob("*.log"):
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, log
