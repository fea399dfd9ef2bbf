"""Retries, cross-provider fallback, ejection and timeouts of routes with a policy (issue 7, ADR 0003).

Own stack: the fault-injecting upstream (tests/faults/server.py) plays the failing targets, the
replay upstream the healthy fallback in another provider format, Envoy (two workers) runs the
built filter with the bootstrap envoy/render.py makes for the routes' policies. The client is the
official OpenAI SDK.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest

import robust_stack as rs
import stack as stack_mod
from conftest import FIXTURES, WASM

A_KEY = "sk-openai-resilience-a"
B_KEY = "sk-ant-resilience-b"
C_KEY = "sk-ant-resilience-c"
D_KEY = "sk-openai-resilience-d"

RESILIENT = "resilient"      # A (OpenAI format, faulty) then B (Anthropic format, replay)
STREAM_ONCE = "stream-once"  # C (Anthropic format, faulty) then D (OpenAI format, replay)
EJECTING = "ejecting"        # E (OpenAI format, faulty) then B
BOUNDED = "bounded"          # F (OpenAI, faulty) then C (Anthropic, faulty): every attempt hangs

EJECT_AFTER = 3
EJECTION_MS = 2000
TIMEOUT_MS = 1500
PER_TRY_MS = 600
# Documented in README (route policy): Envoy's timer granularity, the filter and local reply.
TIMEOUT_MARGIN_S = 0.5
NEVER_EJECT = 1000  # routes whose faults are on purpose must not eject their targets mid-suite

HELLO = [{"role": "user", "content": "Say hello."}]


def policy(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"retries": 2, "retry_on": ["429", "5xx", "connect_failure", "reset"],
                           "per_try_timeout_ms": 5000, "timeout_ms": 15000, "backoff_base_ms": 10, "backoff_max_ms": 50,
                           "fallback": "ordered", "eject_after_failures": NEVER_EJECT, "ejection_ms": EJECTION_MS}
    out.update(overrides)
    return out


def gateway_config() -> dict[str, Any]:
    return {
        "version": 1,
        "providers": [
            {"name": "a-openai", "kind": "openai", "cluster": "res_a", "credential": {"env": "RES_A_KEY"}},
            {"name": "b-anthropic", "kind": "anthropic", "cluster": "res_b", "credential": {"env": "RES_B_KEY"}},
            {"name": "c-anthropic", "kind": "anthropic", "cluster": "res_c", "credential": {"env": "RES_C_KEY"}},
            {"name": "d-openai", "kind": "openai", "cluster": "res_d", "credential": {"env": "RES_D_KEY"}},
            {"name": "e-openai", "kind": "openai", "cluster": "res_e", "credential": {"env": "RES_A_KEY"}},
            {"name": "f-openai", "kind": "openai", "cluster": "res_f", "credential": {"env": "RES_A_KEY"}},
        ],
        "routes": [
            {"model": RESILIENT, "targets": [{"provider": "a-openai", "model": "gpt-a"}, {"provider": "b-anthropic", "model": "claude-b"}],
             "policy": policy()},
            {"model": STREAM_ONCE, "targets": [{"provider": "c-anthropic", "model": "claude-c"}, {"provider": "d-openai", "model": "gpt-d"}],
             "policy": policy()},
            {"model": EJECTING, "targets": [{"provider": "e-openai", "model": "gpt-e"}, {"provider": "b-anthropic", "model": "claude-b"}],
             "policy": policy(retries=1, eject_after_failures=EJECT_AFTER)},
            {"model": BOUNDED, "targets": [{"provider": "f-openai", "model": "gpt-f"}, {"provider": "c-anthropic", "model": "claude-c"}],
             "policy": policy(retries=5, retry_on=["timeout", "5xx", "reset"], per_try_timeout_ms=PER_TRY_MS, timeout_ms=TIMEOUT_MS)},
            # No policy: today's single-target behaviour on the same replay cluster.
            {"model": "plain", "targets": [{"provider": "d-openai", "model": "gpt-d"}]},
        ],
        "defaults": {"max_tokens": 256},
    }


class ResStack:
    def __init__(self, stack: stack_mod.Stack, faults: stack_mod.Proc, faults_port: int):
        self.stack, self.faults, self.faults_port = stack, faults, faults_port

    def fault_requests(self, test_id: str) -> list[dict[str, Any]]:
        status, body = stack_mod.http_get(f"http://127.0.0.1:{self.faults_port}/__faults/requests?test_id={test_id}", timeout=5)
        assert status == 200
        return json.loads(body)

    def replay_requests(self, test_id: str) -> list[dict[str, Any]]:
        status, body = stack_mod.http_get(f"{self.stack.replay_url}/__replay/requests?test_id={test_id}", timeout=5)
        assert status == 200
        return json.loads(body)

    def client(self, timeout: float = 30) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.stack.base_url}/v1", api_key="client-key-never-upstream", max_retries=0, timeout=timeout)


@pytest.fixture(scope="module")
def res(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResStack]:
    if not FIXTURES.is_dir():
        pytest.skip(f"recorded fixtures not found at {FIXTURES}")
    workdir = Path(os.environ.get("E2E_WORKDIR") or tmp_path_factory.mktemp("resilience")) / "resilience"
    workdir.mkdir(parents=True, exist_ok=True)
    faults, faults_port = rs.start_faults(workdir / "faults.log")
    fault_url = f"http://127.0.0.1:{faults_port}"
    try:
        running = stack_mod.start_stack(
            workdir, gateway_config(), replay_clusters=["res_b", "res_d"],
            extra_clusters={name: fault_url for name in ("res_a", "res_c", "res_e", "res_f")},
            envoy_env={"RES_A_KEY": A_KEY, "RES_B_KEY": B_KEY, "RES_C_KEY": C_KEY, "RES_D_KEY": D_KEY},
            wasm=WASM, fixtures=FIXTURES, chunk_delay=0.002, replay_keys={"anthropic": B_KEY, "openai": D_KEY},
            concurrency=2, log_level=os.environ.get("E2E_ENVOY_LOG_LEVEL", "info"),
        )
    except BaseException:
        faults.stop()
        raise
    yield ResStack(running, faults, faults_port)
    running.stop()
    faults.stop()


def tid() -> str:
    return uuid.uuid4().hex


A_FAULTS = {
    "429": {"x-fault": "status", "x-fault-status": "429"},
    "503": {"x-fault": "status", "x-fault-status": "503"},
    "reset": {"x-fault": "reset-before-headers"},
}


def assert_a_then_b(res: ResStack, test_id: str, stream: bool) -> None:
    """A got exactly one attempt in OpenAI's format with A's key; B got one in Anthropic's with B's."""
    a = res.fault_requests(test_id)
    assert len(a) == 1, a
    assert a[0]["path"] == "/v1/chat/completions"
    assert a[0]["json"]["model"] == "gpt-a"
    assert a[0]["json"].get("stream", False) is stream
    assert a[0]["headers"].get("authorization") == f"Bearer {A_KEY}"
    assert "x-api-key" not in a[0]["headers"]
    b = res.replay_requests(test_id)
    assert len(b) == 1, b
    assert b[0]["path"] == "/v1/messages"
    assert b[0]["json"]["model"] == "claude-b"
    assert "messages" in b[0]["json"] and "max_tokens" in b[0]["json"]
    assert b[0]["headers"].get("x-api-key") == B_KEY
    # Neither A's credential nor the client's reach B.
    assert "authorization" not in b[0]["headers"], b[0]["headers"]
    assert A_KEY not in json.dumps(b[0]) and "client-key-never-upstream" not in json.dumps(b[0])


@pytest.mark.parametrize("fault", list(A_FAULTS))
def test_failing_a_falls_back_to_b_in_b_format(res, fault):
    test_id = tid()
    raw = res.client().chat.completions.with_raw_response.create(
        model=RESILIENT, messages=HELLO, extra_headers={"x-test-id": test_id, **A_FAULTS[fault]})
    completion = raw.parse()
    assert raw.headers["x-ai-gateway-provider"] == "b-anthropic"
    assert raw.headers["x-ai-gateway-model"] == "claude-b"
    assert raw.headers["x-ai-gateway-attempts"] == "2"
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert_a_then_b(res, test_id, stream=False)


@pytest.mark.parametrize("fault", list(A_FAULTS))
def test_failing_a_falls_back_to_b_streaming(res, fault):
    test_id = tid()
    raw = res.client().chat.completions.with_raw_response.create(
        model=RESILIENT, messages=HELLO, stream=True, stream_options={"include_usage": True},
        extra_headers={"x-test-id": test_id, **A_FAULTS[fault]})
    assert raw.headers["x-ai-gateway-provider"] == "b-anthropic"
    assert raw.headers["x-ai-gateway-attempts"] == "2"
    text = ""
    usage = None
    for chunk in raw.parse():
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            text += choice.delta.content or ""
        usage = chunk.usage or usage
    assert text
    assert usage is not None and usage.completion_tokens > 0
    assert_a_then_b(res, test_id, stream=True)


def test_healthy_first_target_serves_in_one_attempt(res):
    test_id = tid()
    raw = res.client().chat.completions.with_raw_response.create(
        model=RESILIENT, messages=HELLO, extra_headers={"x-test-id": test_id, "x-fault": "ok"})
    assert raw.parse().choices[0].message.content == "Hello from the fault server."
    assert raw.headers["x-ai-gateway-provider"] == "a-openai"
    assert raw.headers["x-ai-gateway-attempts"] == "1"
    assert len(res.fault_requests(test_id)) == 1
    assert res.replay_requests(test_id) == []


def test_route_without_policy_is_unchanged(res):
    test_id = tid()
    raw = res.client().chat.completions.with_raw_response.create(model="plain", messages=HELLO, extra_headers={"x-test-id": test_id})
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-ai-gateway-provider"] == "d-openai"
    assert raw.headers["x-ai-gateway-attempts"] == "1"
    assert len(res.replay_requests(test_id)) == 1


def test_every_target_failing_is_one_clear_error(res):
    """Both targets of the bounded route answer 503: the client gets the last attempt's error in
    OpenAI's shape after every retry was spent, each attempt in its own target's format."""
    test_id = tid()
    with pytest.raises(openai.APIStatusError) as info:
        res.client().chat.completions.create(model=BOUNDED, messages=HELLO,
                                             extra_headers={"x-test-id": test_id, "x-fault": "status", "x-fault-status": "503"})
    assert info.value.status_code == 503
    body = info.value.response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    # retries=5: six attempts, alternating between the two targets, each in its own format.
    attempts = res.fault_requests(test_id)
    assert len(attempts) == 6, [a["path"] for a in attempts]
    paths = {a["path"] for a in attempts}
    assert paths == {"/v1/chat/completions", "/v1/messages"}
    for a in attempts:
        if a["path"] == "/v1/messages":
            assert a["json"]["model"] == "claude-c" and a["headers"].get("x-api-key") == C_KEY
            assert "authorization" not in a["headers"]
        else:
            assert a["json"]["model"] == "gpt-f" and a["headers"].get("authorization") == f"Bearer {A_KEY}"
            assert "x-api-key" not in a["headers"]
    assert info.value.response.headers.get("x-ai-gateway-attempts") == "6"


@pytest.mark.parametrize("fault", ["reset-mid-stream", "truncated-stream"])
def test_stream_that_sent_bytes_is_never_restarted(res, fault):
    test_id = tid()
    chunks = []
    with pytest.raises(Exception) as info:
        for chunk in res.client(timeout=10).chat.completions.create(
                model=STREAM_ONCE, messages=HELLO, stream=True, extra_headers={"x-test-id": test_id, "x-fault": fault}):
            chunks.append(chunk)
    # A transport error (reset) or the SDK's APIError (error event), never a complete answer.
    assert not isinstance(info.value, AssertionError)
    # The client got the first target's beginning, then an error, never a second answer.
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    assert len(res.fault_requests(test_id)) == 1
    assert res.replay_requests(test_id) == [], "the fallback target was called after bytes reached the client"


def test_total_timeout_bounds_all_attempts(res):
    test_id = tid()
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        res.client().chat.completions.create(model=BOUNDED, messages=HELLO,
                                             extra_headers={"x-test-id": test_id, "x-fault": "hang", "x-fault-delay": "10"})
    elapsed = time.monotonic() - started
    assert info.value.status_code == 504
    assert elapsed <= TIMEOUT_MS / 1000 + TIMEOUT_MARGIN_S, elapsed
    assert elapsed >= TIMEOUT_MS / 1000 - 0.05, elapsed
    # The per-try timeout moved on to the other target before the total ran out.
    attempts = res.fault_requests(test_id)
    assert len(attempts) >= 2, attempts
    assert {a["path"] for a in attempts} == {"/v1/chat/completions", "/v1/messages"}


def test_continuously_failing_target_is_ejected_then_probed(res):
    """E answers 503 to everything. After EJECT_AFTER consecutive failures Envoy ejects it for
    EJECTION_MS: requests go straight to B. Afterwards E is probed again (and ejected again)."""
    test_id = tid()
    client = res.client()
    served_by: list[tuple[float, str]] = []
    started = time.time()
    while time.time() - started < 2 * EJECTION_MS / 1000 + 2.5:
        raw = client.chat.completions.with_raw_response.create(
            model=EJECTING, messages=HELLO, extra_headers={"x-test-id": test_id, "x-fault": "status", "x-fault-status": "503"})
        raw.parse()
        served_by.append((time.time(), raw.headers["x-ai-gateway-provider"]))
        time.sleep(0.05)
    # Every request was answered by B, in one or two attempts.
    assert {p for _, p in served_by} == {"b-anthropic"}
    e_times = sorted(r["time"] for r in res.fault_requests(test_id))
    assert e_times[:EJECT_AFTER], e_times
    # The first EJECT_AFTER failures come back to back, then a gap of about EJECTION_MS.
    first_ejection = e_times[EJECT_AFTER - 1]
    after = [t for t in e_times if t > first_ejection]
    assert after, f"E was never probed again after its ejection: {e_times}"
    gap = after[0] - first_ejection
    assert EJECTION_MS / 1000 - 0.1 <= gap <= EJECTION_MS / 1000 + 1.5, (gap, e_times)
    # While ejected, B alone served: requests in the gap reached only the replay.
    in_gap = [t for t, _ in served_by if first_ejection + 0.2 < t < after[0] - 0.2]
    assert len(in_gap) >= 5, served_by
    # Ejected far fewer times than requested: most requests never touched E.
    assert len(e_times) < len(served_by) / 2, (len(e_times), len(served_by))


def test_metrics_count_every_attempt_and_tokens_once(res):
    """The failed attempt on A and the answering one on B are both counted, with their statuses;
    tokens only for B, the attempt that answered."""
    from test_metrics_and_robustness import counter, prometheus, wait_for_change

    before = prometheus(res.stack)
    test_id = tid()
    completion = res.client().chat.completions.create(model=RESILIENT, messages=HELLO,
                                                      extra_headers={"x-test-id": test_id, **A_FAULTS["503"]})
    assert wait_for_change(res.stack, before, "_requests_total", 1, provider="b-anthropic", status="200") == 1
    assert wait_for_change(res.stack, before, "_requests_total", 1, provider="a-openai", status="503") == 1
    after = prometheus(res.stack)
    b_out = counter(after, "_tokens_total", provider="b-anthropic", type="output") - counter(before, "_tokens_total", provider="b-anthropic", type="output")
    assert b_out == completion.usage.completion_tokens
    a_tokens = counter(after, "_tokens_total", provider="a-openai") - counter(before, "_tokens_total", provider="a-openai")
    assert a_tokens == 0
