"""Provider credentials in AWS Secrets Manager, end to end (issue 13, finding 4).

ministack (the local AWS emulator of test_cognito_ministack.py, its own venv) plays Secrets
Manager: the test creates a secret there with boto3, exactly as one would in AWS, and gives a
provider the secret's ARN as its credential. The real control plane (`CP_SECRETSMANAGER_ENDPOINT`
pointing at ministack) reads it with the Rust SDK's `GetSecretValue`, caches it for
`CP_SECRETS_TTL_SECS`, and pushes it to a real Envoy. The replay upstream accepts only that secret
as the OpenAI key, so a 200 proves it arrived, and the upstream's record of the request shows the
`authorization` header it got. After the secret's value changes in Secrets Manager, the control
plane's periodic refresh (`CP_SECRETS_REFRESH_SECS`) reads it again and publishes it under a new
snapshot version with no configuration write; while the value stays the same the version does not
move. The secret appears in no log line of the control plane (at debug level), Envoy or the replay
server, and in no API response.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

import stack as stack_mod
from test_cognito_ministack import REGION, start_ministack
from test_control_plane import ADMIN_TOKEN, WATCH_TOKEN, Env

SECRET = "sk-openai-from-secrets-manager-7d1e9c"
ROTATED = "sk-openai-rotated-in-secrets-manager-42ab"
TTL_SECS = 30
# Short, so the test waits seconds; the TTL is longer to show the refresh does not wait for it.
REFRESH_SECS = 1


class SmEnv(Env):
    """The control plane of test_control_plane.py, reading Secrets Manager from ministack."""

    ministack_url = ""

    def start_cp(self) -> None:
        self.cp = stack_mod.start_control_plane(
            self.workdir / "cp-data", self.workdir / "control-plane.log", admin_token=ADMIN_TOKEN,
            watch_token=WATCH_TOKEN,
            env={"CP_SECRETSMANAGER_ENDPOINT": self.ministack_url, "CP_SECRETS_TTL_SECS": str(TTL_SECS),
                 "CP_SECRETS_REFRESH_SECS": str(REFRESH_SECS),
                 "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": REGION,
                 "CP_LOG": "debug"},
            rest_port=self.rest_port, grpc_port=self.grpc_port)

    def received_authorization(self, model: str, key: str) -> tuple[int, str | None]:
        """One chat request tagged with a test id; the status and what the upstream got."""
        test_id = uuid.uuid4().hex
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
        try:
            conn.request("POST", "/v1/chat/completions",
                         body=json.dumps({"model": model, "messages": [{"role": "user", "content": "Say hello"}]}),
                         headers={"content-type": "application/json", "authorization": f"Bearer {key}",
                                  "x-test-id": test_id})
            resp = conn.getresponse()
            status = resp.status
            resp.read()
        finally:
            conn.close()
        code, body = stack_mod.http_get(f"{self.stack.replay_url}/__replay/requests?test_id={test_id}", timeout=5)
        assert code == 200
        received = json.loads(body)
        return status, (received[-1]["headers"].get("authorization") if received else None)


@pytest.fixture(scope="module")
def sm_env(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SmEnv, Any, str]]:
    import boto3

    workdir = tmp_path_factory.mktemp("secrets-manager")
    ministack = start_ministack(workdir / "ministack")
    try:
        sm = boto3.client("secretsmanager", endpoint_url=ministack.url, region_name=REGION,
                          aws_access_key_id="test", aws_secret_access_key="test")
        arn = sm.create_secret(Name="ai-gateway/openai", SecretString=SECRET)["ARN"]
        grpc_port, rest_port = stack_mod.free_port(), stack_mod.free_port()
        running = stack_mod.start_stack(
            workdir, {"version": 1, "providers": [], "routes": []}, replay_clusters=["replay_openai"],
            envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN},
            wasm=Path(os.environ.get("GATEWAY_WASM", stack_mod.DEFAULT_WASM)), fixtures=fixtures_dir,
            chunk_delay=0.002, concurrency=2, log_level="info", control_plane=f"http://127.0.0.1:{grpc_port}",
            replay_keys={"openai": SECRET})
    except BaseException:
        ministack.proc.stop()
        raise
    e = SmEnv(workdir, running, grpc_port, rest_port)
    e.ministack_url = ministack.url
    e.secrets = [SECRET, ROTATED, ADMIN_TOKEN, WATCH_TOKEN]
    print(f"\nsecrets-manager e2e: ministack {ministack.url}, envoy {running.base_url}, logs in {workdir}")
    try:
        e.start_cp()
        yield e, sm, arn
    finally:
        if e.cp is not None:
            e.cp.proc.stop()
        running.stop()
        ministack.proc.stop()


def test_a_secrets_manager_credential_reaches_the_upstream_and_no_log(sm_env: tuple[SmEnv, Any, str]) -> None:
    env, sm, arn = sm_env
    assert arn.startswith(f"arn:aws:secretsmanager:{REGION}:"), arn
    env.api("POST", "/v1/providers", {"name": "openai-sm", "kind": "openai", "cluster": "replay_openai",
                                      "credential": arn}, expect=201)
    env.api("POST", "/v1/routes", {"model": "sm-model", "targets": [{"provider": "openai-sm", "model": "gpt-5-nano"}]},
            expect=201)
    key = env.create_key("sm-team", ["*"])
    env.wait_for("sm-model", key, 200, limit=10.0, since=time.monotonic())
    status, auth = env.received_authorization("sm-model", key)
    assert (status, auth) == (200, f"Bearer {SECRET}")
    _, snap = env.api("GET", "/v1/snapshot", expect=200)
    assert snap["credentials_resolved"] == ["openai-sm"], snap
    env.responses.append(json.dumps(snap).encode())
    _, provider = env.api("GET", "/v1/providers/openai-sm", expect=200)
    assert provider["credential"] == arn
    env.responses.append(json.dumps(provider).encode())

    # Unchanged value: refreshes run, but the version does not move.
    version = snap["version"]
    time.sleep(3 * REFRESH_SECS + 0.5)
    _, snap = env.api("GET", "/v1/snapshot", expect=200)
    assert snap["version"] == version, f"version churn without a change: {version} -> {snap['version']}"

    # The value changes in Secrets Manager, and nothing is written to the control plane: within
    # the refresh interval (well before the TTL) a new snapshot version carries the new value, and
    # the upstream, which accepts only the old value, now sees the new one.
    _, provider_before = env.api("GET", "/v1/providers/openai-sm", expect=200)
    sm.put_secret_value(SecretId=arn, SecretString=ROTATED)
    changed_at = time.monotonic()
    while True:
        status, auth = env.received_authorization("sm-model", key)
        if auth == f"Bearer {ROTATED}":
            break
        assert time.monotonic() < changed_at + REFRESH_SECS + 5, \
            f"the rotated secret never reached the upstream (last {status} {auth!r})"
        time.sleep(0.1)
    took = time.monotonic() - changed_at
    print(f"\nrotated secret reached the upstream {took:.2f} s after put-secret-value (refresh {REFRESH_SECS} s)")
    assert took < TTL_SECS, "picked up by the refresh, not by the TTL"
    assert status >= 400, "the upstream refuses the value it does not know"
    _, snap = env.api("GET", "/v1/snapshot", expect=200)
    assert snap["version"] == version + 1, f"one new version per change: {version} -> {snap['version']}"
    assert snap["credentials_resolved"] == ["openai-sm"], snap
    env.responses.append(json.dumps(snap).encode())
    _, provider_after = env.api("GET", "/v1/providers/openai-sm", expect=200)
    assert provider_after == provider_before, "the provider object was not written"
    cp_log = (env.workdir / "control-plane.log").read_text(errors="replace")
    assert "provider credentials changed" in cp_log and "openai-sm" in cp_log, cp_log[-2000:]

    # No secret in any log line or API response.
    logs = [p for p in env.workdir.rglob("*.log") if "ministack" not in p.parts]
    assert any(p.name == "control-plane.log" for p in logs) and any(p.name == "envoy.log" for p in logs), logs
    cp_log = (env.workdir / "control-plane.log").read_text(errors="replace")
    assert "snapshot built" in cp_log and "DEBUG" in cp_log, cp_log[-2000:]
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in (SECRET, ROTATED, ADMIN_TOKEN, WATCH_TOKEN):
            assert secret not in text, f"a secret is in {path}"
    for body in env.responses:
        assert SECRET.encode() not in body and ROTATED.encode() not in body


def test_references_to_the_control_planes_own_tokens_are_refused(sm_env: tuple[SmEnv, Any, str]) -> None:
    env, _, _ = sm_env
    for var in ("CP_WATCH_TOKEN", "CP_ADMIN_TOKEN", "OPENAI_API_KEY"):
        status, body = env.api("POST", "/v1/providers", {"name": "leak", "kind": "openai", "cluster": "replay_openai",
                                                         "credential": f"env:{var}"})
        assert status == 400 and body["error"]["param"] == "credential", body
