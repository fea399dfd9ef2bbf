"""Rate limits (ADR 0008): rpm and tpm per virtual key, exact across the two workers of one
Envoy, refused with 429 + Retry-After + x-ratelimit-* in OpenAI's shape."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

import stack as stack_mod
from test_control_plane import CHAT_BODY, PROPAGATION_LIMIT_S, PROVIDER_SECRET, WATCH_TOKEN, Env


@pytest.fixture(scope="module")
def env(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("rate-limits")
    grpc_port, rest_port = stack_mod.free_port(), stack_mod.free_port()
    boot = {"version": 1, "providers": [], "routes": []}
    running = stack_mod.start_stack(
        workdir, boot, replay_clusters=["replay_openai"], envoy_env={stack_mod.WATCH_TOKEN_ENV: WATCH_TOKEN},
        wasm=Path(os.environ.get("GATEWAY_WASM", stack_mod.DEFAULT_WASM)), fixtures=fixtures_dir,
        chunk_delay=0.002, concurrency=2, log_level="info", control_plane=f"http://127.0.0.1:{grpc_port}",
        replay_keys={"openai": PROVIDER_SECRET})
    e = Env(workdir, running, grpc_port, rest_port)
    e.start_cp()
    e.api("POST", "/v1/providers", {"name": "openai-cp", "kind": "openai", "cluster": "replay_openai",
                                    "credential": "env:AI_GATEWAY_PROVIDER_E2E_OPENAI"}, expect=201)
    e.api("POST", "/v1/routes", {"model": "rl-model", "targets": [{"provider": "openai-cp", "model": "gpt-5-nano"}]}, expect=201)
    yield e
    if e.cp is not None:
        e.cp.proc.stop()
    running.stop()


def limited_key(env: Env, name: str, **limits: int) -> str:
    _, doc = env.api("POST", "/v1/keys", {"name": name, "owner": "e2e@example.com", "allowed_models": ["rl-model"], **limits},
                     expect=201)
    env.secrets.append(doc["secret"])
    return doc["secret"]


def wait_until_served(env: Env, key: str) -> None:
    """Waits for the snapshot with `key`, without spending its requests: a wrong model is
    refused (403) before any counting once the key is known, and 401 before that."""
    deadline = time.monotonic() + 10 * PROPAGATION_LIMIT_S
    while env.chat("not-allowed-model", key)[0] != 403:
        assert time.monotonic() < deadline, "key never reached the data plane"
        time.sleep(0.02)
    for _ in range(10):  # both workers
        assert env.chat("not-allowed-model", key)[0] == 403


def away_from_window_edge() -> None:
    """Fixed 60 s windows: a burst straddling a minute boundary would see two windows."""
    into = time.time() % 60
    if into > 45:
        time.sleep(61 - into)


def test_rpm_is_exact_across_workers_under_50_concurrent_requests(env: Env) -> None:
    from openai import OpenAI, RateLimitError

    key = limited_key(env, "rpm-five", rpm=5)
    wait_until_served(env, key)
    away_from_window_edge()
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: env.chat("rl-model", key), range(50)))
    statuses = [s for s, _ in results]
    assert statuses.count(200) == 5, statuses
    assert statuses.count(429) == 45, statuses
    for status, body in results:
        if status == 429:
            err = json.loads(body)["error"]
            assert err["code"] == "rate_limit_exceeded" and err["type"]

    client = OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=key, max_retries=0, timeout=30)
    with pytest.raises(RateLimitError) as refused:
        client.chat.completions.create(model="rl-model", **CHAT_BODY)
    headers = refused.value.response.headers
    retry_after = int(headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert headers["x-ratelimit-limit-requests"] == "5"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == f"{retry_after}s"


def test_tpm_refuses_after_a_response_spent_the_minute(env: Env) -> None:
    from openai import OpenAI, RateLimitError

    key = limited_key(env, "tpm-small", tpm=5)
    wait_until_served(env, key)
    away_from_window_edge()
    client = OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=key, max_retries=0, timeout=30)
    first = client.chat.completions.create(model="rl-model", **CHAT_BODY)
    assert first.usage is not None and first.usage.total_tokens > 5
    # The tokens are added when the upstream filter finishes; allow it a moment.
    deadline = time.monotonic() + 2
    while True:
        try:
            client.chat.completions.create(model="rl-model", **CHAT_BODY)
        except RateLimitError as refused:
            headers = refused.response.headers
            assert headers["x-ratelimit-limit-tokens"] == "5"
            assert headers["x-ratelimit-remaining-tokens"] == "0"
            assert int(headers["retry-after"]) >= 1
            assert refused.code == "rate_limit_exceeded"
            break
        assert time.monotonic() < deadline, "tokens of the first response were never counted"
        time.sleep(0.05)


def test_successful_responses_carry_the_counter_in_x_ratelimit_headers(env: Env) -> None:
    """OpenAI clients read x-ratelimit-* on every response; the values are the caller's counter
    right after this request was admitted (tokens: what finished responses used so far)."""
    from openai import OpenAI

    key = limited_key(env, "headers-on-200", rpm=7, tpm=100000)
    wait_until_served(env, key)
    away_from_window_edge()
    client = OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=key, max_retries=0, timeout=30)
    used_tokens = 0
    for i in range(3):
        raw = client.chat.completions.with_raw_response.create(model="rl-model", **CHAT_BODY)
        completion = raw.parse()
        h = raw.headers
        assert h["x-ratelimit-limit-requests"] == "7"
        assert h["x-ratelimit-remaining-requests"] == str(7 - (i + 1))
        reset = h["x-ratelimit-reset-requests"]
        assert reset.endswith("s") and 1 <= int(reset[:-1]) <= 60
        assert h["x-ratelimit-limit-tokens"] == "100000"
        # Tokens are added when a response finishes; the previous ones have (sequential calls)
        # unless the upstream filter's finish is still running, so allow only that lag.
        remaining_tokens = int(h["x-ratelimit-remaining-tokens"])
        assert 100000 - used_tokens <= remaining_tokens <= 100000, (i, remaining_tokens, used_tokens)
        assert h["x-ratelimit-reset-tokens"] == reset
        assert completion.usage is not None
        used_tokens += completion.usage.total_tokens
        # Settle so the next response sees this one's tokens.
        time.sleep(0.2)
    raw = client.chat.completions.with_raw_response.create(model="rl-model", **CHAT_BODY)
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 100000 - used_tokens
    assert raw.headers["x-ratelimit-remaining-requests"] == "3"


def test_only_the_limits_set_are_reported_and_unlimited_keys_get_none(env: Env) -> None:
    from openai import OpenAI

    rpm_only, unlimited = limited_key(env, "rpm-only", rpm=1000), limited_key(env, "unlimited")
    wait_until_served(env, rpm_only)
    wait_until_served(env, unlimited)
    for key, expected in ((rpm_only, {"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                                      "x-ratelimit-reset-requests"}), (unlimited, set())):
        client = OpenAI(base_url=f"{env.stack.base_url}/v1", api_key=key, max_retries=0, timeout=30)
        raw = client.chat.completions.with_raw_response.create(model="rl-model", **CHAT_BODY)
        assert {k.lower() for k in raw.headers if k.lower().startswith("x-ratelimit-")} == expected


def test_zero_limits_are_refused_by_the_control_plane(env: Env) -> None:
    status, doc = env.api("POST", "/v1/keys", {"name": "zero", "owner": "o", "allowed_models": ["*"], "rpm": 0})
    assert status == 400, doc
