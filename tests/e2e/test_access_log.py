"""JSON access log lines (one per attempt) and OpenTelemetry GenAI metrics, from a real Envoy.

A stack of its own, rendered with `--access-log`, so the log holds only this module's requests.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from openai import OpenAI

import recordings
from conftest import (ANTHROPIC_KEY, CLAUDE, CLAUDE_UPSTREAM, FIXTURES, GPT, GPT_UPSTREAM, OPENAI_KEY, WASM,
                      gateway_config, replay_headers)

import stack as stack_mod

FALLBACK = "fallback-log-e2e"
FALLBACK_UPSTREAM = "claude-fallback-log-e2e"


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[stack_mod.Stack, Path]]:
    workdir = tmp_path_factory.mktemp("access-log")
    log_path = workdir / "access.log"
    config = gateway_config()
    # Fallback from a provider behind a closed port to the replay: two attempts, two providers.
    config["routes"].append({"model": FALLBACK, "targets": [{"provider": "openai-down", "model": GPT_UPSTREAM},
                                                             {"provider": "anthropic-replay", "model": FALLBACK_UPSTREAM}],
                             "policy": {"retries": 2, "retry_on": ["connect_failure", "5xx", "reset"]}})
    running = stack_mod.start_stack(
        workdir, config, replay_clusters=["replay_anthropic", "replay_openai", "replay_anthropic_wrong_key"],
        extra_clusters={"dead_anthropic": f"http://127.0.0.1:{stack_mod.free_port()}",
                        "dead_openai": f"http://127.0.0.1:{stack_mod.free_port()}"},
        envoy_env={"E2E_ANTHROPIC_KEY": ANTHROPIC_KEY, "E2E_OPENAI_KEY": OPENAI_KEY, "E2E_WRONG_KEY": "sk-ant-wrong-key"},
        wasm=WASM, fixtures=FIXTURES, chunk_delay=0.002,
        replay_keys={"anthropic": ANTHROPIC_KEY, "openai": OPENAI_KEY}, concurrency=1, access_log=log_path)
    yield running, log_path
    running.stop()


def log_lines(log_path: Path, model: str, count: int) -> list[dict[str, Any]]:
    """Per-request JSON lines for `model`; Envoy flushes file logs about once a second."""
    deadline = time.monotonic() + 10
    while True:
        lines = []
        for raw in log_path.read_text(errors="replace").splitlines() if log_path.exists() else []:
            if raw.startswith("{"):
                entry = json.loads(raw)
                if entry.get("log") == "request" and entry.get("model") == model:
                    lines.append(entry)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def gen_ai_sample(running: stack_mod.Stack, name: str, **labels: str) -> float:
    """Sum of the Prometheus samples called `name` whose labels include `labels`."""
    status, body = stack_mod.http_get(f"{running.admin_url}/stats/prometheus", timeout=5)
    assert status == 200
    total = 0.0
    for raw in body.decode().splitlines():
        if raw.startswith(name + "{"):
            key, value = raw.rsplit(" ", 1)
            if all(f'{k}="{v}"' in key for k, v in labels.items()):
                total += float(value)
    return total


def test_attempt_log_has_provider_model_status_tokens_and_ttft(logged, test_id):
    running, log_path = logged
    name = "anthropic/test_anthropic_model_instructions.yaml"
    exp = recordings.expected_from_anthropic(recordings.load(FIXTURES)[name].interactions[0])
    client = OpenAI(base_url=f"{running.base_url}/v1", api_key="client-key", max_retries=0, timeout=30)
    client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "What is the capital of France?"}],
                                   extra_headers=replay_headers(test_id, name))
    lines = log_lines(log_path, CLAUDE_UPSTREAM, 1)
    assert len(lines) == 1, log_path.read_text(errors="replace")
    line = lines[0]
    assert line["provider"] == "anthropic-replay"
    assert line["status"] == 200 and line["method"] == "POST"
    assert line["upstream_cluster"] == "replay_anthropic" and line["attempts"] == 1
    # The client's path, though the provider was called on Anthropic's.
    assert line["path"] == "/v1/chat/completions"
    attempts = [json.loads(raw) for raw in log_path.read_text().splitlines()
                if raw.startswith("{") and json.loads(raw).get("request_id") == line["request_id"]
                and json.loads(raw).get("log") == "attempt"]
    assert [(a["status"], a["upstream_cluster"], a["provider"], a["path"]) for a in attempts] == [
        (200, "replay_anthropic", "anthropic-replay", "/v1/messages")]
    assert int(line["input_tokens"]) == exp.prompt_tokens > 0
    assert int(line["output_tokens"]) == exp.completion_tokens > 0
    assert 0 <= int(line["time_to_first_token_ms"]) <= int(line["duration_ms"]) + 1


def test_streamed_attempt_log_and_gen_ai_metrics(logged, test_id):
    running, log_path = logged
    name = "openai/chat-streaming-detailed-usage.yaml"
    recorded = [json.loads(d) for d in recordings.openai_sse_data(recordings.load(FIXTURES)[name].interactions[0].body)
                if d != "[DONE]"]
    usage = next(c["usage"] for c in recorded if c.get("usage"))
    client = OpenAI(base_url=f"{running.base_url}/v1", api_key="client-key", max_retries=0, timeout=30)
    for _ in client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}], stream=True,
                                            extra_headers=replay_headers(test_id, name)):
        pass
    lines = log_lines(log_path, GPT_UPSTREAM, 1)
    assert len(lines) == 1, log_path.read_text(errors="replace")
    line = lines[0]
    assert (line["provider"], line["status"]) == ("openai-replay", 200)
    assert int(line["input_tokens"]) == usage["prompt_tokens"]
    assert int(line["output_tokens"]) == usage["completion_tokens"] > 0
    assert int(line["time_to_first_token_ms"]) >= 0
    # Histograms reach /stats/prometheus at Envoy's stats flush (5 s).
    tokens = dict(provider="openai-replay", model=GPT_UPSTREAM)
    deadline = time.monotonic() + 15
    while gen_ai_sample(running, "gen_ai_server_time_per_output_token_us_count", **tokens) < 1:
        assert time.monotonic() < deadline, "no gen_ai time-per-output-token sample"
        time.sleep(0.25)
    sample = lambda name, **labels: gen_ai_sample(running, name, **labels)  # noqa: E731
    assert sample("gen_ai_client_token_usage_count", type="output", **tokens) == 1
    # Envoy's histograms (circllhist) keep about two significant digits: sums are approximate.
    assert sample("gen_ai_client_token_usage_sum", type="output", **tokens) == pytest.approx(usage["completion_tokens"], rel=0.06)
    assert sample("gen_ai_client_token_usage_sum", type="input", **tokens) == pytest.approx(usage["prompt_tokens"], rel=0.06)
    assert sample("gen_ai_server_request_duration_ms_count", status="200", **tokens) == 1
    assert sample("gen_ai_server_time_per_output_token_us_count", **tokens) == 1


def test_request_log_has_cost_and_caller_fields(logged, test_id):
    """cost_usd and caller are in every request line; null when the filter knows none (no price
    for the model, no authenticated caller on this stack)."""
    running, log_path = logged
    name = "openai/chat-basic.yaml"
    before = len(log_lines(log_path, GPT_UPSTREAM, 0))
    client = OpenAI(base_url=f"{running.base_url}/v1", api_key="client-key", max_retries=0, timeout=30)
    client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}],
                                   extra_headers=replay_headers(test_id, name))
    lines = log_lines(log_path, GPT_UPSTREAM, before + 1)
    assert len(lines) == before + 1, log_path.read_text(errors="replace")
    line = lines[-1]
    assert line["status"] == 200
    assert "cost_usd" in line and "caller" in line
    assert line["caller"] is None
    assert line["cost_usd"] is None or float(line["cost_usd"]) >= 0
    assert "client-key" not in log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def jwt_logged(tmp_path_factory: pytest.TempPathFactory):
    """A stack with `auth.jwt` (jwt_authn + the filter's JWT policy) and a JSON access log."""
    import shutil
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not found")
    from test_jwt import ISSUER, KID, Signer
    workdir = tmp_path_factory.mktemp("access-log-jwt")
    log_path = workdir / "access.log"
    signer = Signer(workdir / "issuer.pem", KID)
    config = {
        "version": 1,
        "providers": [{"name": "openai-replay", "kind": "openai", "cluster": "replay_openai",
                       "credential": {"env": "E2E_OPENAI_KEY"}}],
        "routes": [{"model": GPT, "targets": [{"provider": "openai-replay", "model": GPT_UPSTREAM}]}],
        "auth": {"jwt": {"issuer": ISSUER, "jwks": {"local": json.dumps({"keys": [signer.jwk]})},
                         "client_ids": ["svc-log"], "scopes": {"gateway/all": ["*"]}}},
    }
    running = stack_mod.start_stack(
        workdir, config, replay_clusters=["replay_openai"], envoy_env={"E2E_OPENAI_KEY": OPENAI_KEY},
        wasm=WASM, fixtures=FIXTURES, chunk_delay=0.002, replay_keys={"openai": OPENAI_KEY}, concurrency=1,
        access_log=log_path)
    yield running, log_path, signer
    running.stop()


def test_request_log_names_the_jwt_caller_not_the_token(jwt_logged, test_id):
    from test_jwt import cognito_claims
    running, log_path, signer = jwt_logged
    token = signer.token(cognito_claims("svc-log", "gateway/all"))
    client = OpenAI(base_url=f"{running.base_url}/v1", api_key=token, max_retries=0, timeout=30)
    client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}],
                                   extra_headers=replay_headers(test_id, "openai/chat-basic.yaml"))
    lines = log_lines(log_path, GPT_UPSTREAM, 1)
    assert len(lines) == 1, log_path.read_text(errors="replace")
    assert lines[0]["caller"] == "jwt:svc-log"
    assert lines[0]["status"] == 200 and lines[0]["provider"] == "openai-replay"
    text = log_path.read_text(errors="replace")
    assert token not in text and token.split(".")[2] not in text


