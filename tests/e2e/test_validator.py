"""One validator for the control plane and the filter (issue 13, findings 2, 3 and 8), against the
real control-plane binary and a real Envoy with two workers:

* the REST API refuses, naming the field, the objects the filter would leave out (the issue's
  azure/bedrock/gemini reproductions, path prefixes with CR/LF/NUL/.., control characters,
  oversized keys);
* several providers may share one Envoy cluster: each route is still served by its own provider;
* a store poisoned around the API (written directly while the control plane is down) cannot stop a
  key revocation or a new key from reaching Envoy within the usual push time; the Envoy leaves the
  invalid objects out and reports them, and `GET /v1/snapshot` shows them per node.

The tests run in file order on one Envoy and one control-plane data directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

import stack as stack_mod
from conftest import assert_openai_error
from test_control_plane import ADMIN_TOKEN, PROVIDER_SECRET, WATCH_TOKEN, Env, PROPAGATION_LIMIT_S


@pytest.fixture(scope="module")
def env(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("validator")
    grpc_port, rest_port = stack_mod.free_port(), stack_mod.free_port()
    boot = {"version": 1, "providers": [{"name": "boot", "kind": "openai", "cluster": "replay_openai"}],
            "routes": [{"model": "boot-model", "targets": [{"provider": "boot", "model": "gpt-5-nano"}]}]}
    running = stack_mod.start_stack(
        workdir, boot, replay_clusters=["replay_openai"],
        envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN},
        wasm=Path(os.environ.get("GATEWAY_WASM", stack_mod.DEFAULT_WASM)), fixtures=fixtures_dir,
        chunk_delay=0.002, concurrency=2, log_level="info", control_plane=f"http://127.0.0.1:{grpc_port}",
        replay_keys={"openai": PROVIDER_SECRET})
    e = Env(workdir, running, grpc_port, rest_port)
    e.start_cp()
    print(f"\nvalidator e2e: envoy {running.base_url}, control plane {rest_port}, logs in {workdir}")
    yield e
    if e.cp is not None:
        e.cp.proc.stop()
    running.stop()


def provider_header(env: Env, model: str, key: str) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", env.stack.port, timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions",
                     body=json.dumps({"model": model, "messages": [{"role": "user", "content": "Say hello"}]}),
                     headers={"content-type": "application/json", "authorization": f"Bearer {key}"})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, f"{model}: {resp.status} {body[:300]!r}"
        return resp.getheader("x-ai-gateway-provider") or ""
    finally:
        conn.close()


def test_the_api_refuses_what_a_filter_would_leave_out(env: Env) -> None:
    models = [f"m{i}" for i in range(1001)]
    env.api("POST", "/v1/providers", {"name": "gem", "kind": "gemini", "cluster": "replay_openai"}, expect=201)
    cases = [
        ("/v1/providers", {"name": "az", "kind": "azure_openai", "cluster": "replay_openai"}, "settings.azure.api_version"),
        ("/v1/providers", {"name": "br", "kind": "bedrock", "cluster": "replay_openai"}, "settings.bedrock.region"),
        ("/v1/routes", {"model": "files", "targets": [{"provider": "gem", "model": "models/../../v1/files"}]}, "targets[0].model"),
        ("/v1/providers", {"name": "px", "kind": "openai", "cluster": "replay_openai", "path_prefix": "/v1\r\nx-evil: 1"}, "path_prefix"),
        ("/v1/providers", {"name": "px", "kind": "openai", "cluster": "replay_openai", "path_prefix": "/v1\u0000"}, "path_prefix"),
        ("/v1/providers", {"name": "px", "kind": "openai", "cluster": "replay_openai", "path_prefix": "/a/../b"}, "path_prefix"),
        ("/v1/keys", {"name": "k", "owner": "eve\u001b[2J", "allowed_models": ["*"]}, "owner"),
        ("/v1/keys", {"name": "k", "owner": "o", "allowed_models": models}, "allowed_models"),
    ]
    for path, body, param in cases:
        status, doc = env.api("POST", path, body)
        assert status == 400, f"{path} {param}: {status} {doc}"
        assert doc["error"]["param"] == param, doc
        assert doc["error"]["type"] == "invalid_request_error", doc
    env.api("DELETE", "/v1/providers/gem", expect=204)


def test_providers_sharing_a_cluster_each_serve_their_routes(env: Env) -> None:
    # The README's provider and route, then a second provider on the same Envoy cluster whose
    # name sorts first (the snapshot lists providers by name).
    env.api("POST", "/v1/providers", {"name": "openai-cp", "kind": "openai", "cluster": "replay_openai",
                                      "credential": "env:AI_GATEWAY_PROVIDER_E2E_OPENAI"}, expect=201)
    env.api("POST", "/v1/routes", {"model": "my-gpt", "targets": [{"provider": "openai-cp", "model": "gpt-5-nano"}]},
            expect=201)
    key = env.create_key("team-a", ["*"])
    env.key_a = key  # type: ignore[attr-defined]
    env.wait_for("my-gpt", key, 200, 10.0, time.monotonic())
    t0 = time.monotonic()
    env.api("POST", "/v1/providers", {"name": "a-second-account", "kind": "openai", "cluster": "replay_openai",
                                      "credential": "env:AI_GATEWAY_PROVIDER_E2E_OPENAI"}, expect=201)
    env.api("POST", "/v1/routes", {"model": "second-gpt",
                                   "targets": [{"provider": "a-second-account", "model": "gpt-5-nano"}]}, expect=201)
    env.wait_for("second-gpt", key, 200, PROPAGATION_LIMIT_S * 3, t0)
    # Both routes keep answering, each through its own provider, on both workers.
    for _ in range(6):
        assert provider_header(env, "my-gpt", key) == "openai-cp"
        assert provider_header(env, "second-gpt", key) == "a-second-account"


def raw_store_put(env: Env, kind: str, name: str, doc: dict) -> None:
    """Writes around the API into the stopped control plane's embedded store."""
    out = subprocess.run(
        [str(stack_mod.control_plane_binary()), "test-raw-store-put", "--data-dir", str(env.workdir / "cp-data"),
         "--kind", kind, "--name", name, "--doc", json.dumps(doc)],
        env={**os.environ, "CP_TEST_RAW_STORE_WRITES": "1"}, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_raw_store_writes_are_gated(env: Env) -> None:
    out = subprocess.run(
        [str(stack_mod.control_plane_binary()), "test-raw-store-put", "--data-dir", str(env.workdir / "cp-data"),
         "--kind", "provider", "--name", "x", "--doc", "{}"],
        env={k: v for k, v in os.environ.items() if k != "CP_TEST_RAW_STORE_WRITES"},
        capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "tests only" in out.stderr, out


def test_a_poisoned_store_cannot_stop_a_revocation(env: Env) -> None:
    key = env.key_a  # type: ignore[attr-defined]
    victim = env.create_key("to-revoke", ["*"])
    env.wait_for("my-gpt", victim, 200, PROPAGATION_LIMIT_S * 3, time.monotonic())

    # Poison the store around the API: the three objects the filter refuses.
    assert env.cp is not None
    env.cp.proc.stop()
    env.cp = None
    raw_store_put(env, "provider", "az-no-version", {"name": "az-no-version", "kind": "azure_openai", "cluster": "replay_openai"})
    raw_store_put(env, "route", "on-az", {"model": "on-az", "targets": [{"provider": "az-no-version", "model": "d"}]})
    raw_store_put(env, "provider", "br-no-region", {"name": "br-no-region", "kind": "bedrock", "cluster": "replay_openai"})
    raw_store_put(env, "provider", "gem", {"name": "gem", "kind": "gemini", "cluster": "replay_openai"})
    raw_store_put(env, "route", "files", {"model": "files", "targets": [{"provider": "gem", "model": "models/../../v1/files"}]})
    env.start_cp()

    # The Envoy reconnects (backoff up to 5 s), applies everything valid and reports the rest.
    expected = {("provider", "az-no-version", "settings.azure.api_version"),
                ("provider", "br-no-region", "settings.bedrock.region"),
                ("route", "on-az", "targets[0].provider"),
                ("route", "files", "targets[0].model")}
    deadline = time.monotonic() + 15
    while True:
        _, doc = env.api("GET", "/v1/snapshot", expect=200)
        nodes = [n for n in doc["nodes"] if n["version"] == doc["version"]]
        if nodes:
            break
        assert time.monotonic() < deadline, f"no node reported version {doc['version']}: {doc['nodes']}"
        time.sleep(0.1)
    assert {(i["kind"], i["name"], i["field"]) for i in doc["invalid"]} == expected, doc["invalid"]
    for node in nodes:
        assert {(i["kind"], i["name"], i["field"]) for i in node["rejected"]} == expected, node
    assert all(i["reason"] for i in nodes[0]["rejected"])
    assert env.chat("my-gpt", key)[0] == 200
    status, body = env.chat("files", key)
    assert_openai_error(status, body, 404, "model_not_found")

    # Revocation and a new key still take effect within the usual push time.
    t0 = time.monotonic()
    env.api("POST", "/v1/keys/to-revoke/revoke", {}, expect=200)
    elapsed = env.wait_for("my-gpt", victim, 401, PROPAGATION_LIMIT_S, t0)
    print(f"revocation with a poisoned store: {elapsed * 1000:.0f} ms")
    t0 = time.monotonic()
    fresh = env.create_key("after-poison", ["my-gpt"])
    env.wait_for("my-gpt", fresh, 200, PROPAGATION_LIMIT_S, t0)
    log = (env.workdir / "envoy.log").read_text(errors="replace")
    assert "refusing snapshot" not in log
    assert "left out provider 'az-no-version'" in log

    # Repairing the objects clears the report.
    env.api("DELETE", "/v1/routes/on-az", expect=204)
    env.api("DELETE", "/v1/routes/files", expect=204)
    for name in ("az-no-version", "br-no-region", "gem"):
        env.api("DELETE", f"/v1/providers/{name}", expect=204)
    deadline = time.monotonic() + 5
    while True:
        _, doc = env.api("GET", "/v1/snapshot", expect=200)
        if not doc["invalid"] and all(n["version"] == doc["version"] and not n["rejected"] for n in doc["nodes"]):
            break
        assert time.monotonic() < deadline, doc
        time.sleep(0.1)
