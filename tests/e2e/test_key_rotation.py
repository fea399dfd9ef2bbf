"""Virtual-key rotation with a grace period (issue 6 item 6), through the real control plane and a
real Envoy with two workers: the new secret is served within a second, the old one keeps working
until the grace ends and is refused right after, both secrets share one rate-limit counter, and
revocation refuses every secret of the key."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Iterator

import pytest

import stack as stack_mod
from conftest import assert_openai_error
from test_control_plane import CHAT_BODY, PROPAGATION_LIMIT_S, PROVIDER_SECRET, WATCH_TOKEN, Env
from test_rate_limits import away_from_window_edge

MODEL = "rot-model"


@pytest.fixture(scope="module")
def env(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("key-rotation")
    grpc_port, rest_port = stack_mod.free_port(), stack_mod.free_port()
    running = stack_mod.start_stack(
        workdir, {"version": 1, "providers": [], "routes": []}, replay_clusters=["replay_openai"],
        envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN},
        wasm=Path(os.environ.get("GATEWAY_WASM", stack_mod.DEFAULT_WASM)), fixtures=fixtures_dir,
        chunk_delay=0.002, concurrency=2, log_level="info", control_plane=f"http://127.0.0.1:{grpc_port}",
        replay_keys={"openai": PROVIDER_SECRET})
    e = Env(workdir, running, grpc_port, rest_port)
    e.start_cp()
    e.api("POST", "/v1/providers", {"name": "openai-cp", "kind": "openai", "cluster": "replay_openai",
                                    "credential": "env:AI_GATEWAY_PROVIDER_E2E_OPENAI"}, expect=201)
    e.api("POST", "/v1/routes", {"model": MODEL, "targets": [{"provider": "openai-cp", "model": "gpt-5-nano"}]}, expect=201)
    yield e
    if e.cp is not None:
        e.cp.proc.stop()
    running.stop()


def known_since(env: Env, key: str, since: float, limit: float) -> float:
    """Seconds from `since` until the data plane knows `key`: a model the key may not call is a
    403 once the key is known (401 before, 404 before the first snapshot), and is refused before
    any rate-limit counting."""
    while True:
        status, body = env.chat("not-allowed-model", key)
        if status == 403:
            elapsed = time.monotonic() - since
            break
        # 404: no snapshot yet (the bootstrap config has no routes and asks for no key).
        assert status in (401, 404), body[:300]
        assert time.monotonic() - since < limit, f"key not served within {limit}s"
        time.sleep(0.01)
    for _ in range(10):  # both workers
        assert env.chat("not-allowed-model", key)[0] == 403
    return elapsed


def test_rotation_grace_shared_limits_and_revocation(env: Env) -> None:
    from openai import AuthenticationError, OpenAI

    def client(key: str) -> OpenAI:
        return OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=key, max_retries=0, timeout=30)

    _, doc = env.api("POST", "/v1/keys", {"name": "rotating", "owner": "e2e@example.com", "allowed_models": [MODEL],
                                          "rpm": 6}, expect=201)
    old = doc["secret"]
    env.secrets.append(old)
    known_since(env, old, time.monotonic(), 10 * PROPAGATION_LIMIT_S)
    away_from_window_edge()
    assert client(old).chat.completions.create(model=MODEL, **CHAT_BODY).choices[0].message.content

    t0 = time.monotonic()
    _, rotated = env.api("POST", "/v1/keys/rotating/rotate", {"grace_seconds": 2}, expect=200)
    new = rotated["secret"]
    env.secrets.append(new)
    assert new != old and new.startswith("sk-gw-")
    grace_end = rotated["rotation"]["previous_expires_at"]
    assert grace_end == rotated["rotation"]["rotated_at"] + 2
    elapsed = known_since(env, new, t0, PROPAGATION_LIMIT_S)
    print(f"new secret served after {elapsed * 1000:.0f} ms")

    # During the grace both secrets work and count against one limit: rpm 6, one request spent.
    raw = client(new).chat.completions.with_raw_response.create(model=MODEL, **CHAT_BODY)
    assert raw.headers["x-ratelimit-remaining-requests"] == "4"
    assert time.time() < grace_end, "the test machine was too slow to check the grace period"
    raw = client(old).chat.completions.with_raw_response.create(model=MODEL, **CHAT_BODY)
    assert raw.headers["x-ratelimit-remaining-requests"] == "3"

    # Right after the grace the old secret is refused (the filters check the expiry themselves).
    while True:
        status, body = env.chat("not-allowed-model", old)
        now = time.time()
        if status == 401:
            assert_openai_error(status, body, 401, "key_expired")
            assert now >= grace_end - 0.05, f"old secret refused {grace_end - now:.2f}s before the grace ended"
            assert now - grace_end <= PROPAGATION_LIMIT_S
            print(f"old secret refused {max(0.0, now - grace_end) * 1000:.0f} ms after the grace ended")
            break
        assert status == 403, body[:300]
        assert now - grace_end <= PROPAGATION_LIMIT_S, "old secret still accepted 1 s after its grace"
        time.sleep(0.01)
    for _ in range(10):
        assert env.chat(MODEL, old)[0] == 401
    with pytest.raises(AuthenticationError) as refused:
        client(old).chat.completions.create(model=MODEL, **CHAT_BODY)
    assert refused.value.code == "key_expired"
    assert client(new).chat.completions.create(model=MODEL, **CHAT_BODY).choices[0].message.content

    # Rotating again without grace: the newest secret works, the previous one is cut off at once
    # and the first one is not known at all any more.
    t0 = time.monotonic()
    _, rotated = env.api("POST", "/v1/keys/rotating/rotate", {"grace_seconds": 0}, expect=200)
    newest = rotated["secret"]
    env.secrets.append(newest)
    known_since(env, newest, t0, PROPAGATION_LIMIT_S)
    assert_openai_error(*env.chat(MODEL, new), 401, "key_expired")
    assert_openai_error(*env.chat(MODEL, old), 401, "invalid_api_key")

    # Revocation refuses every secret of the key within a second.
    t0 = time.monotonic()
    env.api("POST", "/v1/keys/rotating/revoke", expect=200)
    while env.chat(MODEL, newest)[0] != 401:
        assert time.monotonic() - t0 < PROPAGATION_LIMIT_S, "revocation not applied within 1 s"
        time.sleep(0.01)
    for secret in (newest, new):
        status, body = env.chat(MODEL, secret)
        assert_openai_error(status, body, 401, "key_revoked")
    # Neither the secrets nor their hashes show up in the API views.
    status, keys = env.api("GET", "/v1/keys/rotating", expect=200)
    text = json.dumps(keys)
    assert "secret_hash" not in text and all(s not in text for s in (old, new, newest))