def test_fallback_logs_each_attempts_provider(logged, test_id):
    running, log_path = logged
    name = "anthropic/test_anthropic_model_instructions.yaml"
    client = OpenAI(base_url=f"{running.base_url}/v1", api_key="client-key", max_retries=0, timeout=30)
    raw = client.chat.completions.with_raw_response.create(
        model=FALLBACK, messages=[{"role": "user", "content": "hi"}], extra_headers=replay_headers(test_id, name))
    assert raw.headers["x-ai-gateway-attempts"] == "2"
    lines = log_lines(log_path, FALLBACK_UPSTREAM, 1)
    assert len(lines) == 1, log_path.read_text(errors="replace")
    line = lines[0]
    assert (line["status"], line["attempts"], line["provider"]) == (200, 2, "anthropic-replay")
    assert line["upstream_cluster"] == "ai_gateway_route_" + FALLBACK
    deadline = time.monotonic() + 10
    while True:
        attempts = [json.loads(raw_line) for raw_line in log_path.read_text().splitlines()
                    if raw_line.startswith("{") and json.loads(raw_line).get("request_id") == line["request_id"]
                    and json.loads(raw_line).get("log") == "attempt"]
        if len(attempts) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # The aggregate cluster names neither; the endpoint metadata names each attempt's provider.
    assert [(a["provider"], a["status"], a["flags"]) for a in attempts] == [
        ("openai-down", 0, "UF"), ("anthropic-replay", 200, "-")]
