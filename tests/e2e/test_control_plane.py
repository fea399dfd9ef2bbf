"""Config push end to end: the real control-plane binary (embedded store) streams snapshots over
gRPC to the singleton Wasm service of a real Envoy with two workers; the openai SDK and fresh
HTTP connections (so both workers serve traffic) check what the filters do with them.

The tests run in file order and share one Envoy and one control plane data directory: cold start
without a control plane, then live changes, then the control plane killed and restarted.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

import stack as stack_mod
from conftest import assert_openai_error

ADMIN_TOKEN = "cp-admin-e2e-0f3c2b1a9d8e7f6a5b4c"
WATCH_TOKEN = "cp-watch-e2e-9a8b7c6d5e4f3a2b1c0d"
# The provider secret lives only in the control plane's environment; Envoy gets it pushed.
PROVIDER_SECRET = "sk-openai-pushed-secret-5f4e3d2c1b0a"
BOOT_SECRET = "sk-openai-bootstrap-secret-a1b2c3d4"
PROPAGATION_LIMIT_S = 1.0
CHAT_BODY = {"messages": [{"role": "user", "content": "Say hello"}]}


class Env:
    """The shared Envoy, and a control plane that tests stop and restart."""

    def __init__(self, workdir: Path, stack: stack_mod.Stack, grpc_port: int, rest_port: int):
        self.workdir = workdir
        self.stack = stack
        self.grpc_port = grpc_port
        self.rest_port = rest_port
        self.cp: stack_mod.ControlPlane | None = None
        self.secrets: list[str] = [PROVIDER_SECRET, BOOT_SECRET]
        self.responses: list[bytes] = []

    # --- control plane -----------------------------------------------------------------------

    def start_cp(self) -> None:
        self.cp = stack_mod.start_control_plane(
            self.workdir / "cp-data", self.workdir / "control-plane.log", admin_token=ADMIN_TOKEN,
            watch_token=WATCH_TOKEN, env={"AI_GATEWAY_PROVIDER_E2E_OPENAI": PROVIDER_SECRET, "CP_LOG": "info"},
            rest_port=self.rest_port, grpc_port=self.grpc_port)

    def kill_cp(self) -> None:
        assert self.cp is not None
        # SIGKILL: a crash, not a polite shutdown that could close streams cleanly.
        os.killpg(self.cp.proc.popen.pid, 9)
        self.cp.proc.popen.wait(timeout=10)
        self.cp = None

    def api(self, method: str, path: str, body: Any = None, expect: int | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.rest_port}{path}", data=data, method=method,
                                     headers={"authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        started = time.monotonic()
        try:
            with opener.open(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        # A propagation limit counts from before the write; when it is missed, the failure says
        # how much of it the write itself took (a redb commit fsyncs, slow on a loaded disk).
        self.last_write = f"{method} {path} took {(time.monotonic() - started) * 1000:.0f} ms"
        if expect is not None:
            assert status == expect, f"{method} {path}: {status} {raw[:500]!r}"
        return status, (json.loads(raw) if raw else None)

    def create_key(self, name: str, models: list[str]) -> str:
        _, doc = self.api("POST", "/v1/keys", {"name": name, "owner": "e2e@example.com", "allowed_models": models}, expect=201)
        secret = doc["secret"]
        self.secrets.append(secret)
        return secret

    def snapshot_version(self) -> int:
        _, doc = self.api("GET", "/v1/snapshot", expect=200)
        self.responses.append(json.dumps(doc).encode())
        return int(doc["version"])

    # --- data plane --------------------------------------------------------------------------

    def chat(self, model: str, key: str | None, header: str = "authorization") -> tuple[int, bytes]:
        """One request on a fresh connection, so Envoy spreads them over both workers."""
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
        try:
            headers = {"content-type": "application/json"}
            if key is not None:
                headers[header] = f"Bearer {key}" if header == "authorization" else key
            conn.request("POST", "/v1/chat/completions", body=json.dumps({"model": model, **CHAT_BODY}), headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def wait_for(self, model: str, key: str | None, status: int, limit: float, since: float) -> float:
        """Polls until a request gets `status`; returns seconds since `since`. Then checks that
        the next 10 requests (both workers) agree, so one lucky worker does not pass the test."""
        deadline = since + limit
        last: tuple[int, bytes] = (0, b"")
        while True:
            last = self.chat(model, key)
            if last[0] == status:
                elapsed = time.monotonic() - since
                break
            if time.monotonic() > deadline:
                pytest.fail(f"no {status} for {model} within {limit}s ({getattr(self, 'last_write', 'no write')}); "
                            f"last answer {last[0]} {last[1][:300]!r}")
            time.sleep(0.01)
        for _ in range(10):
            again = self.chat(model, key)
            assert again[0] == status, f"{model}: {again[0]} {again[1][:300]!r} after a {status}"
        return elapsed


@pytest.fixture(scope="module")
def env(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("control-plane")
    grpc_port, rest_port = stack_mod.free_port(), stack_mod.free_port()
    # The bootstrap provider reaches a second replay server that asks for no key; the pushed
    # provider reaches one that accepts only PROVIDER_SECRET, which Envoy's environment does not
    # hold: a 200 there proves the credential came from the snapshot.
    boot_replay, boot_port = stack_mod.start_replay(workdir / "replay-boot.log", fixtures_dir, 0.002)
    boot = {"version": 1,
            "providers": [{"name": "boot", "kind": "openai", "cluster": "boot_openai"}],
            "routes": [{"model": "boot-model", "targets": [{"provider": "boot", "model": "gpt-5-nano"}]}]}
    try:
        running = stack_mod.start_stack(
            workdir, boot, replay_clusters=["replay_openai"],
            extra_clusters={"boot_openai": f"http://127.0.0.1:{boot_port}"},
            envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN},
            wasm=Path(os.environ.get("GATEWAY_WASM", stack_mod.DEFAULT_WASM)), fixtures=fixtures_dir,
            chunk_delay=0.002, concurrency=2, log_level="info", control_plane=f"http://127.0.0.1:{grpc_port}",
            replay_keys={"openai": PROVIDER_SECRET})
    except BaseException:
        boot_replay.stop()
        raise
    running.procs.insert(0, boot_replay)
    e = Env(workdir, running, grpc_port, rest_port)
    print(f"\ncontrol-plane e2e: envoy {running.base_url}, admin {running.admin_url}, logs in {workdir}")
    yield e
    if e.cp is not None:
        e.cp.proc.stop()
    running.stop()


def openai_client(env: Env, key: str):
    from openai import OpenAI

    return OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=key, max_retries=0, timeout=30)


def test_cold_start_serves_the_bootstrap_config(env: Env) -> None:
    # No control plane yet: the bootstrap config serves, and it asks for no virtual key.
    r = openai_client(env, "anything").chat.completions.create(model="boot-model", **CHAT_BODY)
    assert r.choices[0].message.content
    status, body = env.chat("cp-model", None)
    assert_openai_error(status, body, 404)


def test_route_created_over_rest_serves_within_1s(env: Env) -> None:
    env.start_cp()
    env.api("POST", "/v1/providers", {"name": "openai-cp", "kind": "openai", "cluster": "replay_openai",
                                      "credential": "env:AI_GATEWAY_PROVIDER_E2E_OPENAI"}, expect=201)
    key = env.create_key("team-a", ["cp-model", "cp-model-2", "cp-model-3"])
    env.key_a = key  # type: ignore[attr-defined]
    # Once a snapshot is active every request needs a key, and the bootstrap route is gone.
    env.wait_for("boot-model", None, 401, limit=10.0, since=time.monotonic())
    status, body = env.chat("boot-model", key)
    assert_openai_error(status, body, 403, "model_not_allowed")

    t0 = time.monotonic()
    env.api("POST", "/v1/routes", {"model": "cp-model", "targets": [{"provider": "openai-cp", "model": "gpt-5-nano"}]}, expect=201)
    elapsed = env.wait_for("cp-model", key, 200, PROPAGATION_LIMIT_S, t0)
    print(f"route propagation: {elapsed * 1000:.0f} ms")
    r = openai_client(env, key).chat.completions.create(model="cp-model", **CHAT_BODY)
    assert r.choices[0].message.content


def test_key_checks_and_revocation_within_1s(env: Env) -> None:
    from openai import AuthenticationError, PermissionDeniedError

    key = env.key_a  # type: ignore[attr-defined]
    status, body = env.chat("cp-model", "sk-gw-" + "0" * 64)
    assert_openai_error(status, body, 401, "invalid_api_key")
    status, body = env.chat("cp-model", None)
    assert_openai_error(status, body, 401, "missing_api_key")
    status, body = env.chat("cp-model", key, header="x-api-key")
    assert status == 200, body[:300]

    # A model the key may not use: 403 in OpenAI's shape, even though the route exists.
    other = env.create_key("team-b", ["*"])
    env.api("POST", "/v1/routes", {"model": "other-model", "targets": [{"provider": "openai-cp", "model": "gpt-5-nano"}]}, expect=201)
    env.wait_for("other-model", other, 200, PROPAGATION_LIMIT_S, time.monotonic())
    with pytest.raises(PermissionDeniedError) as denied:
        openai_client(env, key).chat.completions.create(model="other-model", **CHAT_BODY)
    assert denied.value.status_code == 403
    assert denied.value.code == "model_not_allowed"

    t0 = time.monotonic()
    env.api("POST", "/v1/keys/team-b/revoke", {}, expect=200)
    elapsed = env.wait_for("other-model", other, 401, PROPAGATION_LIMIT_S, t0)
    status, body = env.chat("other-model", other)
    assert_openai_error(status, body, 401, "key_revoked")
    with pytest.raises(AuthenticationError):
        openai_client(env, other).chat.completions.create(model="other-model", **CHAT_BODY)
    print(f"revocation propagation: {elapsed * 1000:.0f} ms")
    # The other key is untouched.
    assert env.chat("cp-model", key)[0] == 200


def test_control_plane_down_keeps_the_last_snapshot(env: Env) -> None:
    key = env.key_a  # type: ignore[attr-defined]
    env.kill_cp()
    time.sleep(0.5)  # let Envoy notice the stream is gone and start reconnecting
    client = openai_client(env, key)
    for i in range(20):
        status, body = env.chat("cp-model", key)
        assert status == 200, f"request {i}: {status} {body[:300]!r}"
        if i % 5 == 0:
            assert client.chat.completions.create(model="cp-model", **CHAT_BODY).choices[0].message.content
        time.sleep(0.1)
    # Keys stay enforced too.
    status, body = env.chat("other-model", env.secrets[-1])
    assert_openai_error(status, body, 401, "key_revoked")
    log = (env.workdir / "envoy.log").read_text(errors="replace")
    assert "watch stream closed" in log


def test_restarted_control_plane_pushes_again(env: Env) -> None:
    key = env.key_a  # type: ignore[attr-defined]
    env.start_cp()  # same data directory and ports
    t0 = time.monotonic()
    env.api("POST", "/v1/routes", {"model": "cp-model-3", "targets": [{"provider": "openai-cp", "model": "gpt-5-nano"}]}, expect=201)
    # Reconnect backoff is at most 5 s (with jitter); the change must arrive after it.
    elapsed = env.wait_for("cp-model-3", key, 200, 12.0, t0)
    print(f"change after restart arrived in {elapsed * 1000:.0f} ms")
    assert env.chat("cp-model", key)[0] == 200
    # Once reconnected, propagation is fast again.
    t0 = time.monotonic()
    env.api("DELETE", "/v1/routes/cp-model-3", expect=None)
    env.wait_for("cp-model-3", key, 404, PROPAGATION_LIMIT_S, t0)


def test_both_workers_applied_snapshots(env: Env) -> None:
    log = (env.workdir / "envoy.log").read_text(errors="replace")
    # Default Envoy log format: [time][thread id][level][logger] ... message.
    threads = set(re.findall(r"\]\[(\d+)\]\[info\]\[wasm\][^\n]*applied snapshot version", log))
    assert len(threads) == 2, f"workers that applied a snapshot: {threads}"
    assert "published snapshot version" in log


def test_secrets_never_leak(env: Env) -> None:
    assert env.cp is not None
    key = env.key_a  # type: ignore[attr-defined]
    assert env.chat("cp-model", key)[0] == 200
    for path in ("/v1/providers", "/v1/routes", "/v1/keys", "/v1/snapshot", "/v1/keys/team-a", "/v1/providers/openai-cp"):
        _, doc = env.api("GET", path, expect=200)
        env.responses.append(json.dumps(doc).encode())
    status, metrics = stack_mod.http_get(f"{env.stack.admin_url}/stats/prometheus", timeout=5)
    assert status == 200 and b"ai_gateway" in metrics
    status, config_dump = stack_mod.http_get(f"{env.stack.admin_url}/stats", timeout=5)
    haystacks = {
        "envoy.log": (env.workdir / "envoy.log").read_bytes(),
        "control-plane.log": (env.workdir / "control-plane.log").read_bytes(),
        "/stats/prometheus": metrics,
        "/stats": config_dump,
        "API responses": b"\n".join(env.responses),
    }
    assert len(env.secrets) >= 4
    for secret in env.secrets:
        for name, data in haystacks.items():
            assert secret.encode() not in data, f"a secret ({secret[:8]}...) appears in {name}"


AUDIT_PLANTED_REF = "env:AI_GATEWAY_PROVIDER_E2E_AUDIT_PLANTED_51C7"
AUDIT_APPLIED_REF = "env:AI_GATEWAY_PROVIDER_E2E_AUDIT_APPLIED_0D3E"


def cp_cli(env: Env, *args: str) -> str:
    """Runs the control-plane CLI against the running control plane; returns its stdout."""
    import subprocess

    out = subprocess.run([str(stack_mod.control_plane_binary()), *args], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "CP_URL": f"http://127.0.0.1:{env.rest_port}", "CP_TOKEN": ADMIN_TOKEN},
                         check=False)
    assert out.returncode == 0, f"{args}: {out.returncode} {out.stderr}"
    return out.stdout


def test_audit_trail_records_every_change_and_no_secret(env: Env) -> None:
    """Runs last: rotates a key, plants credential references over REST and through the CLI's
    apply, then searches GET /v1/audit, the audit CLI's output and the control plane's log for
    every reference, key secret and key hash."""
    import hashlib

    _, rotated = env.api("POST", "/v1/keys/team-a/rotate", {"grace_seconds": 600}, expect=200)
    env.secrets.append(rotated["secret"])
    env.api("PUT", "/v1/providers/openai-cp", {"name": "openai-cp", "kind": "openai", "cluster": "replay_openai",
                                               "credential": AUDIT_PLANTED_REF}, expect=200)
    doc = env.workdir / "apply.json"
    doc.write_text(json.dumps({"providers": [{"name": "openai-cp", "kind": "openai", "cluster": "replay_openai",
                                              "credential": AUDIT_APPLIED_REF}], "routes": []}))
    assert "applied 1 change(s)" in cp_cli(env, "apply", "-f", str(doc))

    records: list[dict[str, Any]] = []
    raw_pages: list[bytes] = []
    cursor = None
    while True:
        _, page = env.api("GET", "/v1/audit?limit=2" + (f"&cursor={cursor}" if cursor else ""), expect=200)
        raw_pages.append(json.dumps(page).encode())
        records.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    seen = [(r["action"], r["via"], r["kind"], r["name"]) for r in records]
    for want in [("update", "apply", "provider", "openai-cp"), ("update", "api", "provider", "openai-cp"),
                 ("rotate", "api", "key", "team-a"), ("revoke", "api", "key", "team-b"),
                 ("create", "api", "route", "cp-model"), ("create", "api", "key", "team-a"),
                 ("create", "api", "provider", "openai-cp")]:
        assert want in seen, f"{want} not in {seen}"
    # Newest first, and the records written before the control plane's restart are still there.
    assert seen[0] == ("update", "apply", "provider", "openai-cp") and seen[-1] == ("create", "api", "provider", "openai-cp")
    actor = "admin:" + hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()[:8]
    assert {r["actor"] for r in records} == {actor}
    assert records[0]["diff"]["credential"] == {"before": "<redacted>", "after": "<redacted>"}

    lines = cp_cli(env, "audit", "--kind", "key", "--name", "team-a")
    assert lines.count(actor) == 2 and " rotate " in lines and " create " in lines, lines
    as_json = json.loads(cp_cli(env, "audit", "--actor", actor, "--limit", "3", "--json"))
    assert [r["id"] for r in as_json] == [r["id"] for r in records[:3]]

    haystacks = {
        "GET /v1/audit": b"\n".join(raw_pages),
        "control-plane audit": (lines + json.dumps(as_json)).encode(),
        "control-plane.log": (env.workdir / "control-plane.log").read_bytes(),
    }
    assert b"audit" in haystacks["control-plane.log"], "the log holds one line per audit record"
    planted = [AUDIT_PLANTED_REF, AUDIT_APPLIED_REF, "AI_GATEWAY_PROVIDER_E2E_OPENAI", "E2E_AUDIT_PLANTED_51C7",
               "E2E_AUDIT_APPLIED_0D3E"]
    hashes = [hashlib.sha256(s.encode()).hexdigest() for s in env.secrets if s.startswith("sk-gw-")]
    assert len(hashes) >= 3
    for value in planted + env.secrets + hashes:
        for name, data in haystacks.items():
            assert value.encode() not in data, f"{value[:24]}... appears in {name}"
